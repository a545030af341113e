"""The upstream is down (the run's fourth gateway, env.down, points at a
loopback port nothing listens on): a permitted request is answered 502 with
an OperationOutcome (`transient`) that names neither the upstream nor its
address (the response hook checks both), is audited, and both client
libraries surface it as an error; a request the policy refuses is refused
as before, without the upstream."""

from __future__ import annotations

import fhirpy.base.exceptions as fhirpy_errors
import pytest
import requests
from fhirclient.models.patient import Patient as SmartPatient

from conftest import read_audit_log


def test_a_permitted_request_gets_502_transient_and_no_upstream_detail(env, http, fhirpy, smart):
    r = http("maple-primary", "TREAT").get(f"{env.down}/Patient/pat-0003", timeout=30)
    assert r.status_code == 502, r.text[:300]
    issue = r.json()["issue"][0]
    assert issue["code"] == "transient", issue
    assert issue.get("diagnostics"), "the partner is told what happened"
    record = {x["seq"]: x for x in read_audit_log(env.down_audit)}[int(r.headers["X-Audit-Seq"])]
    assert record["status"] == 502 and record.get("error_source") == "upstream", record

    with pytest.raises(fhirpy_errors.OperationOutcome) as caught:
        fhirpy("maple-primary", "TREAT", base=env.down).reference("Patient", "pat-0003").to_resource()
    assert caught.value.resource["issue"][0]["code"] == "transient"
    with pytest.raises(requests.HTTPError) as caught_smart:
        SmartPatient.read("pat-0003", smart("st-brigid", "TREAT", base=env.down).server)
    assert caught_smart.value.response.status_code == 502


def test_a_refusal_does_not_need_the_upstream(env, http):
    r = http("maple-primary", "TREAT").get(f"{env.down}/Practitioner/example", timeout=30)
    assert r.status_code == 403, r.text[:300]
    assert r.json()["issue"][0]["code"] == "forbidden"
