"""Enforcement seams on the real upstream (issue 15, items 1–4), the way a
hostile partner found them: a grant's constraints hold for every read, a
write never reaches a resource of a patient out of reach, a partner's own
referral never widens its own cohort, and a search parameter over a
redacted element is refused.

Ground truth is sekmet itself: each test first shows that the upstream
holds what the gateway must not release or change.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

PAYER = "lakeshore-health-plan"
GROUP_FILE = Path(__file__).resolve().parents[2] / "policies/cohorts/lakeshore-attributed.group.json"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
OPTED_OUT = "pat-0002"  # policies/consents/pat-0002-opt-out.json
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def _members() -> set[str]:
    group = json.loads(GROUP_FILE.read_text())
    return {m["entity"]["reference"].split("/")[-1] for m in group["member"]}


def _entries(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", []) if "resource" in e]


def _patient_of(resource: dict) -> str:
    ref = (resource.get("subject") or resource.get("patient") or resource.get("for") or {}).get("reference", "")
    return ref.split("/")[-1]


def _category(observation: dict) -> set[str]:
    return {
        c.get("code")
        for cat in observation.get("category", [])
        for c in cat.get("coding", [])
        if c.get("system") == CATEGORY
    }


def test_a_constraint_holds_for_reads_by_id_batches_and_revincludes(env, http, upstream):
    members = _members()
    vitals = [
        o
        for o in _entries(upstream.fhir_get("Observation", category="vital-signs", _count="1000"))
        if _patient_of(o) in members
    ]
    assert vitals, "sekmet holds vital signs of the plan's members"
    observation = vitals[0]
    patient = _patient_of(observation)
    s = http(PAYER, "HOPERAT")

    read = s.get(f"{env.maple}/Observation/{observation['id']}", timeout=30)
    assert read.status_code == 404, read.text

    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"Observation/{observation['id']}"}}],
    }
    answered = s.post(f"{env.maple}", data=json.dumps(batch), headers=FHIR_JSON, timeout=30)
    assert answered.status_code == 200, answered.text
    entry = answered.json()["entry"][0]
    assert entry["response"]["status"].startswith("404"), entry
    assert "resource" not in entry or entry["resource"].get("resourceType") == "OperationOutcome"

    both = s.get(
        f"{env.maple}/Patient",
        params={"_id": patient, "_revinclude": "Observation:subject"},
        timeout=30,
    )
    if both.status_code == 200:
        released = [r for r in _entries(both.json()) if r.get("resourceType") == "Observation"]
        assert all(_category(o) == {"laboratory"} or "laboratory" in _category(o) for o in released), [
            (o["id"], sorted(_category(o))) for o in released
        ]
        assert observation["id"] not in {o["id"] for o in released}
    else:
        assert both.status_code in (400, 403), both.text


def _task_of(upstream, env, patient: str) -> dict:
    """A Task of `patient` on sekmet (made for the test when there is none)."""
    for task in _entries(upstream.fhir_get("Task", _count="1000")):
        if _patient_of(task) == patient:
            return task
    task = {
        "resourceType": "Task",
        "id": f"interop-seams-{patient}",
        "status": "requested",
        "intent": "order",
        "description": "held by the clinic",
        "for": {"reference": f"Patient/{patient}"},
    }
    put = upstream.put(f"{env.upstream}/Task/{task['id']}", json=task, timeout=30)
    assert put.status_code in (200, 201), put.text
    return put.json() if put.content else task


def test_a_write_never_reaches_a_resource_of_a_patient_out_of_reach(env, http, upstream):
    task = _task_of(upstream, env, OPTED_OUT)
    before = upstream.get(f"{env.upstream}/Task/{task['id']}", timeout=30).json()
    changed = dict(before, description="overwritten through the gateway")
    changed.pop("meta", None)
    s = http("maple-primary", "TREAT")
    put = s.put(f"{env.gateway}/Task/{task['id']}", data=json.dumps(changed), headers=FHIR_JSON, timeout=30)
    unknown = s.put(
        f"{env.gateway}/Task/interop-no-such-task",
        data=json.dumps(dict(changed, id="interop-no-such-task")),
        headers=FHIR_JSON,
        timeout=30,
    )
    after = upstream.get(f"{env.upstream}/Task/{task['id']}", timeout=30).json()
    assert after.get("description") == before.get("description"), "the Task was overwritten upstream"
    assert put.status_code == 404, put.text
    upstream.delete(f"{env.upstream}/Task/interop-no-such-task", timeout=30)
    assert unknown.status_code in (201, 404), unknown.text


def _referred(upstream) -> set[str]:
    referred = set()
    for kind in ("Task", "ServiceRequest"):
        for resource in _entries(upstream.fhir_get(kind, _count="1000")):
            referred.add(_patient_of(resource))
    return referred


def test_a_partners_own_referral_does_not_widen_its_own_cohort(env, http, upstream):
    observed = {_patient_of(o) for o in _entries(upstream.fhir_get("Observation", _count="1000"))}
    outsiders = sorted(p for p in observed - _referred(upstream) if p.startswith("pat-") and p != OPTED_OUT)
    assert outsiders, "sekmet holds data of patients with no referral"
    patient = outsiders[-1]
    s = http("maple-primary", "TREAT")

    def released() -> list[dict]:
        r = s.get(f"{env.gateway}/Observation", params={"patient": patient}, timeout=30)
        assert r.status_code == 200, r.text
        return _entries(r.json())

    assert released() == [], "outside the shared population"
    referral = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "for": {"reference": f"Patient/{patient}"},
        "requester": {"reference": "Organization/org-maple-primary"},
        "owner": {"reference": "Organization/org-riverside-bh"},
    }
    made = s.post(f"{env.gateway}/Task", data=json.dumps(referral), headers=FHIR_JSON, timeout=30)
    assert made.status_code in (201, 403, 404), made.text
    try:
        time.sleep(1.5)
        assert released() == [], "maple's own referral put the patient into maple's cohort"
    finally:
        if made.status_code == 201:
            created = made.json().get("id") or made.headers.get("Location", "").rstrip("/").split("/")[-1]
            if created:
                upstream.delete(f"{env.upstream}/Task/{created}", timeout=30)


def test_a_search_over_a_redacted_element_is_refused(env, http):
    s = http(PAYER, "HOPERAT")
    r = s.get(f"{env.maple}/Patient", params={"address-postalcode": "02139"}, timeout=30)
    assert r.status_code in (400, 403), r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "address-postalcode" in json.dumps(outcome), outcome
