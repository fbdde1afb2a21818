"""Faults on demand, call statistics and reset, through the loopback server."""

from __future__ import annotations

import json
from typing import Any

import pytest
import urllib3
from hubspot.crm.contacts.exceptions import ServiceException

from connectors.sandbox import HubSpotSandbox


def test_commit_then_drop_applies_the_write_and_closes_the_connection(
    hs_client: Any, hs_http: Any, hs_server: Any, hs_sandbox: HubSpotSandbox
) -> None:
    hs_http.post(f"{hs_server.base_url}/__sandbox/faults", json={"commit_then_drop": 1.0})
    with pytest.raises(urllib3.exceptions.HTTPError):
        hs_client.crm.contacts.basic_api.create({"properties": {"email": "dropped@example.org"}})
    hs_http.post(f"{hs_server.base_url}/__sandbox/faults", json={})
    # the write happened: a naive retry now meets a duplicate
    got = hs_client.crm.contacts.basic_api.get_by_id("dropped@example.org", id_property="email")
    assert got.properties["email"] == "dropped@example.org"
    stats = hs_http.get(f"{hs_server.base_url}/__sandbox/stats").json()
    assert stats["by_status"]["dropped"] == 1


def test_commit_then_drop_leaves_reads_alone(hs_client: Any, hs_http: Any, hs_server: Any) -> None:
    hs_http.post(f"{hs_server.base_url}/__sandbox/faults", json={"commit_then_drop": 1.0})
    assert hs_client.crm.contacts.basic_api.get_page(limit=1).results
    assert hs_client.crm.contacts.search_api.do_search({"limit": 1}).results


def test_error_rate_answers_503_in_hubspots_shape(
    hs_client: Any, hs_http: Any, hs_server: Any
) -> None:
    hs_http.post(f"{hs_server.base_url}/__sandbox/faults", json={"error_rate": 1.0})
    with pytest.raises(ServiceException) as err:
        hs_client.crm.contacts.basic_api.get_page(limit=1)
    assert err.value.status == 503
    body = json.loads(err.value.body)
    assert body["status"] == "error" and body["category"] and body["correlationId"]


def test_stats_count_routes_with_ids_replaced_and_batch_paths_literal(
    hs_client: Any, hs_http: Any, hs_server: Any, hs_sandbox: HubSpotSandbox
) -> None:
    contact_id = str(int(hs_sandbox.store.tables["contacts"].ids[0]))
    hs_client.crm.contacts.basic_api.get_by_id(contact_id)
    hs_client.crm.contacts.basic_api.get_by_id(contact_id)
    hs_client.crm.contacts.batch_api.update({"inputs": [{"id": contact_id, "properties": {}}]})
    hs_client.crm.owners.owners_api.get_page()
    email = hs_sandbox.store.tables["contacts"].props(0)["email"]
    hs_client.crm.contacts.basic_api.get_by_id(email, id_property="email")
    stats = hs_http.get(f"{hs_server.base_url}/__sandbox/stats").json()
    assert stats["by_route"]["GET /crm/v3/objects/contacts/{id}"] == 3  # by id or by e-mail
    assert stats["by_route"]["POST /crm/v3/objects/contacts/batch/update"] == 1
    assert stats["by_route"]["GET /crm/v3/owners"] == 1
    assert stats["total"] == 5 and stats["by_status"] == {"200": 5}


def test_reset_restores_the_seeded_state(hs_client: Any, hs_http: Any, hs_server: Any) -> None:
    created = hs_client.crm.contacts.basic_api.create({"properties": {"email": "temp@example.org"}})
    assert hs_http.post(f"{hs_server.base_url}/__sandbox/reset").status_code == 200
    r = hs_http.get(f"{hs_server.base_url}/crm/v3/objects/contacts/{created.id}")
    assert r.status_code == 404
    assert hs_http.get(f"{hs_server.base_url}/__sandbox/stats").json()["total"] == 1


def test_the_same_app_mounts_on_responses_without_sockets(hs_app: Any) -> None:
    import requests
    import responses

    from connectors.sandbox import mount_responses

    base = "https://api.hubapi.example"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount_responses(hs_app, rsps, base)
        session = requests.Session()
        session.headers["Authorization"] = "Bearer sandbox-token"
        page = session.get(f"{base}/crm/v3/objects/contacts", params={"limit": 2})
        assert page.status_code == 200 and len(page.json()["results"]) == 2
        created = session.post(
            f"{base}/crm/v3/objects/contacts", json={"properties": {"email": "rsps@example.org"}}
        )
        assert created.status_code == 201
        hs_app.faults.commit_then_drop = 1.0
        with pytest.raises(requests.exceptions.ConnectionError):
            session.post(
                f"{base}/crm/v3/objects/contacts",
                json={"properties": {"email": "rsps2@example.org"}},
            )
