//! The filter phase on a ~1 MB searchset with the real per-entry work: the
//! permit's obligations (a listed cohort, redactions, sensitive categories)
//! from a real decision; about 10 % of entries withheld (a type the partner
//! may not read, patients outside the cohort, Part 2 data) and about 10 %
//! redacted (Patients, whose address and telecom are removed). Measured
//! against a plain `serde_json::Value` parse + serialize of the same bytes
//! in the same run.
//!
//! `cargo bench -p accord-gateway --bench filter -- --warm-up-time 1 --measurement-time 3`

// A benchmark that cannot build its input has nothing to measure.
#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;

use accord_fhir::{BaseRewrite, InteractionKind, Purpose, ResourceType};
use accord_gateway::scope::Scope;
use accord_gateway::stages::filter::{Checks, ReleaseReport, Verdict, filter, verdict};
use accord_gateway::upstream::client::UpstreamResponse;
use accord_policy::{AccessRequest, PartnerId, PolicySet, SourceFile};
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
cohort = "shared"
redact = ["Patient.address", "Patient.telecom"]
sensitive = ["mental-health"]
population_search = true
"#;

/// Patients of the generated population left out of the cohort.
const OUTSIDE_COHORT: [usize; 3] = [5, 17, 33];

const CLINICAL: [&str; 3] = ["Observation", "Condition", "Encounter"];
const PATIENT: [&str; 1] = ["Patient"];
const UNGRANTED: [&str; 2] = ["MedicationRequest", "CarePlan"];

/// The listed cohort: the first 400 patients but a few.
fn cohort() -> String {
    let members: Vec<String> = (1..=400)
        .filter(|n| !OUTSIDE_COHORT.contains(n))
        .map(|n| format!("\"Patient/{}\"", population::patient_id(n)))
        .collect();
    format!(
        "[[cohort]]\nid = \"shared\"\nkind = \"list\"\ndescription = \"d\"\npatients = [{}]\n",
        members.join(", ")
    )
}

/// A searchset of ~1 MB: of every ten entries one Patient (redacted), one
/// of a type not granted (withheld) and eight clinical resources (a few of
/// them withheld: Part 2 codes or labels, patients outside the cohort).
fn searchset() -> Bytes {
    let resources = population::generate(7, 400).resources;
    let of = |types: &'static [&'static str]| {
        resources
            .iter()
            .filter(move |r| population::resource_type(r).is_some_and(|t| types.contains(&t)))
            .cycle()
    };
    let mut clinical = of(&CLINICAL);
    let mut patients = of(&PATIENT);
    let mut ungranted = of(&UNGRANTED);
    let mut entries = Vec::new();
    let mut size = 0;
    let mut n = 0usize;
    while size < TARGET_BYTES {
        let resource = match n % 10 {
            9 => ungranted.next(),
            4 => patients.next(),
            _ => clinical.next(),
        }
        .expect("population has every kind");
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
    let agreement = format!("{AGREEMENT}\n{}", cohort());
    let policies = PolicySet::compile(
        &SourceFile::new("partners.toml", PARTNERS),
        &[SourceFile::new("dua.toml", &agreement)],
    )
    .expect("valid policies");
    let partner = PartnerId::parse("a").expect("partner id");
    let purpose = Purpose::parse("TREAT").expect("purpose");
    let now = time::OffsetDateTime::now_utc();
    let decision = policies.decide(&AccessRequest {
        partner: &partner,
        purpose: &purpose,
        interaction: InteractionKind::Search,
        resource_type: Some(ResourceType::parse("Observation").expect("R4 type")),
        at: now,
        patient: None,
        operation: None,
    });
    let obligations = decision.obligations().expect("permitted").clone();
    let rewrite = BaseRewrite::new(UPSTREAM, GATEWAY);
    let body = searchset();

    let run_filter = |body: &Bytes| {
        let scope = Scope::new(&policies, &partner, &purpose, now, Some(&obligations));
        let mut report = ReleaseReport::default();
        let released = filter(
            UpstreamResponse {
                status: StatusCode::OK,
                headers: HeaderMap::new(),
                body: body.clone(),
            },
            &Checks::Resources(&scope),
            &rewrite,
            (SELF_LINK, None),
            &mut report,
        )
        .expect("filter releases the bundle");
        (released, report)
    };
    let (released, report) = run_filter(&body);
    eprintln!(
        "searchset: {} bytes in, {} bytes out; {} entries released ({} redacted), {} withheld {:?}",
        body.len(),
        released.body.len(),
        report.released,
        report.redacted,
        report.withheld,
        report.withheld_reasons,
    );

    let mut group = c.benchmark_group("filter_1mb_searchset");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("accord_filter", |b| {
        b.iter(|| black_box(run_filter(black_box(&body))));
    });
    group.bench_function("value_tree_filter_before_shallow_parse", |b| {
        b.iter(|| {
            let scope = Scope::new(&policies, &partner, &purpose, now, Some(&obligations));
            let mut report = ReleaseReport::default();
            black_box(value_tree_filter(
                black_box(&body),
                &scope,
                &rewrite,
                &mut report,
            ))
        });
    });
    group.bench_function("serde_value_parse_serialize", |b| {
        b.iter(|| {
            let value: Value = serde_json::from_slice(black_box(&body)).expect("json");
            black_box(serde_json::to_vec(&value).expect("serializable"))
        });
    });
    group.finish();
}

/// The filter as it was before the shallow parse (kept here only as the
/// "before" figure): the whole Bundle parsed into a `Value`, every released
/// entry cloned, the envelope serialized again.
fn value_tree_filter(
    body: &Bytes,
    scope: &Scope<'_>,
    rewrite: &BaseRewrite,
    report: &mut ReleaseReport,
) -> Vec<u8> {
    let bundle: Value = serde_json::from_slice(body).expect("json");
    let mut entries = Vec::new();
    let mut matches = 0usize;
    for entry in bundle["entry"].as_array().into_iter().flatten() {
        let Some(resource) = entry.get("resource") else {
            continue;
        };
        match verdict(resource, scope) {
            Verdict::Release {
                patients,
                redact,
                sensitivity,
            } => {
                report.released(resource, &patients, !redact.is_empty(), &sensitivity);
                matches += 1;
                let resource = if redact.is_empty() {
                    resource.clone()
                } else {
                    accord_gateway::stages::filter::redact(resource.clone(), &redact)
                };
                let url = entry["fullUrl"].as_str().and_then(|u| rewrite.rewrite(u));
                entries.push(json!({"fullUrl": url, "resource": resource, "search": entry["search"].clone()}));
            }
            Verdict::Withhold(reason) => report.withheld(resource, reason),
        }
    }
    let out = json!({"resourceType": "Bundle", "id": bundle["id"].clone(), "type": "searchset",
        "total": matches, "link": [{"relation": "self", "url": SELF_LINK}], "entry": entries});
    serde_json::to_vec(&out).expect("serializable")
}

criterion_group!(benches, bench);
criterion_main!(benches);
