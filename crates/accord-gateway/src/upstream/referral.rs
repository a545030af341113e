//! Referral cohorts: "patients with a referral between these parties".
//!
//! Membership lives in the upstream server, so the gateway asks it, per
//! patient: a `ServiceRequest` (requester → performer) or `Task` (requester
//! → owner) for the patient, from an Organization of one party to an
//! Organization of another, makes the patient a member — when it was made
//! by a referrer: its requester is an Organization of a party whose
//! referrals count ([`accord_policy::Cohort::referral_senders`]), and it
//! was not written through the gateway by any other partner (the
//! `urn:accord:partner` tag every write carries). A partner's own writes
//! never widen its own reach. Answers are cached
//! for at most [`MEMBERSHIP_TTL`], so a new or withdrawn referral counts
//! within a second. Anything that cannot be resolved — a party without an
//! Organization, an upstream failure — admits nobody (fail closed).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use accord_fhir::SearchParams;
use accord_fhir::compartment::{PatientLinks, patient_id_of_reference, patient_links};
use accord_policy::{PartnerId, PolicySet};
use serde_json::Value;

use crate::error::GatewayError;
use crate::request::PARTNER_TAG_SYSTEM;
use crate::upstream::client::{Upstream, UpstreamWait};
use crate::upstream::lookup::{form_query, search, searchset};
use crate::upstream::paging::{entry_resources, next_link, relative_to};

/// How long a membership answer is reused.
pub const MEMBERSHIP_TTL: Duration = Duration::from_secs(1);
/// How long a partner's Organizations (found by identifier) are reused:
/// organisations change far more rarely than referrals.
const ORGANIZATION_TTL: Duration = Duration::from_secs(60);
/// The parties of a referral cohort and, of them, those whose referrals
/// count.
pub type Parties<'p> = (&'p BTreeSet<PartnerId>, &'p Senders);

/// Whose referrals count for the recipient asking.
#[derive(Debug, Clone, Default)]
pub struct Senders {
    /// Parties whose Organizations' referrals (as requester) count.
    pub requesters: BTreeSet<PartnerId>,
    /// Partners whose referrals written through the gateway count: the
    /// requesters but the recipient itself (its own writes never widen its
    /// own reach).
    pub writers: BTreeSet<PartnerId>,
}

/// At most this many patients are resolved for one response; the rest stay
/// unresolved and their resources are withheld.
pub const MAX_PATIENTS_PER_REQUEST: usize = 100;
/// Referrals asked for per page.
const REFERRALS_PER_PAGE: u32 = 200;
/// Pages read for one lookup (10,000 referrals). Past that, a patient is
/// treated as outside and a population search is refused: fail closed
/// rather than read without bound.
const MAX_PAGES: usize = 50;

/// Resolves and briefly caches referral-cohort membership.
#[derive(Debug)]
pub struct ReferralResolver {
    members: Mutex<HashMap<(String, String), (Instant, bool)>>,
    organizations: Mutex<HashMap<PartnerId, (Instant, BTreeSet<String>)>>,
    /// The upstream's names: paging links are followed under these only.
    bases: Vec<String>,
}

// === impl ReferralResolver ===

impl ReferralResolver {
    /// `bases`: the upstream's base URL and aliases (`paging::upstream_bases`).
    pub fn new(bases: Vec<String>) -> Self {
        ReferralResolver {
            members: Mutex::default(),
            organizations: Mutex::default(),
            bases,
        }
    }

