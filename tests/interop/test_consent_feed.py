"""Consents recorded in the real upstream ([gateway.consent_feed], turned on
by tests/interop/run for the second gateway, env.alias): an opt-out written into sekmet, as an EHR would write
it, stops sharing within seconds; its revocation restores it."""

from __future__ import annotations

import time

PATIENT = "pat-0001"  # the demo's shared patient, readable by maple-primary
DEADLINE = 30  # seconds; the feed polls every 0.5 s


def _consent(status: str) -> dict:
    return {
        "resourceType": "Consent",
        "id": "interop-feed-opt-out",
        "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{PATIENT}"},
        "dateTime": "2026-11-20T09:00:00Z",
        "provision": {"type": "deny"},
    }


def _released(session, env) -> int:
    r = session.get(f"{env.alias}/Observation", params={"patient": PATIENT, "_count": "200"}, timeout=30)
    assert r.status_code == 200, r.text
    return len(r.json().get("entry", []))


def _until(session, env, want, what: str) -> None:
    started = time.monotonic()
    while not want(_released(session, env)):
        assert time.monotonic() - started < DEADLINE, f"{what} not in force within {DEADLINE} s"
        time.sleep(0.25)


def test_an_opt_out_written_into_sekmet_stops_sharing_and_its_revocation_restores_it(env, http, upstream):
    s = http("maple-primary", "TREAT")
    before = _released(s, env)
    assert before > 0, "the patient's observations are shared before the opt-out"
    put = upstream.put(f"{env.upstream}/Consent/interop-feed-opt-out", json=_consent("active"), timeout=30)
    assert put.status_code in (200, 201), put.text
    try:
        _until(s, env, lambda n: n == 0, "the opt-out")
        read = s.get(f"{env.alias}/Patient/{PATIENT}", timeout=30)
        assert read.status_code == 404, "an opted-out patient reads like a patient that does not exist"
    finally:
        revoke = upstream.put(f"{env.upstream}/Consent/interop-feed-opt-out", json=_consent("inactive"), timeout=30)
        assert revoke.status_code in (200, 201), revoke.text
    _until(s, env, lambda n: n == before, "the revocation")
