"""The HubSpot surface connectors call beyond leadsync's own: the official client's
``get_all`` over every record the sandbox holds, object types the sandbox does not
model (answered as an empty portal, never a route-less 404), schemas, v2 properties,
the v1 engagements feed, users, subscriptions, and the v3 associations API.

Expected counts come from the sandbox's own store, so a different seeded world
changes the numbers, not the outcome."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from connectors.sandbox import HubSpotSandbox
from connectors.sandbox.framework import RunningServer

ENGAGEMENTS = ("calls", "emails", "meetings", "notes", "tasks")


def held_ids(hs: HubSpotSandbox, obj: str) -> set[str]:
    table = hs.store.tables[obj]
    return {str(int(i)) for i in table.listable_ids(archived=False)}


# ------------------------------------------------------------ official client


@pytest.mark.parametrize("obj", ["contacts", "deals"])
def test_get_all_reads_every_record(hs_client: Any, hs_sandbox: HubSpotSandbox, obj: str) -> None:
    api = getattr(hs_client.crm, obj)
    records = api.get_all()
    assert {r.id for r in records} == held_ids(hs_sandbox, obj)
    assert len(records) == len(held_ids(hs_sandbox, obj)) > 0


def test_get_all_owners(hs_client: Any, hs_sandbox: HubSpotSandbox) -> None:
    owners = hs_client.crm.owners.get_all()
    expected = {str(o.id) for o in hs_sandbox.store.owners if not o.archived}
    assert {o.id for o in owners} == expected and expected


@pytest.mark.parametrize("obj", ENGAGEMENTS)
def test_get_all_engagements(hs_client: Any, hs_sandbox: HubSpotSandbox, obj: str) -> None:
    records = hs_client.crm.objects.get_all(obj)
    assert {r.id for r in records} == held_ids(hs_sandbox, obj)


@pytest.mark.parametrize("api", ["tickets", "line_items", "products", "quotes"])
def test_unmodelled_types_read_as_an_empty_portal(hs_client: Any, api: str) -> None:
    assert getattr(hs_client.crm, api).get_all() == []


# -------------------------------------------------------- unmodelled objects


@pytest.mark.parametrize(
    "obj",
    ["communications", "tickets", "line_items", "products", "quotes", "postal_mail",
     "goal_targets", "feedback_submissions", "0-5", "ticket"],
)  # fmt: skip
def test_unmodelled_types_are_empty_not_missing(hs_http: requests.Session, hs_server: RunningServer, obj: str) -> None:  # fmt: skip
    base = f"{hs_server.base_url}/crm/v3"
    listing = hs_http.get(f"{base}/objects/{obj}", params={"limit": 100}, timeout=5)
    assert listing.status_code == 200 and listing.json() == {"results": []}
    found = hs_http.post(f"{base}/objects/{obj}/search", json={"filterGroups": []}, timeout=5)
    assert found.status_code == 200 and found.json() == {"total": 0, "results": []}
    props = hs_http.get(f"{base}/properties/{obj}", timeout=5)
    assert props.status_code == 200
    assert "hs_object_id" in {p["name"] for p in props.json()["results"]}
    one = hs_http.get(f"{base}/objects/{obj}/123", timeout=5)
    assert one.status_code == 404 and one.json()["category"] == "OBJECT_NOT_FOUND"
    assert "No route" not in one.json()["message"]


def test_writes_to_unmodelled_types_are_missing_scopes(hs_http: requests.Session, hs_server: RunningServer) -> None:  # fmt: skip
    answer = hs_http.post(
        f"{hs_server.base_url}/crm/v3/objects/tickets", json={"properties": {}}, timeout=5
    )
    assert answer.status_code == 403
    assert answer.json()["category"] == "MISSING_SCOPES"


def test_an_unknown_path_is_still_not_found(hs_http: requests.Session, hs_server: RunningServer) -> None:  # fmt: skip
    assert hs_http.get(f"{hs_server.base_url}/crm/v3/objects/widgets", timeout=5).status_code == 404


def test_ticket_pipelines_are_empty(hs_http: requests.Session, hs_server: RunningServer) -> None:
    answer = hs_http.get(f"{hs_server.base_url}/crm/v3/pipelines/tickets", timeout=5)
    assert answer.status_code == 200 and answer.json() == {"results": []}


# ----------------------------------------------------------- missing endpoints


def test_schemas_list_no_custom_objects(
    hs_http: requests.Session, hs_server: RunningServer
) -> None:
    answer = hs_http.get(f"{hs_server.base_url}/crm/v3/schemas", timeout=5)
    assert answer.status_code == 200 and answer.json() == {"results": []}


@pytest.mark.parametrize(
    "name,obj", [("contacts", "contacts"), ("deal", "deals"), ("deals", "deals")]
)
def test_v2_properties_match_v3(hs_http: requests.Session, hs_server: RunningServer, hs_sandbox: HubSpotSandbox, name: str, obj: str) -> None:  # fmt: skip
    answer = hs_http.get(f"{hs_server.base_url}/properties/v2/{name}/properties", timeout=5)
    assert answer.status_code == 200
    body = answer.json()
    assert isinstance(body, list)
    assert {p["name"] for p in body} == set(hs_sandbox.store.tables[obj].defs)
    first = body[0]
    assert {"name", "label", "type", "fieldType", "groupName", "options", "readOnlyValue"} <= set(first)  # fmt: skip


def test_engagements_paged_reads_every_engagement(hs_http: requests.Session, hs_server: RunningServer, hs_sandbox: HubSpotSandbox) -> None:  # fmt: skip
    seen: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = hs_http.get(
            f"{hs_server.base_url}/engagements/v1/engagements/paged",
            params={"limit": 250, "offset": offset},
            timeout=5,
        ).json()
        assert len(page["results"]) <= 250
        seen.extend(page["results"])
        offset = page["offset"]
        if not page["hasMore"]:
            break
    expected = set().union(*(held_ids(hs_sandbox, t) for t in ENGAGEMENTS))
    assert {str(e["engagement"]["id"]) for e in seen} == expected
    assert len(seen) == len(expected)
    kinds = {e["engagement"]["type"] for e in seen}
    assert kinds <= {"CALL", "EMAIL", "MEETING", "NOTE", "TASK"}
    with_contacts = [e for e in seen if e["associations"]["contactIds"]]
    assert with_contacts, "engagements carry their contacts"


def test_settings_users(hs_http: requests.Session, hs_server: RunningServer, hs_sandbox: HubSpotSandbox) -> None:  # fmt: skip
    answer = hs_http.get(f"{hs_server.base_url}/settings/v3/users", timeout=5)
    assert answer.status_code == 200
    ids = {u["id"] for u in answer.json()["results"]}
    expected = {str(o.user_id) for o in hs_sandbox.store.owners if o.user_id is not None and not o.archived}  # fmt: skip
    assert ids == expected and expected


def test_subscription_definitions(hs_http: requests.Session, hs_server: RunningServer) -> None:
    answer = hs_http.get(f"{hs_server.base_url}/email/public/v1/subscriptions", timeout=5)
    assert answer.status_code == 200
    assert answer.json()["subscriptionDefinitions"]
    definitions = {d["id"] for d in answer.json()["subscriptionDefinitions"]}
    changes: list[dict[str, Any]] = []
    offset = "0"
    while True:
        page = hs_http.get(
            f"{hs_server.base_url}/email/public/v1/subscriptions/timeline",
            params={"offset": offset, "limit": 50},
            timeout=5,
        ).json()
        changes.extend(page["timeline"])
        offset = page["offset"]
        if not page["hasMore"]:
            break
    unsubscribes = []
    offset = "-1"
    while True:  # what the marketing e-mail events say, the timeline must say too
        events = hs_http.get(
            f"{hs_server.base_url}/email/public/v1/events",
            params={"eventType": "STATUSCHANGE", "limit": 1000, "offset": offset},
            timeout=5,
        ).json()
        unsubscribes.extend(events["events"])
        offset = events["offset"]
        if not events["hasMore"]:
            break
    assert len(changes) == len(unsubscribes)
    assert sorted(c["recipient"] for c in changes) == sorted(e["recipient"] for e in unsubscribes)
    assert {c["changes"][0]["subscriptionId"] for c in changes} <= definitions


# ----------------------------------------------------------- v3 associations


def test_v3_association_batch_read(hs_http: requests.Session, hs_server: RunningServer, hs_sandbox: HubSpotSandbox) -> None:  # fmt: skip
    store = hs_sandbox.store
    deals = sorted(held_ids(hs_sandbox, "deals"))[:20]
    answer = hs_http.post(
        f"{hs_server.base_url}/crm/v3/associations/deals/contacts/batch/read",
        json={"inputs": [{"id": d} for d in deals]},
        timeout=5,
    )
    assert answer.status_code in (200, 207)
    got = {r["from"]["id"]: {t["id"] for t in r["to"]} for r in answer.json()["results"]}
    for deal in deals:
        expected = {str(i) for i in store.associated("deals", int(deal), "contacts")}
        assert got.get(deal, set()) == expected
    types = {t["type"] for r in answer.json()["results"] for t in r["to"]}
    assert types <= {"deal_to_contact"}


def test_v3_object_associations_page(hs_http: requests.Session, hs_server: RunningServer, hs_sandbox: HubSpotSandbox) -> None:  # fmt: skip
    deal = sorted(held_ids(hs_sandbox, "deals"))[0]
    answer = hs_http.get(
        f"{hs_server.base_url}/crm/v3/objects/deals/{deal}/associations/contacts", timeout=5
    )
    assert answer.status_code == 200
    expected = {str(i) for i in hs_sandbox.store.associated("deals", int(deal), "contacts")}
    assert {r["id"] for r in answer.json()["results"]} == expected


def test_v3_association_batch_create(hs_http: requests.Session, hs_server: RunningServer, hs_sandbox: HubSpotSandbox) -> None:  # fmt: skip
    deal = sorted(held_ids(hs_sandbox, "deals"))[0]
    contact = sorted(held_ids(hs_sandbox, "contacts"))[-1]
    answer = hs_http.post(
        f"{hs_server.base_url}/crm/v3/associations/deals/contacts/batch/create",
        json={"inputs": [{"from": {"id": deal}, "to": {"id": contact}, "type": "deal_to_contact"}]},
        timeout=5,
    )
    assert answer.status_code == 201
    assert int(contact) in hs_sandbox.store.associated("deals", int(deal), "contacts")


def test_engagements_recent_modified(hs_http: requests.Session, hs_server: RunningServer, hs_sandbox: HubSpotSandbox) -> None:  # fmt: skip
    stamps = sorted(
        float(t.updated_ms[s])
        for name in ENGAGEMENTS
        for t in [hs_sandbox.store.tables[name]]
        for s in t.listable(archived=False)
    )
    since = int(stamps[len(stamps) // 2])
    seen: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = hs_http.get(
            f"{hs_server.base_url}/engagements/v1/engagements/recent/modified",
            params={"since": since, "count": 100, "offset": offset},
            timeout=5,
        ).json()
        seen.extend(page["results"])
        offset = page["offset"]
        if not page["hasMore"]:
            break
    expected = min(10_000, sum(1 for x in stamps if x >= since))
    assert len(seen) == expected == page["total"]
    updated = [e["engagement"]["lastUpdated"] for e in seen]
    assert updated == sorted(updated, reverse=True) and min(updated) >= since
