//! The gateway pages over what it releases (issue 15, items 7 and 8).
//!
//! An upstream page, its `total` and its `next` link count every match,
//! withheld ones included: `Patient?identifier=<A>,<B>&_count=1` would come
//! back with a next link when B exists and is withheld, and without one
//! when B does not exist. So a type search is answered like this:
//!
//! - the partner's `_count` and `_offset` are taken off the request;
//! - the upstream is read to the end (every page, up to
//!   [`crate::upstream::paging::MAX_PAGES`]);
//! - the filter decides on every resource, and only then is the page cut:
//!   the released matches from `_offset`, `_count` of them, with the
//!   released included resources that belong to them;
//! - `total` is the number of released matches, and `next` / `previous`
//!   are the partner's own request with another `_offset`.
//!
//! Everything the partner sees is computed from released resources only,
//! so a withheld resource and a missing one page alike.

use std::ops::Range;

use accord_fhir::request::{SearchParams, base_name};
use serde_json::{Value, json};

use crate::error::GatewayError;

/// Page size when the partner asks for none.
pub const DEFAULT_COUNT: usize = 20;
/// The largest page the gateway answers, whatever `_count` asks for.
pub const MAX_COUNT: usize = 200;
/// The page size the gateway asks the upstream for while reading a result
/// to its end.
pub const UPSTREAM_COUNT: &str = "200";

/// Which released matches a partner asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    count: usize,
    offset: usize,
}

/// One released entry, as the page cut sees it.
#[derive(Debug)]
pub struct Item<'a> {
    /// A match (not an included resource).
    pub is_match: bool,
    /// `Type/id`.
    pub key: String,
    /// The released resource's JSON.
    pub json: &'a [u8],
}

// === impl Page ===

impl Page {
    /// Takes `_count` and `_offset` off `params` (they are the gateway's
    /// now) and asks the upstream for large pages instead.
    pub fn take(params: &mut SearchParams) -> Result<Page, GatewayError> {
        let number = |name: &str| -> Result<Option<usize>, GatewayError> {
            params
                .values_of(name)
                .last()
                .map(|v| {
                    v.parse::<usize>().map_err(|_| {
                        GatewayError::bad_request(format!("`{name}={v}` is not a whole number"))
                    })
                })
                .transpose()
        };
        let count = number("_count")?.unwrap_or(DEFAULT_COUNT).min(MAX_COUNT);
        let offset = number("_offset")?.unwrap_or(0);
        params.retain(|name, _| !matches!(base_name(name), "_count" | "_offset"));
        params.push("_count", UPSTREAM_COUNT);
        Ok(Page { count, offset })
    }

    /// The indices of the matches on this page.
    fn window(&self, matches: usize) -> Range<usize> {
        let start = self.offset.min(matches);
        start..self.offset.saturating_add(self.count).min(matches)
    }

