"""Loads the interop data set into the real upstream, straight (no gateway).

Two sources, both sent as FHIR transaction Bundles of `PUT [type]/[id]`
entries so that ids are kept and the tests can find what they expect:

- the synthetic population `accord demo --dir DIR` wrote to DIR/fixtures/*.ndjson;
- a selection of the official HL7 FHIR R4 examples (npm `hl7.fhir.r4.examples`
  4.0.1): every example of the clinical types below (contained resources,
  extensions, narrative, odd references included), plus a few types that no
  agreement grants, so the suite can check they never leak.

An official example is loaded only when both independent validators the suite
uses accept it (`fhirclient.models`, strict R4 4.0.1; `fhir.resources` R4B,
which sekmet also uses on writes): the suite validates every response with
them, so a resource neither could parse would make its own assertions
meaningless. How many were skipped is printed and kept in the manifest.

Writes a manifest (JSON) the tests read: which ids of which type came from
where, and the upstream's own copy is what the tests compare against.

Usage: load_fixtures.py UPSTREAM_BASE FIXTURES_DIR EXAMPLES_PACKAGE_DIR MANIFEST
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import requests

from fhir_checks import validate_fhir

# Official examples of the types agreements grant (read/search or write).
CLINICAL_TYPES = [
    "Patient",
    "Observation",
    "Condition",
    "Encounter",
    "MedicationRequest",
    "CarePlan",
    "Task",
    "ServiceRequest",
]
# Official examples of types no agreement grants: they must never reach a
# partner, whether asked for directly or pulled in by `_include`.
UNGRANTED_TYPES = ["Practitioner", "Organization", "DocumentReference", "AllergyIntolerance"]

CHUNK = 200


def official_examples(package: Path) -> tuple[list[dict], list[str]]:
    loaded, skipped = [], []
    for rtype in CLINICAL_TYPES + UNGRANTED_TYPES:
        for path in sorted(package.glob(f"{rtype}-*.json")):
            resource = json.loads(path.read_text(encoding="utf-8"))
            if resource.get("resourceType") != rtype or not resource.get("id"):
                continue
            problems = validate_fhir(resource)
            if problems:
                skipped.append(f"{path.name}: {problems[0][:160]}")
                continue
            loaded.append(resource)
    return loaded, skipped


def synthetic(fixtures: Path) -> list[dict]:
    out = []
    for path in sorted(fixtures.glob("*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


def referrals(examples: list[dict]) -> list[dict]:
    """A referral from Riverside to Maple Street for every patient of the
    official examples, so that they are in the care-coordination agreement's
    referral cohort (policies/agreements/care-coordination.toml: patients
    with a ServiceRequest or Task between the parties' Organizations) and the
    suite can check them in every position. Without one, the gateway rightly
    treats them as patients it cannot share."""
    patients = set()
    for r in examples:
        if r["resourceType"] == "Patient":
            patients.add(r["id"])
        for key in ("subject", "patient", "for"):
            ref = (r.get(key) or {}).get("reference", "") if isinstance(r.get(key), dict) else ""
            if ref.startswith("Patient/") and ref.count("/") == 1:
                patients.add(ref.split("/", 1)[1])
    return [
        {
            "resourceType": "ServiceRequest",
            "id": f"interop-referral-{pid}"[:64],
            "status": "active",
            "intent": "order",
            "code": {"text": "Behavioral health follow-up"},
            "subject": {"reference": f"Patient/{pid}"},
            "requester": {"reference": "Organization/org-riverside-bh"},
            "performer": [{"reference": "Organization/org-maple-primary"}],
        }
        for pid in sorted(patients)
    ]


def put_all(base: str, resources: list[dict]) -> None:
    for start in range(0, len(resources), CHUNK):
        chunk = resources[start : start + CHUNK]
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                }
                for r in chunk
            ],
        }
        response = requests.post(
            base,
            json=bundle,
            headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
            timeout=300,
        )
        if response.status_code != 200:
            raise SystemExit(
                f"loading into {base} failed ({response.status_code}): {response.text[:2000]}"
            )


def main() -> None:
    base, fixtures, package, manifest = sys.argv[1:5]
    population = synthetic(Path(fixtures))
    if not population:
        raise SystemExit(f"no synthetic fixtures in {fixtures}")
    examples, skipped = official_examples(Path(package))
    if len(examples) < 150:
        raise SystemExit(f"only {len(examples)} official examples usable from {package}")
    taken = {(r["resourceType"], r["id"]) for r in population}
    clash = [f"{t}/{i}" for t, i in ((r["resourceType"], r["id"]) for r in examples) if (t, i) in taken]
    if clash:
        raise SystemExit(f"official example ids clash with the synthetic population: {clash}")
    put_all(base, population)
    put_all(base, examples)
    referred = referrals(examples)
    put_all(base, referred)

    def ids(resources):
        table: dict[str, list[str]] = {}
        for r in resources:
            table.setdefault(r["resourceType"], []).append(r["id"])
        return table

    Path(manifest).write_text(
        json.dumps(
            {
                "synthetic": ids(population),
                "examples": ids(examples),
                "examples_skipped": skipped,
                "example_referrals": [r["id"] for r in referred],
                "clinical_types": CLINICAL_TYPES,
                "ungranted_types": UNGRANTED_TYPES,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    print(
        f"loaded {len(population)} synthetic resources and {len(examples)} official examples "
        f"into the upstream ({len(skipped)} examples skipped: a validator rejected them)"
    )
    for line in skipped:
        print(f"  skipped {line}")


if __name__ == "__main__":
    main()
