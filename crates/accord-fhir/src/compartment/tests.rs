use super::*;
use serde_json::json;

fn ids(links: PatientLinks) -> Vec<String> {
    match links {
        PatientLinks::Patients(ids) => ids.into_iter().collect(),
        other => panic!("expected patients, got {other:?}"),
    }
}

#[test]
fn tables_are_sorted_for_binary_search() {
    assert!(PATIENT_COMPARTMENT.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(
        PATIENT_LINKS_BEYOND_COMPARTMENT
            .windows(2)
            .all(|w| w[0].0 < w[1].0)
    );
    assert!(
        PATIENT_COMPARTMENT.len() >= 60,
        "the generated table is complete"
    );
    for (ty, _) in PATIENT_COMPARTMENT
        .iter()
        .chain(PATIENT_LINKS_BEYOND_COMPARTMENT)
    {
        assert!(ResourceType::parse(ty).is_ok(), "{ty}");
    }
}

#[test]
fn finds_patients_through_every_compartment_path() {
    let observation = json!({
        "resourceType": "Observation",
        "subject": {"reference": "Patient/p1"},
        "performer": [{"reference": "Practitioner/x"}, {"reference": "https://h/fhir/Patient/p2/_history/3"}]
    });
    assert_eq!(ids(patient_links(&observation)), ["p1", "p2"]);
    let appointment = json!({
        "resourceType": "Appointment",
        "participant": [{"actor": {"reference": "Patient/a"}}, {"actor": {"reference": "Location/l"}}]
    });
    assert_eq!(ids(patient_links(&appointment)), ["a"]);
    let patient = json!({"resourceType": "Patient", "id": "me", "link": [{"other": {"reference": "Patient/other"}}]});
    assert_eq!(ids(patient_links(&patient)), ["me", "other"]);
    let task = json!({"resourceType": "Task", "for": {"reference": "Patient/t"}});
    assert_eq!(
        ids(patient_links(&task)),
        ["t"],
        "Task is tied to its patient although R4 leaves it out"
    );
}

#[test]
fn fails_closed_when_the_patient_cannot_be_determined() {
    let contained = json!({"resourceType": "Condition", "subject": {"reference": "#p"}});
    assert_eq!(patient_links(&contained), PatientLinks::Undetermined);
    let by_identifier =
        json!({"resourceType": "Condition", "subject": {"identifier": {"value": "123"}}});
    assert_eq!(patient_links(&by_identifier), PatientLinks::Undetermined);
    let group_subject = json!({"resourceType": "Condition", "subject": {"reference": "Group/g"}});
    assert_eq!(patient_links(&group_subject), PatientLinks::Undetermined);
    assert_eq!(
        patient_links(&json!({"id": "x"})),
        PatientLinks::Undetermined
    );
    let org = json!({"resourceType": "Organization", "id": "o"});
    assert_eq!(patient_links(&org), PatientLinks::NotPatientData);
}

#[test]
fn parses_patient_references() {
    assert_eq!(patient_id_of_reference("Patient/1"), Some("1"));
    assert_eq!(patient_id_of_reference("Patient/1/_history/2"), Some("1"));
    assert_eq!(
        patient_id_of_reference("http://x/fhir/Patient/abc"),
        Some("abc")
    );
    assert_eq!(patient_id_of_reference("Practitioner/1"), None);
    assert_eq!(patient_id_of_reference("Patient/"), None);
    assert_eq!(patient_id_of_reference("Patient/1/extra"), None);
    assert_eq!(patient_id_of_reference("Patient/a_b"), None);
}

#[test]
fn search_params_come_from_the_table() {
    let obs = ResourceType::parse("Observation").unwrap();
    assert_eq!(
        patient_search_params(obs).collect::<Vec<_>>(),
        ["subject", "performer"]
    );
    assert!(is_patient_data(obs));
    assert!(!is_patient_data(ResourceType::parse("Medication").unwrap()));
}
