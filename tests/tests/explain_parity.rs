//! Differential test: `accord policy explain`'s library call and the
//! gateway answering over TLS must agree on every request of a corpus —
//! the same decision, the same released and withheld resources, the same
//! count of withheld resources in the audit record. It fails if either
//! side changes alone.
//!
//! The corpus: every harness partner (and purposes no agreement covers)
//! × every patient ×
//! the patient-data types (a search naming the patient), and reads by id
//! of a sample of the population's resources by every partner.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use std::collections::{BTreeMap, BTreeSet};

use accord_audit::{AuditRecord, DecisionKind};
use accord_e2e::Harness;
use accord_fhir::Purpose;
use accord_policy::explain::{Known, parse_request_line};
use accord_policy::{PartnerId, PolicySet, Population};
use accord_testkit::client::PartnerClient;
use serde_json::Value;
use time::OffsetDateTime;

/// (partner, purpose): every partner for treatment, and purposes the
/// agreements do not cover or cover only in a suspended agreement.
const ASKS: &[(&str, &str)] = &[
    ("riverside-bh", "TREAT"),
    ("maple-primary", "TREAT"),
    ("st-brigid", "TREAT"),
    ("north-recovery", "TREAT"),
    ("st-brigid", "HOPERAT"),
    ("maple-primary", "HPAYMT"),
];
const TYPES: &[&str] = &[
    "Patient",
    "Observation",
    "Condition",
    "Encounter",
    "MedicationRequest",
    "Procedure",
    "Task",
];

/// What one side says of one request.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    /// `permit`, or `deny` (a 403, or the "no data" answer of a patient
    /// out of reach).
    decision: &'static str,
    released: BTreeSet<String>,
    /// How many of the resources asked about were withheld.
    withheld: usize,
}

fn explain_answer(
    set: &PolicySet,
    population: &Population,
    partner: &str,
    purpose: &str,
    line: &str,
) -> Answer {
    let fhir = parse_request_line(line).unwrap();
    let partner = PartnerId::parse(partner).unwrap();
    let purpose = Purpose::parse(purpose).unwrap();
    let explanation = set.explain(
        line,
        &partner,
        &purpose,
        &fhir,
        OffsetDateTime::now_utc(),
        set.consents(),
        Known {
            population: Some(population),
            referrals: None,
        },
    );
    let mut released = BTreeSet::new();
    let mut withheld = 0;
    for line in &explanation.resources {
        if let Some(key) = line.strip_suffix(": released") {
            released.insert(key.to_owned());
        } else if line.contains(": withheld") {
            withheld += 1;
        }
    }
    let decision = match explanation.decision {
        "permit" => "permit",
        "deny" => "deny",
        other => panic!("{line}: explain cannot decide ({other}): {explanation:?}"),
    };
    // A read whose one resource is withheld is answered "not found" and
    // recorded as a denial by the gateway; explain permits the request and
    // withholds the resource — the same outcome.
    let read = !line.contains('?');
    let decision = if read && decision == "permit" && released.is_empty() && withheld > 0 {
        "deny"
    } else {
        decision
    };
    if decision == "deny" {
        // Nothing is checked one by one when the request is denied.
        released.clear();
        withheld = 0;
    }
    Answer {
        decision,
        released,
        withheld,
    }
}

fn keys_in(body: &Value) -> BTreeSet<String> {
    let key = |r: &Value| {
        format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap(),
            r["id"].as_str().unwrap()
        )
    };
    match body["resourceType"].as_str() {
        Some("Bundle") => body["entry"]
            .as_array()
            .map(|entries| entries.iter().map(|e| key(&e["resource"])).collect())
            .unwrap_or_default(),
        Some("OperationOutcome") | None => BTreeSet::new(),
        Some(_) => BTreeSet::from([key(body)]),
    }
}

/// The gateway's answer to one request, as sent: status, released keys
/// and the audit receipt (records are read once, after the run).
struct Sent {
    status: u16,
    released: BTreeSet<String>,
    seq: u64,
}

async fn send(h: &Harness, client: &PartnerClient, purpose: &str, line: &str) -> Sent {
    let path = line.trim_start_matches("GET ").trim_start_matches('/');
    let response = client.get(&h.url(path), purpose).await.unwrap();
    let released = if response.status == 200 {
        keys_in(&response.json().unwrap())
    } else {
        BTreeSet::new()
    };
    let seq = response
        .header("x-audit-seq")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{line}: no audit receipt"));
    Sent {
        status: response.status,
        released,
        seq,
    }
}

fn gateway_answer(sent: Sent, record: &AuditRecord, what: &str) -> Answer {
    let withheld: u32 = record.withheld.values().sum();
    let decision = match (sent.status, record.decision) {
        // A suspended partner is refused before any agreement is read.
        (403, DecisionKind::Deny | DecisionKind::Refuse) => "deny",
        // A patient out of reach is answered as one with no data; the
        // record says it was a denial.
        (200 | 404, DecisionKind::Deny) => "deny",
        (200 | 404, DecisionKind::Permit) => "permit",
        other => panic!("{what}: unexpected answer {other:?}: {record:?}"),
    };
    if decision == "deny" {
        return Answer {
            decision,
            released: BTreeSet::new(),
            withheld: 0,
        };
    }
    Answer {
        decision,
        released: sent.released,
        withheld: withheld as usize,
    }
}

fn corpus(h: &Harness) -> Vec<String> {
    let mut lines = Vec::new();
    for n in 1..=accord_e2e::PATIENTS {
        let patient = accord_testkit::population::patient_id(n);
        for ty in TYPES {
            lines.push(match *ty {
                "Patient" => format!("GET Patient?_id={patient}&_count=100"),
                "Task" => format!("GET Task?patient={patient}&_count=100"),
                _ => format!("GET {ty}?patient={patient}&_count=100"),
            });
        }
    }
    // Reads by id: every fifth resource of the population.
    for resource in h.population.resources.iter().step_by(5) {
        if let (Some(ty), Some(id)) = (resource["resourceType"].as_str(), resource["id"].as_str())
            && TYPES.contains(&ty)
        {
            lines.push(format!("GET {ty}/{id}"));
        }
    }
    lines
}

#[tokio::test]
async fn explain_and_the_gateway_agree_on_every_request_of_the_corpus() {
    let h = Harness::start().await;
    let set = PolicySet::load_dir(&h.dir.path().join("policies")).unwrap();
    let population = Population::from_resources(&h.population.resources);
    let lines = corpus(&h);
    let mut sent = Vec::new();
    for (partner, purpose) in ASKS {
        let client = h.client(partner);
        for line in &lines {
            sent.push((
                partner,
                purpose,
                line,
                send(&h, &client, purpose, line).await,
            ));
        }
    }
    let records: BTreeMap<u64, AuditRecord> =
        h.audit_records().into_iter().map(|r| (r.seq, r)).collect();
    let (mut compared, mut released, mut denied) = (0, 0, 0);
    for (partner, purpose, line, sent) in sent {
        let what = format!("{partner} {purpose} {line}");
        let record = &records[&sent.seq];
        let got = gateway_answer(sent, record, &what);
        let expected = explain_answer(&set, &population, partner, purpose, line);
        assert_eq!(
            got, expected,
            "{what}: the gateway (left) and explain (right) disagree"
        );
        compared += 1;
        released += got.released.len();
        denied += usize::from(got.decision == "deny");
    }
    eprintln!(
        "explain parity: {compared} requests compared, {released} resources released, {denied} denied"
    );
    assert!(compared > 2000 && released > 500 && denied > 500);
}
