//! FHIR R4 element paths that agreements may redact.
//!
//! A curated table, not the full R4 StructureDefinitions: the top-level
//! elements of the resource types agreements here share (copied from the R4
//! resource pages, hl7.org/fhir/R4), and the children of the data types
//! people redact inside (HumanName, Address, ContactPoint, Annotation).
//! A type missing from the table is refused with a hint rather than accepted
//! unchecked; extend the table when an agreement needs it.

const COMMON: &[&str] = &[
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "modifierExtension",
];

const TABLE: &[(&str, &[&str])] = &[
    (
        "Patient",
        &[
            "identifier",
            "active",
            "name",
            "telecom",
            "gender",
            "birthDate",
            "deceased[x]",
            "address",
            "maritalStatus",
            "multipleBirth[x]",
            "photo",
            "contact",
            "communication",
            "generalPractitioner",
            "managingOrganization",
            "link",
        ],
    ),
    (
        "Observation",
        &[
            "identifier",
            "basedOn",
            "partOf",
            "status",
            "category",
            "code",
            "subject",
            "focus",
            "encounter",
            "effective[x]",
            "issued",
            "performer",
            "value[x]",
            "dataAbsentReason",
            "interpretation",
            "note",
            "bodySite",
            "method",
            "specimen",
            "device",
            "referenceRange",
            "hasMember",
            "derivedFrom",
            "component",
        ],
    ),
    (
        "Condition",
        &[
            "identifier",
            "clinicalStatus",
            "verificationStatus",
            "category",
            "severity",
            "code",
            "bodySite",
            "subject",
            "encounter",
            "onset[x]",
            "abatement[x]",
            "recordedDate",
            "recorder",
            "asserter",
            "stage",
            "evidence",
            "note",
        ],
    ),
    (
        "Encounter",
        &[
            "identifier",
            "status",
            "statusHistory",
            "class",
            "classHistory",
            "type",
            "serviceType",
            "priority",
            "subject",
            "episodeOfCare",
            "basedOn",
            "participant",
            "appointment",
            "period",
            "length",
            "reasonCode",
            "reasonReference",
            "diagnosis",
            "account",
            "hospitalization",
            "location",
            "serviceProvider",
            "partOf",
        ],
    ),
    (
        "MedicationRequest",
        &[
            "identifier",
            "status",
            "statusReason",
            "intent",
            "category",
            "priority",
            "doNotPerform",
            "reported[x]",
            "medication[x]",
            "subject",
            "encounter",
            "supportingInformation",
            "authoredOn",
            "requester",
            "performer",
            "performerType",
            "recorder",
            "reasonCode",
            "reasonReference",
            "instantiatesCanonical",
            "instantiatesUri",
            "basedOn",
            "groupIdentifier",
            "courseOfTherapyType",
            "insurance",
            "note",
            "dosageInstruction",
            "dispenseRequest",
            "substitution",
            "priorPrescription",
            "detectedIssue",
            "eventHistory",
        ],
    ),
    (
        "CarePlan",
        &[
            "identifier",
            "instantiatesCanonical",
            "instantiatesUri",
            "basedOn",
            "replaces",
            "partOf",
            "status",
            "intent",
            "category",
            "title",
            "description",
            "subject",
            "encounter",
            "period",
            "created",
            "author",
            "contributor",
            "careTeam",
            "addresses",
            "supportingInfo",
            "goal",
            "activity",
            "note",
        ],
    ),
    (
        "DocumentReference",
        &[
            "masterIdentifier",
            "identifier",
            "status",
            "docStatus",
            "type",
            "category",
            "subject",
            "date",
            "author",
            "authenticator",
            "custodian",
            "relatesTo",
            "description",
            "securityLabel",
            "content",
            "context",
        ],
    ),
    (
        "ServiceRequest",
        &[
            "identifier",
            "instantiatesCanonical",
            "instantiatesUri",
            "basedOn",
            "replaces",
            "requisition",
            "status",
            "intent",
            "category",
            "priority",
            "doNotPerform",
            "code",
            "orderDetail",
            "quantity[x]",
            "subject",
            "encounter",
            "occurrence[x]",
            "asNeeded[x]",
            "authoredOn",
            "requester",
            "performerType",
            "performer",
            "locationCode",
            "locationReference",
            "reasonCode",
            "reasonReference",
            "insurance",
            "supportingInfo",
            "specimen",
            "bodySite",
            "note",
            "patientInstruction",
            "relevantHistory",
        ],
    ),
    (
        "Task",
        &[
            "identifier",
            "instantiatesCanonical",
            "instantiatesUri",
            "basedOn",
            "groupIdentifier",
            "partOf",
            "status",
            "statusReason",
            "businessStatus",
            "intent",
            "priority",
            "code",
            "description",
            "focus",
            "for",
            "encounter",
            "executionPeriod",
            "authoredOn",
            "lastModified",
            "requester",
            "performerType",
            "owner",
            "location",
            "reasonCode",
            "reasonReference",
            "insurance",
            "note",
            "relevantHistory",
            "restriction",
            "input",
            "output",
        ],
    ),
    (
        "Immunization",
        &[
            "identifier",
            "status",
            "statusReason",
            "vaccineCode",
            "patient",
            "encounter",
            "occurrence[x]",
            "recorded",
            "primarySource",
            "reportOrigin",
            "location",
            "manufacturer",
            "lotNumber",
            "expirationDate",
            "site",
            "route",
            "doseQuantity",
            "performer",
            "note",
            "reasonCode",
            "reasonReference",
            "isSubpotent",
            "subpotentReason",
            "education",
            "programEligibility",
            "fundingSource",
            "reaction",
            "protocolApplied",
        ],
    ),
    (
        "DiagnosticReport",
        &[
            "identifier",
            "basedOn",
            "status",
            "category",
            "code",
            "subject",
            "encounter",
            "effective[x]",
            "issued",
            "performer",
            "resultsInterpreter",
            "specimen",
            "result",
            "imagingStudy",
            "media",
            "conclusion",
            "conclusionCode",
            "presentedForm",
        ],
    ),
];