    /// Whether each patient (logical id) has a referral between two of the
    /// `parties`. `Err` when the upstream could not answer.
    pub async fn resolve(
        &self,
        upstream: &Upstream,
        policies: &PolicySet,
        (parties, senders): Parties<'_>,
        patients: &BTreeSet<String>,
        request_id: &str,
        waited: &mut UpstreamWait,
    ) -> Result<HashMap<String, bool>, GatewayError> {
        let mut answers = HashMap::new();
        let mut organizations = BTreeMap::new();
        for party in parties {
            let orgs = self
                .organizations_of(upstream, policies, party, request_id, waited)
                .await?;
            organizations.insert(party.clone(), orgs);
        }
        // A party without an Organization cannot be on either end of a
        // referral: nobody is in the cohort.
        let resolvable = organizations.len() >= 2 && organizations.values().all(|o| !o.is_empty());
        let key = cache_key(&organizations, senders);
        for patient in patients {
            if !resolvable {
                answers.insert(patient.clone(), false);
                continue;
            }
            if let Some(known) = self.cached_member(&key, patient) {
                answers.insert(patient.clone(), known);
                continue;
            }
            let member = has_referral(
                upstream,
                &self.bases,
                (&organizations, senders),
                patient,
                request_id,
                waited,
            )
            .await?;
            if let Ok(mut cache) = self.members.lock() {
                let now = Instant::now();
                cache.retain(|_, (at, _)| now.duration_since(*at) < MEMBERSHIP_TTL);
                cache.insert((key.clone(), patient.clone()), (now, member));
            }
            answers.insert(patient.clone(), member);
        }
        Ok(answers)
    }

    /// Every member of the cohort, for a population search: the patients
    /// of all referrals between the parties' Organizations, every page.
    /// `None` when the list cannot be read whole (a party without an
    /// Organization, more than `MAX_PAGES` pages) — the search is then
    /// refused.
    pub async fn all_members(
        &self,
        upstream: &Upstream,
        policies: &PolicySet,
        (parties, senders): Parties<'_>,
        request_id: &str,
        waited: &mut UpstreamWait,
    ) -> Result<Option<BTreeSet<String>>, GatewayError> {
        let mut organizations = BTreeMap::new();
        for party in parties {
            let orgs = self
                .organizations_of(upstream, policies, party, request_id, waited)
                .await?;
            if orgs.is_empty() {
                return Ok(None);
            }
            organizations.insert(party.clone(), orgs);
        }
        if organizations.len() < 2 {
            return Ok(None);
        }
        let count = REFERRALS_PER_PAGE.to_string();
        let mut members = BTreeSet::new();
        for (sender, from_orgs) in &organizations {
            for (receiver, to_orgs) in &organizations {
                if sender == receiver || !senders.requesters.contains(sender) {
                    continue;
                }
                for from in from_orgs {
                    for to in to_orgs {
                        let searches = [
                            ("ServiceRequest", "performer", "subject"),
                            ("Task", "owner", "for"),
                        ];
                        for (ty, to_param, patient_field) in searches {
                            let query = form_query(&[
                                ("requester", from.as_str()),
                                (to_param, to.as_str()),
                                ("_count", count.as_str()),
                            ]);
                            let mut pages = Pages::new(ty, query);
                            while let Some(bundle) = pages
                                .next(upstream, &self.bases, request_id, waited)
                                .await?
                            {
                                members.extend(
                                    entry_resources(&bundle)
                                        .filter(|r| written_by_referrer(r, &senders.writers))
                                        .filter_map(|r| {
                                            r.pointer(&format!("/{patient_field}/reference"))
                                                .and_then(Value::as_str)
                                                .and_then(patient_id_of_reference)
                                                .map(str::to_owned)
                                        }),
                                );
                            }
                            if pages.cut_short {
                                return Ok(None);
                            }
                        }
                    }
                }
            }
        }
        Ok(Some(members))
    }

    fn cached_member(&self, key: &str, patient: &str) -> Option<bool> {
        let cache = self.members.lock().ok()?;
        let (at, member) = cache.get(&(key.to_owned(), patient.to_owned()))?;
        (at.elapsed() < MEMBERSHIP_TTL).then_some(*member)
    }

    /// The Organization references (`Organization/<id>`) that stand for
    /// `party`: the one named in partners.toml, else those the upstream
    /// holds with one of the partner's identifiers.
    async fn organizations_of(
        &self,
        upstream: &Upstream,
        policies: &PolicySet,
        party: &PartnerId,
        request_id: &str,
        waited: &mut UpstreamWait,
    ) -> Result<BTreeSet<String>, GatewayError> {
        let Some(partner) = policies.partner(party) else {
            return Ok(BTreeSet::new());
        };
        if let Some(organization) = &partner.organization {
            return Ok(BTreeSet::from([organization.clone()]));
        }
        if let Some((at, known)) = self
            .organizations
            .lock()
            .ok()
            .and_then(|cache| cache.get(party).cloned())
            && at.elapsed() < ORGANIZATION_TTL
        {
            return Ok(known);
        }
        let mut found = BTreeSet::new();
        for identifier in &partner.identifiers {
            let query = form_query(&[("identifier", identifier.as_str())]);
            let bundle = search(upstream, "Organization", query, request_id, waited).await?;
            for resource in entry_resources(&bundle) {
                if let Some(id) = resource.get("id").and_then(Value::as_str) {
                    found.insert(format!("Organization/{id}"));
                }
            }
        }
        if let Ok(mut cache) = self.organizations.lock() {
            cache.insert(party.clone(), (Instant::now(), found.clone()));
        }
        Ok(found)
    }
}

