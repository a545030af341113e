#![allow(dead_code)] // each bench uses part of it

//! The policy set both benchmarks load: 200 partners, 1,000 agreements of
//! 10 grants each (10,000 grants) and a consent index of `n` patients.

use std::collections::BTreeSet;

use accord_policy::{
    Consent, ConsentIndex, ConsentRule, PartnerId, SourceFile, consent::Provision,
};
use time::macros::datetime;

pub const PARTNERS: usize = 200;
pub const AGREEMENTS: usize = 1_000;
pub const TYPES: [&str; 10] = [
    "Patient",
    "Observation",
    "Condition",
    "Encounter",
    "MedicationRequest",
    "CarePlan",
    "Procedure",
    "Immunization",
    "DiagnosticReport",
    "AllergyIntolerance",
];

pub fn sources() -> (SourceFile, Vec<SourceFile>) {
    let mut partners = String::new();
    for p in 0..PARTNERS {
        partners.push_str(&format!(
            "[[partner]]\nid = \"p{p}\"\nname = \"Partner {p}\"\nstatus = \"active\"\n\n"
        ));
    }
    let agreements = (0..AGREEMENTS)
        .map(|a| {
            let (x, y) = (a % PARTNERS, (a * 7 + 1) % PARTNERS);
            let y = if x == y { (y + 1) % PARTNERS } else { y };
            let mut text = format!(
                "id = \"dua-{a}\"\nversion = 1\ntitle = \"Agreement {a}\"\nstatus = \"active\"\n\
                 parties = [\"p{x}\", \"p{y}\"]\neffective = 2026-01-01\nexpires = 2028-12-31\n\
                 purposes = [\"TREAT\", \"COC\"]\n"
            );
            for (g, ty) in TYPES.iter().enumerate() {
                let redact = if *ty == "Patient" { "redact = [\"Patient.address\"]\n" } else { "" };
                text.push_str(&format!(
                    "\n[[grant]]\nid = \"g{g}\"\nrecipients = [\"p{}\"]\nresources = [\"{ty}\"]\n\
                     interactions = [\"read\", \"search\"]\nsensitive = [\"mental-health\"]\n{redact}",
                    if g % 2 == 0 { x } else { y }
                ));
            }
            text.push_str("\n[[forbid]]\nid = \"f\"\nsensitive = [\"psychotherapy-notes\"]\nreason = \"never\"\n");
            SourceFile::new(format!("dua-{a}.toml"), text)
        })
        .collect();
    (SourceFile::new("partners.toml", partners), agreements)
}

pub fn consents(n: usize) -> ConsentIndex {
    let maple = PartnerId::parse("p3").unwrap();
    ConsentIndex::new((0..n).map(|i| Consent {
        id: format!("Consent/c{i}"),
        patient: format!("Patient/pat-{i}"),
        active: true,
        date_time: datetime!(2026-02-01 0:00 UTC),
        root: Provision {
            kind: if i % 10 == 0 {
                ConsentRule::Deny
            } else {
                ConsentRule::Permit
            },
            period: None,
            actors: BTreeSet::new(),
            purposes: BTreeSet::new(),
            labels: BTreeSet::new(),
            provisions: vec![Provision {
                kind: ConsentRule::Deny,
                period: None,
                actors: BTreeSet::from([maple.clone()]),
                purposes: BTreeSet::new(),
                labels: BTreeSet::new(),
                provisions: Vec::new(),
            }],
        },
        source: "bench".to_owned(),
    }))
}
