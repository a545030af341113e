//! `_elements` and `_summary`, applied by the gateway instead of the
//! upstream.
//!
//! An upstream that subsets resources removes what the filter reads to
//! decide: codes, security labels, the patient reference. A Part 2
//! diagnosis asked for with `_elements=subject` would arrive with nothing
//! left to recognise it by, and be released. So both parameters are taken
//! off the forwarded request, the upstream answers whole resources, the
//! filter decides on those, and only then are the released resources cut
//! down to what was asked. The cost (one more parse of the released body)
//! is paid only by requests that subset.
//!
//! `_summary=data` drops the narrative; `_summary=true` and `text` need the
//! R4 summary flags of every element, which the gateway does not carry, so
//! they are answered with whole resources — as a server that does not
//! support them may (FHIR R4 §3.1.1.5.9: the client checks `SUBSETTED`).
//! `_summary=count` is refused earlier (narrowing): counts would include
//! withheld data.

use accord_fhir::request::{SearchParams, base_name, modifier};
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::stages::filter::{Releasable, add_meta_coding};

const SUBSETTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// What a partner asked to have left out of each resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subset {
    /// `_elements`: the elements to keep (besides `id`, `meta` and the
    /// mandatory ones).
    elements: Option<Vec<Element>>,
    /// `_summary=data`: everything but the narrative.
    drop_text: bool,
    /// The parameters as the partner wrote them, for paging links.
    query: String,
}

/// One `_elements` entry: `name`, or `Type.name` for one type only.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Element {
    resource_type: Option<String>,
    name: String,
}

impl Subset {
    /// Takes `_elements` and `_summary` off `params`; `None` when the
    /// request does not subset.
    pub fn take(params: &mut SearchParams) -> Result<Option<Subset>, GatewayError> {
        let mut elements: Option<Vec<Element>> = None;
        let mut drop_text = false;
        let mut taken = SearchParams::default();
        for (name, value) in params.iter() {
            match base_name(name) {
                "_elements" => {
                    if modifier(name).is_some() {
                        return Err(GatewayError::bad_request(format!(
                            "`{name}` is not supported: list the elements to keep in `_elements`"
                        )));
                    }
                    let list = elements.get_or_insert_with(Vec::new);
                    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                        list.push(Element::parse(item)?);
                    }
                }
                "_summary" => match value {
                    "data" => drop_text = true,
                    "true" | "text" | "false" => {}
                    other => {
                        return Err(GatewayError::bad_request(format!(
                            "`_summary={other}` is not a summary mode (true, text, data, count, false)"
                        )));
                    }
                },
                _ => continue,
            }
            taken.push(name, value);
        }
        if taken.is_empty() {
            return Ok(None);
        }
        params.retain(|name, _| !matches!(base_name(name), "_elements" | "_summary"));
        Ok(Some(Subset {
            elements,
            drop_text,
            query: taken.to_query_string(),
        }))
    }

    /// Cuts the released body down. A single resource is subset; in a
    /// Bundle, the `match` entries are (included resources and outcome
    /// entries stay whole) and paging links keep asking for the subset.
    pub fn apply(&self, released: Releasable) -> Result<Releasable, GatewayError> {
        if !released.status.is_success() || released.body.is_empty() {
            return Ok(released);
        }
        let Ok(mut body) = serde_json::from_slice::<Value>(&released.body) else {
            // Not JSON (the filter only releases JSON): leave it alone.
            return Ok(released);
        };
        if body.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
            self.subset_bundle(&mut body);
        } else {
            self.subset_resource(&mut body);
        }
        let bytes = serde_json::to_vec(&body).map_err(|_| GatewayError::internal())?;
        Ok(Releasable {
            status: released.status,
            headers: released.headers,
            body: Bytes::from(bytes),
        })
    }

    fn subset_bundle(&self, bundle: &mut Value) {
        if let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) {
            for entry in entries {
                let mode = entry.pointer("/search/mode").and_then(Value::as_str);
                if matches!(mode, Some("include" | "outcome")) {
                    continue;
                }
                if let Some(resource) = entry.get_mut("resource") {
                    self.subset_resource(resource);
                }
            }
        }
        if let Some(links) = bundle.get_mut("link").and_then(Value::as_array_mut) {
            for link in links {
                if let Some(Value::String(url)) = link.get_mut("url") {
                    self.keep_asking(url);
                }
            }
        }
    }

    /// Adds the subsetting parameters back to a paging link: the upstream
    /// never saw them, so its links do not carry them.
    fn keep_asking(&self, url: &mut String) {
        let already = url.split_once('?').is_some_and(|(_, q)| {
            q.split('&')
                .any(|p| p.starts_with("_elements=") || p.starts_with("_summary="))
        });
        if already {
            return;
        }
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&self.query);
    }

    fn subset_resource(&self, resource: &mut Value) {
        let Some(object) = resource.as_object_mut() else {
            return;
        };
        let resource_type = object
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if resource_type == "OperationOutcome" {
            return;
        }
        let mut changed = false;
        if self.drop_text {
            changed |= object.remove("text").is_some();
        }
        if let Some(elements) = &self.elements {
            let before = object.len();
            // Mandatory elements stay whatever was asked (R4 §3.1.1.5.9),
            // so the subset is still a valid resource.
            let required = accord_fhir::elements::required_elements(&resource_type);
            object.retain(|key, _| {
                matches!(key.as_str(), "resourceType" | "id" | "meta")
                    || elements.iter().any(|e| e.keeps(&resource_type, key))
                    || required
                        .iter()
                        .any(|name| element_key(&resource_type, name, key))
            });
            changed |= object.len() != before;
        }
        if changed {
            mark_subsetted(object);
        }
    }
}

