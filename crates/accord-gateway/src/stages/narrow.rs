//! Stage 4, narrow (→ `Narrowed`): constrain a permitted request to what the decision
//! allows, and refuse parameters that reach around the policy.
//!
//! Everything a partner can send in a search — GET or POST form, repeats,
//! comma lists, modifiers, absolute or versioned references — has been
//! parsed into one `SearchParams` by now, so it is checked in one place.

use std::collections::BTreeSet;

use accord_fhir::compartment::{is_patient_data, patient_id_of_reference, patient_search_params};
use accord_fhir::request::{base_name, modifier};
use accord_fhir::{FhirRequest, Interaction, OperationTarget, Purpose, ResourceId, ResourceType};
use accord_policy::{AccessRequest, PartnerId};

use crate::error::GatewayError;
use crate::request::RequestContext;
use crate::request::page::Page;
use crate::scope::Scope;
use crate::stages::filter::subset::Subset;
use crate::stages::respond::empty_searchset_answer;
use crate::stages::{Gateway, Narrowed, Parsed, Permitted, Step};

mod referrals;
pub mod search_reach;
pub mod write;
mod write_reach;

/// Parameters that let a caller learn about data it cannot read (`_has`,
/// `_filter` and `_query` reach into other resources; `_contained` searches
/// inside resources whose owner is unknown until returned).
const REFUSED_PARAMS: &[&str] = &["_has", "_filter", "_query", "_contained", "_containedType"];

/// What to do with a request after narrowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Narrowing {
    /// Forward the (possibly rewritten) request.
    Forward,
    /// Every patient asked about is out of reach: answer exactly as if they
    /// had no data, without asking the upstream.
    NoMatch,
}

/// Narrows `request` in place.
pub fn narrow(request: &mut FhirRequest, scope: &Scope<'_>) -> Result<Narrowing, GatewayError> {
    match request.interaction.clone() {
        Interaction::SearchType { ty } => narrow_search(request, ty, scope),
        Interaction::HistoryType { .. } => Err(GatewayError::forbidden(
            "type-level history lists every patient's resources; use instance history",
        )),
        Interaction::SearchCompartment { .. } => Err(compartment_refused()),
        Interaction::Operation { name, target } => match (name.as_str(), target) {
            ("everything", OperationTarget::Instance(ty, id)) if ty == ResourceType::PATIENT => {
                if scope.patient_in_reach(id.as_str()) {
                    Ok(Narrowing::Forward)
                } else {
                    Err(GatewayError::withheld_as_missing("outside_reach"))
                }
            }
            _ => Err(GatewayError::forbidden(format!(
                "operation `${name}` is not supported"
            ))),
        },
        _ => Ok(Narrowing::Forward),
    }
}

/// Refuses a search whose parameters reach around the policy, whoever it is
/// about: asked before answering a patient out of reach as "no data", so
/// that such a request is refused the same way for every patient.
pub fn check_shape(request: &FhirRequest, scope: &Scope<'_>) -> Result<(), GatewayError> {
    match request.interaction {
        Interaction::SearchType { ty } => check_reach_around(request, ty, scope),
        Interaction::SearchCompartment { .. } => Err(compartment_refused()),
        _ => Ok(()),
    }
}

/// A compartment search that was not rewritten as a type search
/// (`stages/parse/compartment.rs`): another compartment, or every type at once.
fn compartment_refused() -> GatewayError {
    GatewayError::forbidden(
        "this compartment search is not supported; search the type with ?patient=",
    )
}

fn narrow_search(
    request: &mut FhirRequest,
    ty: ResourceType,
    scope: &Scope<'_>,
) -> Result<Narrowing, GatewayError> {
    check_reach_around(request, ty, scope)?;
    // Totals are recomputed from what is released; the upstream's count
    // would include what is withheld.
    request.params.retain(|name, _| base_name(name) != "_total");
    // The grant's own search constraints (e.g. only laboratory
    // Observations) are ANDed in; the partner cannot remove them.
    for (name, value) in scope.constraints(ty) {
        request.params.push(&name, &value);
    }
    if !is_patient_data(ty) {
        return Ok(Narrowing::Forward);
    }

    let patient_params = patient_params(ty);
    let mut named_patient = false;
    let mut out_of_reach = false;
    let mut rewrites = Vec::new();
    for (index, (name, value)) in request.params.iter().enumerate() {
        if !patient_params.contains(&base_name(name)) {
            continue;
        }
        if !matches!(modifier(name), None | Some("Patient")) {
            return Err(GatewayError::forbidden(format!(
                "modifier on `{name}` is not allowed: patient parameters take plain Patient references"
            )));
        }
        named_patient = true;
        let mut kept = Vec::new();
        for item in value.split(',') {
            let id = patient_value(item).ok_or_else(|| {
                GatewayError::forbidden(format!("`{item}` in `{name}` is not a Patient reference"))
            })?;
            if scope.patient_in_reach(id) {
                kept.push(item.to_owned());
            }
        }
        if kept.is_empty() {
            out_of_reach = true;
        } else {
            rewrites.push((index, kept.join(",")));
        }
    }
    for (index, value) in rewrites {
        request.params.set_value(index, value);
    }
    if !named_patient && !finds_a_patient_by_identity(request, ty) && !scope.population_search(ty) {
        return Err(GatewayError::forbidden(format!(
            "name a patient (e.g. `{ty}?patient=Patient/123`): no agreement allows searches across all patients"
        )));
    }
    if !named_patient
        && !finds_a_patient_by_identity(request, ty)
        && scope.referral_parties().is_some()
    {
        // The pipeline narrows population searches under a referral cohort
        // to its listed members; a search that reaches here unnamed was not.
        // A Patient search by identifier finds specific patients, whose
        // membership is resolved from the response before the filter.
        return Err(GatewayError::forbidden(format!(
            "name a patient (e.g. `{ty}?patient=Patient/123`): the agreement's cohort is patients with a referral"
        )));
    }
    Ok(if out_of_reach {
        Narrowing::NoMatch
    } else {
        Narrowing::Forward
    })
}

