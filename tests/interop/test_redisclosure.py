"""42 CFR Part 2 against the real upstream, with the patient's consent as the
source system recorded it: the synthetic population's Part 2 Consents live
in sekmet and name their recipients by the upstream's Organization ids
(`Organization/org-maple-primary`), which partners.toml maps to partners
(`organization`). The second gateway (env.alias) pulls them (consent feed).

A substance-use diagnosis (ICD-10-CM F10-F19: Part 2 by its code) is
written into sekmet for a patient of the care-coordination referral cohort
whose Part 2 consent permits Maple Street (treatment) and not St. Brigid:

- Maple Street, for treatment, receives it with the §2.32 redisclosure
  notice: the 42CFRPart2 and NORDSCLCD security labels on the resource, and
  the notice as a searchset entry (search.mode `outcome`) or, on a read, in
  the X-Redisclosure-Notice header;
- St. Brigid, Maple Street for another purpose, and Maple Street through the
  gateway that does not read the upstream's Consents get nothing of it.
"""

from __future__ import annotations

import time

import pytest

from test_cohorts import _referred

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ETH = (ACT_CODE, "ETH")
NOTICE_LABELS = {(ACT_CODE, "42CFRPart2"), (ACT_CODE, "NORDSCLCD")}
NOTICE_HEADER = "X-Redisclosure-Notice"
PERMITTED = "Organization/org-maple-primary"  # maple-primary's `organization`
NOT_PERMITTED = "Organization/org-st-brigid"  # st-brigid's
SHIPPED_CONSENTS = {"pat-0002", "pat-0003"}  # policies/consents/ also speak for them
DEADLINE = 30  # seconds for the consent feed (polls every 0.5 s)


