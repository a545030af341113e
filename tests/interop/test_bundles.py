"""batch and transaction Bundles against the real upstream: every entry is
decided as a request of its own; a batch answers each entry, a transaction
is all or nothing."""

from __future__ import annotations


def _post(session, env, bundle: dict):
    return session.post(
        env.gateway,
        json=bundle,
        headers={"Content-Type": "application/fhir+json"},
        timeout=60,
    )


def test_a_batch_answers_each_entry_on_its_own(env, http, upstream):
    patient = "pat-0003"  # in the care-coordination referral cohort
    assert upstream.fhir_get(f"Patient/{patient}")["id"] == patient
    r = _post(http("maple-primary", "TREAT"), env, {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{patient}"}},
            {"request": {"method": "GET", "url": "Practitioner"}},
            {"request": {"method": "GET", "url": "Patient/no-such-patient"}},
        ],
    })
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["type"] == "batch-response"
    first, second, third = bundle["entry"]
    assert first["response"]["status"].startswith("200")
    assert first["resource"]["id"] == patient
    assert second["response"]["status"].startswith("403")
    assert second["response"]["outcome"]["issue"][0]["code"] == "forbidden"
    assert "resource" not in second, "a refused entry carries no data"
    assert third["response"]["status"].startswith("404")


def test_a_transaction_with_one_refused_entry_changes_nothing(env, http, upstream):
    before = upstream.fhir_get("Task", _summary="count")["total"]
    task = {
        "resourceType": "Task", "status": "requested", "intent": "order",
        "for": {"reference": "Patient/pat-0003"},
        "description": "transaction test: must not be stored",
    }
    r = _post(http("riverside-bh", "COC"), env, {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": task, "request": {"method": "POST", "url": "Task"}},
            {"request": {"method": "DELETE", "url": "Patient/pat-0003"}},
        ],
    })
    assert r.status_code == 403, r.text
    issues = r.json()["issue"]
    assert any("Bundle.entry[1]" in " ".join(i.get("expression", [])) for i in issues), issues
    assert upstream.fhir_get("Task", _summary="count")["total"] == before, "nothing was written"
