//! The privacy officer's reports: the accounting of disclosures (HIPAA
//! §164.528, with the 42 CFR §2.24 list for Part 2 records) and the FHIR
//! AuditEvent export (IHE BALP).

pub mod auditevent;
pub mod disclosures;
pub mod table;

pub use auditevent::{AuditEventError, audit_events, validate_audit_event};
pub use disclosures::{Accounting, Disclosure, accounting};

/// Purpose-of-use code in words, for people (HL7 v3 ActReason displays).
pub fn purpose_text(code: &str) -> &str {
    match code {
        "TREAT" => "treatment",
        "ETREAT" => "emergency treatment",
        "COC" => "coordination of care",
        "CAREMGT" => "care management",
        "HPAYMT" => "payment",
        "HOPERAT" => "health care operations",
        "PUBHLTH" => "public health",
        "HRESCH" => "research",
        "CLINTRCH" => "clinical trial research",
        "PATRQT" => "patient requested",
        "FAMRQT" => "family requested",
        "PWATRNY" => "power of attorney",
        "SUPNWK" => "support network",
        "HLEGAL" => "legal",
        "GOV" => "government",
        "HMARKT" => "marketing",
        "BTG" => "break the glass",
        "THREAT" => "threat",
        "DISASTER" => "disaster",
        "HQUALIMP" => "quality improvement",
        "COVERAGE" | "COVAUTH" | "ELIGVER" | "ELIGDTRM" => "coverage and eligibility",
        other => other,
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One CSV field (RFC 4180), quoted when needed; a leading `=`, `+`, `-`
/// or `@` is prefixed with `'` so spreadsheets do not run it as a formula.
pub fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// One CSV line from fields, with CRLF.
pub fn csv_line<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    let mut line = fields
        .into_iter()
        .map(csv_field)
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}
