//! Per-decision latency percentiles (criterion reports means only).
//!
//! `cargo bench -p accord-policy --bench decide_latency`
//!
//! Loads the set of `benches/common` (1,000 agreements, 10,000 grants, 200
//! partners) with `ACCORD_BENCH_CONSENTS` consents (default 1,000,000),
//! prepares 10,000 varied requests (partner, type, interaction, patient;
//! permits, opt-outs, no-grant denials), then times 2,000,000 decisions one
//! by one and prints p50/p90/p99/p99.9/max. Each call is timed with
//! `Instant` (a vDSO clock read, ~20-30 ns); the median cost of an empty
//! timing is measured and subtracted, and reported. Also times compiling
//! the 1,000 agreements, 10 times.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation // nanosecond timings and percentiles
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use accord_fhir::{InteractionKind, Purpose, ResourceType};
use accord_policy::{AccessRequest, PartnerId, PolicySet};
use time::macros::datetime;

mod common;

use common::{PARTNERS, TYPES, consents, sources};

const REQUESTS: usize = 10_000;
const CALLS: usize = 2_000_000;

fn main() {
    let (partners, agreements) = sources();
    let mut compile_times: Vec<Duration> = (0..10)
        .map(|_| {
            let start = Instant::now();
            black_box(PolicySet::compile(&partners, &agreements).unwrap());
            start.elapsed()
        })
        .collect();
    compile_times.sort();
    println!(
        "compile 1000 agreements (10000 grants): median {:.1} ms, max {:.1} ms (10 runs)",
        ms(compile_times[5]),
        ms(compile_times[9])
    );

    let set = PolicySet::compile(&partners, &agreements).unwrap();
    let n = std::env::var("ACCORD_BENCH_CONSENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let index = consents(n);

    // A fixed pseudo-random mix (xorshift), so runs are comparable.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let partner_ids: Vec<PartnerId> = (0..PARTNERS)
        .map(|p| PartnerId::parse(&format!("p{p}")).unwrap())
        .collect();
    let purposes = [
        Purpose::parse("TREAT").unwrap(),
        Purpose::parse("COC").unwrap(),
    ];
    let mut types: Vec<ResourceType> = TYPES
        .iter()
        .map(|t| ResourceType::parse(t).unwrap())
        .collect();
    types.push(ResourceType::parse("Goal").unwrap()); // granted to no one
    let specs: Vec<(usize, usize, usize, InteractionKind, String)> = (0..REQUESTS)
        .map(|_| {
            let r = next();
            let kind = if r % 2 == 0 {
                InteractionKind::Read
            } else {
                InteractionKind::Search
            };
            (
                (r >> 8) as usize % PARTNERS,
                (r >> 20) as usize % purposes.len(),
                (r >> 24) as usize % types.len(),
                kind,
                format!("Patient/pat-{}", (r >> 32) as usize % n.max(1)),
            )
        })
        .collect();
    let requests: Vec<AccessRequest<'_>> = specs
        .iter()
        .map(|(p, u, t, kind, patient)| AccessRequest {
            partner: &partner_ids[*p],
            purpose: &purposes[*u],
            interaction: *kind,
            resource_type: Some(types[*t]),
            at: datetime!(2026-06-15 12:00 UTC),
            patient: Some(patient.clone()),
            operation: None,
        })
        .collect();
    let permits = requests
        .iter()
        .filter(|r| set.decide_with(r, &index).is_permit())
        .count();

    // Warm up, then measure the cost of timing nothing.
    for r in requests.iter().cycle().take(200_000) {
        black_box(set.decide_with(black_box(r), &index));
    }
    let mut empty: Vec<u64> = (0..100_000)
        .map(|_| {
            let start = Instant::now();
            black_box(());
            start.elapsed().as_nanos() as u64
        })
        .collect();
    empty.sort_unstable();
    let overhead = empty[empty.len() / 2];

    let mut samples: Vec<u64> = Vec::with_capacity(CALLS);
    let started = Instant::now();
    for r in requests.iter().cycle().take(CALLS) {
        let start = Instant::now();
        black_box(set.decide_with(black_box(r), &index));
        samples.push((start.elapsed().as_nanos() as u64).saturating_sub(overhead));
    }
    let wall = started.elapsed();
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let mean = samples.iter().sum::<u64>() as f64 / samples.len() as f64;
    println!(
        "decide, {n} consents, {REQUESTS} distinct requests ({:.0}% permits), {CALLS} calls:",
        100.0 * permits as f64 / REQUESTS as f64
    );
    println!(
        "  p50 {} ns  p90 {} ns  p99 {} ns  p99.9 {} ns  max {} ns  mean {:.0} ns  (timer overhead {overhead} ns subtracted; {:.2} M decisions/s incl. timing)",
        at(0.50),
        at(0.90),
        at(0.99),
        at(0.999),
        samples[samples.len() - 1],
        mean,
        CALLS as f64 / wall.as_secs_f64() / 1e6
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
