//! What a permitted request may reach, asked of the policies once per
//! question and remembered for the rest of the request.
//!
//! Narrowing (before forwarding) and filtering (after) both ask the same
//! questions — may this partner read this type, is this patient within
//! reach — so they share one [`Scope`] and cannot disagree.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use accord_fhir::{InteractionKind, Purpose, ResourceType};
use accord_policy::{
    AccessRequest, Category, CategoryId, CohortMembers, ConsentQuery, ConsentRule, Obligations,
    Origin, PartnerId, PolicySet, ResourceFacts, ResourceVerdict,
};
use serde_json::Value;
use time::OffsetDateTime;

/// The category id that marks 42 CFR Part 2 data in policies and in the
/// audit record (where it puts a disclosure on the §2.24 list).
pub const PART2_CATEGORY: &str = "part2";

/// HL7 v3 ActCode, the code system of the Part 2 labels.
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// The policy label: 42 CFR Part 2.
pub const PART2_POLICY: &str = "42CFRPart2";

/// The sensitivity categories (policy category ids) of one released
/// resource; empty, and so not allocated, for ordinary data.
pub type Sensitivity = Vec<CategoryId>;

/// The reach of one permitted request.
#[derive(Debug)]
pub struct Scope<'a> {
    policies: &'a PolicySet,
    partner: &'a PartnerId,
    purpose: &'a Purpose,
    at: OffsetDateTime,
    /// What the permit obliges (none for capabilities).
    obligations: Option<&'a Obligations>,
    // A Mutex, not a RefCell: the scope lives across the upstream await,
    // so it must be Sync for the request future to be Send.
    permitted: Mutex<HashMap<(InteractionKind, ResourceType), bool>>,
    /// Referral-cohort membership resolved for this request (patient id →
    /// member); a patient not in here is outside.
    referral_members: Mutex<HashMap<String, bool>>,
    /// The `Medication`s that prescriptions in the response name by
    /// reference (`Medication/<id>` → resource), read for this request; a
    /// prescription whose Medication is not here cannot be classified.
    medications: Mutex<HashMap<String, Value>>,
    /// The Encounters the response's resources were recorded in
    /// (`Encounter/<id>` → resource), read to find whose records they are.
    encounters: Mutex<HashMap<String, Value>>,
    /// The member whose server the upstream is, if it is one member's.
    owner: Option<&'a PartnerId>,
    /// With one server per member: whose server each resource came from
    /// (`Type/id` → owner), and the ids two servers hold.
    origins: Mutex<(HashMap<String, PartnerId>, BTreeSet<String>)>,
    /// Whether a resource in a 42 CFR Part 2 category was released (the
    /// §2.32 notice must go with the response).
    part2_released: AtomicBool,
}

// === impl Scope ===

impl<'a> Scope<'a> {
    pub fn new(
        policies: &'a PolicySet,
        partner: &'a PartnerId,
        purpose: &'a Purpose,
        at: OffsetDateTime,
        obligations: Option<&'a Obligations>,
    ) -> Self {
        Scope {
            policies,
            partner,
            purpose,
            at,
            obligations,
            permitted: Mutex::new(HashMap::new()),
            referral_members: Mutex::new(HashMap::new()),
            medications: Mutex::new(HashMap::new()),
            encounters: Mutex::new(HashMap::new()),
            owner: None,
            origins: Mutex::new((HashMap::new(), BTreeSet::new())),
            part2_released: AtomicBool::new(false),
        }
    }

    /// Whether an agreement in force lets this partner read resources of
    /// `ty` for this purpose. Every resource released, in any position of a
    /// response, must pass this.
    pub fn may_read(&self, ty: ResourceType) -> bool {
        self.permits(InteractionKind::Read, ty)
    }

