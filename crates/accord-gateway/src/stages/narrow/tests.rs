use accord_fhir::Method;
use http::StatusCode;

use super::*;

fn run(path: &str, query: &str) -> Result<(Narrowing, FhirRequest), GatewayError> {
    let fixture = crate::test_support::fixture();
    let scope = fixture.scope();
    let mut request = FhirRequest::parse(Method::Get, path, Some(query), None).unwrap();
    let narrowing = narrow(&mut request, &scope)?;
    Ok((narrowing, request))
}

fn refused(path: &str, query: &str) -> String {
    let err = run(path, query).unwrap_err();
    assert_eq!(err.status, StatusCode::FORBIDDEN, "{path}?{query}");
    err.message
}

#[test]
fn patient_scoped_searches_pass_in_every_spelling() {
    for query in [
        "patient=p1",
        "patient=Patient/p1",
        "subject=Patient/p1",
        "subject:Patient=p1",
        "patient=https://x/fhir/Patient/p1/_history/2",
        "patient=p1,p2&code=1234-5",
        "performer=Patient/p1&_count=5",
    ] {
        assert_eq!(
            run("Observation", query).unwrap().0,
            Narrowing::Forward,
            "{query}"
        );
    }
}

#[test]
fn searches_without_a_patient_are_refused_unless_finding_a_patient_by_identity() {
    assert!(refused("Observation", "code=1234-5").contains("name a patient"));
    assert!(refused("Observation", "").contains("name a patient"));
    assert_eq!(
        run("Patient", "identifier=urn:mrn|123").unwrap().0,
        Narrowing::Forward
    );
    assert_eq!(run("Patient", "_id=p1").unwrap().0, Narrowing::Forward);
    assert!(refused("Patient", "name=smith").contains("name a patient"));
}

#[test]
fn reach_around_parameters_are_refused() {
    for (query, why) in [
        ("patient=p1&subject.name=x", "chained"),
        ("patient=p1&_has:Condition:subject:code=F10.20", "`_has`"),
        ("patient=p1&_filter=code eq x", "`_filter`"),
        ("patient=p1&_query=x", "`_query`"),
        ("patient=p1&_contained=true", "`_contained`"),
        ("patient=p1&_summary=count", "counts"),
        ("patient:not=p1", "modifier"),
        ("patient:missing=true", "modifier"),
        ("subject:identifier=urn:x|1", "modifier"),
        ("subject=Group/g1", "not a Patient reference"),
    ] {
        let message = refused("Observation", query);
        assert!(message.contains(why), "{query}: {message}");
    }
}

#[test]
fn includes_must_stay_within_granted_types() {
    assert_eq!(
        run("Observation", "patient=p1&_include=Observation:patient")
            .unwrap()
            .0,
        Narrowing::Forward
    );
    assert_eq!(
        run(
            "Observation",
            "patient=p1&_include=Observation:subject:Patient"
        )
        .unwrap()
        .0,
        Narrowing::Forward
    );
    assert!(
        refused(
            "Observation",
            "patient=p1&_include=Observation:performer:Practitioner"
        )
        .contains("included type")
    );
    // Untargeted includes over a reference parameter are served (the
    // filter checks every included resource); others are refused.
    assert_eq!(
        run("Observation", "patient=p1&_include=Observation:encounter")
            .unwrap()
            .0,
        Narrowing::Forward
    );
    assert!(
        refused("Observation", "patient=p1&_include=Observation:code")
            .contains("not a reference parameter")
    );
    assert!(refused("Observation", "patient=p1&_include=*").contains("wildcard"));
    assert!(
        refused(
            "Observation",
            "patient=p1&_include:iterate=Observation:patient"
        )
        .contains("iterated")
    );
    assert!(
        refused("Patient", "_id=p1&_revinclude=MedicationRequest:patient")
            .contains("read that type")
    );
    assert_eq!(
        run("Patient", "_id=p1&_revinclude=Condition:patient")
            .unwrap()
            .0,
        Narrowing::Forward
    );
}

#[test]
fn totals_are_not_forwarded_and_history_and_compartments_are_refused() {
    let (_, request) = run("Observation", "patient=p1&_total=accurate").unwrap();
    assert!(request.params.iter().all(|(n, _)| n != "_total"));
    assert!(refused("Observation/_history", "").contains("history"));
    assert!(refused("Patient/p1/Observation", "").contains("compartment"));
    assert!(refused("Patient/p1/$export", "").contains("not supported"));
    assert_eq!(
        run("Patient/p1/$everything", "").unwrap().0,
        Narrowing::Forward
    );
}

#[test]
fn types_outside_the_compartment_are_not_patient_scoped() {
    assert_eq!(run("Organization", "name=x").unwrap().0, Narrowing::Forward);
}
