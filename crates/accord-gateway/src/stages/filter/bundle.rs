//! Bundles (searchset, history, `$everything`): every entry is checked on
//! its own, and the envelope is rebuilt by the gateway so it says nothing
//! about what was withheld.
//!
//! The Bundle is parsed shallowly, in one pass (`scan.rs`): the envelope's
//! small fields as values, each entry's members, its resource as a range of
//! bytes. A resource is decided from a pruned copy holding only what a
//! verdict reads (see [`prune`]); one released unchanged is copied to the
//! output as the upstream's bytes, one redacted of top-level elements is
//! copied member by member without them (`redact_raw`), and only one with a
//! nested redaction path is parsed whole and re-serialized. Speed against a
//! `serde_json::Value` round trip: docs/performance.md.

use accord_fhir::BaseRewrite;
use serde_json::{Map, Value, json};

use super::prune::prune;
use super::redact::{RawRedaction, redact_raw};
use super::scan;
use super::verdict::{Verdict, verdict};
use crate::request::page::{Item, Page};
use crate::request::report::{ReleaseReport, WithholdReason};
use crate::scope::Scope;

/// Link relations passed on (rewritten to the gateway); `self` is replaced
/// by the partner's own request. `first` and `last` are not: servers add
/// them even to empty results, and a result the gateway answers itself
/// (a patient out of reach) must look exactly like an empty one.
const PAGING_RELATIONS: &[&str] = &["previous", "prev", "next"];

/// The parts of a Bundle the gateway reads; the entries stay raw. A
/// repeated key fails the parse, so an envelope can never say two things
/// at once.
#[derive(Debug, Default)]
pub(super) struct Envelope<'a> {
    resource_type: Option<Value>,
    kind: Option<Value>,
    link: Option<Value>,
    entry: Option<Vec<scan::Item<'a>>>,
}

/// One entry, its resource raw.
#[derive(Debug, Default)]
struct RawEntry<'a> {
    full_url: Option<Value>,
    resource: Option<&'a [u8]>,
    search: Option<Value>,
    request: Option<Value>,
    response: Option<Value>,
}

/// What an entry's resource becomes in the output.
enum Released<'a> {
    /// The upstream's bytes, unchanged.
    Raw(&'a [u8]),
    /// Redacted as bytes: members copied, some left out.
    Copied(Vec<u8>),
    /// Rebuilt (redacted from the parsed resource).
    Rebuilt(Value),
}

/// Sets `slot` from `bytes` parsed as JSON; `None` if already set or
/// invalid.
fn set_value(slot: &mut Option<Value>, bytes: &[u8]) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(serde_json::from_slice(bytes).ok()?);
    Some(())
}

// === impl RawEntry ===

impl<'a> RawEntry<'a> {
    /// The parts of one entry from its members; `None` if it repeats a
    /// key the gateway reads.
    fn from_members(members: &[scan::Member<'a>]) -> Option<Self> {
        let mut entry = RawEntry::default();
        for member in members {
            match member.key.as_ref() {
                "fullUrl" => set_value(&mut entry.full_url, member.value)?,
                "search" => set_value(&mut entry.search, member.value)?,
                "request" => set_value(&mut entry.request, member.value)?,
                "response" => set_value(&mut entry.response, member.value)?,
                "resource" if entry.resource.replace(member.value).is_some() => return None,
                _ => {}
            }
        }
        Some(entry)
    }
}

// === impl Envelope ===

impl<'a> Envelope<'a> {
    /// The envelope of `body` if it is a JSON object with at most one of
    /// each key the gateway reads (and `entry`, if present, an array).
    pub(super) fn parse(body: &'a [u8]) -> Option<Self> {
        let mut envelope = Envelope::default();
        let (members, entry) = scan::object_expanding(body, "entry")?;
        envelope.entry = entry;
        for member in members {
            match member.key.as_ref() {
                "resourceType" => set_value(&mut envelope.resource_type, member.value)?,
                "type" => set_value(&mut envelope.kind, member.value)?,
                "link" => set_value(&mut envelope.link, member.value)?,
                _ => {}
            }
        }
        Some(envelope)
    }

