//! The search parameters the test server understands, per resource type.
//!
//! One table drives both searching and the CapabilityStatement, so what the
//! server claims and what it does cannot drift apart. Anything not in the
//! table is answered with 400: a test server that silently ignored a
//! parameter would hide a gateway that forgot to narrow a search.

/// How a parameter's value is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamKind {
    /// `[system]|[code]` against code, Coding, CodeableConcept, Identifier.
    Token,
    /// `Type/id` or `id` against Reference.reference.
    Reference,
    /// `[prefix]date` against date, dateTime, instant.
    Date,
    /// Case-insensitive prefix against strings.
    String,
}

impl ParamKind {
    /// The FHIR search parameter type code.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Reference => "reference",
            Self::Date => "date",
            Self::String => "string",
        }
    }
}

/// One search parameter: name, kind and the element paths it reads.
/// Paths are dotted; arrays along the way are searched element-wise; the
/// first path that yields values wins (FHIR's `a | b` for choice types).
#[derive(Debug)]
pub(crate) struct ParamDef {
    pub(crate) name: &'static str,
    pub(crate) kind: ParamKind,
    pub(crate) paths: &'static [&'static str],
}

const fn p(name: &'static str, kind: ParamKind, paths: &'static [&'static str]) -> ParamDef {
    ParamDef { name, kind, paths }
}

use ParamKind::{Date, Reference, String as Str, Token};

/// Parameters every type supports.
pub(crate) const COMMON: &[ParamDef] = &[
    p("_id", Token, &["id"]),
    p("_lastUpdated", Date, &["meta.lastUpdated"]),
    p("_security", Token, &["meta.security"]),
];

/// Supported resource types and their parameters (besides [`COMMON`]).
pub(crate) const TYPES: &[(&str, &[ParamDef])] = &[
    (
        "AllergyIntolerance",
        &[
            p("identifier", Token, &["identifier"]),
            p("patient", Reference, &["patient"]),
            p("code", Token, &["code"]),
            p("clinical-status", Token, &["clinicalStatus"]),
            p("date", Date, &["recordedDate"]),
        ],
    ),
    (
        "CarePlan",
        &[
            p("identifier", Token, &["identifier"]),
            p("patient", Reference, &["subject"]),
            p("subject", Reference, &["subject"]),
            p("category", Token, &["category"]),
            p("status", Token, &["status"]),
            p("intent", Token, &["intent"]),
            p("date", Date, &["period.start"]),
            p("condition", Reference, &["addresses"]),
        ],
    ),
    (
        "Communication",
        &[
            p("identifier", Token, &["identifier"]),
            p("patient", Reference, &["subject"]),
            p("subject", Reference, &["subject"]),
            p("category", Token, &["category"]),
            p("status", Token, &["status"]),
            p("sent", Date, &["sent"]),
            p("date", Date, &["sent"]),
            p("recipient", Reference, &["recipient"]),
            p("sender", Reference, &["sender"]),
            p("based-on", Reference, &["basedOn"]),
        ],
    ),
    (
        "Condition",
        &[
            p("identifier", Token, &["identifier"]),
            p("patient", Reference, &["subject"]),
            p("subject", Reference, &["subject"]),
            p("code", Token, &["code"]),
            p("category", Token, &["category"]),
            p("clinical-status", Token, &["clinicalStatus"]),
            p("verification-status", Token, &["verificationStatus"]),
            p("encounter", Reference, &["encounter"]),
            p("onset-date", Date, &["onsetDateTime", "onsetPeriod.start"]),
            p("recorded-date", Date, &["recordedDate"]),
            p(
                "date",
                Date,
                &["onsetDateTime", "onsetPeriod.start", "recordedDate"],
            ),
        ],
    ),
    (
        "Consent",
        &[
            p("identifier", Token, &["identifier"]),
            p("patient", Reference, &["patient"]),
            p("status", Token, &["status"]),
            p("scope", Token, &["scope"]),
            p("category", Token, &["category"]),
            p("action", Token, &["provision.action"]),
            p("actor", Reference, &["provision.actor.reference"]),
            p("organization", Reference, &["organization"]),
            p("date", Date, &["dateTime"]),
        ],
    ),
    (
        "DiagnosticReport",
        &[
            p("identifier", Token, &["identifier"]),
            p("patient", Reference, &["subject"]),
            p("subject", Reference, &["subject"]),
            p("code", Token, &["code"]),
            p("category", Token, &["category"]),
            p("status", Token, &["status"]),
            p(
                "date",
                Date,
                &["effectiveDateTime", "effectivePeriod.start"],
            ),
            p("encounter", Reference, &["encounter"]),
        ],
    ),
    (
        "DocumentReference",
        &[
            p("identifier", Token, &["identifier"]),
            p("patient", Reference, &["subject"]),
            p("subject", Reference, &["subject"]),
            p("type", Token, &["type"]),
            p("category", Token, &["category"]),
            p("status", Token, &["status"]),
            p("date", Date, &["date"]),
            p("author", Reference, &["author"]),
        ],
    ),
    (
        "Encounter",
        &[
            p("identifier", Token, &["identifier"]),
            p("patient", Reference, &["subject"]),
            p("subject", Reference, &["subject"]),
            p("status", Token, &["status"]),
            p("class", Token, &["class"]),
            p("type", Token, &["type"]),
            p("date", Date, &["period.start"]),
            p("service-provider", Reference, &["serviceProvider"]),
            p("practitioner", Reference, &["participant.individual"]),
        ],
    ),
    (
        "Group",
        &[
            p("identifier", Token, &["identifier"]),
            p("member", Reference, &["member.entity"]),
            p("type", Token, &["type"]),
            p("actual", Token, &["actual"]),
            p("code", Token, &["code"]),
            p("managing-entity", Reference, &["managingEntity"]),
            p("name", Str, &["name"]),
        ],
    ),
    (
        "Immunization",
        &[
            p("identifier", Token, &["identifier"]),
            p("patient", Reference, &["patient"]),
            p("vaccine-code", Token, &["vaccineCode"]),
            p("status", Token, &["status"]),
            p("date", Date, &["occurrenceDateTime"]),
        ],
    ),
    (
        "Medication",
        &[
            p("identifier", Token, &["identifier"]),
            p("code", Token, &["code"]),
            p("status", Token, &["status"]),
        ],
    ),
    (
        "MedicationRequest",
        &[
            p("identifier", Token, &["identifier"]),
            p("patient", Reference, &["subject"]),
            p("subject", Reference, &["subject"]),
            p("code", Token, &["medicationCodeableConcept"]),
            p("category", Token, &["category"]),
            p("status", Token, &["status"]),
            p("intent", Token, &["intent"]),
            p("authoredon", Date, &["authoredOn"]),
            p("date", Date, &["authoredOn"]),
            p("requester", Reference, &["requester"]),
            p("encounter", Reference, &["encounter"]),
            p("medication", Reference, &["medicationReference"]),
        ],
    ),
    (
        "MedicationStatement",
        &[
            p("identifier", Token, &["identifier"]),
            p("patient", Reference, &["subject"]),
            p("subject", Reference, &["subject"]),
            p("code", Token, &["medicationCodeableConcept"]),
            p("status", Token, &["status"]),
            p("medication", Reference, &["medicationReference"]),
        ],
    ),
    (
        "Observation",
        &[
            p("identifier", Token, &["identifier"]),
            p("patient", Reference, &["subject"]),
            p("subject", Reference, &["subject"]),
            p("code", Token, &["code"]),
            p("category", Token, &["category"]),
            p("status", Token, &["status"]),
            p(
                "date",
                Date,
                &[
                    "effectiveDateTime",
                    "effectivePeriod.start",
                    "effectiveInstant",
                ],
            ),
            p("encounter", Reference, &["encounter"]),
            p("performer", Reference, &["performer"]),
            p("component-code", Token, &["component.code"]),
        ],
    ),
    (
        "Organization",
        &[
            p("identifier", Token, &["identifier"]),
            p("name", Str, &["name", "alias"]),
            p("type", Token, &["type"]),
            p("active", Token, &["active"]),
        ],
    ),
    (
        "Patient",
        &[
            p("identifier", Token, &["identifier"]),
            p("name", Str, &["name.family", "name.given", "name.text"]),
            p("family", Str, &["name.family"]),
            p("given", Str, &["name.given"]),
            p("gender", Token, &["gender"]),
            p("birthdate", Date, &["birthDate"]),
            p("date", Date, &["birthDate"]),
            p("active", Token, &["active"]),
            p("organization", Reference, &["managingOrganization"]),
            p("general-practitioner", Reference, &["generalPractitioner"]),
        ],
    ),
    (
        "Practitioner",
        &[
            p("identifier", Token, &["identifier"]),
            p("name", Str, &["name.family", "name.given", "name.text"]),
            p("family", Str, &["name.family"]),
            p("given", Str, &["name.given"]),
            p("active", Token, &["active"]),
        ],
    ),
    (
        "PractitionerRole",
        &[
            p("identifier", Token, &["identifier"]),
            p("practitioner", Reference, &["practitioner"]),
            p("organization", Reference, &["organization"]),
            p("role", Token, &["code"]),
        ],
    ),
    (
        "Procedure",
        &[
            p("identifier", Token, &["identifier"]),
            p("patient", Reference, &["subject"]),
            p("subject", Reference, &["subject"]),
            p("code", Token, &["code"]),
            p("category", Token, &["category"]),
            p("status", Token, &["status"]),
            p(
                "date",
                Date,
                &["performedDateTime", "performedPeriod.start"],
            ),
            p("encounter", Reference, &["encounter"]),
        ],
    ),
    (
        "ServiceRequest",
        &[
            p("identifier", Token, &["identifier"]),
            p("patient", Reference, &["subject"]),
            p("subject", Reference, &["subject"]),
            p("code", Token, &["code"]),
            p("category", Token, &["category"]),
            p("status", Token, &["status"]),
            p("intent", Token, &["intent"]),
            p("authored", Date, &["authoredOn"]),
            p("date", Date, &["authoredOn"]),
            p("requester", Reference, &["requester"]),
            p("performer", Reference, &["performer"]),
            p("reason-reference", Reference, &["reasonReference"]),
        ],
    ),
    (
        "Task",
        &[
            p("identifier", Token, &["identifier"]),
            p("patient", Reference, &["for"]),
            p("subject", Reference, &["for"]),
            p("focus", Reference, &["focus"]),
            p("based-on", Reference, &["basedOn"]),
            p("owner", Reference, &["owner"]),
            p("requester", Reference, &["requester"]),
            p("status", Token, &["status"]),
            p("business-status", Token, &["businessStatus"]),
            p("intent", Token, &["intent"]),
            p("code", Token, &["code"]),
            p("authored-on", Date, &["authoredOn"]),
            p("date", Date, &["authoredOn"]),
            p("modified", Date, &["lastModified"]),
        ],
    ),
];

/// The parameters of a supported type, or `None` for an unknown type.
pub(crate) fn for_type(resource_type: &str) -> Option<&'static [ParamDef]> {
    TYPES
        .iter()
        .find(|(name, _)| *name == resource_type)
        .map(|(_, params)| *params)
}

/// Looks a parameter up for a type (common parameters included).
pub(crate) fn find(resource_type: &str, name: &str) -> Option<&'static ParamDef> {
    COMMON
        .iter()
        .chain(for_type(resource_type)?.iter())
        .find(|def| def.name == name)
}

/// Whether the server stores and serves this type.
pub(crate) fn is_supported(resource_type: &str) -> bool {
    for_type(resource_type).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        let names: Vec<&str> = TYPES.iter().map(|(n, _)| *n).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for (t, params) in TYPES {
            let mut seen: Vec<&str> = params.iter().chain(COMMON).map(|d| d.name).collect();
            let len = seen.len();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), len, "duplicate parameter in {t}");
        }
    }
}