    /// Which of `items` go on this page: the matches in the window, and
    /// the included resources a kept match refers to or that refer to a
    /// kept match (each once).
    pub fn select(&self, items: &[Item<'_>]) -> Vec<bool> {
        let matches = items.iter().filter(|i| i.is_match).count();
        let window = self.window(matches);
        let mut n = 0usize;
        let mut selected: Vec<bool> = items
            .iter()
            .map(|item| {
                if !item.is_match {
                    return false;
                }
                n += 1;
                window.contains(&(n - 1))
            })
            .collect();
        let kept: Vec<&Item<'_>> = items
            .iter()
            .zip(&selected)
            .filter_map(|(item, keep)| keep.then_some(item))
            .collect();
        let mut included = std::collections::BTreeSet::new();
        for (item, keep) in items.iter().zip(selected.iter_mut()) {
            if item.is_match || included.contains(&item.key) {
                continue;
            }
            let related = kept
                .iter()
                .any(|m| names(m.json, &item.key) || names(item.json, &m.key));
            if related {
                included.insert(item.key.clone());
                *keep = true;
            }
        }
        selected
    }

    /// `next` and `previous` links over `total` released matches: the
    /// partner's own request (`self_link`) with another `_offset`.
    pub fn links(&self, self_link: &str, total: usize) -> Vec<Value> {
        let mut links = Vec::new();
        if total > 0 && self.offset > 0 {
            let previous = self.offset.saturating_sub(self.count);
            links.push(json!({"relation": "previous", "url": at_offset(self_link, previous)}));
        }
        let next = self.offset.saturating_add(self.count);
        if self.count > 0 && next < total {
            links.push(json!({"relation": "next", "url": at_offset(self_link, next)}));
        }
        links
    }
}

/// Whether `json` holds a reference to `key` (`"Type/id"`, relative or
/// absolute, possibly versioned).
fn names(json: &[u8], key: &str) -> bool {
    let text = String::from_utf8_lossy(json);
    [
        format!("\"{key}\""),
        format!("/{key}\""),
        format!("{key}/_history/"),
    ]
    .iter()
    .any(|needle| text.contains(needle.as_str()))
}

/// `link` with its `_offset` replaced by `offset`.
fn at_offset(link: &str, offset: usize) -> String {
    let (path, query) = link.split_once('?').unwrap_or((link, ""));
    let mut parts: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("_offset="))
        .map(str::to_owned)
        .collect();
    parts.push(format!("_offset={offset}"));
    format!("{path}?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(query: &str) -> Page {
        Page::take(&mut SearchParams::parse_query(query).unwrap()).unwrap()
    }

    #[test]
    fn count_and_offset_are_taken_off_and_the_upstream_asked_for_large_pages() {
        let mut params = SearchParams::parse_query("patient=1&_count=2&_offset=4").unwrap();
        let taken = Page::take(&mut params).unwrap();
        assert_eq!(
            taken,
            Page {
                count: 2,
                offset: 4
            }
        );
        assert_eq!(params.to_query_string(), "patient=1&_count=200");
        assert_eq!(page("_count=5000").count, MAX_COUNT);
    }

    #[test]
    fn links_follow_released_matches_only() {
        let p = page("_count=2&_offset=2");
        let links = p.links("https://g/fhir/Observation?patient=1&_count=2&_offset=2", 5);
        assert_eq!(
            links,
            vec![
                json!({"relation": "previous", "url": "https://g/fhir/Observation?patient=1&_count=2&_offset=0"}),
                json!({"relation": "next", "url": "https://g/fhir/Observation?patient=1&_count=2&_offset=4"}),
            ]
        );
        assert!(
            page("_count=2")
                .links("https://g/fhir/Observation", 2)
                .is_empty()
        );
        assert!(
            page("_offset=4")
                .links("https://g/fhir/Observation", 0)
                .is_empty()
        );
    }

    #[test]
    fn a_page_keeps_its_matches_and_what_they_include() {
        let a = br#"{"resourceType":"Observation","id":"a","subject":{"reference":"Patient/p1"}}"#;
        let b = br#"{"resourceType":"Observation","id":"b","subject":{"reference":"Patient/p2"}}"#;
        let p1 = br#"{"resourceType":"Patient","id":"p1"}"#;
        let p2 = br#"{"resourceType":"Patient","id":"p2"}"#;
        let items = [
            Item {
                is_match: true,
                key: "Observation/a".into(),
                json: a,
            },
            Item {
                is_match: false,
                key: "Patient/p1".into(),
                json: p1,
            },
            Item {
                is_match: true,
                key: "Observation/b".into(),
                json: b,
            },
            Item {
                is_match: false,
                key: "Patient/p2".into(),
                json: p2,
            },
            Item {
                is_match: false,
                key: "Patient/p1".into(),
                json: p1,
            },
        ];
        assert_eq!(
            page("_count=1").select(&items),
            [true, true, false, false, false]
        );
        assert_eq!(
            page("_count=1&_offset=1").select(&items),
            [false, false, true, true, false]
        );
    }
}