    /// Whether an agreement in force grants `kind` on `ty` to this partner
    /// for this purpose.
    pub fn permits(&self, kind: InteractionKind, ty: ResourceType) -> bool {
        let cached = self
            .permitted
            .lock()
            .ok()
            .and_then(|cache| cache.get(&(kind, ty)).copied());
        if let Some(known) = cached {
            return known;
        }
        let permitted = self
            .policies
            .decide(&AccessRequest {
                partner: self.partner,
                purpose: self.purpose,
                interaction: kind,
                resource_type: Some(ty),
                at: self.at,
                patient: None,
                operation: None,
            })
            .is_permit();
        if let Ok(mut cache) = self.permitted.lock() {
            cache.insert((kind, ty), permitted);
        }
        permitted
    }

    /// Whether searches without a patient are allowed: only when the
    /// permitting grant says so.
    pub fn population_search(&self, _ty: ResourceType) -> bool {
        self.obligations.is_some_and(|o| o.population_search)
    }

    /// Search parameters the grant adds to every search of `ty` (e.g.
    /// `category=laboratory`).
    pub fn constraints(&self, ty: ResourceType) -> Vec<(String, String)> {
        self.obligations
            .map(|o| o.constraints_for(ty).cloned().collect())
            .unwrap_or_default()
    }