impl Element {
    fn parse(item: &str) -> Result<Element, GatewayError> {
        let (resource_type, name) = match item.split_once('.') {
            Some((ty, name)) => (Some(ty.to_owned()), name),
            None => (None, item),
        };
        let valid = !name.is_empty()
            && !name.contains('.')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(GatewayError::bad_request(format!(
                "`_elements`: `{item}` is not an element name (e.g. `_elements=subject,code`)"
            )));
        }
        Ok(Element {
            resource_type,
            name: name.to_owned(),
        })
    }

    /// Whether `key` of a `resource_type` resource is this element: the
    /// name itself, its primitive extension (`_name`), or a choice type's
    /// variant (`value` keeps `valueQuantity`).
    fn keeps(&self, resource_type: &str, key: &str) -> bool {
        if self
            .resource_type
            .as_deref()
            .is_some_and(|t| t != resource_type)
        {
            return false;
        }
        element_key(resource_type, &self.name, key)
    }
}

/// Whether JSON member `key` of a `resource_type` resource is element
/// `name`: the name itself, its primitive extension (`_name`), or a choice
/// element's variant (`value` or `value[x]` keeps `valueQuantity`).
fn element_key(resource_type: &str, name: &str, key: &str) -> bool {
    let key = key.strip_prefix('_').unwrap_or(key);
    let name = name.strip_suffix("[x]").unwrap_or(name);
    match key.strip_prefix(name) {
        Some("") => true,
        // `status` must not keep `statusReason`: only a choice element
        // has typed forms.
        Some(rest) => {
            rest.starts_with(|c: char| c.is_ascii_uppercase())
                && accord_fhir::elements::is_choice_element(resource_type, name)
        }
        None => false,
    }
}

/// Tags the resource `SUBSETTED` (FHIR R4 §3.1.1.5.9), once.
fn mark_subsetted(object: &mut Map<String, Value>) {
    add_meta_coding(object, "tag", (SUBSETTED_SYSTEM, "SUBSETTED", "subsetted"));
}

#[cfg(test)]
mod tests;
