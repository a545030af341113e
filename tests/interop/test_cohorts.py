"""Cohorts against the real upstream: a grant reaches only its shared
population, however the population is defined.

- FHIR Group cohort: the payer quality agreement (policies/agreements/
  payer-quality.toml) limits the health plan to the members of
  policies/cohorts/lakeshore-attributed.group.json, with population searches
  allowed, laboratory observations only and contact details redacted.

Ground truth is sekmet itself: each test first shows that the upstream holds
what the gateway must not release, so a pass cannot come from empty data.
"""

from __future__ import annotations

import json
from pathlib import Path

PAYER = "lakeshore-health-plan"
GROUP_FILE = Path(__file__).resolve().parents[2] / "policies/cohorts/lakeshore-attributed.group.json"
LAB = "http://terminology.hl7.org/CodeSystem/observation-category"


def _members() -> set[str]:
    group = json.loads(GROUP_FILE.read_text())
    return {m["entity"]["reference"].split("/")[-1] for m in group["member"]}


def _entries(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]


def _patient_of(resource: dict) -> str:
    ref = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
    return ref.split("/")[-1]


def _is_lab(observation: dict) -> bool:
    return any(
        c.get("system") == LAB and c.get("code") == "laboratory"
        for cat in observation.get("category", [])
        for c in cat.get("coding", [])
    )


def _all_pages(session, url: str, params: dict) -> list[dict]:
    found, page = [], session.get(url, params=params, timeout=60)
    for _ in range(100):
        assert page.status_code == 200, page.text
        bundle = page.json()
        found += _entries(bundle)
        nxt = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
        if not nxt:
            return found
        page = session.get(nxt[0], timeout=60)
    raise AssertionError("more than 100 pages")


def test_a_population_search_returns_only_group_members_labs(env, http, upstream):
    members = _members()
    held = _entries(upstream.fhir_get("Observation", category="laboratory", _count="1000"))
    outside = {_patient_of(o) for o in held} - members
    assert outside, "sekmet holds laboratory results of patients outside the Group"
    released = _all_pages(http(PAYER, "HOPERAT"), f"{env.maple}/Observation", {"_count": "50"})
    assert released, "the Group members' laboratory results are released"
    for observation in released:
        assert _patient_of(observation) in members, f"Observation/{observation['id']} is outside the Group"
        assert _is_lab(observation), f"Observation/{observation['id']} is not a laboratory result"
        assert "note" not in observation, "Observation.note is redacted for the plan"


def test_a_patient_outside_the_group_looks_like_a_patient_with_no_data(env, http, upstream):
    members = _members()
    held = _entries(upstream.fhir_get("Observation", category="laboratory", _count="1000"))
    outsider = sorted({_patient_of(o) for o in held} - members - {""})[0]
    s = http(PAYER, "HOPERAT")
    answer = s.get(f"{env.maple}/Observation", params={"patient": outsider}, timeout=30)
    nobody = s.get(f"{env.maple}/Observation", params={"patient": "no-such-patient"}, timeout=30)
    assert answer.status_code == nobody.status_code == 200, answer.text
    strip = lambda b: {k: v for k, v in b.items() if k not in ("id", "meta", "link")}  # noqa: E731
    assert strip(answer.json()) == strip(nobody.json())
    read = s.get(f"{env.maple}/Patient/{outsider}", timeout=30)
    missing = s.get(f"{env.maple}/Patient/no-such-patient", timeout=30)
    assert read.status_code == missing.status_code == 404
    assert read.json()["issue"][0]["code"] == missing.json()["issue"][0]["code"]


def test_a_group_member_arrives_without_contact_details(env, http, upstream):
    s = http(PAYER, "HOPERAT")
    checked = 0
    for member in sorted(_members()):
        truth = upstream.get(f"{env.upstream}/Patient/{member}", timeout=30)
        if truth.status_code != 200 or not ({"address", "telecom"} & truth.json().keys()):
            continue
        r = s.get(f"{env.maple}/Patient/{member}", timeout=30)
        assert r.status_code == 200, r.text
        patient = r.json()
        assert not ({"address", "telecom", "photo", "contact"} & patient.keys()), patient.keys()
        assert "text" not in patient, "the narrative could repeat what was redacted"
        labels = {c.get("code") for c in patient.get("meta", {}).get("security", [])}
        assert "REDACTED" in labels
        assert patient["name"] == truth.json()["name"], "what is not redacted arrives intact"
        checked += 1
    assert checked, "some Group member has contact details upstream"