    pub(super) fn is_bundle(&self) -> bool {
        self.resource_type.as_ref().and_then(Value::as_str) == Some("Bundle")
    }
}

/// Filters a Bundle given as a [`Value`] and returns the envelope the
/// partner sees (the same work as the byte path (`filter_envelope`), for callers that
/// already hold a tree).
pub fn filter_bundle(
    bundle: &Value,
    scope: &Scope<'_>,
    rewrite: &BaseRewrite,
    self_link: &str,
    report: &mut ReleaseReport,
) -> Value {
    let bytes = serde_json::to_vec(bundle).unwrap_or_default();
    let filtered = Envelope::parse(&bytes)
        .map(|envelope| filter_envelope(&envelope, scope, rewrite, (self_link, None), report));
    filtered
        .and_then(|out| serde_json::from_slice(&out).ok())
        .unwrap_or_else(|| json!({"resourceType": "Bundle", "type": "searchset"}))
}

/// One entry the verdict released, before the page is cut.
struct Kept<'a> {
    entry: RawEntry<'a>,
    released: Released<'a>,
    pruned: Value,
    patients: std::collections::BTreeSet<String>,
    redacted: bool,
    sensitivity: crate::scope::Sensitivity,
    is_match: bool,
}

/// Filters the Bundle in `body` (already known to be one) and returns the
/// bytes the partner sees. With a [`Page`], the gateway pages over the
/// released matches itself (see `request/page.rs`); without one (history,
/// `$everything`), the upstream's paging links are passed on.
pub(super) fn filter_envelope(
    bundle: &Envelope<'_>,
    scope: &Scope<'_>,
    rewrite: &BaseRewrite,
    (self_link, page): (&str, Option<&Page>),
    report: &mut ReleaseReport,
) -> Vec<u8> {
    let kind = bundle
        .kind
        .as_ref()
        .and_then(Value::as_str)
        .unwrap_or("searchset");
    let raw_entries = bundle.entry.as_deref().unwrap_or_default();
    let mut kept: Vec<Kept<'_>> = Vec::with_capacity(raw_entries.len());
    for raw in raw_entries {
        // An entry that is not an object, or repeats a key, is not passed
        // on: which of its copies would the partner read?
        let Some(entry) = raw.members.as_deref().and_then(RawEntry::from_members) else {
            if raw.bytes.first() == Some(&b'{') {
                report.withheld(&Value::Null, WithholdReason::NotAResource);
            }
            continue;
        };
        let mode = entry
            .search
            .as_ref()
            .and_then(|s| s.get("mode"))
            .and_then(Value::as_str);
        // Upstream warnings may describe what the partner cannot see.
        if mode == Some("outcome") {
            continue;
        }
        // An entry without a resource (a deletion in a history) still
        // reveals an id: not passed on.
        let Some(resource) = entry.resource else {
            continue;
        };
        let is_match = mode != Some("include");
        let pruned = prune(resource).unwrap_or(Value::Null);
        match verdict(&pruned, scope) {
            Verdict::Release {
                patients,
                redact,
                sensitivity,
            } => {
                // Only entries that change are copied member by member, or
                // (a nested path) parsed whole and rebuilt.
                let released = if redact.is_empty() {
                    Some(Released::Raw(resource))
                } else {
                    match redact_raw(resource, &redact) {
                        Some(RawRedaction::Unchanged) => Some(Released::Raw(resource)),
                        Some(RawRedaction::Redacted(bytes)) => Some(Released::Copied(bytes)),
                        None => serde_json::from_slice::<Value>(resource)
                            .ok()
                            .map(|full| Released::Rebuilt(super::redact(full, &redact))),
                    }
                };
                match released {
                    Some(released) => kept.push(Kept {
                        entry,
                        released,
                        pruned,
                        patients,
                        redacted: !redact.is_empty(),
                        sensitivity,
                        is_match,
                    }),
                    None => report.withheld(&pruned, WithholdReason::NotAResource),
                }
            }
            Verdict::Withhold(reason) => report.withheld(&pruned, reason),
        }
    }
    let matches = kept.iter().filter(|k| k.is_match).count();
    let selected = match page {
        Some(page) => page_of(page, &kept),
        None => vec![true; kept.len()],
    };
    let mut entries: Vec<(RawEntry<'_>, Released<'_>)> = Vec::with_capacity(kept.len());
    for (k, selected) in kept.into_iter().zip(selected) {
        // Only what goes out is released (and counted as released).
        if selected {
            report.released(&k.pruned, &k.patients, k.redacted, &k.sensitivity);
            entries.push((k.entry, k.released));
        }
    }

    let mut links = vec![json!({"relation": "self", "url": self_link})];
    match page {
        Some(page) => links.extend(page.links(self_link, matches)),
        None => links.extend(upstream_links(bundle, rewrite)),
    }
    // A total is only known for the whole result when the gateway pages
    // itself or the result fits one page.
    let total = (kind == "searchset" && (page.is_some() || links.len() == 1)).then_some(matches);
    write_bundle(&envelope(kind, total, links), &entries, rewrite)
}

