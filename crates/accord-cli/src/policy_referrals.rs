//! `accord policy explain --upstream URL`: fetch what referral-cohort
//! membership is decided on (the parties' Organizations, the patient's
//! ServiceRequests and Tasks); the rule itself is
//! `accord_policy::referral`, the same one the gateway applies.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use accord_gateway::tls::upstream_client_config;
use accord_gateway::upstream::client::Upstream;
use accord_gateway::upstream::paging::{next_link, relative_to, upstream_bases};
use accord_policy::referral::ReferralEvidence;
use accord_policy::{PartnerId, PolicySet};
use anyhow::Context as _;
use serde_json::Value;

/// Pages read per search at most.
const MAX_PAGES: usize = 50;

/// The referral evidence for `patient` (`Patient/<id>`) between `parties`.
pub async fn fetch(
    url: &str,
    ca: Option<&Path>,
    set: &PolicySet,
    parties: &BTreeSet<PartnerId>,
    patient: &str,
) -> anyhow::Result<ReferralEvidence> {
    let tls = upstream_client_config(ca).context("upstream TLS settings")?;
    let upstream = Upstream::new(url, tls, Duration::from_secs(30), 64 * 1024 * 1024)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let bases = upstream_bases(url, &[]);
    let mut targets: Vec<String> = ReferralEvidence::identifiers_to_look_up(set, parties)
        .iter()
        .map(|i| format!("Organization?identifier={}", encode(i)))
        .collect();
    let subject = encode(patient);
    targets.push(format!("ServiceRequest?subject={subject}&_count=200"));
    targets.push(format!("Task?patient={subject}&_count=200"));
    let mut evidence = ReferralEvidence::default();
    for first in targets {
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(target) = next.take() {
            if pages >= MAX_PAGES {
                break;
            }
            pages += 1;
            let response = upstream
                .get(&target)
                .await
                .map_err(|e| anyhow::anyhow!("upstream `{target}`: {}", e.message))?;
            if !response.status.is_success() {
                anyhow::bail!("upstream `{target}` answered {}", response.status);
            }
            let bundle: Value = serde_json::from_slice(&response.body)
                .with_context(|| format!("upstream `{target}`: the answer is not JSON"))?;
            for entry in bundle
                .get("entry")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(resource) = entry.get("resource") {
                    evidence.add(resource);
                }
            }
            next = next_link(&bundle).and_then(|link| relative_to(link, &bases));
        }
    }
    Ok(evidence)
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