def _entries(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", [])]


def _part2_permits(upstream) -> dict[str, set[str]]:
    """Patient id -> the actors of its active Part 2 (ETH) permit in sekmet."""
    out: dict[str, set[str]] = {}
    for consent in _entries(upstream.fhir_get("Consent", _count="500")):
        provision = consent.get("provision", {})
        labels = {(c.get("system"), c.get("code")) for c in provision.get("securityLabel", [])}
        if consent.get("status") != "active" or provision.get("type") != "permit" or ETH not in labels:
            continue
        if {p.get("code") for p in provision.get("purpose", [])} != {"TREAT"}:
            continue
        patient = consent["patient"]["reference"].split("/")[-1]
        out[patient] = {a["reference"]["reference"] for a in provision.get("actor", [])}
    return out


@pytest.fixture(scope="module")
def part2_diagnosis(upstream, env):
    """(patient, Condition id) of a Part 2 diagnosis written into sekmet for
    the test, removed afterwards."""
    permits = _part2_permits(upstream)
    referred = _referred(upstream)
    candidates = sorted(
        p for p, actors in permits.items()
        if PERMITTED in actors and NOT_PERMITTED not in actors and p in referred and p not in SHIPPED_CONSENTS
    )
    assert candidates, f"no referred patient whose Part 2 consent names only Maple Street: {permits}"
    patient = candidates[0]
    condition = {
        "resourceType": "Condition",
        "id": f"interop-part2-{patient}",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": "confirmed"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F10.20",
                             "display": "Alcohol dependence, uncomplicated"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "recordedDate": "2026-10-01",
    }
    put = upstream.put(f"{env.upstream}/Condition/{condition['id']}", json=condition, timeout=30)
    assert put.status_code in (200, 201), put.text
    try:
        yield patient, condition["id"]
    finally:
        upstream.delete(f"{env.upstream}/Condition/{condition['id']}", timeout=30)


def _labels(resource: dict) -> set[tuple[str, str]]:
    return {(c.get("system"), c.get("code")) for c in resource.get("meta", {}).get("security", [])}


def _search(session, base: str, patient: str) -> dict:
    r = session.get(f"{base}/Condition", params={"patient": patient, "_count": "200"}, timeout=30)
    assert r.status_code == 200, r.text[:300]
    return r.json()


def test_part2_data_leaves_with_the_consent_in_sekmet_and_the_redisclosure_notice(
    env, http, fhirpy, upstream, part2_diagnosis
):
    patient, condition_id = part2_diagnosis
    truth = upstream.fhir_get(f"Condition/{condition_id}")
    client = fhirpy("maple-primary", "TREAT", base=env.alias)

    # The feed has read the population's Consents at start; allow it a poll.
    started = time.monotonic()
    while True:
        bundle = client.resources("Condition").search(patient=patient).limit(200).fetch_raw()
        entries = [dict(e["resource"].serialize()) for e in bundle.get("entry", [])]
        if any(r.get("id") == condition_id for r in entries):
            break
        assert time.monotonic() - started < DEADLINE, "the consented Part 2 diagnosis never arrived"
        time.sleep(0.5)

    released = next(r for r in entries if r.get("id") == condition_id)
    assert released["code"] == truth["code"] and released["subject"] == truth["subject"], "the data arrived"
    assert NOTICE_LABELS <= _labels(released), released.get("meta")
    notices = [e for e in bundle["entry"] if e.get("search", {}).get("mode") == "outcome"]
    assert len(notices) == 1, "one notice entry in the searchset"
    outcome = dict(notices[0]["resource"].serialize())
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "information"
    assert "42 CFR part 2" in outcome["issue"][0]["details"]["text"], "the §2.32 notice itself"
    assert {(c["system"], c["code"]) for c in outcome["issue"][0]["details"]["coding"]} <= NOTICE_LABELS
    # fhirpy's plain fetch() hands back Conditions only: the notice is in
    # the Bundle (fetch_raw), the labels on each resource.
    fetched = client.resources("Condition").search(patient=patient).limit(200).fetch()
    assert condition_id in [c["id"] for c in fetched]

    # A read: the labels on the resource, the notice in the header.
    read = http("maple-primary", "TREAT").get(f"{env.alias}/Condition/{condition_id}", timeout=30)
    assert read.status_code == 200, read.text[:300]
    assert "42 CFR part 2" in read.headers.get(NOTICE_HEADER, "")
    assert NOTICE_LABELS <= _labels(read.json())
    assert read.json()["code"] == truth["code"]


@pytest.mark.parametrize(
    ("partner", "purpose", "gateway"),
    [
        ("st-brigid", "TREAT", "alias"),  # not named by the consent
        ("maple-primary", "CAREMGT", "alias"),  # the consent is for treatment only
        ("maple-primary", "TREAT", "gateway"),  # this gateway does not read sekmet's Consents
    ],
    ids=["unconsented-recipient", "unconsented-purpose", "consent-not-known"],
)
def test_part2_data_is_withheld_without_a_consent_that_permits_it(
    env, http, upstream, part2_diagnosis, partner, purpose, gateway
):
    patient, condition_id = part2_diagnosis
    base = env.alias if gateway == "alias" else env.gateway
    held = _entries(upstream.fhir_get("Condition", patient=patient, _count="200"))
    assert condition_id in [c["id"] for c in held], "sekmet holds the diagnosis"
    s = http(partner, purpose)
    bundle = _search(s, base, patient)
    released = _entries(bundle)
    assert condition_id not in [r.get("id") for r in released], f"Part 2 data released to {partner}/{purpose}"
    assert released, "the rest of the patient's record is still shared"
    assert not any(r["resourceType"] == "OperationOutcome" for r in released), "no notice without Part 2 data"
    read = s.get(f"{base}/Condition/{condition_id}", timeout=30)
    assert read.status_code == 404, read.text[:300]
    assert NOTICE_HEADER not in read.headers


# Subsetting (`_elements`, `_summary`) asks the upstream to leave elements
# out, among them the code that makes the diagnosis Part 2 data. The
# gateway takes them off the forwarded request, decides on whole resources
# and subsets after (subset.rs): the diagnosis must not reach a recipient
# the consent does not name.
SUBSETTING = [
    pytest.param({"_elements": "subject"}, id="_elements=subject"),
    pytest.param({"_elements": "id"}, id="_elements=id"),
    pytest.param({"_summary": "text"}, id="_summary=text"),
    pytest.param({"_summary": "true"}, id="_summary=true"),
    pytest.param({"_summary": "data"}, id="_summary=data"),
]


@pytest.mark.parametrize("params", SUBSETTING)
@pytest.mark.parametrize("gateway", ["alias", "gateway"])
def test_subsetting_does_not_release_part2_data(env, http, upstream, part2_diagnosis, params, gateway):
    patient, condition_id = part2_diagnosis
    # st-brigid is not named by the consent; maple-primary is unknown to the
    # gateway that does not read sekmet's Consents.
    partner, base = ("st-brigid", env.alias) if gateway == "alias" else ("maple-primary", env.gateway)
    direct = upstream.fhir_get("Condition", patient=patient, _count="200", **params)
    assert condition_id in [r.get("id") for r in _entries(direct)], "sekmet answers the subsetted search"
    r = http(partner, "TREAT").get(
        f"{base}/Condition", params={"patient": patient, "_count": "200", **params}, timeout=30
    )
    if r.status_code == 403:
        assert r.json()["resourceType"] == "OperationOutcome"
        return
    assert r.status_code == 200, r.text[:300]
    released = [x.get("id") for x in _entries(r.json())]
    assert condition_id not in released, f"Part 2 diagnosis released to {partner} through {params}"


@pytest.mark.gap
@pytest.mark.xfail(
    reason="the Part 2 program labels its own records ETH and R (restricted); the shipped clinical-record "
           "grant lists `part2` but not `restricted`, so they never leave, consent or not, although the "
           "agreement says Part 2 data leaves where the patient consented; left failing closed on purpose, "
           "for counsel to decide (policies/README.md, 'Sensitive data')",
    strict=False,
)
def test_the_programs_own_labelled_part2_records_reach_the_consented_recipient(env, http, upstream):
    permits = _part2_permits(upstream)
    referred = _referred(upstream)
    labelled = {}
    for c in _entries(upstream.fhir_get("Condition", _count="1000")):
        if ETH in _labels(c):
            labelled.setdefault(c["subject"]["reference"].split("/")[-1], []).append(c["id"])
    patient = sorted(
        p for p, actors in permits.items()
        if PERMITTED in actors and p in referred and p in labelled and p not in SHIPPED_CONSENTS
    )[0]
    r = http("maple-primary", "TREAT").get(
        f"{env.alias}/Condition", params={"patient": patient, "_count": "200"}, timeout=30
    )
    assert r.status_code == 200, r.text[:300]
    released = {x.get("id") for x in _entries(r.json())}
    assert set(labelled[patient]) <= released, (labelled[patient], released)