# - Referral cohort: the care-coordination agreement shares only patients
#   with a ServiceRequest or Task between two parties' Organizations in the
#   upstream (policies/agreements/care-coordination.toml, partners.toml
#   `organization`). Membership follows the upstream within about a second.

PARTIES = {"Organization/org-riverside-bh", "Organization/org-maple-primary", "Organization/org-st-brigid"}


def _referred(upstream) -> set[str]:
    referred = set()
    for sr in _entries(upstream.fhir_get("ServiceRequest", _count="1000")):
        ends = {sr.get("requester", {}).get("reference")} | {p.get("reference") for p in sr.get("performer", [])}
        if len(ends & PARTIES) >= 2:
            referred.add(_patient_of(sr))
    for task in _entries(upstream.fhir_get("Task", _count="1000")):
        ends = {task.get("requester", {}).get("reference"), task.get("owner", {}).get("reference")}
        if len(ends & PARTIES) >= 2:
            referred.add((task.get("for") or {}).get("reference", "").split("/")[-1])
    return referred


def test_a_patient_without_a_referral_is_outside_until_one_is_written(env, http, upstream):
    import time

    referred = _referred(upstream)
    observed = {_patient_of(o) for o in _entries(upstream.fhir_get("Observation", _count="1000"))}
    outsiders = sorted(p for p in observed - referred if p.startswith("pat-"))
    assert outsiders, "the population has patients with data but no referral between the parties"
    patient = outsiders[0]
    s = http("maple-primary", "TREAT")

    def search() -> dict:
        r = s.get(f"{env.gateway}/Observation", params={"patient": patient}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    nobody = s.get(f"{env.gateway}/Observation", params={"patient": "no-such-patient"}, timeout=30).json()
    strip = lambda b: {k: v for k, v in b.items() if k not in ("id", "meta", "link")}  # noqa: E731
    assert strip(search()) == strip(nobody), "outside the cohort reads exactly like no data"

    referral = {
        "resourceType": "ServiceRequest", "id": f"interop-new-referral-{patient}",
        "status": "active", "intent": "order", "code": {"text": "Behavioral health follow-up"},
        "subject": {"reference": f"Patient/{patient}"},
        "requester": {"reference": "Organization/org-maple-primary"},
        "performer": [{"reference": "Organization/org-riverside-bh"}],
    }
    put = upstream.put(f"{env.upstream}/ServiceRequest/{referral['id']}", json=referral, timeout=30)
    assert put.status_code in (200, 201), put.text
    try:
        started = time.monotonic()
        while not search().get("entry"):
            assert time.monotonic() - started < 30, "the new referral did not bring the patient into the cohort"
            time.sleep(0.25)
        assert all(_patient_of(e["resource"]) == patient for e in search()["entry"])
    finally:
        upstream.delete(f"{env.upstream}/ServiceRequest/{referral['id']}", timeout=30)


ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


def test_sensitive_diagnoses_of_members_never_reach_the_plan(env, http, upstream):
    """payer-quality's forbid `no-sensitive-data`: Part 2, mental health and
    the other sensitive categories stay behind, whatever the Group says."""
    members = _members()
    held = [c for c in _entries(upstream.fhir_get("Condition", _count="1000")) if _patient_of(c) in members]
    sensitive = {c["id"] for c in held if any(
        x.get("system") == ICD10 and x.get("code", "")[:1] == "F" for x in c.get("code", {}).get("coding", []))}
    assert sensitive, "sekmet holds sensitive diagnoses of Group members"
    released = _all_pages(http(PAYER, "HOPERAT"), f"{env.maple}/Condition", {"_count": "50"})
    assert released, "the members' other diagnoses are released"
    assert {c["id"] for c in released} <= {c["id"] for c in held}, "only Group members' diagnoses"
    leaked = sensitive & {c["id"] for c in released}
    assert not leaked, f"sensitive diagnoses released to the plan: {sorted(leaked)}"
