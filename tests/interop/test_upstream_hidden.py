"""sekmet builds every absolute URL from its own base (Location, fullUrl,
paging links) and ignores forwarding headers: no trace of it may reach a
partner. Every response in the suite is already checked for the upstream's
base and host:port (conftest hook); these tests go where the traces would be."""

from __future__ import annotations

import pytest
from fhirclient.models.observation import Observation as SmartObservation

from fhir_checks import find_traces


def test_sekmet_really_puts_its_base_everywhere(env, upstream):
    """The premise: without the gateway, links and fullUrls name sekmet."""
    bundle = upstream.fhir_get("Observation", patient="example", _count="2")
    assert all(link["url"].startswith(env.upstream) for link in bundle["link"])
    assert all(e["fullUrl"].startswith(env.upstream) for e in bundle["entry"])


@pytest.mark.parametrize("relation", ["self", "next"])
def test_paging_links_point_at_the_gateway(env, http, relation):
    s = http("st-brigid", "TREAT")
    bundle = s.get(f"{env.gateway}/Observation", params={"patient": "example", "_count": "3"}, timeout=30).json()
    links = {link["relation"]: link["url"] for link in bundle["link"]}
    # `first`/`last` are not passed on: servers add them even to empty
    # results, which a result the gateway answers itself must look like.
    assert "first" not in links and "last" not in links
    assert links[relation].startswith(env.gateway + "/Observation?")
    page = s.get(links[relation], timeout=30)
    assert page.status_code == 200
    assert page.json()["resourceType"] == "Bundle"


def test_full_urls_point_at_the_gateway(env, http):
    bundle = http("maple-primary", "TREAT").get(
        f"{env.gateway}/Encounter", params={"patient": "example"}, timeout=30
    ).json()
    assert bundle["entry"]
    for entry in bundle["entry"]:
        r = entry["resource"]
        assert entry["fullUrl"] == f"{env.gateway}/{r['resourceType']}/{r['id']}"


def test_fhirclient_follows_next_links_only_to_the_gateway(env, smart):
    """fhirclient follows any http(s) `next` link (even to another host), so a
    leaked upstream link would be followed straight past the gateway; the
    response hook refuses any request not under the gateway base."""
    server = smart("maple-primary", "TREAT").server
    search = SmartObservation.where(struct={"patient": "pat-0001", "_count": "2"})
    pages = 0
    for bundle in search.perform_iter(server):
        pages += 1
        assert bundle.link
    assert pages >= 2


def test_upstream_error_words_stay_behind(env, http, upstream):
    direct = upstream.get(f"{env.upstream}/Patient/does-not-exist", timeout=30)
    assert direct.status_code == 404
    upstream_words = direct.json()["issue"][0]["diagnostics"]
    r = http("maple-primary", "TREAT").get(f"{env.gateway}/Patient/does-not-exist", timeout=30)
    assert r.status_code == 404
    assert upstream_words not in r.text


def test_upstream_server_headers_stay_behind(env, http, upstream):
    direct = upstream.get(f"{env.upstream}/Patient/example", timeout=30)
    assert "uvicorn" in direct.headers.get("server", "")
    r = http("maple-primary", "TREAT").get(f"{env.gateway}/Patient/example", timeout=30)
    assert "uvicorn" not in r.headers.get("server", "")
    assert not find_traces(str(dict(r.headers)), env.traces)
    for name in ("access-control-expose-headers", "x-request-id-upstream"):
        assert name not in {k.lower() for k in r.headers}


def test_a_location_under_an_upstream_alias_is_rewritten_not_leaked(env, http, upstream):
    """Through the alias gateway (upstream_url names sekmet as localhost, sekmet
    names itself 127.0.0.1, configured as gateway.upstream_aliases) sekmet's
    Location is rewritten to the gateway, never passed on with the upstream's
    address (docs/upstreams.md)."""
    r = http("riverside-bh", "COC").post(
        f"{env.alias}/Task",
        json={"resourceType": "Task", "status": "requested", "intent": "order",
              "for": {"reference": "Patient/pat-0005"}},
        headers={"Content-Type": "application/fhir+json"}, timeout=30,
    )
    assert r.status_code == 201
    assert r.headers["Location"].startswith(env.alias), r.headers["Location"]
    # The body may be withheld (this gateway also applies the consents
    # recorded in sekmet); the Location names the new Task either way.
    task_id = r.headers["Location"].split("/Task/", 1)[1].split("/")[0]
    assert upstream.fhir_get(f"Task/{task_id}")["for"] == {"reference": "Patient/pat-0005"}
