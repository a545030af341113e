"""A Patient search by identifier finds specific patients; the README says it
needs no population grant. Under the referral cohort of the care-coordination
agreement it was refused ("name a patient…") even for a shared patient."""

MRN = "https://accord.example/fhir/sid/mrn"


def test_a_shared_patient_is_found_by_mrn(env, http, upstream):
    truth = upstream.fhir_get("Patient/pat-0001")
    mrn = next(i["value"] for i in truth["identifier"] if i["system"] == MRN)
    r = http("maple-primary", "TREAT").get(f"{env.gateway}/Patient", params={"identifier": f"{MRN}|{mrn}"},
                                           timeout=30)
    assert r.status_code == 200, r.text[:300]
    ids = [e["resource"]["id"] for e in r.json().get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]
    assert ids == ["pat-0001"], ids


def test_an_unknown_mrn_is_an_empty_searchset(env, http):
    r = http("maple-primary", "TREAT").get(f"{env.gateway}/Patient", params={"identifier": f"{MRN}|MRN-NOPE"},
                                           timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert not r.json().get("entry"), r.text[:300]
