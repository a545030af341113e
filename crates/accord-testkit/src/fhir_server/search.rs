//! Type-level search: parse the parameters, match, page, include, bundle.
//!
//! Paging is stateless: links carry the original parameters plus `_count`
//! and `_offset`, as absolute URLs under the server's own base URL (the
//! gateway under test must rewrite them to point at itself).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::matching::{self, Matcher};
use super::outcome::FhirError;
use super::params::{self, ParamDef, ParamKind};
use super::store::FhirStore;

/// Page size when the client gives no `_count`.
pub(crate) const DEFAULT_COUNT: usize = 20;
/// Largest page the server returns, whatever `_count` asks for.
pub(crate) const MAX_COUNT: usize = 200;

/// One parameter's condition: any of `alternatives` (comma-separated) must
/// match; separate parameters must all match.
#[derive(Debug)]
struct Criterion {
    def: &'static ParamDef,
    type_filter: Option<String>,
    alternatives: Vec<Matcher>,
}

/// `_include=Source:param[:Target]`.
#[derive(Debug)]
struct Include {
    param: &'static ParamDef,
    target: Option<String>,
}

/// `_revinclude=Source:param`: resources of `source` whose `param` points
/// at a matched resource.
#[derive(Debug)]
struct RevInclude {
    source: String,
    param: &'static ParamDef,
}

/// A parsed, validated search.
#[derive(Debug)]
pub(crate) struct Search {
    resource_type: String,
    criteria: Vec<Criterion>,
    includes: Vec<Include>,
    revincludes: Vec<RevInclude>,
    count: usize,
    offset: usize,
    /// Parameters echoed into paging links (everything but `_count`/`_offset`).
    echo: Vec<(String, String)>,
}

/// Parses search parameters for `resource_type`; unknown or malformed → 400.
pub(crate) fn parse(
    resource_type: &str,
    pairs: Vec<(String, String)>,
) -> Result<Search, FhirError> {
    let mut search = Search {
        resource_type: resource_type.to_owned(),
        criteria: Vec::new(),
        includes: Vec::new(),
        revincludes: Vec::new(),
        count: DEFAULT_COUNT,
        offset: 0,
        echo: Vec::new(),
    };
    for (name, value) in pairs {
        if name.is_empty() {
            continue;
        }
        match name.as_str() {
            "_count" => search.count = parse_number(&name, &value)?.min(MAX_COUNT),
            "_offset" => search.offset = parse_number(&name, &value)?,
            "_include" => search.includes.push(parse_include(resource_type, &value)?),
            "_revinclude" => search.revincludes.push(parse_revinclude(&value)?),
            "_total" if ["none", "estimate", "accurate"].contains(&value.as_str()) => {}
            "_format" if value.contains("json") => {}
            "_summary" if value == "count" => search.count = 0,
            "_summary" if value == "false" => {}
            _ => search
                .criteria
                .push(parse_criterion(resource_type, &name, &value)?),
        }
        if name != "_count" && name != "_offset" {
            search.echo.push((name, value));
        }
    }
    Ok(search)
}

fn parse_number(name: &str, value: &str) -> Result<usize, FhirError> {
    value.parse().map_err(|_| {
        FhirError::bad_request(format!(
            "`{name}` must be a non-negative integer, got `{value}`"
        ))
    })
}

fn parse_criterion(resource_type: &str, name: &str, value: &str) -> Result<Criterion, FhirError> {
    let (base, modifier) = match name.split_once(':') {
        Some((base, modifier)) => (base, Some(modifier)),
        None => (name, None),
    };
    if base.contains('.') {
        return Err(FhirError::bad_request(format!(
            "chained parameter `{name}` is not supported"
        )));
    }
    let def = params::find(resource_type, base).ok_or_else(|| {
        FhirError::bad_request(format!(
            "unknown search parameter `{name}` for `{resource_type}`"
        ))
    })?;
    let type_filter = match modifier {
        None => None,
        Some(t) if def.kind == ParamKind::Reference && params::is_supported(t) => {
            Some(t.to_owned())
        }
        Some(m) => {
            return Err(FhirError::bad_request(format!(
                "unsupported modifier `:{m}` on `{base}`"
            )));
        }
    };
    // `patient` always targets Patient, whatever the element allows.
    let type_filter = type_filter.or_else(|| (base == "patient").then(|| "Patient".to_owned()));
    if value.is_empty() {
        return Err(FhirError::bad_request(format!("empty value for `{name}`")));
    }
    let alternatives = value
        .split(',')
        .map(|v| matching::parse_value(def.kind, v))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| FhirError::bad_request(format!("`{name}`: {reason}")))?;
    Ok(Criterion {
        def,
        type_filter,
        alternatives,
    })
}

