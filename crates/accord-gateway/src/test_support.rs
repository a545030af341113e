//! Policies and scopes for unit tests of the data-path phases.

use accord_fhir::Purpose;
use accord_policy::{PartnerId, PolicySet, SourceFile};

const PARTNERS: &str = r#"
[[partner]]
id = "a"
name = "A"
status = "active"

[[partner]]
id = "b"
name = "B"
status = "active"
"#;

const AGREEMENT: &str = r#"
id = "dua"
version = 1
title = "t"
status = "active"
parties = ["a", "b"]
effective = 2020-01-01
expires = 2099-12-31
purposes = ["TREAT"]

[[grant]]
id = "g"
recipients = ["a"]
resources = ["Patient", "Observation", "Condition"]
interactions = ["read", "search"]
"#;

/// Partner `a` may read and search Patient, Observation and Condition for
/// TREAT; nothing else.
pub struct Fixture {
    pub policies: PolicySet,
    pub partner: PartnerId,
    pub purpose: Purpose,
}

pub fn fixture() -> Fixture {
    Fixture {
        policies: PolicySet::compile(
            &SourceFile::new("p.toml", PARTNERS),
            &[SourceFile::new("a.toml", AGREEMENT)],
        )
        .unwrap(),
        partner: PartnerId::parse("a").unwrap(),
        purpose: Purpose::parse("TREAT").unwrap(),
    }
}

impl Fixture {
    pub fn scope(&self) -> crate::scope::Scope<'_> {
        crate::scope::Scope::new(
            &self.policies,
            &self.partner,
            &self.purpose,
            time::OffsetDateTime::now_utc(),
            None,
        )
    }
}
