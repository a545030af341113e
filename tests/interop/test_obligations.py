"""What an agreement's obligations require, against the real upstream:
patient consent (the shipped opt-out of pat-0002) and 42 CFR Part 2
substance-use data (released only with the patient's consent), checked
with fhirpy as a partner would and against what sekmet itself holds."""

from __future__ import annotations

import pytest
from fhirpy.base.exceptions import ResourceNotFound

OPTED_OUT = "pat-0002"  # policies/consents/pat-0002-opt-out.json
PART2_CONSENTED = "pat-0003"  # policies/consents/pat-0003-part2-opt-in.json
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


def _is_substance_use(condition: dict) -> bool:
    return any(
        c.get("system") == ICD10 and c.get("code", "").startswith("F1")
        for c in condition.get("code", {}).get("coding", [])
    )


def _entries(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", [])]


def test_an_opted_out_patient_is_answered_as_having_no_data(env, http, fhirpy, upstream):
    assert _entries(upstream.fhir_get("Observation", patient=OPTED_OUT)), "sekmet holds data for the patient"
    s = http("maple-primary", "TREAT")
    search = s.get(f"{env.gateway}/Observation", params={"patient": OPTED_OUT}, timeout=30)
    assert search.status_code == 200, search.text
    assert search.json()["total"] == 0 and "entry" not in search.json()
    nobody = s.get(f"{env.gateway}/Observation", params={"patient": "no-such-patient"}, timeout=30).json()
    strip = lambda b: {k: v for k, v in b.items() if k not in ("id", "meta", "link")}  # noqa: E731
    assert strip(search.json()) == strip(nobody), "the opt-out is indistinguishable from no data"
    with pytest.raises(ResourceNotFound):
        fhirpy("maple-primary", "TREAT").reference("Patient", OPTED_OUT).to_resource()


def test_substance_use_diagnoses_leave_only_with_the_patients_consent(env, http, upstream):
    conditions = _entries(upstream.fhir_get("Condition", _count="500"))
    sud_patients = sorted(
        {c["subject"]["reference"].split("/")[-1] for c in conditions if _is_substance_use(c)}
        - {OPTED_OUT, PART2_CONSENTED}
    )
    assert sud_patients, "the loaded population has substance-use diagnoses"
    s = http("maple-primary", "TREAT")
    withheld = 0
    for patient in sud_patients[:5]:
        held = _entries(upstream.fhir_get("Condition", patient=patient, _count="200"))
        r = s.get(f"{env.gateway}/Condition", params={"patient": patient, "_count": "200"}, timeout=30)
        if r.status_code == 200 and r.json().get("total") == 0 and not _entries(r.json()):
            withheld += len(held)  # the patient is outside the shared cohort: nothing at all
            continue
        assert r.status_code == 200, r.text
        released = _entries(r.json())
        assert not any(_is_substance_use(c) for c in released), f"Part 2 data of {patient} released"
        withheld += len(held) - len(released)
    assert withheld > 0