/// Which kept entries go on `page`.
fn page_of(page: &Page, kept: &[Kept<'_>]) -> Vec<bool> {
    let rebuilt: Vec<Option<Vec<u8>>> = kept
        .iter()
        .map(|k| match &k.released {
            Released::Rebuilt(value) => serde_json::to_vec(value).ok(),
            _ => None,
        })
        .collect();
    let items: Vec<Item<'_>> = kept
        .iter()
        .zip(&rebuilt)
        .map(|(k, rebuilt)| Item {
            is_match: k.is_match,
            key: key_of(&k.pruned),
            json: match (&k.released, rebuilt) {
                (Released::Raw(raw), _) => raw,
                (Released::Copied(bytes), _) => bytes,
                (Released::Rebuilt(_), Some(bytes)) => bytes,
                (Released::Rebuilt(_), None) => b"{}",
            },
        })
        .collect();
    page.select(&items)
}

fn key_of(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        resource
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    )
}

/// The upstream's paging links, rewritten to the gateway.
fn upstream_links(bundle: &Envelope<'_>, rewrite: &BaseRewrite) -> Vec<Value> {
    let mut links = Vec::new();
    for link in bundle
        .link
        .as_ref()
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
    links
}

/// The envelope every searchset the gateway answers has, whether it was
/// forwarded or made by the gateway: no `id` or `meta` of the upstream's
/// or the gateway's own, so an answer made without asking the upstream
/// cannot be told from a forwarded empty one (issue 15, item 10).
fn envelope(kind: &str, total: Option<usize>, links: Vec<Value>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("resourceType".into(), "Bundle".into());
    out.insert("type".into(), kind.into());
    if let Some(total) = total {
        out.insert("total".into(), total.into());
    }
    out.insert("link".into(), Value::Array(links));
    out
}

/// The envelope's fields, then `"entry"` written entry by entry so that raw
/// resources are copied, not re-serialized.
fn write_bundle(
    envelope: &Map<String, Value>,
    entries: &[(RawEntry<'_>, Released<'_>)],
    rewrite: &BaseRewrite,
) -> Vec<u8> {
    let size: usize = entries
        .iter()
        .map(|(_, r)| match r {
            Released::Raw(raw) => raw.len() + 128,
            Released::Copied(bytes) => bytes.len() + 128,
            Released::Rebuilt(_) => 2048,
        })
        .sum();
    let mut out = Vec::with_capacity(size + 512);
    // Serializing maps of values and strings into a Vec cannot fail.
    let head = serde_json::to_vec(envelope).unwrap_or_else(|_| b"{}".to_vec());
    if entries.is_empty() {
        return head;
    }
    out.extend_from_slice(head.strip_suffix(b"}").unwrap_or(&head));
    out.extend_from_slice(b",\"entry\":[");
    for (n, (entry, released)) in entries.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_entry(&mut out, entry, released, rewrite);
    }
    out.extend_from_slice(b"]}");
    out
}

fn write_entry(
    out: &mut Vec<u8>,
    entry: &RawEntry<'_>,
    resource: &Released<'_>,
    rewrite: &BaseRewrite,
) {
    out.push(b'{');
    if let Some(full_url) = entry.full_url.as_ref().and_then(Value::as_str) {
        let url = rewrite
            .rewrite(full_url)
            .unwrap_or_else(|| full_url.to_owned());
        out.extend_from_slice(b"\"fullUrl\":");
        let _ = serde_json::to_writer(&mut *out, &url);
        out.push(b',');
    }
    out.extend_from_slice(b"\"resource\":");
    match resource {
        Released::Raw(raw) => out.extend_from_slice(raw),
        Released::Copied(bytes) => out.extend_from_slice(bytes),
        Released::Rebuilt(value) => {
            let _ = serde_json::to_writer(&mut *out, value);
        }
    }
    for (key, value) in [
        ("search", &entry.search),
        ("request", &entry.request),
        ("response", &entry.response),
    ] {
        let Some(value) = value else {
            continue;
        };
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
        out.extend_from_slice(b",\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        let _ = serde_json::to_writer(&mut *out, &value);
    }
    out.push(b'}');
}

/// The answer for a search whose patients are all out of reach: the same
/// envelope an empty upstream result produces.
pub fn empty_searchset(self_link: &str) -> Value {
    Value::Object(envelope(
        "searchset",
        Some(0),
        vec![json!({"relation": "self", "url": self_link})],
    ))
}
