"""Volume caps against the real upstream: the third gateway of the run
(env.capped, started by tests/interop/run) has the payer quality agreement
(policies/agreements/payer-quality.toml) with `requests_per_day` lowered to
env.cap_requests; its counters start empty on every run. The health plan
reads one of its attributed members until the cap is used up: the reads
before it are answered, the one after it is a 429 with Retry-After and an
OperationOutcome `throttled` that both client libraries surface, valid FHIR
R4, audited as a refusal naming the cap; the plan's cap is its own."""

from __future__ import annotations

import json
from pathlib import Path

import fhirpy.base.exceptions as fhirpy_errors
import pytest
import requests
from fhirclient.models.patient import Patient as SmartPatient

from fhir_checks import validate_fhir

PAYER = "lakeshore-health-plan"
PURPOSE = "HOPERAT"
GROUP_FILE = Path(__file__).resolve().parents[2] / "policies/cohorts/lakeshore-attributed.group.json"


def _member() -> str:
    group = json.loads(GROUP_FILE.read_text())
    return sorted(m["entity"]["reference"].split("/")[-1] for m in group["member"])[0]


def _assert_throttled(response: requests.Response, member: str) -> None:
    assert response.status_code == 429, response.text[:300]
    retry_after = response.headers.get("Retry-After", "")
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 86_400, f"Retry-After {retry_after!r}"
    outcome = response.json()
    assert validate_fhir(outcome) == [], "the refusal is valid FHIR R4"
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "throttled", outcome
    assert member not in response.text, "a refusal carries no data"


def test_the_request_after_the_daily_cap_is_throttled(env, fhirpy, smart, http, upstream):
    member = _member()
    truth = upstream.fhir_get(f"Patient/{member}")
    assert truth["id"] == member, "sekmet holds the plan's attributed member"

    # The cap's worth of reads is answered (fhirpy, as the plan's developer would).
    client = fhirpy(PAYER, PURPOSE, base=env.capped)
    for _ in range(env.cap_requests):
        patient = client.reference("Patient", member).to_resource()
        assert patient["id"] == member
        assert "telecom" not in patient, "the agreement's redaction still applies"

    # The next one is refused: fhirpy raises its OperationOutcome error
    # carrying the gateway's OperationOutcome (the response hook has checked
    # FHIR validity, no upstream trace and the audit receipt).
    with pytest.raises(fhirpy_errors.OperationOutcome) as caught:
        client.reference("Patient", member).to_resource()
    outcome = caught.value.resource
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "throttled", outcome
    assert outcome["issue"][0].get("diagnostics"), "the refusal says why"

    # fhirclient has no exception of its own for 429: requests' HTTPError,
    # with the response (status, Retry-After, OperationOutcome) attached.
    server = smart(PAYER, PURPOSE, base=env.capped).server
    with pytest.raises(requests.HTTPError) as caught_smart:
        SmartPatient.read(member, server)
    response = caught_smart.value.response
    _assert_throttled(response, member)

    # A search counts against the same cap.
    search = http(PAYER, PURPOSE).get(f"{env.capped}/Observation", params={"patient": member}, timeout=30)
    _assert_throttled(search, member)

    # The refusal is audited as one, naming the cap.
    seq = int(response.headers["X-Audit-Seq"])
    records = {r["seq"]: r for r in _read_audit(env.capped_audit)}
    record = records[seq]
    assert record["status"] == 429
    assert record["decision"] != "permit", record
    assert f"requests_per_day = {env.cap_requests}" in record["rule"], record["rule"]
    assert "payer-quality" in record["rule"], record["rule"]
    permitted = [r for r in records.values() if r.get("partner") == PAYER and r["status"] == 200]
    assert len(permitted) == env.cap_requests, "exactly the cap's worth was released"

    # The cap is the plan's under this agreement: another partner, under its
    # own agreement (the referrals grant, which names no source), is still
    # served by the same gateway.
    other = http("maple-primary", "TREAT").get(f"{env.capped}/Task", params={"patient": "pat-0003"}, timeout=30)
    assert other.status_code == 200, other.text[:300]


def _read_audit(directory: Path) -> list[dict]:
    from conftest import read_audit_log

    return read_audit_log(directory)


CLINIC = "riverside-bh"  # clinic-coordination grant, resources_per_day capped on env.capped


def test_a_response_that_would_exceed_the_resource_cap_is_not_released(env, http, upstream):
    """`resources_per_day`: what fits is released; a response that would take
    the day's count over the cap is refused whole (429), not cut short."""
    observed = {}
    for o in upstream.fhir_get("Observation", _count="1000").get("entry", []):
        ref = o["resource"].get("subject", {}).get("reference", "")
        observed[ref] = observed.get(ref, 0) + 1
    patient = "pat-0003"  # referred (care coordination), no consent closing the record
    assert observed.get(f"Patient/{patient}", 0) > env.cap_resources, "sekmet holds more than the cap"
    s = http(CLINIC, "COC")
    first = s.get(f"{env.capped}/Patient/{patient}", timeout=30)
    assert first.status_code == 200, first.text[:300]
    many = s.get(f"{env.capped}/Observation", params={"patient": patient, "_count": "200"}, timeout=30)
    _assert_throttled(many, patient)
    assert '"resourceType":"Observation"' not in many.text.replace(" ", ""), "nothing of it was released"
    record = {r["seq"]: r for r in _read_audit(env.capped_audit)}[int(many.headers["X-Audit-Seq"])]
    assert f"resources_per_day = {env.cap_resources}" in record["rule"], record["rule"]


def test_a_suspended_partner_is_refused_and_audited(env, http, upstream):
    """North Shore is suspended in this gateway's partners.toml (see `run`);
    the same request from the same client is served by the main gateway."""
    patient = _member()
    served = http("north-clinic", "TREAT").get(f"{env.gateway}/Task", params={"patient": patient}, timeout=30)
    assert served.status_code == 200, served.text[:300]
    refused = http("north-clinic", "TREAT").get(f"{env.capped}/Task", params={"patient": patient}, timeout=30)
    assert refused.status_code == 403, refused.text[:300]
    outcome = refused.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "forbidden"
    assert "suspended" in outcome["issue"][0]["diagnostics"]
    seq = int(refused.headers["X-Audit-Seq"])
    record = next(r for r in _read_audit(env.capped_audit) if r["seq"] == seq)
    assert record["partner"] == "north-clinic"
    # Refused at identification, before any agreement is looked at.
    assert record["decision"] == "refuse", record
    assert "suspended" in record["rule"], record
    assert record["status"] == 403
    assert not record.get("patients"), "nothing was released"
