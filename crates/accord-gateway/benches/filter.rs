//! The filter phase on a ~1 MB searchset (about 10 % of its entries of a
//! type the partner may not read, so withheld), against a plain
//! `serde_json::Value` parse + serialize of the same bytes in the same run.
//!
//! `cargo bench -p accord-gateway --bench filter -- --warm-up-time 1 --measurement-time 3`

// A benchmark that cannot build its input has nothing to measure.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use accord_fhir::{BaseRewrite, Purpose};
use accord_gateway::filter::{Checks, ReleaseReport, filter};
use accord_gateway::forward::UpstreamResponse;
use accord_gateway::scope::Scope;
use accord_policy::{PartnerId, PolicySet, SourceFile};
use accord_testkit::population;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

const UPSTREAM: &str = "http://upstream.invalid:8080/fhir";
const GATEWAY: &str = "https://localhost:8443/fhir";
const SELF_LINK: &str = "https://localhost:8443/fhir/Observation?patient=pat-0001";
const TARGET_BYTES: usize = 1 << 20;

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
resources = ["Patient", "Observation", "Condition", "Encounter"]
interactions = ["read", "search"]
"#;

const GRANTED: [&str; 4] = ["Patient", "Observation", "Condition", "Encounter"];
const UNGRANTED: [&str; 2] = ["MedicationRequest", "CarePlan"];

/// A searchset of ~1 MB: granted entries, and one ungranted entry after
/// every nine granted ones.
fn searchset() -> Bytes {
    let resources = population::generate(7, 400).resources;
    let of = |types: &'static [&'static str]| {
        resources
            .iter()
            .filter(move |r| population::resource_type(r).is_some_and(|t| types.contains(&t)))
            .cycle()
    };
    let mut granted = of(&GRANTED);
    let mut ungranted = of(&UNGRANTED);
    let mut entries = Vec::new();
    let mut size = 0;
    let mut n = 0usize;
    while size < TARGET_BYTES {
        let resource = if n % 10 == 9 {
            ungranted.next()
        } else {
            granted.next()
        }
        .expect("population has both kinds");
        let ty = population::resource_type(resource).unwrap_or_default();
        let id = population::resource_id(resource).unwrap_or_default();
        let entry = json!({
            "fullUrl": format!("{UPSTREAM}/{ty}/{id}"),
            "resource": resource,
            "search": {"mode": "match"},
        });
        size += entry.to_string().len();
        entries.push(entry);
        n += 1;
    }
    let bundle = json!({
        "resourceType": "Bundle",
        "id": "bench",
        "type": "searchset",
        "total": entries.len(),
        "link": [{"relation": "self", "url": format!("{UPSTREAM}/Observation?patient=pat-0001")}],
        "entry": entries,
    });
    Bytes::from(serde_json::to_vec(&bundle).expect("serializable"))
}

fn bench(c: &mut Criterion) {
    let policies = PolicySet::compile(
        &SourceFile::new("partners.toml", PARTNERS),
        &[SourceFile::new("dua.toml", AGREEMENT)],
    )
    .expect("valid policies");
    let partner = PartnerId::parse("a").expect("partner id");
    let purpose = Purpose::parse("TREAT").expect("purpose");
    let rewrite = BaseRewrite::new(UPSTREAM, GATEWAY);
    let body = searchset();

    let run_filter = |body: &Bytes| {
        let scope = Scope::new(
            &policies,
            &partner,
            &purpose,
            time::OffsetDateTime::now_utc(),
            None,
        );
        let mut report = ReleaseReport::default();
        let released = filter(
            UpstreamResponse {
                status: StatusCode::OK,
                headers: HeaderMap::new(),
                body: body.clone(),
            },
            &Checks::Resources(&scope),
            &rewrite,
            SELF_LINK,
            &mut report,
        )
        .expect("filter releases the bundle");
        (released, report)
    };
    let (released, report) = run_filter(&body);
    eprintln!(
        "searchset: {} bytes in, {} bytes out; {} entries released, {} withheld {:?}",
        body.len(),
        released.body.len(),
        report.released,
        report.withheld,
        report.withheld_reasons,
    );

    let mut group = c.benchmark_group("filter_1mb_searchset");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("accord_filter", |b| {
        b.iter(|| black_box(run_filter(black_box(&body))));
    });
    group.bench_function("serde_value_parse_serialize", |b| {
        b.iter(|| {
            let value: Value = serde_json::from_slice(black_box(&body)).expect("json");
            black_box(serde_json::to_vec(&value).expect("serializable"))
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
