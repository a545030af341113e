"""What the design (../shared/DESIGN.md: narrow, filter, writes) requires,
shown against a real upstream that happily answers. New requirements start
here marked with `@gap(reason)` (xfail); when the gateway closes a gap, the
test XPASSes (listed in the summary): then drop its mark so it guards the
behaviour from then on. Every test here is currently a guard.

Tests accept either way of closing a gap the design allows (refuse the
request, or answer without what must not leave), so they do not dictate an
implementation.
"""

from __future__ import annotations

import pytest


def gap(reason: str):
    def mark(test):
        return pytest.mark.gap(pytest.mark.xfail(reason=reason, strict=False)(test))

    return mark


def _refused_or(response, check) -> None:
    if response.status_code == 403:
        assert response.json()["resourceType"] == "OperationOutcome"
        return
    assert response.status_code == 200, response.text
    check(response.json())


def _types(bundle: dict) -> set[str]:
    return {e["resource"]["resourceType"] for e in bundle.get("entry", [])}


def test_capability_statement_does_not_name_the_upstream(env, http):
    r = http("maple-primary", "TREAT").get(f"{env.gateway}/metadata", timeout=30)
    assert r.status_code == 200
    statement = r.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert "xml" not in " ".join(statement.get("format", []))


@pytest.mark.parametrize("include", ["Observation:performer", "Observation:performer:Practitioner"])
def test_include_never_releases_an_ungranted_type(env, http, include):
    r = http("maple-primary", "TREAT").get(
        f"{env.gateway}/Observation", params={"patient": "pat-0001", "_include": include}, timeout=30
    )
    _refused_or(r, lambda bundle: _assert_only(bundle, {"Observation", "Patient"}))


def test_revinclude_never_releases_an_ungranted_type(env, http):
    r = http("st-brigid", "TREAT").get(
        f"{env.gateway}/Patient", params={"_id": "example", "_revinclude": "AllergyIntolerance:patient"}, timeout=30
    )
    _refused_or(r, lambda bundle: _assert_only(bundle, {"Patient"}))


def _assert_only(bundle: dict, allowed: set[str]) -> None:
    assert _types(bundle) <= allowed, _types(bundle)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("Patient", {"_has:Observation:patient:code": "8867-4"}),
        ("Patient", {"_has:AllergyIntolerance:patient:criticality": "high"}),
        ("Observation", {"subject:Patient.name": "Chalmers"}),
        ("Observation", {"patient": "example", "performer.name": "x"}),
        ("Patient", {"_filter": "name eq Chalmers"}),
        ("Patient", {"_query": "everything"}),
        ("Observation", {"_contained": "true", "patient": "example"}),
    ],
    ids=["_has", "_has-ungranted", "chain", "chain-ungranted", "_filter", "_query", "_contained"],
)
def test_reach_around_parameters_are_refused(env, http, path, params):
    r = http("maple-primary", "TREAT").get(f"{env.gateway}/{path}", params=params, timeout=30)
    assert r.status_code == 403, r.text[:300]
    assert r.json()["resourceType"] == "OperationOutcome"


def test_compartment_search_paging_keeps_the_compartment(env, http):
    s = http("maple-primary", "TREAT")
    r = s.get(f"{env.gateway}/Patient/example/Observation", params={"_count": "5"}, timeout=30)

    def every_page_is_the_patients(bundle):
        pages = 0
        while bundle:
            pages += 1
            subjects = {e["resource"].get("subject", {}).get("reference") for e in bundle.get("entry", [])}
            assert subjects <= {"Patient/example"}, subjects
            nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
            bundle = s.get(nxt[0], timeout=30).json() if nxt and pages < 20 else None

    _refused_or(r, every_page_is_the_patients)


BAD_BODIES = [
    ("code-not-in-value-set", {"status": "nonsense"}),
    ("one-element-array-for-a-scalar", {"description": ["one"]}),
    ("bad-dateTime", {"authoredOn": "yesterday"}),
]


