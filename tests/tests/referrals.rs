//! Referral cohorts: a grant limited to "patients with a referral between
//! the parties" releases a patient's data only when the upstream holds such
//! a referral; anything the gateway cannot resolve admits nobody.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use accord_e2e::{Harness, Options};
use accord_testkit::client::PartnerResponse;
use accord_testkit::population::{ORG_BEHAVIORAL, ORG_PRIMARY};
use serde_json::Value;

/// Maple Street may read clinical data of patients referred between it and
/// Riverside, for care management.
const REFERRAL_AGREEMENT: &str = r#"id = "referred-care"
version = 1
title = "Care management of referred patients"
status = "active"
parties = ["riverside-bh", "maple-primary"]
effective = 2020-01-01
expires = 2099-12-31
purposes = ["CAREMGT"]

[[cohort]]
id = "referred"
kind = "referral"
description = "Patients referred between Riverside and Maple Street"
between = ["riverside-bh", "maple-primary"]

[[grant]]
id = "referred-clinical"
recipients = ["maple-primary"]
resources = ["Patient", "Condition", "Encounter"]
interactions = ["read", "search"]
cohort = "referred"
"#;

fn options(organizations: bool) -> Options {
    let mut options = Options {
        extra_policies: vec![(
            "agreements/referred-care.toml".to_owned(),
            REFERRAL_AGREEMENT.to_owned(),
        )],
        ..Options::default()
    };
    if organizations {
        options.partner_lines = vec![
            (
                "riverside-bh",
                format!("organization = \"Organization/{ORG_BEHAVIORAL}\""),
            ),
            (
                "maple-primary",
                format!("organization = \"Organization/{ORG_PRIMARY}\""),
            ),
        ];
    }
    options
}

async fn get(h: &Harness, path: &str) -> PartnerResponse {
    h.client("maple-primary")
        .get(&h.url(path), "CAREMGT")
        .await
        .unwrap()
}

/// A patient with a referral ServiceRequest between the two organisations.
fn referred_patient(h: &Harness) -> String {
    let orgs = [
        format!("Organization/{ORG_BEHAVIORAL}"),
        format!("Organization/{ORG_PRIMARY}"),
    ];
    h.population
        .of_type("ServiceRequest")
        .find(|sr| {
            let from = sr["requester"]["reference"].as_str().unwrap_or("");
            let to = sr["performer"][0]["reference"].as_str().unwrap_or("");
            from != to && orgs.iter().any(|o| o == from) && orgs.iter().any(|o| o == to)
        })
        .and_then(|sr| sr["subject"]["reference"].as_str())
        .map(|r| r.trim_start_matches("Patient/").to_owned())
        .expect("the population has referrals between Riverside and Maple Street")
}

fn without_volatile(mut bundle: Value) -> Value {
    if let Some(fields) = bundle.as_object_mut() {
        fields.remove("id");
        fields.remove("meta");
        fields.remove("link");
    }
    bundle
}

#[tokio::test]
async fn a_referral_cohort_that_cannot_be_resolved_admits_nobody() {
    // The partners name no organisation: no referral can be attributed to
    // them, so even a referred patient is answered as having no data.
    let h = Harness::start_with(options(false)).await;
    let p = referred_patient(&h);
    let read = get(&h, &format!("Patient/{p}")).await;
    let missing = get(&h, "Patient/no-such-patient").await;
    assert_eq!((read.status, &read.body), (404, &missing.body));
    let search = get(&h, &format!("Condition?patient={p}")).await;
    let no_data = get(&h, "Condition?patient=no-such-patient").await;
    assert_eq!(search.status, 200, "{}", search.text());
    assert_eq!(
        without_volatile(search.json().unwrap()),
        without_volatile(no_data.json().unwrap())
    );
}
