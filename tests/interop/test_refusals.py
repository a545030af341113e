"""Refusals: every class the gateway implements, as a table.

Each row is sent as plain HTTP (a partner's script), and the refusal must be
an OperationOutcome with the right status and issue code, carry an audit
receipt whose record says it was not permitted, and — for writes — leave the
upstream unchanged. The classes a client library maps to its own exceptions
are also sent through fhirpy and fhirclient, which must surface them as clear
errors carrying the OperationOutcome.

Volume caps (429) are in test_caps.py, consent and Part 2 in test_obligations.py
and test_redisclosure.py, cohorts in test_cohorts.py. To add a class, add rows to
REFUSALS (or a table of your own with the same shape) and, if a client maps
its status to a new exception, a row to the client tables below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import fhirpy.base.exceptions as fhirpy_errors
import pytest
import requests
from fhirclient import server as smart_server
from fhirclient.models.condition import Condition as SmartCondition
from fhirclient.models.patient import Patient as SmartPatient


@dataclass(frozen=True)
class Refusal:
    cls: str  # the refusal class, as in the README's list of statuses
    partner: str | None  # None: no client certificate
    purpose: str | None  # None: no X-Purpose-Of-Use header
    method: str
    path: str  # relative to the gateway base; may carry a query
    status: int
    code: str  # OperationOutcome.issue[0].code
    body: dict | None = None
    content_type: str = "application/fhir+json"
    accept: str = "application/fhir+json"
    header: tuple[str, str] | None = None  # one more request header

    @property
    def id(self) -> str:
        return f"{self.cls}:{self.partner}:{self.method} {self.path}"


LONG_ID = "a" * 65
TASK = {"resourceType": "Task", "status": "requested", "intent": "order", "for": {"reference": "Patient/example"}}

REFUSALS = [
    # identity (401)
    Refusal("unknown-certificate", "unlisted-lab", "TREAT", "GET", "Patient/example", 401, "login"),
    Refusal("no-certificate", None, "TREAT", "GET", "Patient/example", 401, "login"),
    # purpose of use (403)
    Refusal("missing-purpose", "maple-primary", None, "GET", "Patient/example", 403, "forbidden"),
    Refusal("unknown-purpose-code", "maple-primary", "FOO", "GET", "Patient/example", 403, "forbidden"),
    Refusal("purpose-code-is-case-sensitive", "st-brigid", "treat", "GET", "Patient/example", 403, "forbidden"),
    Refusal("unlisted-purpose", "maple-primary", "HPAYMT", "GET", "Patient/example", 403, "forbidden"),
    Refusal("unlisted-purpose", "st-brigid", "PUBHLTH", "GET", "Observation?patient=example", 403, "forbidden"),
    # agreement status and term (403)
    Refusal("suspended-agreement", "st-brigid", "HOPERAT", "GET", "Observation?category=laboratory", 403, "forbidden"),
    Refusal("suspended-agreement", "st-brigid", "HOPERAT", "GET", "Encounter?patient=example", 403, "forbidden"),
    Refusal("expired-agreement", "riverside-bh", "TREAT", "GET", "DocumentReference?patient=example", 403, "forbidden"),
    Refusal("terminated-agreement", "harbor-clinic", "TREAT", "GET", "Patient/example", 403, "forbidden"),
    Refusal("terminated-agreement", "harbor-clinic", "COC", "GET", "Task?patient=example", 403, "forbidden"),
    # a forbid rule of the agreement (403)
    Refusal("forbid-rule", "lakeshore-health-plan", "HOPERAT", "GET", "MedicationRequest?patient=pat-0001",
            403, "forbidden"),
    # resource types no grant covers (403), though sekmet holds them
    Refusal("ungranted-type", "maple-primary", "TREAT", "GET", "DocumentReference?patient=example", 403, "forbidden"),
    Refusal("ungranted-type", "maple-primary", "TREAT", "GET", "Practitioner/example", 403, "forbidden"),
    Refusal("ungranted-type", "st-brigid", "COC", "GET", "AllergyIntolerance?patient=example", 403, "forbidden"),
    Refusal("ungranted-type", "riverside-bh", "TREAT", "GET", "Condition/example", 403, "forbidden"),
    Refusal("ungranted-type", "riverside-bh", "COC", "GET", "Condition?patient=example", 403, "forbidden"),
    # interactions no grant covers (403)
    Refusal("ungranted-interaction", "maple-primary", "TREAT", "DELETE", "Patient/example", 403, "forbidden"),
    Refusal("ungranted-interaction", "maple-primary", "TREAT", "POST", "Patient", 403, "forbidden",
            body={"resourceType": "Patient", "active": True}),
    Refusal("ungranted-interaction", "maple-primary", "TREAT", "PUT", "Condition/example", 403, "forbidden",
            body={"resourceType": "Condition", "id": "example", "subject": {"reference": "Patient/example"}}),
    Refusal("ungranted-interaction", "maple-primary", "TREAT", "PATCH", "Patient/example", 403, "forbidden",
            body=[{"op": "replace", "path": "/active", "value": False}], content_type="application/json-patch+json"),
    Refusal("ungranted-interaction", "st-brigid", "TREAT", "DELETE", "Task/example1", 403, "forbidden"),
    Refusal("ungranted-interaction", "maple-primary", "TREAT", "GET", "Patient/example/_history", 403, "forbidden"),
    Refusal("ungranted-interaction", "maple-primary", "TREAT", "GET", "Patient/_history", 403, "forbidden"),
    Refusal("ungranted-interaction", "maple-primary", "TREAT", "GET", "Patient/example/$everything", 403, "forbidden"),
    Refusal("ungranted-interaction", "maple-primary", "TREAT", "POST", "Patient/$validate", 403, "forbidden",
            body={"resourceType": "Parameters"}),
    # system level: search, history, a transaction with a refused entry,
    # operations (403); batches answer per entry (test_bundles.py)
    Refusal("system-level", "maple-primary", "TREAT", "GET", "", 403, "forbidden"),
    Refusal("system-level", "maple-primary", "TREAT", "GET", "?_id=example", 403, "forbidden"),
    Refusal("system-level", "maple-primary", "TREAT", "GET", "_history", 403, "forbidden"),
    Refusal("system-level", "maple-primary", "TREAT", "GET", "Patient/example/*", 403, "forbidden"),
    Refusal("system-level", "riverside-bh", "COC", "POST", "", 403, "forbidden",
            body={"resourceType": "Bundle", "type": "transaction",
                  "entry": [{"request": {"method": "DELETE", "url": "Patient/example"}}]}),
    Refusal("system-level", "maple-primary", "TREAT", "GET", "$export", 403, "forbidden"),
    # a count would include what the filter withholds (403)
    Refusal("summary-count", "maple-primary", "TREAT", "GET", "Observation?patient=example&_summary=count",
            403, "forbidden"),
    # methods outside the FHIR REST API (405)
    Refusal("method", "maple-primary", "TREAT", "TRACE", "Patient/example", 405, "not-supported"),
    # limits (431): refused before anything is parsed or forwarded. (413 for
    # a body over gateway.limits.max_body_bytes is not in this table: the
    # gateway answers and closes while `requests` is still sending, which
    # surfaces as a TLS EOF, not the 413; tests/tests/bad_input.rs has it.)
    Refusal("headers-too-large", "maple-primary", "TREAT", "GET", "Patient/example", 431, "too-long",
            header=("X-Padding", "x" * 17_000)),
    # formats (406): the gateway speaks FHIR JSON only
    Refusal("format", "maple-primary", "TREAT", "GET", "Patient/example?_format=xml", 406, "not-supported"),
    Refusal("format", "maple-primary", "TREAT", "GET", "Observation?patient=example&_format=application/fhir%2Bxml",
            406, "not-supported"),
    Refusal("format", "maple-primary", "TREAT", "GET", "Patient/example", 406, "not-supported",
            accept="application/fhir+xml"),
    Refusal("format", "maple-primary", "TREAT", "GET", "Patient/example?_format=turtle", 406, "not-supported"),
    # malformed requests (400/404)
    Refusal("malformed-id", "maple-primary", "TREAT", "GET", "Patient/ex$mple", 400, "invalid"),
    Refusal("malformed-id", "maple-primary", "TREAT", "GET", "Patient/a_b", 400, "invalid"),
    Refusal("malformed-id", "maple-primary", "TREAT", "GET", f"Patient/{LONG_ID}", 400, "invalid"),
    Refusal("malformed-id", "maple-primary", "TREAT", "GET", "Patient/example/_history/v%201", 400, "invalid"),
    Refusal("malformed-path", "maple-primary", "TREAT", "GET", "Patient/..%2F..%2Fmetadata", 400, "invalid"),
    Refusal("unknown-type", "maple-primary", "TREAT", "GET", "Foo/1", 404, "not-found"),
    Refusal("unknown-type", "maple-primary", "TREAT", "GET", "patient/example", 404, "not-found"),
    # request bodies (415/422): not forwarded
    Refusal("body-media-type", "riverside-bh", "COC", "POST", "Task", 415, "not-supported", body=TASK,
            content_type="application/fhir+xml"),
    Refusal("invalid-body", "riverside-bh", "COC", "POST", "Task", 422, "processing",
            body={**TASK, "bogus": 1}),
    Refusal("invalid-body", "riverside-bh", "COC", "POST", "Task", 422, "processing",
            body={**TASK, "intent": 5}),
    Refusal("empty-element", "maple-primary", "TREAT", "PUT", "Task/example1", 422, "processing",
            body={"resourceType": "Task", "id": "example1", "status": "requested", "intent": "order",
                  "input": [{}]}),
    Refusal("body-type-mismatch", "riverside-bh", "COC", "POST", "Task", 400, "invalid",
            body={"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                  "subject": {"reference": "Patient/example"}}),
    # the upstream says no: its words stay behind (404)
    Refusal("not-found", "maple-primary", "TREAT", "GET", "Patient/does-not-exist", 404, "not-found"),
    Refusal("not-found", "st-brigid", "COC", "GET", "Observation/example/_history/999", 404, "not-found"),
]


def send(env, http, case: Refusal) -> requests.Response:
    session = http(case.partner, case.purpose)
    headers = {"Accept": case.accept}
    if case.header:
        headers[case.header[0]] = case.header[1]
    data = None
    if case.body is not None:
        headers["Content-Type"] = case.content_type
        data = json.dumps(case.body).encode()
    url = f"{env.gateway}/{case.path}" if case.path and not case.path.startswith("?") else env.gateway + case.path
    # `requests` would re-encode a few characters; send the path as written.
    request = requests.Request(case.method, url, headers=headers, data=data)
    prepared = session.prepare_request(request)
    prepared.url = url
    return session.send(prepared, timeout=30)


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c.id)
def test_refused_with_an_operation_outcome(env, http, upstream, case):
    before = _upstream_state(upstream, case)
    r = send(env, http, case)  # the response hook already checked FHIR validity and leaks
    assert r.status_code == case.status, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert issue["severity"] in ("error", "fatal")
    assert issue["code"] == case.code, issue
    assert issue.get("diagnostics"), "a refusal says why"
    # One audit record per request, and it says this was not a permit
    # (except a permitted request the upstream refused, e.g. not found).
    seq = int(r.headers["X-Audit-Seq"])
    record = next(rec for rec in env.audit_records() if rec["seq"] == seq)
    assert record["status"] == case.status
    if case.cls not in ("not-found", "invalid-body", "body-media-type", "body-type-mismatch",
                        "empty-element"):
        assert record["decision"] != "permit", record
    # (A request the policy permitted and the gateway then refused, such as
    # `_summary=count`, is recorded as `refuse`, naming the permit it got.)
    # Nothing the refused request could have changed has changed upstream.
    assert _upstream_state(upstream, case) == before


def _upstream_state(upstream, case: Refusal):
    if case.method == "GET":
        return None
    if case.path in ("", "Patient", "Task", "Patient/$validate"):
        return {t: upstream.fhir_get(t, _summary="count")["total"] for t in ("Patient", "Task", "ServiceRequest")}
    return upstream.fhir_get(case.path.split("?")[0])


# --- the upstream would have answered: prove it, so the refusals above mean something

UPSTREAM_WOULD_ANSWER = [
    ("GET", "_history", "system history"),
    ("GET", "Patient/_history", "type history"),
    ("GET", "Patient/example/_history", "instance history"),
    ("GET", "Patient/example/$everything", "$everything"),
    ("GET", "Practitioner/example", "an ungranted type"),
    ("GET", "DocumentReference?patient=example", "an ungranted type"),
    ("GET", "Patient/example?_format=xml", "XML"),
]
# (sekmet 0.1.1 refuses system search, `GET [base]?...`, itself with 400, so
# that row of REFUSALS has no contrast here.)


@pytest.mark.parametrize(("method", "path", "what"), UPSTREAM_WOULD_ANSWER, ids=[w[1] for w in UPSTREAM_WOULD_ANSWER])
def test_sekmet_answers_what_the_gateway_refuses(env, upstream, http, method, path, what):
    direct = upstream.request(method, f"{env.upstream}/{path}", timeout=30)
    assert direct.status_code == 200, f"sekmet no longer answers {what}: the refusal test proves less"
    via_gateway = http("maple-primary", "TREAT").request(method, f"{env.gateway}/{path}", timeout=30)
    assert via_gateway.status_code in (403, 406)
    assert via_gateway.json()["resourceType"] == "OperationOutcome"


# --- the same refusals through the client libraries: clear, typed errors


def _outcome_of(error: Exception) -> dict:
    if isinstance(error, fhirpy_errors.OperationOutcome):
        return error.resource
    text = str(error.args[0]) if error.args else ""
    return json.loads(text)


FHIRPY_CASES = [
    ("unlisted-lab", "TREAT", "Patient", "example", fhirpy_errors.AuthorizationError),
    ("maple-primary", None, "Patient", "example", fhirpy_errors.ForbiddenError),
    ("maple-primary", "HPAYMT", "Patient", "example", fhirpy_errors.ForbiddenError),
    ("st-brigid", "HOPERAT", "Observation", "example", fhirpy_errors.ForbiddenError),
    ("riverside-bh", "TREAT", "Condition", "example", fhirpy_errors.ForbiddenError),
    ("maple-primary", "TREAT", "Practitioner", "example", fhirpy_errors.ForbiddenError),
    ("maple-primary", "TREAT", "Patient", "does-not-exist", fhirpy_errors.ResourceNotFound),
    ("maple-primary", "TREAT", "Patient", "a_b", fhirpy_errors.OperationOutcome),
]


@pytest.mark.parametrize(("partner", "purpose", "rtype", "rid", "error"), FHIRPY_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}/{c[3]}" for c in FHIRPY_CASES])
def test_fhirpy_surfaces_refusals_as_typed_errors(fhirpy, partner, purpose, rtype, rid, error):
    client = fhirpy(partner, purpose)
    with pytest.raises(error) as caught:
        client.reference(rtype, rid).to_resource()
    outcome = _outcome_of(caught.value)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["diagnostics"]


def test_fhirpy_search_refusal(fhirpy):
    with pytest.raises(fhirpy_errors.ForbiddenError) as caught:
        fhirpy("maple-primary", "TREAT").resources("DocumentReference").search(patient="example").fetch()
    assert _outcome_of(caught.value)["issue"][0]["code"] == "forbidden"


SMART_CASES = [
    ("unlisted-lab", "TREAT", SmartPatient, "example", smart_server.FHIRUnauthorizedException, 401),
    ("maple-primary", None, SmartPatient, "example", smart_server.FHIRPermissionDeniedException, 403),
    ("maple-primary", "HPAYMT", SmartPatient, "example", smart_server.FHIRPermissionDeniedException, 403),
    ("riverside-bh", "COC", SmartCondition, "example", smart_server.FHIRPermissionDeniedException, 403),
    ("maple-primary", "TREAT", SmartPatient, "does-not-exist", smart_server.FHIRNotFoundException, 404),
    ("maple-primary", "TREAT", SmartPatient, "ex$mple", requests.HTTPError, 400),
]


@pytest.mark.parametrize(("partner", "purpose", "model", "rid", "error", "status"), SMART_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2].__name__}/{c[3]}" for c in SMART_CASES])
def test_fhirclient_surfaces_refusals_as_errors(smart, partner, purpose, model, rid, error, status):
    server = smart(partner, purpose).server
    with pytest.raises(error) as caught:
        model.read(rid, server)
    response = caught.value.response
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"