    /// The elements of `ty` the grant redacts, without the type prefix
    /// (`address` for `Patient.address`).
    pub fn redactions(&self, ty: ResourceType) -> Vec<String> {
        let prefix = format!("{ty}.");
        self.obligations
            .map(|o| {
                o.redactions
                    .iter()
                    .filter_map(|p| p.strip_prefix(&prefix))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `resource` (of type `ty`) satisfies the grant's constraints
    /// for its type, evaluated from the R4 SearchParameter definitions.
    /// A constraint says what may be *released*, so this holds for every
    /// resource in every position; one the gateway cannot evaluate (an
    /// unsupported parameter kind or modifier) is outside (fail closed).
    pub fn within_constraints(&self, ty: ResourceType, resource: &Value) -> bool {
        let params = self.constraints(ty);
        params.is_empty()
            || accord_fhir::search_params::satisfies(resource, ty, &params)
                == accord_fhir::search_params::Match::Yes
    }

    /// Whether data of the patient with this id may be asked for: inside a
    /// listed or Group cohort, and not opted out by consent. A referral
    /// cohort admits nobody until it is resolved.
    pub fn patient_in_reach(&self, patient_id: &str) -> bool {
        if self.obligations.is_none() {
            return true;
        }
        if !self.patient_in_cohort(patient_id) {
            return false;
        }
        let reference = format!("Patient/{patient_id}");
        let query = ConsentQuery {
            partner: self.partner,
            purpose: self.purpose,
            at: self.at,
        };
        self.policies.consents().general(&reference, &query).rule != ConsentRule::Deny
    }

    /// Whether the patient is inside the grant's listed or Group cohort
    /// (writes need this; consent governs disclosure, not a referral sent
    /// about the patient).
    pub fn patient_in_cohort(&self, patient_id: &str) -> bool {
        let Some(obligations) = self.obligations else {
            return true;
        };
        let reference = format!("Patient/{patient_id}");
        let Some(cohort) = obligations
            .cohort
            .as_ref()
            .and_then(|c| self.policies.cohort(c))
        else {
            return true;
        };
        match &cohort.members {
            // Membership lives upstream; a patient not resolved for this
            // request is outside (fail closed).
            CohortMembers::Referral { .. } => self.referral_member(patient_id) == Some(true),
            _ => cohort.contains(&reference).unwrap_or(false),
        }
    }

    /// The parties of the grant's referral cohort, when it has one: the
    /// pipeline resolves membership before narrowing and filtering.
    pub fn referral_parties(&self) -> Option<BTreeSet<PartnerId>> {
        let cohort = self
            .obligations?
            .cohort
            .as_ref()
            .and_then(|c| self.policies.cohort(c))?;
        match &cohort.members {
            CohortMembers::Referral { between, .. } => Some(between.clone()),
            _ => None,
        }
    }

    /// Whose referrals count for this recipient (see
    /// [`accord_policy::Cohort::referral_senders`]): the requesters, and
    /// the same but the recipient for referrals written through the
    /// gateway; empty without a referral cohort.
    pub fn referral_senders(&self) -> crate::upstream::referral::Senders {
        let requesters: BTreeSet<PartnerId> = self
            .obligations
            .and_then(|o| {
                let cohort = self.policies.cohort(o.cohort.as_ref()?)?;
                cohort.referral_senders(&o.partner)
            })
            .unwrap_or_default();
        let writers = requesters
            .iter()
            .filter(|p| *p != self.partner)
            .cloned()
            .collect();
        crate::upstream::referral::Senders {
            requesters,
            writers,
        }
    }

    /// Of `patients`, those whose referral membership is not known yet.
    pub fn unresolved_referrals(&self, patients: BTreeSet<String>) -> BTreeSet<String> {
        let Ok(known) = self.referral_members.lock() else {
            return patients;
        };
        patients
            .into_iter()
            .filter(|p| !known.contains_key(p))
            .collect()
    }

    /// Records resolved referral-cohort membership.
    pub fn learn_referrals(&self, answers: HashMap<String, bool>) {
        if let Ok(mut known) = self.referral_members.lock() {
            known.extend(answers);
        }
    }

    /// The upstream is one member's server: all it holds is that member's.
    #[must_use]
    pub fn with_owner(mut self, owner: Option<&'a PartnerId>) -> Self {
        self.owner = owner;
        self
    }

    /// Whether the grant names a source, so every released resource's
    /// origin must be known.
    pub fn needs_origins(&self) -> bool {
        self.obligations.is_some_and(|o| o.source.is_some())
    }

    /// Records whose server each resource of the response came from.
    pub fn learn_origins(&self, found: HashMap<String, PartnerId>, ambiguous: BTreeSet<String>) {
        if let Ok(mut known) = self.origins.lock() {
            known.0.extend(found);
            known.1.extend(ambiguous);
        }
    }

    /// Records the Encounters read for this request, by `Encounter/<id>`.
    pub fn learn_encounters(&self, found: HashMap<String, Value>) {
        if let Ok(mut known) = self.encounters.lock() {
            known.extend(found);
        }
    }

    /// Whose record `resource` is: the upstream's owner, or what the
    /// resource (and its Encounter) say.
    fn origin(&self, resource: &Value) -> Origin {
        if let Some(owner) = self.owner {
            return Origin::Of(owner.clone());
        }
        if let Some(key) = crate::upstream::federation::key_of(resource)
            && let Ok(known) = self.origins.lock()
        {
            if known.1.contains(&key) {
                return Origin::Undetermined;
            }
            if let Some(owner) = known.0.get(&key) {
                return Origin::Of(owner.clone());
            }
        }
        let encounter = accord_policy::origin::encounter_of(resource)
            .and_then(crate::upstream::medications::encounter_key)
            .and_then(|key| self.encounters.lock().ok()?.get(&key).cloned());
        self.policies.origin_of(resource, encounter.as_ref())
    }

    /// Records the Medications read for this request, by `Medication/<id>`.
    pub fn learn_medications(&self, found: HashMap<String, Value>) {
        if let Ok(mut known) = self.medications.lock() {
            known.extend(found);
        }
    }

    /// The facts of `resource`, with the codes of the Medication it names
    /// by reference when that was read for this request.
    fn facts(&self, resource: &Value) -> ResourceFacts {
        let mut facts = ResourceFacts::of(resource);
        let medication = facts
            .medication_reference
            .as_deref()
            .and_then(crate::upstream::medications::medication_key)
            .and_then(|key| self.medications.lock().ok()?.get(&key).cloned());
        if let Some(medication) = medication {
            facts.add_referenced(&medication);
        }
        facts
    }

    fn referral_member(&self, patient_id: &str) -> Option<bool> {
        self.referral_members
            .lock()
            .ok()
            .and_then(|known| known.get(patient_id).copied())
    }

    /// The policy's verdict on one resource of patient data belonging to
    /// `patients` (ids): cohort, consent, sensitive categories, redactions;
    /// and, when it is not withheld, the sensitivity categories it falls in
    /// (for the audit record).
    pub fn release(&self, resource: &Value, patients: &[String]) -> (ResourceVerdict, Sensitivity) {
        let Some(obligations) = self.obligations else {
            return (ResourceVerdict::Release, Sensitivity::new());
        };
        let mut facts = self.facts(resource);
        if self.needs_origins() {
            facts.origin = self.origin(resource);
        }
        // The patients the filter placed (and checked for reach).
        facts.patients = patients.iter().map(|p| format!("Patient/{p}")).collect();
        if self.referral_parties().is_some() {
            // Every patient must be a resolved member; one unresolved
            // patient leaves the answer unknown, which withholds.
            let answers: Option<Vec<bool>> =
                patients.iter().map(|p| self.referral_member(p)).collect();
            facts.in_referral_cohort =
                answers.map(|a| !a.is_empty() && a.iter().all(|member| *member));
        }
        let verdict =
            self.policies
                .check_resource(obligations, &facts, self.policies.consents(), self.at);
        // Sensitive data can only be released under a grant naming
        // sensitive categories; only then is it worth looking.
        let mut sensitivity = Sensitivity::new();
        if !matches!(verdict, ResourceVerdict::Withhold(_))
            && !obligations.sensitive_allowed.is_empty()
        {
            // The same test as `is_part2`, from the categories matched here.
            let mut part2 = labelled_part2(&facts);
            sensitivity = self
                .policies
                .categories_of(&facts)
                .into_iter()
                .inspect(|c| part2 |= is_part2_category(c))
                .map(|c| c.id.clone())
                .collect();
            if part2 {
                self.part2_released.store(true, Ordering::Relaxed);
                // Whatever the policy calls its Part 2 category, the record
                // says `part2`, so the §2.24 list finds it.
                if !sensitivity.iter().any(|c| c.as_str() == PART2_CATEGORY)
                    && let Ok(part2) = CategoryId::parse(PART2_CATEGORY)
                {
                    sensitivity.push(part2);
                }
            }
        }
        (verdict, sensitivity)
    }

    /// Whether `resource` is 42 CFR Part 2 data: labelled `42CFRPart2`, or
    /// in a Part 2 category of the policy (the category `part2`, or one
    /// defined by the `ETH` label) by its codes or labels.
    pub fn is_part2(&self, resource: &Value) -> bool {
        self.part2_in(&self.facts(resource))
    }

    fn part2_in(&self, facts: &ResourceFacts) -> bool {
        labelled_part2(facts)
            || self
                .policies
                .categories()
                .filter(|c| is_part2_category(c))
                .any(|c| c.matches(facts))
    }

    /// Whether the filter released Part 2 data in this response.
    pub fn part2_released(&self) -> bool {
        self.part2_released.load(Ordering::Relaxed)
    }
}

/// Labelled `42CFRPart2` (the governing-policy label of Part 2 data).
fn labelled_part2(facts: &ResourceFacts) -> bool {
    facts
        .security_labels
        .iter()
        .any(|l| l.system == ACT_CODE && l.code == PART2_POLICY)
}

/// A category of 42 CFR Part 2 data: `part2`, or one defined by the `ETH`
/// (substance abuse information sensitivity) label.
fn is_part2_category(category: &Category) -> bool {
    category.id.as_str() == PART2_CATEGORY
        || category
            .security_labels
            .iter()
            .any(|l| l.system == ACT_CODE && l.code == "ETH")
}