/// Children of the data types redactions reach into, by element.
const CHILDREN: &[(&str, &[&str])] = &[
    (
        "name",
        &[
            "use", "text", "family", "given", "prefix", "suffix", "period",
        ],
    ),
    (
        "address",
        &[
            "use",
            "type",
            "text",
            "line",
            "city",
            "district",
            "state",
            "postalCode",
            "country",
            "period",
        ],
    ),
    ("telecom", &["system", "value", "use", "rank", "period"]),
    ("note", &["author[x]", "time", "text"]),
    (
        "contact",
        &[
            "relationship",
            "name",
            "telecom",
            "address",
            "gender",
            "organization",
            "period",
        ],
    ),
];

/// Checks `path` (`Patient.address`, `Patient.name.given`,
/// `Observation.valueQuantity`) against the table; `Err` says why, in words.
pub fn check_path(path: &str) -> Result<(), String> {
    let mut parts = path.split('.');
    let ty = parts.next().unwrap_or_default();
    let Some((_, elements)) = TABLE.iter().find(|(name, _)| *name == ty) else {
        return Err(format!(
            "no FHIR R4 element table for `{ty}` yet (known: {})",
            TABLE.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ));
    };
    let Some(first) = parts.next() else {
        return Err(format!(
            "`{path}` names a whole resource; name an element, e.g. `{ty}.note`"
        ));
    };
    if !known(first, elements) && !known(first, COMMON) {
        let near = elements
            .iter()
            .find(|e| e.to_lowercase() == first.to_lowercase() || similar(e, first));
        return Err(match near {
            Some(e) => {
                format!("`{path}` is not an element of {ty} in FHIR R4 (did you mean `{ty}.{e}`?)")
            }
            None => format!("`{path}` is not an element of {ty} in FHIR R4"),
        });
    }
    let mut parent = first;
    for child in parts {
        let Some((_, children)) = CHILDREN.iter().find(|(n, _)| *n == parent) else {
            return Err(format!(
                "redacting inside `{ty}.{parent}` is not supported; redact `{ty}.{parent}` as a whole"
            ));
        };
        if !known(child, children) {
            return Err(format!(
                "`{path}`: `{child}` is not part of `{parent}` in FHIR R4"
            ));
        }
        parent = child;
    }
    Ok(())
}

fn known(name: &str, elements: &[&str]) -> bool {
    elements.iter().any(|e| match e.strip_suffix("[x]") {
        Some(stem) => {
            name == *e
                || name
                    .strip_prefix(stem)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
        }
        None => name == *e,
    })
}

/// One edit apart (a typo), for suggestions.
fn similar(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let (mut i, mut j, mut edits) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        if a.get(i) == b.get(j) {
            i += 1;
            j += 1;
            continue;
        }
        edits += 1;
        match a.len().cmp(&b.len()) {
            std::cmp::Ordering::Greater => i += 1,
            std::cmp::Ordering::Less => j += 1,
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    edits + (a.len() - i) + (b.len() - j) <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_pass_and_typos_get_suggestions() {
        assert!(check_path("Patient.address").is_ok());
        assert!(check_path("Patient.name.given").is_ok());
        assert!(check_path("Observation.valueQuantity").is_ok());
        assert!(check_path("Observation.note").is_ok());
        let err = check_path("Patient.adress").unwrap_err();
        assert!(err.contains("did you mean `Patient.address`"), "{err}");
        assert!(check_path("Patient.name.middle").is_err());
        assert!(check_path("Spaceship.hull").is_err());
    }
}
