//! Accounting of disclosures for one patient: HIPAA §164.528 (date,
//! recipient name and address, what was disclosed, purpose) and, for
//! records that carried 42 CFR Part 2 data, the §2.24 list of disclosures.

use serde::Serialize;
use time::OffsetDateTime;

use super::{csv_line, html_escape, purpose_text};
use crate::index::{Index, IndexError};
use crate::query::{Filter, checked};
use crate::record::{AuditRecord, DecisionKind};

/// The sensitivity entry that puts a disclosure on the §2.24 list: the
/// category id the gateway writes for 42 CFR Part 2 data.
pub const PART2: &str = "part2";
/// The same, as the HL7 v3 ActCode label: records written by other tools
/// (and the first schema 2 examples) use it.
pub const PART2_LABEL: &str = "42CFRPart2";

/// Purposes exempt from the §164.528 accounting (treatment, payment,
/// health care operations — §164.528(a)(1)(i)); listed but marked.
const TPO: &[&str] = &["TREAT", "ETREAT", "COC", "CAREMGT", "HPAYMT", "HOPERAT"];

/// One disclosure of the patient's data.
#[derive(Debug, Clone, Serialize)]
pub struct Disclosure {
    /// The audit record (its receipt), for the officer to look up or prove.
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub date: OffsetDateTime,
    /// Recipient's name (the partner organization).
    pub recipient: String,
    pub recipient_id: Option<String>,
    pub recipient_address: Option<String>,
    /// What was disclosed, in words: resource types and counts.
    pub description: String,
    /// Resource type → count released.
    pub resources: Vec<(String, u32)>,
    pub purpose: Option<String>,
    pub purpose_text: Option<String>,
    pub agreement: Option<String>,
    pub sensitivity: Vec<String>,
    /// Carried 42 CFR Part 2 data: on the §2.24 list.
    pub part2: bool,
    /// Treatment, payment or operations: exempt from the §164.528
    /// accounting, listed for completeness.
    pub tpo: bool,
    pub request_id: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Accounting {
    pub patient: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub generated: OffsetDateTime,
    /// Every permitted release of the patient's data, oldest first.
    pub disclosures: Vec<Disclosure>,
    /// Records of the log that do not match its signed checkpoints, in
    /// words: the disclosures above still list every record found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Builds the accounting for `patient` from the indexes.
pub fn accounting(
    index: &Index,
    patient: &str,
    since: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<Accounting, IndexError> {
    let filter = Filter {
        patient: Some(patient.to_owned()),
        decision: Some(DecisionKind::Permit),
        since,
        ..Filter::default()
    };
    let answer = checked(index, &filter)?;
    let disclosures = answer
        .records
        .iter()
        .filter_map(|r| disclosure(r, patient))
        .collect();
    Ok(Accounting {
        patient: patient.to_owned(),
        since,
        generated: now,
        disclosures,
        warnings: answer.warnings,
    })
}

fn disclosure(record: &AuditRecord, patient: &str) -> Option<Disclosure> {
    if record.is_own_write() {
        return None;
    }
    let release = record.released_to(patient)?;
    let resources: Vec<(String, u32)> = release
        .resources
        .iter()
        .filter(|r| r.released > 0)
        .map(|r| (r.resource_type.clone(), r.released))
        .collect();
    let mut description = resources
        .iter()
        .map(|(t, n)| format!("{t} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let part2 = release
        .sensitivity
        .iter()
        .any(|s| s == PART2 || s == PART2_LABEL);
    if !release.sensitivity.is_empty() {
        description.push_str(&format!(" (sensitive: {})", release.sensitivity.join(", ")));
    }
    Some(Disclosure {
        seq: record.seq,
        date: record.time,
        recipient: record
            .partner_name
            .clone()
            .or_else(|| record.partner.clone())
            .unwrap_or_else(|| "(unidentified)".into()),
        recipient_id: record.partner.clone(),
        recipient_address: record.partner_address.clone(),
        description,
        resources,
        purpose: record.purpose.clone(),
        purpose_text: record
            .purpose
            .as_deref()
            .map(|p| purpose_text(p).to_owned()),
        agreement: record.agreement_ids().next().map(str::to_owned),
        sensitivity: release.sensitivity.clone(),
        part2,
        tpo: record.purpose.as_deref().is_some_and(|p| TPO.contains(&p)),
        request_id: record.request_id.clone(),
    })
}

fn date(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn purpose_cell(d: &Disclosure) -> String {
    match (&d.purpose, &d.purpose_text) {
        (Some(code), Some(text)) if text != code => format!("{text} ({code})"),
        (Some(code), _) => code.clone(),
        _ => "(not stated)".into(),
    }
}

impl Accounting {
    pub fn part2(&self) -> impl Iterator<Item = &Disclosure> {
        self.disclosures.iter().filter(|d| d.part2)
    }

    /// Plain text for the terminal.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "Accounting of disclosures (45 CFR §164.528) for {}\nPeriod: {} to {}\n\n",
            self.patient,
            self.since.map_or_else(|| "start of log".into(), date),
            date(self.generated)
        );
        for warning in &self.warnings {
            out.push_str(&format!("WARNING: {warning}\n"));
        }
        if !self.warnings.is_empty() {
            out.push('\n');
        }
        if self.disclosures.is_empty() {
            out.push_str("No disclosures recorded.\n");
        }
        for d in &self.disclosures {
            out.push_str(&format!(
                "{}  {}{}\n    to: {}{}\n    what: {}\n    purpose: {}{}\n",
                date(d.date),
                if d.tpo { "[TPO] " } else { "" },
                format_args!("record {}", d.seq),
                d.recipient,
                d.recipient_address
                    .as_deref()
                    .map_or_else(String::new, |a| format!(", {a}")),
                d.description,
                purpose_cell(d),
                d.agreement
                    .as_deref()
                    .map_or_else(String::new, |a| format!("; agreement {a}")),
            ));
        }
        let part2: Vec<&Disclosure> = self.part2().collect();
        if !part2.is_empty() {
            out.push_str("\nList of disclosures (42 CFR §2.24) — records carrying Part 2 data\n");
            for d in part2 {
                out.push_str(&format!(
                    "{}  {}  {}  record {}\n",
                    date(d.date),
                    d.recipient,
                    d.description,
                    d.seq
                ));
            }
        }
        out.push_str("\n[TPO] treatment, payment or health care operations: exempt from the §164.528 accounting, shown for completeness.\n");
        out
    }

    /// CSV, one row per disclosure (header first).
    pub fn to_csv(&self) -> String {
        let mut out = csv_line([
            "date",
            "recipient",
            "recipient_id",
            "recipient_address",
            "description",
            "purpose",
            "agreement",
            "part2",
            "tpo",
            "record",
            "request_id",
        ]);
        for d in &self.disclosures {
            let seq = d.seq.to_string();
            let when = date(d.date);
            let purpose = purpose_cell(d);
            out.push_str(&csv_line([
                when.as_str(),
                &d.recipient,
                d.recipient_id.as_deref().unwrap_or(""),
                d.recipient_address.as_deref().unwrap_or(""),
                &d.description,
                &purpose,
                d.agreement.as_deref().unwrap_or(""),
                if d.part2 { "yes" } else { "no" },
                if d.tpo { "yes" } else { "no" },
                &seq,
                &d.request_id,
            ]));
        }
        out
    }

    /// A printable HTML page; every value is escaped.
    pub fn to_html(&self) -> String {
        let e = |s: &str| html_escape(s);
        let mut out = String::from(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>Accounting of disclosures</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;width:100%}th,td{border:1px solid #999;padding:4px;text-align:left;vertical-align:top;font-size:11pt}@media print{body{margin:0}}</style>\n</head><body>\n",
        );
        out.push_str(&format!(
            "<h1>Accounting of disclosures</h1>\n<p>Patient: <strong>{}</strong><br>Period: {} to {}<br>45 CFR §164.528</p>\n",
            e(&self.patient),
            e(&self.since.map_or_else(|| "start of log".into(), date)),
            e(&date(self.generated))
        ));
        for warning in &self.warnings {
            out.push_str(&format!(
                "<p><strong>Warning:</strong> {}</p>\n",
                e(warning)
            ));
        }
        out.push_str(&table(self.disclosures.iter(), true));
        let part2: Vec<&Disclosure> = self.part2().collect();
        if !part2.is_empty() {
            out.push_str("<h2>List of disclosures (42 CFR §2.24)</h2>\n");
            out.push_str(&table(part2.into_iter(), false));
        }
        out.push_str("<p><small>TPO: treatment, payment or health care operations — exempt from the §164.528 accounting, shown for completeness. Record numbers refer to the tamper-evident audit log (<code>accord audit prove --seq N</code>).</small></p>\n</body></html>\n");
        out
    }
}

fn table<'a>(rows: impl Iterator<Item = &'a Disclosure>, full: bool) -> String {
    let e = |s: &str| html_escape(s);
    let mut out = String::from(
        "<table>\n<tr><th>Date</th><th>Recipient</th><th>Address</th><th>What was disclosed</th><th>Purpose</th><th>Record</th></tr>\n",
    );
    let mut any = false;
    for d in rows {
        any = true;
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>\n",
            e(&date(d.date)),
            e(&d.recipient),
            e(d.recipient_address.as_deref().unwrap_or("")),
            e(&d.description),
            e(&purpose_cell(d)),
            if full && d.tpo { " [TPO]" } else { "" },
            d.seq
        ));
    }
    if !any {
        out.push_str("<tr><td colspan=\"6\">No disclosures recorded.</td></tr>\n");
    }
    out.push_str("</table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{PatientRelease, TypeCounts};

    fn released(sensitivity: &[&str]) -> AuditRecord {
        AuditRecord {
            decision: DecisionKind::Permit,
            patients: vec![PatientRelease {
                patient: "Patient/1".into(),
                sensitivity: sensitivity.iter().map(|s| (*s).to_owned()).collect(),
                resources: vec![TypeCounts {
                    resource_type: "Condition".into(),
                    released: 1,
                    ..TypeCounts::default()
                }],
            }],
            ..AuditRecord::default()
        }
    }

    #[test]
    fn part2_category_or_label_puts_a_disclosure_on_the_part2_list() {
        for (sensitivity, on_list) in [
            (&["mental-health", "part2"][..], true),
            (&["42CFRPart2"][..], true),
            (&["mental-health"][..], false),
            (&[][..], false),
        ] {
            let d = disclosure(&released(sensitivity), "Patient/1").unwrap();
            assert_eq!(d.part2, on_list, "{sensitivity:?}");
        }
        let d = disclosure(&released(&["mental-health", "part2"]), "Patient/1").unwrap();
        assert_eq!(
            d.description,
            "Condition ×1 (sensitive: mental-health, part2)"
        );
    }
}
