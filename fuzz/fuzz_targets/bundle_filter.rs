//! The filter over an upstream answer: the Bundle scanner, the pruned
//! parse, verdicts, redaction and link rewriting (`accord_gateway::stages::filter`),
//! under a real grant of the shipped policies (st-brigid, TREAT: clinical
//! record types, sensitivity rules; riverside-bh adds a redaction).
//!
//! Input: a selector byte (which partner) and the upstream's body.
//! Properties: no panic; whatever the filter releases is valid JSON (it
//! copies unchanged entries as the upstream wrote them, so this is the
//! scanner's promise), and it never releases more resources than it was
//! given entries.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use accord_fhir::{BaseRewrite, InteractionKind, Purpose, ResourceType};
use accord_gateway::stages::filter::{Checks, ReleaseReport, filter};
use accord_gateway::upstream::client::UpstreamResponse;
use accord_gateway::scope::Scope;
use accord_policy::{AccessRequest, Decision, Obligations, PartnerId, Permit, PolicySet};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

struct Grant {
    partner: PartnerId,
    obligations: Option<Obligations>,
}

struct World {
    policies: PolicySet,
    purpose: Purpose,
    at: OffsetDateTime,
    grants: Vec<Grant>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        let policies = match PolicySet::load_dir(&dir) {
            Ok(set) => set,
            Err(e) => panic!("the shipped policies do not load: {e}"),
        };
        let Ok(purpose) = Purpose::parse("TREAT") else {
            panic!("TREAT is a purpose");
        };
        let at = OffsetDateTime::now_utc();
        let observation = ResourceType::parse("Observation").ok();
        let grants = ["st-brigid", "riverside-bh", "maple-primary"]
            .into_iter()
            .filter_map(|id| PartnerId::parse(id).ok())
            .map(|partner| {
                let request = AccessRequest {
                    partner: &partner,
                    purpose: &purpose,
                    interaction: InteractionKind::Search,
                    resource_type: observation,
                    at,
                    patient: Some("pat-0001".to_owned()),
                    operation: None,
                };
                let obligations = match policies.decide(&request) {
                    Decision::Permit(Permit::Grant { obligations, .. }) => Some(*obligations),
                    _ => None,
                };
                Grant {
                    partner,
                    obligations,
                }
            })
            .collect();
        World {
            policies,
            purpose,
            at,
            grants,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let world = world();
    let Some(grant) = world
        .grants
        .get(usize::from(selector) % world.grants.len().max(1))
    else {
        return;
    };
    let scope = Scope::new(
        &world.policies,
        &grant.partner,
        &world.purpose,
        world.at,
        grant.obligations.as_ref(),
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json"),
    );
    let upstream = UpstreamResponse {
        status: StatusCode::OK,
        headers,
        body: Bytes::copy_from_slice(body),
    };
    let rewrite = BaseRewrite::new("http://upstream.test/fhir", "https://gateway.test/fhir");
    let mut report = ReleaseReport::default();
    let checks = if selector & 0x80 == 0 {
        Checks::Resources(&scope)
    } else {
        Checks::Written(&scope)
    };
    let self_link = "https://gateway.test/fhir/Observation?patient=pat-0001";
    if let Ok(released) = filter(upstream, &checks, &rewrite, self_link, &mut report) {
        if !released.body.is_empty() {
            assert!(
                serde_json::from_slice::<serde_json::Value>(&released.body).is_ok(),
                "the filter released invalid JSON"
            );
        }
        let given = body
            .windows(14)
            .filter(|w| w == b"\"resourceType\"")
            .count();
        assert!(
            report.released as usize <= given,
            "released {} resources from a body naming {given}",
            report.released
        );
    }
});
