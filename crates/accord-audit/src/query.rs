//! The privacy officer's queries: records by patient, partner, agreement,
//! purpose, decision and time range, answered from the indexes (never by
//! scanning the log) and read back from their segments.

use std::collections::BTreeSet;

use time::{Duration, OffsetDateTime};

use crate::index::{Field, Index, IndexError};
use crate::integrity;
use crate::record::{AuditRecord, DecisionKind};

/// What to look for; every given field must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `Patient/<id>`: records about the patient — data released or
    /// withheld, or the patient named by the request (attempts included).
    pub patient: Option<String>,
    pub partner: Option<String>,
    pub agreement: Option<String>,
    pub purpose: Option<String>,
    pub decision: Option<DecisionKind>,
    /// Inclusive.
    pub since: Option<OffsetDateTime>,
    /// Exclusive.
    pub until: Option<OffsetDateTime>,
    /// At most this many records (the most recent ones).
    pub limit: Option<usize>,
}

/// Why a time could not be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is neither an RFC 3339 time (2025-01-31T00:00:00Z), a date (2025-01-31) nor a relative age (90m, 12h, 30d, 4w, 6y)"
)]
pub struct BadTime(pub String);

/// Reads an RFC 3339 time, a date (midnight UTC) or an age before `now`:
/// `90m`, `12h`, `30d`, `4w`, `6y` (calendar years).
pub fn parse_time(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, BadTime> {
    let bad = || BadTime(text.to_owned());
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(text, &date_format) {
        return Ok(date.midnight().assume_utc());
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .filter(|&i| i > 0)
        .ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .ok()
        .filter(|n| *n <= 1_000_000)
        .ok_or_else(bad)?;
    let back = match unit {
        "m" | "min" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        "w" => Duration::weeks(n),
        "y" => {
            let years = i32::try_from(n).map_err(|_| bad())?;
            let year = now.year().checked_sub(years).ok_or_else(bad)?;
            // 29 February falls back to 28 February in a common year.
            let date = now
                .date()
                .replace_year(year)
                .or_else(|_| {
                    now.date()
                        .replace_day(28)
                        .and_then(|d| d.replace_year(year))
                })
                .map_err(|_| bad())?;
            return Ok(now.replace_date(date));
        }
        _ => return Err(bad()),
    };
    now.checked_sub(back).ok_or_else(bad)
}

/// A filter as people type it (command-line flags, admin API query
/// parameters): times in any form [`parse_time`] reads, the decision as a
/// word. One parser for every front end.
#[derive(Debug, Clone, Default)]
pub struct FilterText {
    pub patient: Option<String>,
    pub partner: Option<String>,
    pub agreement: Option<String>,
    pub purpose: Option<String>,
    pub decision: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
}

/// A filter field that cannot be read; names the field.
#[derive(Debug, thiserror::Error)]
pub enum BadFilter {
    #[error("`{field}`: {source}")]
    Time {
        field: &'static str,
        source: BadTime,
    },
    #[error("`decision` must be permit, deny or refuse, not `{0}`")]
    Decision(String),
    #[error("`patient` must be a reference `Patient/<id>`, not `{0}`")]
    Patient(String),
    #[error("`since` ({since}) is not before `until` ({until}): no record can match")]
    Range { since: String, until: String },
    #[error("`purpose`: {0} (for example TREAT, HPAYMT, HOPERAT, PUBHLTH)")]
    Purpose(accord_fhir::purpose::PurposeError),
    #[error("{}", unknown_message(field, value, known, sources))]
    Unknown {
        field: &'static str,
        value: String,
        known: Vec<String>,
        sources: &'static str,
    },
}

fn unknown_message(field: &str, value: &str, known: &[String], sources: &str) -> String {
    let listed = if known.is_empty() {
        "none yet".to_owned()
    } else {
        known
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("no {field} `{value}` is known to {sources}; known: {listed}")
}

/// The values a filter may name: those the log holds and those the active
/// policies define. A filter naming anything else is a typo, and answering
/// it with "0 records" would read as "nobody accessed anything".
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub partners: BTreeSet<String>,
    pub agreements: BTreeSet<String>,
    /// Where the values came from, in words (`the log`, `the log and the
    /// active policies`).
    pub sources: &'static str,
}

impl Known {
    /// The partners and agreements the log's records name.
    pub fn from_index(index: &Index) -> Result<Self, IndexError> {
        Ok(Known {
            partners: index.values(Field::Partner)?,
            agreements: index.values(Field::Agreement)?,
            sources: "the log",
        })
    }
}

impl FilterText {
    /// The filter, with relative times taken back from `now`.
    pub fn parse(self, now: OffsetDateTime) -> Result<Filter, BadFilter> {
        let time = |field: &'static str, text: Option<String>| {
            text.map(|t| parse_time(&t, now))
                .transpose()
                .map_err(|source| BadFilter::Time { field, source })
        };
        let decision = self
            .decision
            .map(|d| {
                d.parse::<DecisionKind>()
                    .map_err(|()| BadFilter::Decision(d))
            })
            .transpose()?;
        if let Some(patient) = &self.patient
            && !is_patient_reference(patient)
        {
            return Err(BadFilter::Patient(patient.clone()));
        }
        if let Some(purpose) = &self.purpose {
            accord_fhir::purpose::Purpose::parse(purpose).map_err(BadFilter::Purpose)?;
        }
        let since = time("since", self.since)?;
        let until = time("until", self.until)?;
        if let (Some(since), Some(until)) = (since, until)
            && since >= until
        {
            return Err(BadFilter::Range {
                since: rfc3339(since),
                until: rfc3339(until),
            });
        }
        Ok(Filter {
            since,
            until,
            patient: self.patient,
            partner: self.partner,
            agreement: self.agreement,
            purpose: self.purpose,
            decision,
            limit: self.limit,
        })
    }
}

/// `Patient/<id>` with a FHIR id (1–64 of `A-Za-z0-9-.`).
pub fn is_patient_reference(text: &str) -> bool {
    text.strip_prefix("Patient/").is_some_and(|id| {
        (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

impl Filter {
    /// Refuses a partner or agreement that neither the log nor the
    /// policies know, naming the known ones.
    pub fn check_known(&self, known: &Known) -> Result<(), BadFilter> {
        let checks = [
            ("partner", &self.partner, &known.partners),
            ("agreement", &self.agreement, &known.agreements),
        ];
        for (field, value, values) in checks {
            if let Some(value) = value
                && !values.contains(value)
            {
                return Err(BadFilter::Unknown {
                    field,
                    value: value.clone(),
                    known: values.iter().cloned().collect(),
                    sources: known.sources,
                });
            }
        }
        Ok(())
    }

    /// Whether `record` matches every field (the exact check after the
    /// index lookup).
    pub fn matches(&self, record: &AuditRecord) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == have)
        };
        self.patient.as_deref().is_none_or(|p| record.concerns(p))
            && eq(&self.partner, record.partner.as_deref())
            && self
                .agreement
                .as_deref()
                .is_none_or(|a| record.agreement_ids().any(|id| id == a))
            && eq(&self.purpose, record.purpose.as_deref())
            && self.decision.is_none_or(|d| d == record.decision)
            && self.since.is_none_or(|t| record.time >= t)
            && self.until.is_none_or(|t| record.time < t)
    }
}

/// Records matching `filter`, in log order.
pub fn query(index: &Index, filter: &Filter) -> Result<Vec<AuditRecord>, IndexError> {
    select(index, filter, |seq| index.read(seq))
}

/// What a checked query returns: every matching record, and in plain
/// words anything about them that does not match the signed checkpoints.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub records: Vec<AuditRecord>,
    pub warnings: Vec<String>,
}

/// [`query`], with every returned record checked against the latest
/// signed checkpoint (see [`crate::integrity`]): the answer still holds
/// every matching record, and its warnings name those that do not match
/// and the checkpoint.
pub fn checked(index: &Index, filter: &Filter) -> Result<Answer, IndexError> {
    let integrity = integrity::check(index)?;
    let mut changed = Vec::new();
    let records = select(index, filter, |seq| {
        Ok(index.read_checked(seq)?.map(|(record, matches)| {
            if matches == Some(false) {
                changed.push(seq);
            }
            record
        }))
    })?;
    let mut warnings: Vec<String> = integrity.problems.iter().map(ToString::to_string).collect();
    for problem in &integrity.problems {
        let inside: Vec<String> = records
            .iter()
            .map(|r| r.seq)
            .filter(|seq| *seq >= problem.first_seq && *seq <= problem.last_seq)
            .map(|seq| seq.to_string())
            .collect();
        if !inside.is_empty() {
            warnings.push(format!(
                "records in this answer among them: {}",
                inside.join(", ")
            ));
        }
    }
    let after: Vec<u64> = records
        .iter()
        .map(|r| r.seq)
        .filter(|seq| integrity.unchecked(*seq) && integrity.mismatch_at(*seq).is_none())
        .collect();
    if let (Some(first), Some(last)) = (after.first(), after.last()) {
        warnings.push(format!(
            "{} records in this answer ({first}–{last}) come after the mismatch and could not be checked: every later checkpoint covers it",
            after.len()
        ));
    }
    for seq in changed {
        let against = if seq <= integrity.checked {
            format!(
                "the signed checkpoint of {} records",
                integrity.checked.max(integrity.latest)
            )
        } else {
            "the log as it was indexed".to_owned()
        };
        warnings.push(format!(
            "record {seq} does not match {against}: its bytes were changed after it was written"
        ));
    }
    Ok(Answer { records, warnings })
}

/// The records matching `filter`, each read with `read`.
fn select(
    index: &Index,
    filter: &Filter,
    mut read: impl FnMut(u64) -> Result<Option<AuditRecord>, IndexError>,
) -> Result<Vec<AuditRecord>, IndexError> {
    let mut sets: Vec<Vec<u64>> = Vec::new();
    let exact = [
        (Field::Patient, filter.patient.as_deref()),
        (Field::Partner, filter.partner.as_deref()),
        (Field::Agreement, filter.agreement.as_deref()),
        (Field::Purpose, filter.purpose.as_deref()),
        (Field::Decision, filter.decision.map(DecisionKind::as_str)),
    ];
    for (field, value) in exact {
        if let Some(value) = value {
            sets.push(index.lookup(field, value)?);
        }
    }
    if sets.is_empty() {
        // Only a time range (or nothing): the time index.
        let mut seqs = index.in_time(
            filter.since.map(OffsetDateTime::unix_timestamp),
            filter.until.map(|t| {
                // Exclusive bound in whole seconds: round up, filter exactly.
                t.unix_timestamp() + i64::from(t.nanosecond() > 0)
            }),
        )?;
        seqs.sort_unstable();
        sets.push(seqs);
    }
    sets.sort_by_key(Vec::len);
    let mut seqs = sets.first().cloned().unwrap_or_default();
    for other in sets.iter().skip(1) {
        seqs.retain(|s| other.binary_search(s).is_ok());
    }
    let mut out = Vec::new();
    // Newest first so a limit keeps the most recent, then back in order.
    for seq in seqs.into_iter().rev() {
        if filter.limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        match read(seq)? {
            Some(record) if filter.matches(&record) => out.push(record),
            Some(_) => {}
            None => {
                return Err(IndexError::Log(format!(
                    "the index lists record {seq} but not where it is (run `accord audit reindex`)"
                )));
            }
        }
    }
    out.reverse();
    Ok(out)
}
