//! Records as rows: the columns of `accord audit query` (table and CSV)
//! and of the admin API's `/audit/query?format=csv`.

use crate::record::AuditRecord;

use super::csv_line;

/// Column names, in order.
pub const COLUMNS: [&str; 12] = [
    "seq",
    "time",
    "partner",
    "partner_name",
    "purpose",
    "decision",
    "status",
    "interaction",
    "path",
    "agreements",
    "patients",
    "request_id",
];

/// One record's cells, in [`COLUMNS`] order.
pub fn row(r: &AuditRecord) -> [String; 12] {
    let time = r
        .time
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut agreements: Vec<&str> = r.agreement_ids().collect();
    agreements.dedup();
    [
        r.seq.to_string(),
        time,
        r.partner.clone().unwrap_or_default(),
        r.partner_name.clone().unwrap_or_default(),
        r.purpose.clone().unwrap_or_default(),
        r.decision.as_str().to_owned(),
        r.status.to_string(),
        r.interaction.clone().unwrap_or_default(),
        r.path.clone().unwrap_or_else(|| r.target.clone()),
        agreements.join(" "),
        r.patients
            .iter()
            .map(|p| p.patient.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        r.request_id.clone(),
    ]
}

/// RFC 4180 CSV with a header line (formula-like cells defused, see
/// [`csv_field`](super::csv_field)).
pub fn to_csv(records: &[AuditRecord]) -> String {
    let mut out = csv_line(COLUMNS);
    for r in records {
        let row = row(r);
        out.push_str(&csv_line(row.iter().map(String::as_str)));
    }
    out
}
