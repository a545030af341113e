//! Decision and compile benchmarks.
//!
//! `cargo bench -p accord-policy --bench decide -- --warm-up-time 1 --measurement-time 2`
//!
//! The set: 200 partners, 1,000 agreements of 10 grants each (10,000
//! grants), and a consent index of `ACCORD_BENCH_CONSENTS` patients
//! (default 1,000,000) built directly (compiling that many JSON files is not
//! what is measured here).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::hint::black_box;

use accord_fhir::{InteractionKind, Purpose, ResourceType};
use accord_policy::{
    AccessRequest, Consent, ConsentIndex, ConsentRule, PartnerId, PolicySet, SourceFile,
    consent::Provision,
};
use criterion::{Criterion, criterion_group, criterion_main};
use time::macros::datetime;

const PARTNERS: usize = 200;
const AGREEMENTS: usize = 1_000;
const TYPES: [&str; 10] = [
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

fn sources() -> (SourceFile, Vec<SourceFile>) {
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

fn consents(n: usize) -> ConsentIndex {
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

fn bench(c: &mut Criterion) {
    let (partners, agreements) = sources();
    c.bench_function("compile 1000 agreements (10000 grants)", |b| {
        b.iter(|| PolicySet::compile(black_box(&partners), black_box(&agreements)).unwrap());
    });
    let set = PolicySet::compile(&partners, &agreements).unwrap();
    let n = std::env::var("ACCORD_BENCH_CONSENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let index = consents(n);
    let partner = PartnerId::parse("p7").unwrap();
    let purpose = Purpose::parse("TREAT").unwrap();
    let request = |patient: &str, ty: &str| AccessRequest {
        partner: &partner,
        purpose: &purpose,
        interaction: InteractionKind::Search,
        resource_type: Some(ResourceType::parse(ty).unwrap()),
        at: datetime!(2026-06-15 12:00 UTC),
        patient: Some(patient.to_owned()),
        operation: None,
    };
    let permit = request("Patient/pat-4242", "Observation");
    assert!(
        set.decide_with(&permit, &index).is_permit(),
        "{:?}",
        set.decide_with(&permit, &index)
    );
    c.bench_function(&format!("decide permit ({n} consents)"), |b| {
        b.iter(|| set.decide_with(black_box(&permit), &index));
    });
    let opted_out = request("Patient/pat-4240", "Observation");
    assert!(!set.decide_with(&opted_out, &index).is_permit());
    c.bench_function(&format!("decide deny: opt-out ({n} consents)"), |b| {
        b.iter(|| set.decide_with(black_box(&opted_out), &index));
    });
    let no_grant = request("Patient/pat-4242", "Goal");
    c.bench_function("decide deny: no grant covers the type", |b| {
        b.iter(|| set.decide_with(black_box(&no_grant), &index));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
