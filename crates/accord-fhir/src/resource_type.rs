//! The closed set of FHIR R4 resource type names.

use std::fmt;

/// Every resource type defined by FHIR R4 (4.0.1), sorted so lookups can
/// binary-search.
// INVARIANT: sorted ascending (checked by a test), no duplicates.
const R4_RESOURCE_TYPES: &[&str] = &[
    "Account",
    "ActivityDefinition",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "Binary",
    "BiologicallyDerivedProduct",
    "BodyStructure",
    "Bundle",
    "CapabilityStatement",
    "CarePlan",
    "CareTeam",
    "CatalogEntry",
    "ChargeItem",
    "ChargeItemDefinition",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "CompartmentDefinition",
    "Composition",
    "ConceptMap",
    "Condition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceDefinition",
    "DeviceMetric",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "EffectEvidenceSynthesis",
    "Encounter",
    "Endpoint",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "GraphDefinition",
    "Group",
    "GuidanceResponse",
    "HealthcareService",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "ImplementationGuide",
    "InsurancePlan",
    "Invoice",
    "Library",
    "Linkage",
    "List",
    "Location",
    "Measure",
    "MeasureReport",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "MessageDefinition",
    "MessageHeader",
    "MolecularSequence",
    "NamingSystem",
    "NutritionOrder",
    "Observation",
    "ObservationDefinition",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "Parameters",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Person",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "RiskAssessment",
    "RiskEvidenceSynthesis",
    "Schedule",
    "SearchParameter",
    "ServiceRequest",
    "Slot",
    "Specimen",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "Substance",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
    "VerificationResult",
    "VisionPrescription",
];

/// A FHIR R4 resource type name, known to exist in the specification.
///
/// Built only by [`ResourceType::parse`], so holding one proves the name is
/// one of the R4 types (case-sensitive, as FHIR requires).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceType(&'static str);

/// The name is not an R4 resource type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown resource type `{0}`")]
pub struct UnknownResourceType(pub String);

// === impl ResourceType ===

impl ResourceType {
    /// The `Patient` type, used often enough to deserve a constant.
    pub const PATIENT: ResourceType = ResourceType("Patient");

    /// Looks `name` up among the R4 resource types.
    pub fn parse(name: &str) -> Result<Self, UnknownResourceType> {
        R4_RESOURCE_TYPES
            .binary_search(&name)
            .ok()
            .and_then(|i| R4_RESOURCE_TYPES.get(i))
            .map(|known| ResourceType(known))
            .ok_or_else(|| UnknownResourceType(name.to_owned()))
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// All R4 resource types, in alphabetical order.
    pub fn all() -> impl Iterator<Item = ResourceType> {
        R4_RESOURCE_TYPES.iter().map(|name| ResourceType(name))
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl serde::Serialize for ResourceType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ResourceType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        ResourceType::parse(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(R4_RESOURCE_TYPES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(R4_RESOURCE_TYPES.len(), 146);
    }

    #[test]
    fn parses_known_and_rejects_unknown_names() {
        assert_eq!(
            ResourceType::parse("Observation").unwrap().as_str(),
            "Observation"
        );
        assert!(
            ResourceType::parse("observation").is_err(),
            "names are case-sensitive"
        );
        assert!(ResourceType::parse("Patients").is_err());
        assert!(ResourceType::parse("").is_err());
    }

    #[test]
    fn every_name_is_a_resource_in_fhirbolt_r4() {
        for ty in ResourceType::all() {
            let json = format!(r#"{{"resourceType":"{ty}"}}"#);
            let parsed: Result<fhirbolt::model::r4::Resource, _> =
                fhirbolt::json::from_str(&json, None);
            // Required elements may be missing; an unknown type fails earlier.
            if let Err(e) = parsed {
                assert!(
                    e.to_string().contains("missing field"),
                    "fhirbolt does not know {ty}: {e}"
                );
            }
        }
        let bogus: Result<fhirbolt::model::r4::Resource, _> =
            fhirbolt::json::from_str(r#"{"resourceType":"Bogus"}"#, None);
        assert!(!bogus.unwrap_err().to_string().contains("missing field"));
    }
}