/// Parameters that would widen a search beyond what the partner can read.
fn check_reach_around(
    request: &FhirRequest,
    ty: ResourceType,
    scope: &Scope<'_>,
) -> Result<(), GatewayError> {
    for (name, value) in request.params.iter() {
        let base = base_name(name);
        if name.contains('.') {
            return Err(GatewayError::forbidden(format!(
                "chained parameter `{name}` is not allowed"
            )));
        }
        if REFUSED_PARAMS.contains(&base) {
            return Err(GatewayError::forbidden(format!(
                "parameter `{base}` is not allowed"
            )));
        }
        if base == "_summary" && value == "count" {
            return Err(GatewayError::forbidden(
                "`_summary=count` is not allowed: counts would include withheld data",
            ));
        }
        if base == "_include" || base == "_revinclude" {
            check_include(name, value, ty, scope)?;
        }
    }
    search_reach::check_search_params(request, ty, scope)
}

fn check_include(
    name: &str,
    value: &str,
    ty: ResourceType,
    scope: &Scope<'_>,
) -> Result<(), GatewayError> {
    let refuse = |why: &str| Err(GatewayError::forbidden(format!("`{name}={value}`: {why}")));
    if modifier(name).is_some() {
        return refuse("iterated includes are not allowed");
    }
    if value.split(':').any(|part| part == "*") {
        return refuse("wildcard includes are not allowed");
    }
    let mut parts = value.split(':');
    let (source, param, target) = (parts.next(), parts.next(), parts.next());
    let (Some(source), Some(param), None) = (source, param, parts.next()) else {
        return refuse("use `Type:parameter[:TargetType]`");
    };
    let Ok(source) = ResourceType::parse(source) else {
        return refuse("unknown resource type");
    };
    if base_name(name) == "_revinclude" {
        return if scope.may_read(source) {
            Ok(())
        } else {
            refuse("no agreement lets you read that type")
        };
    }
    if source != ty {
        return refuse("includes must start from the searched type");
    }
    let target = match target {
        Some(target) => ResourceType::parse(target).ok(),
        // Without a target, only a patient parameter says what comes back.
        None if patient_params(ty).contains(&param) => Some(ResourceType::PATIENT),
        None => None,
    };
    match target {
        Some(target) if scope.may_read(target) => Ok(()),
        Some(_) => refuse("no agreement lets you read the included type"),
        // A reference parameter that may point at several types
        // (`Observation:encounter`, `Task:focus`): served, because every
        // included resource is checked by the filter like any other —
        // type, patients, consent, sensitivity, constraints, redactions —
        // and one of a type the partner may not read is withheld.
        None if is_reference_param(ty, param) => Ok(()),
        None => refuse("not a reference parameter of the searched type"),
    }
}

/// Whether `param` of `ty` is a reference: an R4 reference search
/// parameter, or one a server defines after a Reference element
/// (`reason-reference` for `ServiceRequest.reasonReference`, as US Core
/// and many servers do).
fn is_reference_param(ty: ResourceType, param: &str) -> bool {
    let r4 = accord_fhir::search_params::search_param(ty, param)
        .is_some_and(|p| p.kind == accord_fhir::search_params::ParamKind::Reference);
    r4 || accord_fhir::elements::is_reference_element(ty.as_str(), &camel_case(param))
}

/// `reason-reference` → `reasonReference`.
fn camel_case(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut upper = false;
    for c in code.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The patients (logical ids) a request names before it is forwarded: the
/// patient parameters of a type search and the target of `Patient/$everything`.
/// Values that are not Patient references are ignored here (narrowing
/// refuses them).
pub fn named_patients(request: &FhirRequest) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    match &request.interaction {
        Interaction::SearchType { ty } => {
            let params = patient_params(*ty);
            for (name, value) in request.params.iter() {
                if !params.contains(&base_name(name)) {
                    continue;
                }
                named.extend(
                    value
                        .split(',')
                        .filter_map(patient_value)
                        .map(str::to_owned),
                );
            }
        }
        Interaction::Operation {
            target: OperationTarget::Instance(ty, id),
            ..
        } if *ty == ResourceType::PATIENT => {
            named.insert(id.as_str().to_owned());
        }
        _ => {}
    }
    named
}

