use super::*;

fn get(path: &str) -> Result<FhirRequest, RequestError> {
    FhirRequest::parse(Method::Get, path, None, None)
}

fn ty(name: &str) -> ResourceType {
    ResourceType::parse(name).unwrap()
}

fn id(text: &str) -> ResourceId {
    ResourceId::parse(text).unwrap()
}

#[test]
fn parses_instance_level_interactions() {
    assert_eq!(
        get("Patient/pat-1").unwrap().interaction,
        Interaction::Read {
            ty: ty("Patient"),
            id: id("pat-1")
        }
    );
    assert_eq!(
        get("/Observation/o1/_history/2").unwrap().interaction,
        Interaction::VRead {
            ty: ty("Observation"),
            id: id("o1"),
            version: id("2")
        }
    );
    let put = FhirRequest::parse(Method::Put, "Task/t1", None, None).unwrap();
    assert_eq!(
        put.interaction,
        Interaction::Update {
            ty: ty("Task"),
            id: id("t1")
        }
    );
    assert_eq!(put.interaction.kind(), InteractionKind::Update);
}

#[test]
fn parses_type_and_system_level_interactions() {
    let search = FhirRequest::parse(
        Method::Get,
        "Observation",
        Some("patient=p1&_count=2"),
        None,
    )
    .unwrap();
    assert_eq!(
        search.interaction,
        Interaction::SearchType {
            ty: ty("Observation")
        }
    );
    assert_eq!(search.params.len(), 2);
    assert_eq!(
        get("metadata").unwrap().interaction,
        Interaction::Capabilities
    );
    assert_eq!(get("").unwrap().interaction, Interaction::SearchSystem);
    assert_eq!(
        get("_history").unwrap().interaction,
        Interaction::HistorySystem
    );
    assert_eq!(
        FhirRequest::parse(Method::Post, "Task", None, None)
            .unwrap()
            .interaction,
        Interaction::Create { ty: ty("Task") }
    );
    assert_eq!(
        FhirRequest::parse(Method::Post, "", None, None)
            .unwrap()
            .interaction,
        Interaction::BatchOrTransaction
    );
}

#[test]
fn post_search_merges_form_body_and_is_rebuilt_as_get_path() {
    let req = FhirRequest::parse(
        Method::Post,
        "Observation/_search",
        Some("_count=1"),
        Some(b"patient=Patient%2Fp1&code=1234-5"),
    )
    .unwrap();
    assert_eq!(
        req.interaction,
        Interaction::SearchType {
            ty: ty("Observation")
        }
    );
    assert_eq!(
        req.params.values_of("patient").collect::<Vec<_>>(),
        ["Patient/p1"]
    );
    assert_eq!(req.relative_path(), "Observation");
}

#[test]
fn parses_operations_and_compartments() {
    let op = get("Patient/p1/$everything").unwrap();
    assert_eq!(op.interaction.kind(), InteractionKind::Operation);
    assert_eq!(op.relative_path(), "Patient/p1/$everything");
    let compartment = get("Patient/p1/Observation").unwrap();
    assert_eq!(
        compartment.interaction,
        Interaction::SearchCompartment {
            compartment: ty("Patient"),
            id: id("p1"),
            ty: Some(ty("Observation"))
        }
    );
    assert!(matches!(
        get("Patient/p1/$"),
        Err(RequestError::InvalidOperation(_))
    ));
}

#[test]
fn refuses_what_it_does_not_understand() {
    assert!(matches!(
        get("Patients/1"),
        Err(RequestError::UnknownType(_))
    ));
    assert!(matches!(
        get("Patient/a_b"),
        Err(RequestError::InvalidId(_))
    ));
    assert!(matches!(
        get("Patient/../Observation"),
        Err(RequestError::MalformedPath { .. })
    ));
    assert!(matches!(
        get("Patient//1"),
        Err(RequestError::MalformedPath { .. })
    ));
    assert!(matches!(
        get("Patient/%2e%2e"),
        Err(RequestError::MalformedPath { .. })
    ));
    assert!(matches!(
        get("a/b/c/d/e"),
        Err(RequestError::MalformedPath { .. })
    ));
    assert!(matches!(
        FhirRequest::parse(Method::Delete, "Patient", None, None),
        Err(RequestError::MethodNotAllowed { .. })
    ));
    assert!(matches!(
        FhirRequest::parse(Method::Post, "Patient/1", None, None),
        Err(RequestError::MethodNotAllowed { .. })
    ));
}

#[test]
fn relative_path_round_trips() {
    for path in [
        "metadata",
        "Patient/p1",
        "Patient/p1/_history/3",
        "Patient/p1/_history",
        "Observation/_history",
        "Observation",
        "Patient/p1/Observation",
        "Patient/p1/*",
        "Patient/$match",
    ] {
        assert_eq!(get(path).unwrap().relative_path(), path);
    }
}
