//! Bundles (searchset, history, `$everything`): every entry is checked on
//! its own, and the envelope is rebuilt by the gateway so it says nothing
//! about what was withheld.

use accord_fhir::BaseRewrite;
use serde_json::{Map, Value, json};

use super::report::ReleaseReport;
use super::verdict::{Verdict, verdict};
use crate::scope::Scope;

/// Link relations passed on (rewritten to the gateway); `self` is replaced
/// by the partner's own request. `first` and `last` are not: servers add
/// them even to empty results, and a result the gateway answers itself
/// (a patient out of reach) must look exactly like an empty one.
const PAGING_RELATIONS: &[&str] = &["previous", "prev", "next"];

/// Filters `bundle` and returns the envelope the partner sees.
pub fn filter_bundle(
    bundle: &Value,
    scope: &Scope<'_>,
    rewrite: &BaseRewrite,
    self_link: &str,
    report: &mut ReleaseReport,
) -> Value {
    let kind = bundle
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("searchset");
    let mut entries = Vec::new();
    let mut matches = 0usize;
    for entry in bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mode = entry.pointer("/search/mode").and_then(Value::as_str);
        // Upstream warnings may describe what the partner cannot see.
        if mode == Some("outcome") {
            continue;
        }
        // An entry without a resource (a deletion in a history) still
        // reveals an id: not passed on.
        let Some(resource) = entry.get("resource") else {
            continue;
        };
        match verdict(resource, scope) {
            Verdict::Release { patients, redact } => {
                report.released(resource, &patients, !redact.is_empty());
                if mode != Some("include") {
                    matches += 1;
                }
                // Only entries that change are rebuilt; the rest are copied.
                let resource = if redact.is_empty() {
                    resource.clone()
                } else {
                    super::redact(resource.clone(), &redact)
                };
                entries.push(released_entry(entry, resource, rewrite));
            }
            Verdict::Withhold(reason) => report.withheld(resource, reason),
        }
    }

    let mut links = vec![json!({"relation": "self", "url": self_link})];
    for link in bundle
        .get("link")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let relation = link.get("relation").and_then(Value::as_str).unwrap_or("");
        if !PAGING_RELATIONS.contains(&relation) {
            continue;
        }
        if let Some(url) = link
            .get("url")
            .and_then(Value::as_str)
            .and_then(|u| rewrite.rewrite(u))
        {
            links.push(json!({"relation": relation, "url": url}));
        }
    }
    let paged = links.len() > 1;

    let mut out = Map::new();
    out.insert("resourceType".into(), "Bundle".into());
    if let Some(id) = bundle.get("id") {
        out.insert("id".into(), id.clone());
    }
    if let Some(updated) = bundle.pointer("/meta/lastUpdated") {
        out.insert("meta".into(), json!({"lastUpdated": updated}));
    }
    out.insert("type".into(), kind.into());
    // A total is only known for the whole result when it fits one page.
    if kind == "searchset" && !paged {
        out.insert("total".into(), matches.into());
    }
    out.insert("link".into(), Value::Array(links));
    if !entries.is_empty() {
        out.insert("entry".into(), Value::Array(entries));
    }
    Value::Object(out)
}

/// The answer for a search whose patients are all out of reach: the same
/// envelope an empty upstream result produces.
pub fn empty_searchset(id: &str, last_updated: &str, self_link: &str) -> Value {
    json!({
        "resourceType": "Bundle",
        "id": id,
        "meta": {"lastUpdated": last_updated},
        "type": "searchset",
        "total": 0,
        "link": [{"relation": "self", "url": self_link}],
    })
}

fn released_entry(entry: &Value, resource: Value, rewrite: &BaseRewrite) -> Value {
    let mut out = Map::new();
    if let Some(full_url) = entry.get("fullUrl").and_then(Value::as_str) {
        let url = rewrite
            .rewrite(full_url)
            .unwrap_or_else(|| full_url.to_owned());
        out.insert("fullUrl".into(), url.into());
    }
    out.insert("resource".into(), resource);
    for key in ["search", "request", "response"] {
        if let Some(value) = entry.get(key) {
            let mut value = value.clone();
            if let Some(location) = value.get("location").and_then(Value::as_str) {
                let rewritten = rewrite.rewrite(location).map(Value::String);
                match (rewritten, value.as_object_mut()) {
                    (Some(url), Some(fields)) => {
                        fields.insert("location".into(), url);
                    }
                    (None, Some(fields)) => {
                        fields.remove("location");
                    }
                    _ => {}
                }
            }
            out.insert(key.into(), value);
        }
    }
    Value::Object(out)
}