/// At most this many named patients are recorded per request.
const MAX_SUBJECTS: usize = 100;

/// Every patient the request names, as `Patient/<id>`: its patient
/// parameters, `Patient/$everything`, and the one patient the policy sees
/// (a Patient read, a compartment). For the audit record, whatever the
/// outcome: an attempt is found by the patient it named.
pub fn subjects(request: &FhirRequest, partner: &PartnerId, purpose: &Purpose) -> BTreeSet<String> {
    // Only well-formed ids, and a bounded number of them: a request names
    // what it likes, the record must stay small (a value that is no id
    // names no patient).
    let mut out: BTreeSet<String> = named_patients(request)
        .into_iter()
        .filter(|id| ResourceId::parse(id).is_ok())
        .take(MAX_SUBJECTS)
        .map(|id| format!("Patient/{id}"))
        .collect();
    let at = time::OffsetDateTime::UNIX_EPOCH;
    if let Some(patient) = AccessRequest::from_fhir(partner, purpose, request, at).patient
        && patient
            .strip_prefix("Patient/")
            .is_some_and(|id| ResourceId::parse(id).is_ok())
    {
        out.insert(patient);
    }
    out
}

/// The parameters that name patients for `ty`.
fn patient_params(ty: ResourceType) -> Vec<&'static str> {
    let mut params: Vec<&'static str> = patient_search_params(ty).collect();
    params.push("patient");
    if ty == ResourceType::PATIENT {
        params.push("_id");
    } else if !params.contains(&"subject") {
        // The decision reads `subject` as naming a patient for every type
        // (`Encounter?subject=Patient/1`); narrowing must too, or a patient
        // out of reach ("no data") is told apart from an absent one ("name
        // a patient").
        params.push("subject");
    }
    params
}

/// A Patient search by identifier finds specific patients; the results are
/// filtered by reach like any other, so it needs no population grant.
fn finds_a_patient_by_identity(request: &FhirRequest, ty: ResourceType) -> bool {
    ty == ResourceType::PATIENT && request.params.iter().any(|(name, _)| name == "identifier")
}

/// The patient id a search value names: `123`, `Patient/123`, an absolute
/// or versioned Patient reference.
fn patient_value(value: &str) -> Option<&str> {
    if let Some(id) = patient_id_of_reference(value) {
        return Some(id);
    }
    ResourceId::parse(value).ok().map(|_| value)
}

// === impl Gateway ===

impl Gateway {
    /// The narrow stage: the request cut down to what the permit reaches
    /// (patients, referral cohort, grant constraints), `_elements` and
    /// `_summary` taken off for after the filter, and a write's body
    /// checked and stamped. `Answer` when nothing can match.
    pub(super) async fn narrow<'p>(
        &'p self,
        ctx: &mut RequestContext,
        permitted: &'p Permitted,
        parsed: Parsed,
    ) -> Result<Step<Narrowed<'p>>, GatewayError> {
        let Parsed {
            headers,
            mut fhir,
            body,
            ..
        } = parsed;
        let scope = Scope::new(
            &permitted.policies,
            &permitted.partner,
            &permitted.purpose,
            permitted.at,
            permitted.obligations.as_ref(),
        )
        .with_owner(self.upstream_owner.as_ref());
        let referral_parties = scope.referral_parties();
        let mut narrowing = Narrowing::Forward;
        if let Some(parties) = &referral_parties {
            narrowing = self
                .narrow_to_referrals(&mut fhir, &scope, &permitted.policies, parties, ctx)
                .await?;
        }
        if narrowing == Narrowing::NoMatch || narrow(&mut fhir, &scope)? == Narrowing::NoMatch {
            return empty_searchset_answer(&permitted.self_link).map(Step::Answer);
        }
        // The filter decides on whole resources; any subsetting is done
        // after it (see filter/subset.rs).
        let subset = Subset::take(&mut fhir.params)?;
        // Type searches are paged by the gateway over what it releases
        // (request/page.rs).
        let page = match fhir.interaction {
            Interaction::SearchType { .. } => Some(Page::take(&mut fhir.params)?),
            _ => None,
        };
        let body = write::prepare_write(&fhir, body, &scope, &permitted.partner)?;
        self.check_write_reach(&fhir, &body, &scope, &permitted.policies, ctx)
            .await?;
        Ok(Step::Next(Narrowed {
            scope,
            fhir,
            body,
            headers,
            subset,
            page,
            referral_parties,
        }))
    }
}

#[cfg(test)]
mod tests;
