"""Sensitive data as real records code it, on a real FHIR server: Part 2 and
HIV records coded in SNOMED CT and RxNorm (inline and by medicationReference)
are withheld from St. Brigid, whose grant names neither category for them,
while an ordinary SNOMED CT problem of the same patient is released; the
county's HIV grant receives the SNOMED CT HIV diagnosis, and its Part 2 forbid
withholds the SNOMED CT opioid diagnosis. The release side: Maple Street, whose
`clinical-record` grant names part2 and whom pat-0003's consent names, receives
that patient's SNOMED CT / RxNorm / LOINC coded Part 2 records (inline and by
medicationReference), which the same consent closes to St. Brigid."""

import pytest

SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PATIENT = "pat-0001"
CONSENTED = "pat-0003"  # policies/consents/pat-0003-part2-opt-in.json: maple-primary yes, st-brigid no
LOINC = "http://loinc.org"


def _concept(system, code, display):
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _condition(rid, concept, patient=PATIENT):
    return {"resourceType": "Condition", "id": rid, "subject": {"reference": f"Patient/{patient}"},
            "clinicalStatus": _concept("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
            # Recorded by Riverside, whose server sekmet plays here.
            "recorder": {"reference": "Organization/org-riverside-bh"},
            "code": concept}


def _prescription(rid, medication, patient=PATIENT):
    resource = {"resourceType": "MedicationRequest", "id": rid, "status": "active", "intent": "order",
                "subject": {"reference": f"Patient/{patient}"}}
    resource.update(medication)
    return resource


RECORDS = [
    _condition("interop-snomed-opioid", _concept(SNOMED, "5602001", "Opioid abuse (disorder)")),
    _condition("interop-snomed-hiv", _concept(SNOMED, "86406008", "Human immunodeficiency virus infection (disorder)")),
    _prescription("interop-rx-suboxone", {"medicationCodeableConcept": _concept(
        RXNORM, "1010600", "buprenorphine 2 MG / naloxone 0.5 MG Sublingual Film")}),
    _prescription("interop-rx-biktarvy", {"medicationCodeableConcept": _concept(
        RXNORM, "1999667", "bictegravir 50 MG / emtricitabine 200 MG / tenofovir alafenamide 25 MG Oral Tablet")}),
    _prescription("interop-rx-by-reference", {"medicationReference": {"reference": "Medication/interop-med-suboxone"}}),
]
MEDICATION = {"resourceType": "Medication", "id": "interop-med-suboxone",
              "code": _concept(RXNORM, "1010600", "buprenorphine 2 MG / naloxone 0.5 MG Sublingual Film")}
ORDINARY = _condition("interop-snomed-diabetes", _concept(SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)"))


@pytest.fixture(scope="module")
def written(env, upstream):
    for resource in [MEDICATION, ORDINARY, *RECORDS]:
        put = upstream.put(f"{env.upstream}/{resource['resourceType']}/{resource['id']}", json=resource, timeout=30)
        assert put.status_code in (200, 201), put.text
    return RECORDS


@pytest.mark.parametrize("index", range(len(RECORDS)))
def test_snomed_and_rxnorm_coded_part2_and_hiv_records_are_withheld_from_st_brigid(env, http, written, index):
    record = written[index]
    r = http("st-brigid", "TREAT").get(f"{env.gateway}/{record['resourceType']}/{record['id']}", timeout=30)
    assert r.status_code == 404, f"{record['id']} released to st-brigid: {r.text[:300]}"


def test_an_ordinary_snomed_problem_of_the_same_patient_is_released(env, http, written):
    r = http("st-brigid", "TREAT").get(f"{env.gateway}/Condition/{ORDINARY['id']}", timeout=30)
    assert r.status_code == 200, r.text[:300]


def test_st_brigids_search_carries_none_of_them(env, http, written):
    for rtype in ("Condition", "MedicationRequest"):
        r = http("st-brigid", "TREAT").get(f"{env.gateway}/{rtype}", params={"patient": PATIENT, "_count": "500"},
                                           timeout=30)
        assert r.status_code == 200, r.text[:300]
        ids = {e["resource"]["id"] for e in r.json().get("entry", [])}
        assert not ids & {rec["id"] for rec in written}, ids


def test_the_county_receives_the_hiv_diagnosis_and_never_the_part2_one(env, http, written):
    county = http("county-public-health", "PUBHLTH")
    hiv = county.get(f"{env.gateway}/Condition/interop-snomed-hiv", timeout=30)
    assert hiv.status_code == 200, hiv.text[:300]
    opioid = county.get(f"{env.gateway}/Condition/interop-snomed-opioid", timeout=30)
    assert opioid.status_code == 404, opioid.text[:300]


# pat-0003's Part 2 records, coded as EHRs code them (none is labelled ETH).
CONSENTED_RECORDS = [
    _condition("interop-p2-snomed-opioid-use", _concept(SNOMED, "5602001", "Opioid abuse (disorder)"), CONSENTED),
    _prescription("interop-p2-rx-suboxone", {"medicationCodeableConcept": _concept(
        RXNORM, "1010600", "buprenorphine 2 MG / naloxone 0.5 MG Sublingual Film")}, CONSENTED),
    _prescription("interop-p2-rx-by-reference", {"medicationReference": {"reference": "Medication/interop-med-suboxone"}},
                  CONSENTED),
    {"resourceType": "Observation", "id": "interop-p2-loinc-opiate-screen", "status": "final",
     "subject": {"reference": f"Patient/{CONSENTED}"}, "performer": [{"reference": "Organization/org-riverside-bh"}],
     "code": _concept(LOINC, "19295-5", "Opiates [Presence] in Urine by Screen method"),
     "valueCodeableConcept": _concept(SNOMED, "260373001", "Detected")},
]


@pytest.fixture(scope="module")
def consented_written(env, upstream, written):
    for resource in CONSENTED_RECORDS:
        put = upstream.put(f"{env.upstream}/{resource['resourceType']}/{resource['id']}", json=resource, timeout=30)
        assert put.status_code in (200, 201), put.text
    return CONSENTED_RECORDS


@pytest.mark.parametrize("index", range(len(CONSENTED_RECORDS)))
def test_part2_records_reach_a_partner_whose_grant_names_part2_and_whom_the_patient_consented_to(
        env, http, consented_written, index):
    record = consented_written[index]
    path = f"{env.gateway}/{record['resourceType']}/{record['id']}"
    maple = http("maple-primary", "TREAT").get(path, timeout=30)
    assert maple.status_code == 200, f"{record['id']} withheld from maple-primary: {maple.text[:300]}"
    assert maple.json()["id"] == record["id"]
    brigid = http("st-brigid", "TREAT").get(path, timeout=30)
    assert brigid.status_code == 404, f"{record['id']} released to st-brigid against the consent: {brigid.text[:300]}"


def test_maple_streets_search_carries_the_consented_part2_records(env, http, consented_written):
    wanted = {r["id"] for r in consented_written if r["resourceType"] == "MedicationRequest"}
    r = http("maple-primary", "TREAT").get(f"{env.gateway}/MedicationRequest",
                                          params={"patient": CONSENTED, "_count": "500"}, timeout=30)
    assert r.status_code == 200, r.text[:300]
    # The 42 CFR 2.32 notice rides along as an OperationOutcome entry.
    ids = {e["resource"].get("id") for e in r.json().get("entry", []) if e.get("search", {}).get("mode") != "outcome"}
    assert wanted <= ids, ids
    assert any(e.get("search", {}).get("mode") == "outcome" for e in r.json()["entry"]), "no redisclosure notice"
