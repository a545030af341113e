"""Referral loop writes through the gateway: fhirpy and fhirclient create and
update Task / ServiceRequest as partners would; what the upstream stores is
what was sent, and Location points at the gateway."""

from __future__ import annotations

import re

from fhirclient.models.servicerequest import ServiceRequest as SmartServiceRequest
from fhirclient.models.task import Task as SmartTask


def _referral(patient: str, note: str) -> dict:
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "description": note,
        "for": {"reference": f"Patient/{patient}"},
        "requester": {"reference": "Organization/org-riverside-bh", "display": "Riverside Behavioral Health"},
        "owner": {"reference": "Organization/org-maple-primary"},
        "authoredOn": "2026-11-24T10:00:00Z",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}],
            "text": "Follow-up in primary care",
        },
    }


def _without_meta(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k not in ("meta", "id")}


def test_fhirpy_writes_a_referral_task_and_the_loop_closes(fhirpy, smart, upstream):
    clinic = fhirpy("riverside-bh", "COC")
    task = clinic.resource("Task", **_referral("pat-0001", "Follow-up after behavioral-health intake"))
    task.save()
    assert task.id, "fhirpy took the id from the gateway's answer"
    stored = upstream.fhir_get(f"Task/{task.id}")
    assert _without_meta(stored) == _referral("pat-0001", "Follow-up after behavioral-health intake")

    # Primary care reads it with the other library and accepts it (update).
    server = smart("maple-primary", "COC").server
    received = SmartTask.read(task.id, server)
    assert received.description == "Follow-up after behavioral-health intake"
    assert received.for_fhir.reference == "Patient/pat-0001"
    received.status = "accepted"
    received.update(server)
    stored = upstream.fhir_get(f"Task/{task.id}")
    assert stored["status"] == "accepted"
    assert stored["meta"]["versionId"] == "2"

    # The clinic sees the answer: search by patient, then the first version by vread.
    found = clinic.resources("Task").search(patient="Patient/pat-0001").fetch_all()
    assert [t["status"] for t in found if t["id"] == task.id] == ["accepted"]
    first = clinic.execute(f"Task/{task.id}/_history/1", method="get")
    assert first["status"] == "requested" and first["meta"]["versionId"] == "1"


def test_create_answers_with_a_gateway_location(env, http, upstream):
    s = http("st-brigid", "TREAT")
    r = s.post(f"{env.gateway}/Task", json=_referral("pat-0001", "Discharge follow-up"),
               headers={"Content-Type": "application/fhir+json"}, timeout=30)
    assert r.status_code == 201, r.text
    location = r.headers["Location"]
    match = re.fullmatch(re.escape(env.gateway) + r"/Task/([A-Za-z0-9.\-]{1,64})/_history/1", location)
    assert match, f"Location {location!r} is not the gateway's"
    task_id = match.group(1)
    assert r.json()["id"] == task_id
    again = s.get(location, timeout=30)  # the Location works through the gateway
    assert again.status_code == 200
    assert again.json() == upstream.fhir_get(f"Task/{task_id}")


def test_fhirclient_creates_a_service_request(env, smart, fhirpy, upstream):
    server = smart("st-brigid", "COC").server
    request = SmartServiceRequest({
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/pat-0003"},
        "code": {"text": "Outpatient psychiatry consult"},
        "authoredOn": "2026-11-24",
    })
    answer = request.create(server)
    assert answer["resourceType"] == "ServiceRequest"
    stored = upstream.fhir_get(f"ServiceRequest/{answer['id']}")
    assert stored["code"] == {"text": "Outpatient psychiatry consult"}
    found = fhirpy("maple-primary", "TREAT").resources("ServiceRequest").search(subject="Patient/pat-0003").fetch_all()
    assert answer["id"] in [sr["id"] for sr in found]


def test_update_of_a_population_task(env, fhirpy, upstream):
    client = fhirpy("maple-primary", "CAREMGT")
    task_id = env.synthetic("Task")[0]
    task = client.reference("Task", task_id).to_resource()
    before = upstream.fhir_get(f"Task/{task_id}")
    task["note"] = [*(before.get("note") or []), {"text": "Seen in primary care"}]
    task.save()
    after = upstream.fhir_get(f"Task/{task_id}")
    assert after["note"][-1] == {"text": "Seen in primary care"}
    assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1
    assert _without_meta(after) == {**_without_meta(before), "note": after["note"]}
