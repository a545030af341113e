"""A patient out of reach is answered exactly like a patient who does not
exist (issue 15, items 5-8, 10 and 12), on sekmet. B is the shipped opt-out
(pat-0002), Z an id nobody has; the county's public-health grant has no
cohort, so only consent keeps B out of reach and Z is asked of sekmet.
Every pair must get the same status and the same body (the named id aside),
the same links and the same total."""

from __future__ import annotations

import pytest

B = "pat-0002"  # policies/consents/pat-0002-opt-out.json
Z = "pat-9999"
A = "pat-0001"
MRN = "https://accord.example/fhir/sid/mrn"


def county(http):
    return http("county-public-health", "PUBHLTH")


def _get(session, env, path: str):
    return session.get(f"{env.gateway}/{path}", timeout=60)


def _answer(response, named: str) -> tuple[int, str]:
    return response.status_code, response.text.replace(named, "NAMED")


def _pair(session, env, path: str):
    return _get(session, env, path.replace("{p}", B)), _get(session, env, path.replace("{p}", Z))


def _next(bundle: dict) -> str | None:
    return next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)


def _matches(bundle: dict) -> list[str]:
    return [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode", "match") == "match"
    ]


def test_sekmet_holds_data_for_the_patient_out_of_reach(upstream):
    assert upstream.fhir_get("Observation", patient=B).get("entry"), "nothing to hide"


@pytest.mark.parametrize("path", [
    "Patient/{p}?_summary=bogus",
    "Patient/{p}?_elements=na..me",
    "Observation?patient={p}&_count=abc",
    "Observation?patient={p}&_summary=bogus",
    "Observation?patient={p}&bogus-parameter=1",
    "Observation?patient={p}&_sort=bogus-parameter",
])
def test_the_whole_request_is_validated_before_reach(env, http, path):
    b, z = _pair(county(http), env, path)
    assert b.status_code == 400, b.text[:300]
    assert _answer(b, B) == _answer(z, Z)


@pytest.mark.parametrize("path", [
    "Observation?patient={p}",
    "Encounter?subject=Patient/{p}&_count=3",
    "Patient/{p}/Observation",
    "Observation?patient={p}&_include=Observation:encounter",
])
def test_no_data_and_out_of_reach_are_the_same_bytes(env, http, path):
    b, z = _pair(county(http), env, path)
    assert b.status_code == 200, b.text[:300]
    assert _answer(b, B) == _answer(z, Z)


def test_totals_and_links_count_released_results_only(env, http, upstream):
    s = county(http)

    def mrn(patient: str) -> str:
        truth = upstream.fhir_get(f"Patient/{patient}")
        return next(i["value"] for i in truth["identifier"] if i["system"] == MRN)

    with_b = _get(s, env, f"Patient?identifier={mrn(A)},{mrn(B)}&_count=1").json()
    with_nothing = _get(s, env, f"Patient?identifier={mrn(A)},MRN-NOPE&_count=1").json()
    assert with_b.get("total") == with_nothing.get("total") == 1, with_b
    assert _next(with_b) is None and _next(with_nothing) is None, with_b
    assert _matches(with_b) == _matches(with_nothing) == [f"Patient/{A}"]

    # Page by page, `patient=A,B` is `patient=A,Z`, and B stays in the links.
    urls = [f"{env.gateway}/Observation?patient={A},{B}&_count=2",
            f"{env.gateway}/Observation?patient={A},{Z}&_count=2"]
    seen = 0
    for _ in range(30):
        one, other = (s.get(u, timeout=60) for u in urls)
        assert _answer(one, B) == _answer(other, Z)
        body = one.json()
        seen += len(_matches(body))
        nxt = (_next(body), _next(other.json()))
        if nxt == (None, None):
            assert body.get("total") == seen, body
            break
        assert B in nxt[0], nxt[0]
        urls = list(nxt)
    assert seen > 0, "A has released Observations"


def test_untargeted_includes_are_served_and_filtered(env, http):
    r = _get(county(http), env, f"Observation?patient={A}&_include=Observation:encounter&_count=200")
    assert r.status_code == 200, r.text[:300]
    included = [e["resource"] for e in r.json().get("entry", []) if e.get("search", {}).get("mode") == "include"]
    assert all(i["resourceType"] == "Encounter" for i in included), included
    assert all(B not in str(i) for i in included)