@pytest.mark.parametrize(("what", "change"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_invalid_write_bodies_are_refused_by_the_gateway(env, http, upstream, what, change):
    body = {"resourceType": "Task", "status": "requested", "intent": "order",
            "for": {"reference": "Patient/pat-0060"}, **change}
    before = upstream.fhir_get("Task", _summary="count")["total"]
    r = http("riverside-bh", "COC").post(f"{env.gateway}/Task", json=body,
                                         headers={"Content-Type": "application/fhir+json"}, timeout=30)
    assert upstream.fhir_get("Task", _summary="count")["total"] == before, "an invalid resource was stored"
    assert r.status_code == 422, r.text[:300]
    assert r.json()["issue"][0]["code"] == "processing"


def test_an_upstream_known_under_another_name_leaks_nothing_and_still_pages(env, http):
    s = http("maple-primary", "TREAT")
    r = s.get(f"{env.alias}/Observation", params={"patient": "example", "_count": "3"}, timeout=30)
    assert r.status_code == 200  # the hook has checked leaks and FHIR validity
    bundle = r.json()
    assert any(link["relation"] == "next" for link in bundle.get("link", [])), "paging lost"


@pytest.mark.parametrize(("path", "params"), [
    ("Observation", {"code": "http://loinc.org|8867-4"}),
    ("Condition", {}),
    ("Patient", {"gender": "female"}),
])
def test_searches_across_all_patients_are_refused(env, http, path, params):
    r = http("st-brigid", "TREAT").get(f"{env.gateway}/{path}", params=params, timeout=30)
    assert r.status_code == 403, r.text[:300]


def test_elements_cannot_bring_back_redacted_contact_details(env, http, upstream):
    """`_elements` asks for exactly what the payer agreement redacts."""
    import json
    from pathlib import Path

    group = Path(__file__).resolve().parents[2] / "policies/cohorts/lakeshore-attributed.group.json"
    members = sorted(m["entity"]["reference"].split("/")[-1] for m in json.loads(group.read_text())["member"])
    member = next(m for m in members if "telecom" in upstream.fhir_get(f"Patient/{m}"))
    r = http("lakeshore-health-plan", "HOPERAT").get(
        f"{env.maple}/Patient", params={"_id": member, "_elements": "telecom,address"}, timeout=30
    )

    def nothing_redacted_arrives(bundle):
        patients = [e["resource"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "Patient"]
        assert patients, "the member is still found"
        for patient in patients:
            assert not ({"telecom", "address"} & patient.keys()), patient

    _refused_or(r, nothing_redacted_arrives)


def test_conditional_create_is_not_a_search_across_patients(env, http, upstream):
    """`If-None-Exist` makes the upstream search with the partner's criteria
    (any patient's Tasks) and answer 200 instead of 201 when one matches: a
    search the grant never allowed. The gateway refuses it or creates
    unconditionally."""
    existing = env.synthetic("Task")[0]
    task = {"resourceType": "Task", "status": "requested", "intent": "order",
            "for": {"reference": "Patient/pat-0001"}, "description": "conditional create test"}
    headers = {"Content-Type": "application/fhir+json", "If-None-Exist": f"_id={existing}"}
    direct = upstream.post(f"{env.upstream}/Task", json=task, headers=headers, timeout=30)
    assert direct.status_code == 200, "sekmet honours If-None-Exist (else this test proves nothing)"
    before = upstream.fhir_get("Task", _summary="count")["total"]
    r = http("riverside-bh", "COC").post(f"{env.gateway}/Task", json=task, headers=headers, timeout=30)
    if r.status_code in (400, 403, 412):
        assert r.json()["resourceType"] == "OperationOutcome"
        assert upstream.fhir_get("Task", _summary="count")["total"] == before
        return
    assert r.status_code == 201, f"{r.status_code}: the upstream evaluated the partner's condition"
    upstream.delete(f"{env.upstream}/Task/{r.json()['id']}", timeout=30)
