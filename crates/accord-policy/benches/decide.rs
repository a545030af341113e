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

use std::hint::black_box;

use accord_fhir::{InteractionKind, Purpose, ResourceType};
use accord_policy::{AccessRequest, PartnerId, PolicySet};
use criterion::{Criterion, criterion_group, criterion_main};
use time::macros::datetime;

mod common;

use common::{consents, sources};

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
