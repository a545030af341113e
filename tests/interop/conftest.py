"""Fixtures for the interop suite: partners as fhirpy / fhirclient / plain
requests users, the upstream as ground truth.

tests/interop/run starts sekmet and `accord serve` and exports:

  ACCORD_INTEROP_GATEWAY   the gateway's FHIR base (https, mTLS)
  ACCORD_INTEROP_GATEWAY_ALIAS  a second gateway reaching the same sekmet as
                           http://localhost:PORT/fhir while sekmet calls itself
                           http://127.0.0.1:PORT/fhir (ingress/alias case); it also
                           pulls the Consents recorded in sekmet (consent feed)
  ACCORD_INTEROP_GATEWAY_CAPPED  a third gateway whose payer quality agreement
                           allows ACCORD_INTEROP_CAP_REQUESTS requests a day
                           and whose clinic-coordination grant releases
                           ACCORD_INTEROP_CAP_RESOURCES resources a day,
                           with its own audit log (ACCORD_INTEROP_CAPPED_AUDIT)
                           and fresh cap counters each run
  ACCORD_INTEROP_GATEWAY_MAPLE  a gateway in front of the same sekmet as Maple
                           Street's server (upstream_owner = maple-primary): the
                           health plan's grant shares Maple's records
  ACCORD_INTEROP_GATEWAY_DOWN  a fourth gateway whose upstream
                           (ACCORD_INTEROP_DEAD_UPSTREAM) is a port nothing
                           listens on; its audit log: ACCORD_INTEROP_DOWN_AUDIT
  ACCORD_INTEROP_UPSTREAM  sekmet's FHIR base (plain http; ground truth only)
  ACCORD_INTEROP_PKI       dev PKI from `accord demo`: ca.pem, clients/<name>.pem/.key
  ACCORD_INTEROP_AUDIT     the gateway's audit directory (audit.jsonl)
  ACCORD_INTEROP_MANIFEST  what load_fixtures.py loaded (ids by type and source)

Every response a partner client receives from the gateway goes through
`fhir_checks.check_gateway_response` (a requests response hook, which both
fhirpy's sync client and fhirclient use): no upstream URL or address in any
header or body, `application/fhir+json`, valid FHIR R4 by two independent
validators, errors as OperationOutcome, an audit receipt on every answer.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from fhirclient import client as smart_client
from fhirpy import SyncFHIRClient

from fhir_checks import check_gateway_response, upstream_traces

PURPOSE_HEADER = "X-Purpose-Of-Use"
AUDIT_HEADER = "X-Audit-Seq"

# The partners of the shipped example agreements (policies/agreements/).
CLINICAL = ["maple-primary", "st-brigid"]  # clinical-record grant
CLINIC = "riverside-bh"  # clinic-coordination grant: no Condition
UNLISTED = "unlisted-lab"  # issued by the dev CA, pinned to no partner
GRANTED_READ = {
    "maple-primary": {"Patient", "Encounter", "Condition", "Observation", "MedicationRequest", "CarePlan"},
    "st-brigid": {"Patient", "Encounter", "Condition", "Observation", "MedicationRequest", "CarePlan"},
    "riverside-bh": {"Patient", "Encounter", "Observation", "MedicationRequest", "CarePlan"},
}
REFERRAL_TYPES = {"Task", "ServiceRequest"}  # every party: read, vread, search, create, update
PURPOSES = ["TREAT", "CAREMGT", "COC"]


def read_audit_log(directory: Path) -> list[dict]:
    """The gateway's audit records, read independently of its code.

    Two layouts: the first version's `audit.jsonl` (one JSON record a line),
    and the segment store (`segments/seg-*.log`: "ACCSEG01", first seq u64le,
    then frames of len u32le, crc32(payload) u32le, payload = record JSON).
    Frame checksums are verified here too.
    """
    jsonl = directory / "audit.jsonl"
    if jsonl.exists():
        return [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    records = []
    for segment in sorted((directory / "segments").glob("seg-*.log")):
        data = segment.read_bytes()
        assert data[:8] == b"ACCSEG01", f"{segment}: not a segment file"
        offset = 16
        while offset + 8 <= len(data):
            length, crc = struct.unpack_from("<II", data, offset)
            payload = data[offset + 8 : offset + 8 + length]
            if length == 0 or len(payload) < length:
                break  # zeros or a write in progress at the tail
            assert zlib.crc32(payload) == crc, f"{segment}: bad checksum at offset {offset}"
            records.append(json.loads(payload))
            offset += 8 + length
    assert records, f"no audit records found in {directory}"
    return records


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} is not set: run the suite with tests/interop/run", returncode=2)
    return value


@dataclass
class Env:
    gateway: str
    alias: str
    capped: str
    maple: str
    upstream: str
    pki: Path
    audit: Path
    capped_audit: Path
    cap_requests: int
    cap_resources: int
    down: str
    down_audit: Path
    dead_upstream: str
    manifest: dict
    traces: list[str]
    checked: list[str] = field(default_factory=lambda: _CHECKED)

    @property
    def ca(self) -> str:
        return str(self.pki / "ca.pem")

    def cert(self, partner: str) -> tuple[str, str]:
        clients = self.pki / "clients"
        return str(clients / f"{partner}.pem"), str(clients / f"{partner}.key")

    def examples(self, rtype: str) -> list[str]:
        return self.manifest["examples"].get(rtype, [])

    def synthetic(self, rtype: str) -> list[str]:
        return self.manifest["synthetic"].get(rtype, [])

    def audit_records(self) -> list[dict]:
        return read_audit_log(self.audit)

    def hook(self, response: requests.Response, *args, **kwargs) -> requests.Response:
        base = next(
            (
                b
                for b in (self.alias, self.capped, self.maple, self.down)
                if response.url == b or response.url.startswith(b + "/")
            ),
            self.gateway,
        )
        check_gateway_response(response, base, self.traces)
        assert response.headers.get(AUDIT_HEADER, "").isdigit(), (
            f"{response.request.method} {response.url}: no {AUDIT_HEADER} receipt"
        )
        self.checked.append(f"{response.request.method} {response.url} {response.status_code}")
        return response


@pytest.fixture(scope="session")
def env() -> Env:
    upstream = _required("ACCORD_INTEROP_UPSTREAM")
    return Env(
        gateway=_required("ACCORD_INTEROP_GATEWAY").rstrip("/"),
        alias=_required("ACCORD_INTEROP_GATEWAY_ALIAS").rstrip("/"),
        capped=_required("ACCORD_INTEROP_GATEWAY_CAPPED").rstrip("/"),
        maple=_required("ACCORD_INTEROP_GATEWAY_MAPLE").rstrip("/"),
        upstream=upstream.rstrip("/"),
        pki=Path(_required("ACCORD_INTEROP_PKI")),
        audit=Path(_required("ACCORD_INTEROP_AUDIT")),
        capped_audit=Path(_required("ACCORD_INTEROP_CAPPED_AUDIT")),
        cap_requests=int(_required("ACCORD_INTEROP_CAP_REQUESTS")),
        cap_resources=int(_required("ACCORD_INTEROP_CAP_RESOURCES")),
        down=_required("ACCORD_INTEROP_GATEWAY_DOWN").rstrip("/"),
        down_audit=Path(_required("ACCORD_INTEROP_DOWN_AUDIT")),
        dead_upstream=_required("ACCORD_INTEROP_DEAD_UPSTREAM").rstrip("/"),
        manifest=json.loads(Path(_required("ACCORD_INTEROP_MANIFEST")).read_text()),
        traces=upstream_traces(upstream) + upstream_traces(_required("ACCORD_INTEROP_DEAD_UPSTREAM")),
    )


_CHECKED: list[str] = []


# Official examples the filter withheld, by partner (test_permitted fills it).
WITHHELD_EXAMPLES: dict[str, list[str]] = {}


def pytest_terminal_summary(terminalreporter):
    for partner, withheld in sorted(WITHHELD_EXAMPLES.items()):
        terminalreporter.write_line(
            f"interop: official examples withheld from {partner} by the filter: {', '.join(withheld) or 'none'}"
        )
    terminalreporter.write_line(
        f"interop: {len(_CHECKED)} gateway responses checked (no upstream trace, valid FHIR R4, audit receipt)"
    )


@pytest.fixture(scope="session")
def upstream(env) -> requests.Session:
    """sekmet itself, directly: the ground truth permitted data is compared to."""
    s = requests.Session()
    s.headers["Accept"] = "application/fhir+json"

    def get(path: str, **params) -> dict:
        r = s.get(f"{env.upstream}/{path}", params=params, timeout=30)
        r.raise_for_status()
        return r.json()

    s.fhir_get = get  # type: ignore[attr-defined]
    return s


@pytest.fixture(scope="session")
def http(env):
    """Plain `requests` sessions to the gateway, as a partner's script would.

    http(partner, purpose): partner=None presents no client certificate;
    purpose=None sends no purpose-of-use header.
    """

    def make(partner: str | None = "maple-primary", purpose: str | None = "TREAT") -> requests.Session:
        s = requests.Session()
        s.trust_env = False  # see `smart` below: REQUESTS_CA_BUNDLE would override `verify`
        s.verify = env.ca
        if partner:
            s.cert = env.cert(partner)
        s.headers["Accept"] = "application/fhir+json"
        if purpose:
            s.headers[PURPOSE_HEADER] = purpose
        s.hooks["response"].append(env.hook)
        return s

    return make


@pytest.fixture(scope="session")
def fhirpy(env):
    """fhirpy's SyncFHIRClient, configured only through its public options.
    `base`: another of the run's gateways (env.alias, env.capped)."""

    def make(
        partner: str = "maple-primary", purpose: str | None = "TREAT", base: str | None = None
    ) -> SyncFHIRClient:
        return SyncFHIRClient(
            base or env.gateway,
            extra_headers={PURPOSE_HEADER: purpose} if purpose else None,
            requests_config={
                "cert": env.cert(partner),
                "verify": env.ca,
                "timeout": 60,
                "hooks": {"response": [env.hook]},
            },
        )

    return make


@pytest.fixture(scope="session")
def smart(env):
    """fhirclient's FHIRClient; its server's requests.Session carries the
    client certificate, the CA and the purpose-of-use header."""

    def make(
        partner: str = "maple-primary", purpose: str | None = "TREAT", base: str | None = None
    ) -> smart_client.FHIRClient:
        api_base = (base or env.gateway) + "/"
        c = smart_client.FHIRClient(settings={"app_id": f"accord-interop-{partner}", "api_base": api_base})
        session = c.server.session
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (set on many CI
        # machines) override a Session's `verify`; a partner pinning its
        # gateway's CA turns the environment off for this session.
        session.trust_env = False
        session.cert = env.cert(partner)
        session.verify = env.ca
        if purpose:
            session.headers[PURPOSE_HEADER] = purpose
        session.hooks["response"].append(env.hook)
        return c

    return make