/// Whether the upstream holds a ServiceRequest or Task for `patient` from
/// one party's Organization to another party's.
async fn has_referral(
    upstream: &Upstream,
    bases: &[String],
    (organizations, senders): (&BTreeMap<PartnerId, BTreeSet<String>>, &Senders),
    patient: &str,
    request_id: &str,
    waited: &mut UpstreamWait,
) -> Result<bool, GatewayError> {
    let subject = format!("Patient/{patient}");
    let count = REFERRALS_PER_PAGE.to_string();
    let searches = [
        ("ServiceRequest", "subject", "performer"),
        ("Task", "patient", "owner"),
    ];
    for (ty, patient_param, to_field) in searches {
        let query = form_query(&[
            (patient_param, subject.as_str()),
            ("_count", count.as_str()),
        ]);
        let mut pages = Pages::new(ty, query);
        while let Some(bundle) = pages.next(upstream, bases, request_id, waited).await? {
            for resource in entry_resources(&bundle) {
                let from = references(resource.get("requester"));
                let to = references(resource.get(to_field));
                if written_by_referrer(resource, &senders.writers)
                    && between_parties(organizations, &senders.requesters, &from, &to)
                {
                    return Ok(true);
                }
            }
        }
        if pages.cut_short {
            tracing::warn!(
                %patient, %ty,
                "more than {MAX_PAGES} pages of referrals; the patient counts as outside the cohort"
            );
        }
    }
    Ok(false)
}

/// The pages of one upstream search, read one at a time.
struct Pages {
    first: Option<(&'static str, SearchParams)>,
    next: Option<String>,
    read: usize,
    /// Stopped at `MAX_PAGES` with more to read.
    cut_short: bool,
}

impl Pages {
    fn new(ty: &'static str, query: SearchParams) -> Self {
        Pages {
            first: Some((ty, query)),
            next: None,
            read: 0,
            cut_short: false,
        }
    }

    /// The next page; `None` when there is none (or the limit is reached).
    /// A `next` link outside the upstream's names is an error, not an end:
    /// the rest of the list would be unknown.
    async fn next(
        &mut self,
        upstream: &Upstream,
        bases: &[String],
        request_id: &str,
        waited: &mut UpstreamWait,
    ) -> Result<Option<Value>, GatewayError> {
        let bundle = if let Some((ty, query)) = self.first.take() {
            search(upstream, ty, query, request_id, waited).await?
        } else if let Some(target) = self.next.take() {
            if self.read >= MAX_PAGES {
                self.cut_short = true;
                return Ok(None);
            }
            let started = Instant::now();
            let response = upstream.get(&target).await;
            waited.add(started.elapsed());
            let response = response?;
            searchset(response)?
        } else {
            return Ok(None);
        };
        self.read += 1;
        if let Some(link) = next_link(&bundle) {
            let Some(target) = relative_to(link, bases) else {
                tracing::warn!(%link, "referral lookup: the upstream's next link is not under its base");
                return Err(GatewayError::upstream_invalid());
            };
            self.next = Some(target);
        }
        Ok(Some(bundle))
    }
}

/// Whether a referral resource was not written through the gateway by a
/// partner other than a referrer (writes carry the writer's tag).
fn written_by_referrer(resource: &Value, senders: &BTreeSet<PartnerId>) -> bool {
    resource
        .pointer("/meta/tag")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("system").and_then(Value::as_str) == Some(PARTNER_TAG_SYSTEM))
        .all(|t| {
            t.get("code")
                .and_then(Value::as_str)
                .is_some_and(|writer| senders.iter().any(|s| s.as_str() == writer))
        })
}