fn parse_include(resource_type: &str, value: &str) -> Result<Include, FhirError> {
    let unsupported = || FhirError::bad_request(format!("unsupported `_include={value}`"));
    let mut parts = value.split(':');
    let (Some(source), Some(name)) = (parts.next(), parts.next()) else {
        return Err(unsupported());
    };
    let target = parts.next().map(str::to_owned);
    if parts.next().is_some() || source != resource_type {
        return Err(unsupported());
    }
    if target.as_deref().is_some_and(|t| !params::is_supported(t)) {
        return Err(unsupported());
    }
    let param = params::find(resource_type, name)
        .filter(|def| def.kind == ParamKind::Reference)
        .ok_or_else(unsupported)?;
    let target = target.or_else(|| (name == "patient").then(|| "Patient".to_owned()));
    Ok(Include { param, target })
}

fn parse_revinclude(value: &str) -> Result<RevInclude, FhirError> {
    let unsupported = || FhirError::bad_request(format!("unsupported `_revinclude={value}`"));
    let (source, name) = value.split_once(':').ok_or_else(unsupported)?;
    let param = params::find(source, name)
        .filter(|def| def.kind == ParamKind::Reference)
        .ok_or_else(unsupported)?;
    Ok(RevInclude {
        source: source.to_owned(),
        param,
    })
}

// === impl Search ===

impl Search {
    fn matches(&self, resource: &Value) -> bool {
        self.criteria.iter().all(|criterion| {
            let values = matching::values_at(resource, criterion.def.paths);
            criterion
                .alternatives
                .iter()
                .any(|m| matching::matches(m, &values, criterion.type_filter.as_deref()))
        })
    }

    /// Runs the search and builds the searchset Bundle.
    pub(crate) fn execute(&self, store: &FhirStore, base_url: &str) -> Value {
        let matched: Vec<Value> = store
            .all(&self.resource_type)
            .into_iter()
            .filter(|r| self.matches(r))
            .collect();
        let total = matched.len();
        let page: Vec<Value> = matched
            .into_iter()
            .skip(self.offset)
            .take(self.count)
            .collect();

        let mut entries: Vec<Value> = page.iter().map(|r| entry(base_url, r, "match")).collect();
        let mut seen: BTreeSet<String> = page.iter().map(key).collect();
        for resource in &page {
            for include in &self.includes {
                for reference in matching::values_at(resource, include.param.paths) {
                    let Some(text) = reference.get("reference").and_then(Value::as_str) else {
                        continue;
                    };
                    let (Some(t), id) = matching::split_reference(text) else {
                        continue;
                    };
                    if include.target.as_ref().is_some_and(|target| *target != t) {
                        continue;
                    }
                    if let Some(found) = store.read(&t, &id)
                        && seen.insert(key(&found))
                    {
                        entries.push(entry(base_url, &found, "include"));
                    }
                }
            }
        }

        for rev in &self.revincludes {
            let targets: BTreeSet<String> = page.iter().map(key).collect();
            for candidate in store.all(&rev.source) {
                let points_at_page = matching::values_at(&candidate, rev.param.paths)
                    .iter()
                    .filter_map(|r| r.get("reference").and_then(Value::as_str))
                    .any(|text| match matching::split_reference(text) {
                        (Some(t), id) => targets.contains(&format!("{t}/{id}")),
                        (None, _) => false,
                    });
                if points_at_page && seen.insert(key(&candidate)) {
                    entries.push(entry(base_url, &candidate, "include"));
                }
            }
        }

        let mut bundle = Map::new();
        bundle.insert("resourceType".into(), json!("Bundle"));
        bundle.insert("type".into(), json!("searchset"));
        bundle.insert("total".into(), json!(total));
        bundle.insert("link".into(), Value::Array(self.links(base_url, total)));
        if !entries.is_empty() {
            bundle.insert("entry".into(), Value::Array(entries));
        }
        Value::Object(bundle)
    }

    fn links(&self, base_url: &str, total: usize) -> Vec<Value> {
        let link = |relation: &str, offset: usize| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (name, value) in &self.echo {
                query.append_pair(name, value);
            }
            query.append_pair("_count", &self.count.to_string());
            query.append_pair("_offset", &offset.to_string());
            let url = format!("{base_url}/{}?{}", self.resource_type, query.finish());
            json!({ "relation": relation, "url": url })
        };
        let mut links = vec![link("self", self.offset)];
        if self.count > 0 && self.offset.saturating_add(self.count) < total {
            links.push(link("next", self.offset + self.count));
        }
        if self.offset > 0 {
            links.push(link("previous", self.offset.saturating_sub(self.count)));
        }
        links
    }
}

fn key(resource: &Value) -> String {
    let field = |k: &str| resource.get(k).and_then(Value::as_str).unwrap_or_default();
    format!("{}/{}", field("resourceType"), field("id"))
}

fn entry(base_url: &str, resource: &Value, mode: &str) -> Value {
    json!({
        "fullUrl": format!("{base_url}/{}", key(resource)),
        "resource": resource,
        "search": { "mode": mode },
    })
}
