"""Independent checks applied to every response the gateway returns.

- FHIR validity, by two validators nobody here wrote:
  * `fhirclient.models` (SMART on FHIR), strict mode: the R4 4.0.1 models;
    unknown elements, wrong types and missing required elements are errors.
  * `fhir.resources` (pydantic v2), `fhir.resources.R4B` models: strict on
    unknown elements and types. R4B is not R4: a handful of elements changed
    between them (e.g. `MedicationKnowledge`, `Evidence*`, `Citation`,
    `SubscriptionTopic`, some choice types), so a response that is valid R4
    but uses a shape R4B changed would fail here while fhirclient accepts it.
    None of the types this suite exchanges (Patient, Observation, Condition,
    Encounter, MedicationRequest, CarePlan, Task, ServiceRequest, Bundle,
    OperationOutcome) is affected, and the loader only loads official examples
    both validators accept; should an R4-only shape ever show up, add its type
    to R4B_NOT_APPLICABLE with the reason, and fhirclient alone decides.
- No trace of the upstream: its base URL, or its host:port, must not appear
  in any header or body a partner receives.
"""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhirclient.models.fhirelementfactory import FHIRElementFactory

# Resource types whose R4 shape the R4B models cannot check (see above).
R4B_NOT_APPLICABLE: dict[str, str] = {}


def _types_in(resource: Any) -> set[str]:
    """Every resourceType in a resource, contained and Bundle entries included."""
    found: set[str] = set()
    if isinstance(resource, dict):
        if isinstance(resource.get("resourceType"), str):
            found.add(resource["resourceType"])
        for value in resource.values():
            found |= _types_in(value)
    elif isinstance(resource, list):
        for value in resource:
            found |= _types_in(value)
    return found


def json_rule_problems(value: Any, path: str = "$") -> list[str]:
    """FHIR JSON rules neither model checks: no empty arrays, no empty
    objects, no nulls (https://hl7.org/fhir/R4/json.html)."""
    if value is None:
        return [f"{path}: null"]
    if isinstance(value, list):
        if not value:
            return [f"{path}: empty array"]
        return [p for i, v in enumerate(value) for p in json_rule_problems(v, f"{path}[{i}]")]
    if isinstance(value, dict):
        if not value:
            return [f"{path}: empty object"]
        return [p for k, v in value.items() for p in json_rule_problems(v, f"{path}.{k}")]
    return []


def validate_fhir(resource: Any) -> list[str]:
    """Problems the two independent validators (and the JSON rules) find;
    empty when all accept."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return ["not a FHIR resource (no resourceType)"]
    rtype = resource["resourceType"]
    problems = [f"FHIR JSON: {p}" for p in json_rule_problems(resource)]
    try:
        FHIRElementFactory.instantiate(rtype, resource)  # strict by default
    except Exception as e:  # noqa: BLE001 - fhirclient raises FHIRValidationError and friends
        problems.append(f"fhirclient.models (R4): {e}")
    if not (_types_in(resource) & set(R4B_NOT_APPLICABLE)):
        try:
            get_fhir_model_class(rtype).model_validate(resource)
        except Exception as e:  # noqa: BLE001 - pydantic ValidationError, KeyError for unknown types
            problems.append(f"fhir.resources (R4B): {e}")
    return problems


def upstream_traces(upstream_base: str) -> list[str]:
    """Strings that would betray the upstream: its base and its authority."""
    from urllib.parse import urlsplit

    parts = urlsplit(upstream_base)
    traces = [upstream_base.rstrip("/"), parts.netloc]
    if parts.hostname in ("127.0.0.1", "localhost") and parts.port:
        # The same server under its other loopback names.
        traces += [f"127.0.0.1:{parts.port}", f"localhost:{parts.port}", f"[::1]:{parts.port}"]
    return sorted(set(traces))


def find_traces(text: str, traces: list[str]) -> list[str]:
    return [t for t in traces if t in text]


def check_gateway_response(response, gateway_base: str, traces: list[str]) -> None:
    """The checks every gateway response passes; raises AssertionError."""
    url = response.url
    assert url.startswith(gateway_base), f"a request left the gateway: {response.request.method} {url}"
    where = f"{response.request.method} {url} -> {response.status_code}"
    for name, value in response.headers.items():
        leaked = find_traces(value, traces)
        assert not leaked, f"{where}: header {name}: {value!r} names the upstream ({leaked})"
    body = response.content
    if not body:
        return
    text = body.decode("utf-8")
    leaked = find_traces(text, traces)
    assert not leaked, f"{where}: body names the upstream ({leaked}): {text[:500]}"
    ctype = response.headers.get("content-type", "")
    assert ctype.startswith("application/fhir+json"), f"{where}: content-type {ctype!r}"
    parsed = json.loads(text)
    problems = validate_fhir(parsed)
    assert not problems, f"{where}: the body is not valid FHIR R4:\n" + "\n".join(problems)
    if response.status_code >= 400:
        assert parsed["resourceType"] == "OperationOutcome", f"{where}: error body is {parsed['resourceType']}"