/// Whether a referral from `from` to `to` is made by one of `senders` to
/// another party.
fn between_parties(
    organizations: &BTreeMap<PartnerId, BTreeSet<String>>,
    senders: &BTreeSet<PartnerId>,
    from: &[String],
    to: &[String],
) -> bool {
    let parties_of = |refs: &[String]| -> BTreeSet<&PartnerId> {
        organizations
            .iter()
            .filter(|(_, orgs)| refs.iter().any(|r| orgs.contains(r)))
            .map(|(party, _)| party)
            .collect()
    };
    let receivers = parties_of(to);
    parties_of(from)
        .into_iter()
        .filter(|s| senders.contains(*s))
        .any(|s| receivers.iter().any(|r| *r != s))
}

/// `Organization/<id>` for every Organization reference in `value`: the
/// policy's own reader, so explain and the gateway agree.
fn references(value: Option<&Value>) -> Vec<String> {
    accord_policy::referral::organizations(value)
}

fn cache_key(organizations: &BTreeMap<PartnerId, BTreeSet<String>>, senders: &Senders) -> String {
    let names = |set: &BTreeSet<PartnerId>| {
        set.iter()
            .map(PartnerId::as_str)
            .collect::<Vec<_>>()
            .join(",")
    };
    let parties = organizations
        .iter()
        .map(|(party, orgs)| {
            let orgs: Vec<&str> = orgs.iter().map(String::as_str).collect();
            format!("{party}={}", orgs.join(","))
        })
        .collect::<Vec<_>>()
        .join(";");
    format!(
        "{parties}|{}|{}",
        names(&senders.requesters),
        names(&senders.writers)
    )
}

/// The patients (logical ids) every resource in an upstream response
/// belongs to: the resource itself, Bundle entries of any mode, contained
/// resources. Unparseable bodies yield none (the filter refuses them).
pub fn patients_in_response(body: &[u8]) -> BTreeSet<String> {
    let mut patients = BTreeSet::new();
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        collect_patients(&json, &mut patients);
    }
    patients
}

fn collect_patients(resource: &Value, out: &mut BTreeSet<String>) {
    if let PatientLinks::Patients(found) = patient_links(resource) {
        out.extend(found);
    }
    for entry in resource
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(inner) = entry.get("resource") {
            collect_patients(inner, out);
        }
    }
    for contained in resource
        .get("contained")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        collect_patients(contained, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orgs() -> BTreeMap<PartnerId, BTreeSet<String>> {
        let mut map = BTreeMap::new();
        map.insert(
            PartnerId::parse("a").unwrap(),
            BTreeSet::from(["Organization/a".to_owned()]),
        );
        map.insert(
            PartnerId::parse("b").unwrap(),
            BTreeSet::from(["Organization/b".to_owned()]),
        );
        map
    }

    #[test]
    fn a_referral_must_join_two_different_parties() {
        let o = orgs();
        let all: BTreeSet<PartnerId> = o.keys().cloned().collect();
        let a = vec!["Organization/a".to_owned()];
        let b = vec!["Organization/b".to_owned()];
        let c = vec!["Organization/c".to_owned()];
        assert!(between_parties(&o, &all, &a, &b));
        assert!(between_parties(&o, &all, &b, &a));
        assert!(!between_parties(&o, &all, &a, &a), "within one party");
        assert!(!between_parties(&o, &all, &a, &c), "to an outsider");
        assert!(!between_parties(&o, &all, &[], &b));
        let only_b = BTreeSet::from([PartnerId::parse("b").unwrap()]);
        assert!(!between_parties(&o, &only_b, &a, &b), "a is no referrer");
        assert!(between_parties(&o, &only_b, &b, &a));
    }

    #[test]
    fn organization_references_in_any_spelling() {
        let value = serde_json::json!([
            {"reference": "Organization/x"},
            {"reference": "https://h/fhir/Organization/y/_history/2"},
            {"reference": "Practitioner/z"}
        ]);
        assert_eq!(
            references(Some(&value)),
            vec!["Organization/x".to_owned(), "Organization/y".to_owned()]
        );
    }
}
