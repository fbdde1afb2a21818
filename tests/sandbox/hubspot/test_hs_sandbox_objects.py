"""Contacts, deals, tasks, engagements, owners and properties through the official client."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hubspot.crm.contacts import ApiException as ContactsApiException
from hubspot.crm.contacts import (
    CollectionResponseSimplePublicObjectWithAssociationsForwardPaging,
    SimplePublicObject,
    SimplePublicObjectWithAssociations,
)
from hubspot.crm.contacts.exceptions import NotFoundException
from hubspot.crm.objects import ApiException as ObjectsApiException
from hubspot.crm.properties import ApiException as PropertiesApiException

from connectors.sandbox import HubSpotSandbox, ManualClock

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _body(exc: Exception) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)  # type: ignore[attr-defined]
    return body


def test_list_pages_follow_after_and_the_last_page_has_no_paging(
    hs_client: Any, hs_sandbox: HubSpotSandbox
) -> None:
    api = hs_client.crm.contacts.basic_api
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = api.get_page(limit=100, after=after)
        assert isinstance(page, CollectionResponseSimplePublicObjectWithAssociationsForwardPaging)
        seen.extend(r.id for r in page.results)
        pages += 1
        if page.paging is None:
            break
        after = page.paging.next.after
        assert page.paging.next.link.endswith(f"after={after}")
    table = hs_sandbox.store.tables["contacts"]
    expected = len(table.listable(archived=False))
    assert len(seen) == len(set(seen)) == expected
    assert pages == -(-expected // 100)
    assert [int(i) for i in seen] == sorted(int(i) for i in seen)


def test_list_caps_pages_at_100(hs_client: Any) -> None:
    page = hs_client.crm.contacts.basic_api.get_page(limit=250)
    assert len(page.results) == 100


def test_records_have_string_properties_and_millisecond_timestamps(
    hs_http: Any, hs_server: Any
) -> None:
    r = hs_http.get(
        f"{hs_server.base_url}/crm/v3/objects/contacts",
        params={"limit": 20, "properties": "email,hs_analytics_num_page_views,hs_email_open"},
    )
    assert r.status_code == 200
    for record in r.json()["results"]:
        assert isinstance(record["id"], str)
        assert ISO_MS.match(record["createdAt"]) and ISO_MS.match(record["updatedAt"])
        assert record["archived"] is False
        for value in record["properties"].values():
            assert value is None or isinstance(value, str)
        assert ISO_MS.match(record["properties"]["lastmodifieddate"])
    assert any(rec["properties"]["hs_analytics_num_page_views"] for rec in r.json()["results"])


def test_properties_parameter_and_unknown_names_on_read(hs_client: Any) -> None:
    page = hs_client.crm.contacts.basic_api.get_page(
        limit=3, properties=["jobtitle", "no_such_property"]
    )
    props = page.results[0].properties
    assert "jobtitle" in props
    assert "no_such_property" not in props
    assert {"hs_object_id", "createdate", "lastmodifieddate"} <= set(props)
    assert "email" not in props  # only what was asked for, plus the basics


def test_associations_parameter_answers_contacts_to_deals(
    hs_client: Any, hs_sandbox: HubSpotSandbox
) -> None:
    store = hs_sandbox.store
    deal_id = int(store.tables["deals"].ids[0])
    contact_id = store.associated("deals", deal_id, "contacts")[0]
    record = hs_client.crm.contacts.basic_api.get_by_id(str(contact_id), associations=["deals"])
    assert isinstance(record, SimplePublicObjectWithAssociations)
    results = record.associations["deals"].results
    assert str(deal_id) in [a.id for a in results]
    assert results[0].type == "contact_to_deal"


def test_archived_parameter_lists_the_recycle_bin(
    hs_client: Any, hs_sandbox: HubSpotSandbox
) -> None:
    page = hs_client.crm.contacts.basic_api.get_page(limit=100, archived=True)
    assert page.results, "the seeded world has archived contacts"
    assert all(r.archived for r in page.results)
    live = {r.id for r in hs_client.crm.contacts.basic_api.get_page(limit=100).results}
    assert not live & {r.id for r in page.results}


def test_get_by_id_and_by_id_property(hs_client: Any, hs_sandbox: HubSpotSandbox) -> None:
    table = hs_sandbox.store.tables["contacts"]
    slot = int(table.listable(archived=False)[5])
    email = table.props(slot)["email"]
    by_id = hs_client.crm.contacts.basic_api.get_by_id(str(int(table.ids[slot])))
    by_email = hs_client.crm.contacts.basic_api.get_by_id(email.upper(), id_property="email")
    assert by_id.id == by_email.id == str(int(table.ids[slot]))
    assert by_email.properties["email"] == email
    with pytest.raises(NotFoundException):
        hs_client.crm.contacts.basic_api.get_by_id("1")
    with pytest.raises(NotFoundException):
        hs_client.crm.contacts.basic_api.get_by_id("nobody@nowhere.example", id_property="email")


def test_create_answers_201_with_a_model_and_rejects_unknown_properties(hs_client: Any) -> None:
    api = hs_client.crm.contacts.basic_api
    created = api.create({"properties": {"email": "new.person@example.org", "firstname": "New"}})
    assert isinstance(created, SimplePublicObject)
    assert created.properties["email"] == "new.person@example.org"
    with pytest.raises(ContactsApiException) as err:
        api.create({"properties": {"email": "other@example.org", "favourite_colour": "blue"}})
    assert err.value.status == 400
    body = _body(err.value)
    assert body["category"] == "VALIDATION_ERROR"
    assert "PROPERTY_DOESNT_EXIST" in body["message"] and "favourite_colour" in body["message"]
    assert body["correlationId"]


def test_duplicate_email_is_409_conflict_with_existing_id(hs_client: Any) -> None:
    api = hs_client.crm.contacts.basic_api
    first = api.create({"properties": {"email": "twice@example.org"}})
    with pytest.raises(ContactsApiException) as err:
        api.create({"properties": {"email": "Twice@example.org"}})
    assert err.value.status == 409
    body = _body(err.value)
    assert body["category"] == "CONFLICT"
    assert body["message"] == f"Contact already exists. Existing ID: {first.id}"


def test_invalid_values_are_rejected_per_type(hs_client: Any) -> None:
    api = hs_client.crm.contacts.basic_api
    for props in (
        {"lifecyclestage": "not-a-stage"},
        {"numemployees": "37"},
        {"hs_email_optout": "maybe"},
        {"hs_object_id": "5"},
    ):
        with pytest.raises(ContactsApiException) as err:
            api.create({"properties": props})
        assert err.value.status == 400, props


def test_date_properties_take_midnight_utc_only(hs_client: Any) -> None:
    """HubSpot's ``date`` type (unlike ``datetime``) refuses any time but midnight UTC."""
    hs_client.crm.properties.core_api.create(
        "contacts",
        {
            "name": "last_scored_on",
            "label": "Last scored on",
            "type": "date",
            "fieldType": "date",
            "groupName": "contactinformation",
        },
    )
    api = hs_client.crm.contacts.basic_api
    with pytest.raises(ContactsApiException) as err:
        api.create({"properties": {"email": "d1@example.org", "last_scored_on": "1606768561954"}})
    body = _body(err.value)
    assert err.value.status == 400 and body["category"] == "VALIDATION_ERROR"
    assert "1606768561954 is at 20:36:1.954 UTC, not midnight!" in body["message"]
    assert "INVALID_DATE" in body["message"]
    one = api.create({"properties": {"email": "d2@example.org", "last_scored_on": "1606694400000"}})
    two = api.create({"properties": {"email": "d3@example.org", "last_scored_on": "2020-11-30"}})
    for record in (one, two):
        got = api.get_by_id(record.id, properties=["last_scored_on"])
        assert got.properties["last_scored_on"] == "2020-11-30"


def test_every_write_advances_the_modification_stamps(
    hs_client: Any, hs_clock: ManualClock
) -> None:
    api = hs_client.crm.contacts.basic_api
    created = api.create({"properties": {"email": "stamps@example.org"}})
    first = api.get_by_id(created.id).properties["lastmodifieddate"]
    hs_clock.advance(61.5)
    updated = api.update(created.id, {"properties": {"jobtitle": "CTO"}})
    assert isinstance(updated, SimplePublicObject)
    again = api.get_by_id(created.id, properties=["jobtitle"])
    assert again.properties["jobtitle"] == "CTO"
    assert again.properties["lastmodifieddate"] > first
    assert again.updated_at > again.created_at


def test_archive_answers_204_and_the_record_moves_to_the_recycle_bin(hs_client: Any) -> None:
    api = hs_client.crm.contacts.basic_api
    created = api.create({"properties": {"email": "gone@example.org"}})
    assert api.archive(created.id) is None
    with pytest.raises(NotFoundException):
        api.get_by_id(created.id)
    archived = api.get_by_id(created.id, archived=True)
    assert archived.archived is True and archived.archived_at is not None


def test_seeded_merges_answer_with_the_survivor(hs_client: Any, hs_sandbox: HubSpotSandbox) -> None:
    store = hs_sandbox.store
    assert store.merged_into, "the seeded world has merged duplicates"
    merged_away, survivor = next(iter(store.merged_into.items()))
    record = hs_client.crm.contacts.basic_api.get_by_id(
        str(merged_away), properties=["hs_merged_object_ids"]
    )
    assert record.id == str(survivor)
    assert str(merged_away) in record.properties["hs_merged_object_ids"].split(";")
    listed = {r.id for r in _all_contacts(hs_client)}
    assert str(merged_away) not in listed and str(survivor) in listed


def _all_contacts(client: Any) -> list[Any]:
    out: list[Any] = []
    after = None
    while True:
        page = client.crm.contacts.basic_api.get_page(limit=100, after=after)
        out.extend(page.results)
        if page.paging is None:
            return out
        after = page.paging.next.after


def test_merge_through_the_api_makes_a_new_record_both_old_ids_answer(hs_client: Any) -> None:
    """HubSpot's merge creates a new record with a new id (developer changelog,
    "Updated merge functionality for contacts and companies")."""
    api = hs_client.crm.contacts.basic_api
    a = api.create({"properties": {"email": "keep@example.org", "firstname": "Keep"}})
    b = api.create({"properties": {"email": "fold@example.org", "jobtitle": "Buyer"}})
    deal = hs_client.crm.deals.basic_api.create(
        {
            "properties": {"dealname": "Follows the merge", "dealstage": "qualifiedtobuy"},
            "associations": [
                {
                    "to": {"id": b.id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}],
                }
            ],
        }
    )
    merged = api.merge({"primaryObjectId": a.id, "objectIdToMerge": b.id})
    assert isinstance(merged, SimplePublicObject)
    assert merged.id not in (a.id, b.id)
    props = ["hs_merged_object_ids", "jobtitle", "email", "firstname"]
    for old in (a.id, b.id):
        via_old = api.get_by_id(old, properties=props)
        assert via_old.id == merged.id
    assert set(via_old.properties["hs_merged_object_ids"].split(";")) == {a.id, b.id}
    assert via_old.properties["jobtitle"] == "Buyer"  # empty fields filled from the merged record
    assert via_old.properties["email"] == "keep@example.org"  # the primary's values win
    assert via_old.properties["firstname"] == "Keep"
    assert merged.created_at == a.created_at  # the older create date is kept
    for email in ("keep@example.org", "fold@example.org"):
        assert api.get_by_id(email, id_property="email").id == merged.id
    # writes to an old id land on the merged record
    api.update(a.id, {"properties": {"jobtitle": "Head of Buying"}})
    assert api.get_by_id(merged.id, properties=["jobtitle"]).properties["jobtitle"] == (
        "Head of Buying"
    )
    listed = {r.id for r in _all_contacts(hs_client)}
    assert merged.id in listed and not {a.id, b.id} & listed
    links = hs_client.crm.associations.v4.batch_api.get_page(
        "contacts", "deals", {"inputs": [{"id": merged.id}]}
    )
    assert [t.to_object_id for r in links.results for t in r.to] == [deal.id]


def test_merging_seeded_contacts_adds_up_their_activity(
    hs_client: Any, hs_sandbox: HubSpotSandbox
) -> None:
    table = hs_sandbox.store.tables["contacts"]
    active = [
        s
        for s in table.listable(archived=False)
        if int(table.props(int(s)).get("hs_analytics_num_page_views") or 0) > 0
    ]
    a, b = (int(s) for s in active[:2])
    props = ["hs_analytics_num_page_views", "hs_email_open", "hs_analytics_last_visit_timestamp"]
    before = [
        hs_client.crm.contacts.basic_api.get_by_id(
            str(int(table.ids[s])), properties=props
        ).properties
        for s in (a, b)
    ]
    merged = hs_client.crm.contacts.basic_api.merge(
        {"primaryObjectId": str(int(table.ids[a])), "objectIdToMerge": str(int(table.ids[b]))}
    )
    after = hs_client.crm.contacts.basic_api.get_by_id(str(int(table.ids[b])), properties=props)
    assert after.id == merged.id
    assert int(after.properties["hs_analytics_num_page_views"]) == sum(
        int(p["hs_analytics_num_page_views"]) for p in before
    )
    assert int(after.properties["hs_email_open"] or 0) == sum(
        int(p["hs_email_open"] or 0) for p in before
    )
    assert after.properties["hs_analytics_last_visit_timestamp"] == max(
        p["hs_analytics_last_visit_timestamp"] for p in before
    )


def test_properties_list_get_create_and_conflict(hs_client: Any) -> None:
    core = hs_client.crm.properties.core_api
    names = {p.name for p in core.get_all("contacts").results}
    assert {"email", "hs_analytics_num_page_views", "lastmodifieddate"} <= names
    one = core.get_by_name("contacts", "numemployees")
    assert one.type == "enumeration" and "25-50" in [o.value for o in one.options]
    spec = {
        "name": "leadsync_score",
        "label": "Lead score",
        "type": "number",
        "fieldType": "number",
        "groupName": "contactinformation",
    }
    created = core.create("contacts", spec)
    assert created.name == "leadsync_score" and created.has_unique_value is False
    with pytest.raises(PropertiesApiException) as err:
        core.create("contacts", spec)
    assert err.value.status == 409
    assert _body(err.value)["category"] == "OBJECT_ALREADY_EXISTS"
    with pytest.raises(PropertiesApiException) as err:
        core.create("contacts", {**spec, "name": "x2", "fieldType": None})
    assert err.value.status == 400
    # the new property is writable and readable at once
    contact = hs_client.crm.contacts.basic_api.create(
        {"properties": {"email": "scored@example.org", "leadsync_score": 87}}
    )
    got = hs_client.crm.contacts.basic_api.get_by_id(contact.id, properties=["leadsync_score"])
    assert got.properties["leadsync_score"] == "87"


def test_unique_value_properties_are_enforced_and_usable_as_id_property(hs_client: Any) -> None:
    hs_client.crm.properties.core_api.create(
        "deals",
        {
            "name": "leadsync_key",
            "label": "Key",
            "type": "string",
            "fieldType": "text",
            "groupName": "dealinformation",
            "hasUniqueValue": True,
        },
    )
    basic = hs_client.crm.deals.basic_api
    deal = basic.create(
        {"properties": {"dealname": "D1", "dealstage": "qualifiedtobuy", "leadsync_key": "k-1"}}
    )
    assert basic.get_by_id("k-1", id_property="leadsync_key").id == deal.id
    with pytest.raises(Exception) as err:
        basic.create(
            {"properties": {"dealname": "D2", "dealstage": "qualifiedtobuy", "leadsync_key": "k-1"}}
        )
    assert err.value.status == 409  # type: ignore[attr-defined]


def test_deals_require_their_fields_and_take_associations(
    hs_client: Any, hs_sandbox: HubSpotSandbox
) -> None:
    contact_id = str(int(hs_sandbox.store.tables["contacts"].ids[0]))
    basic = hs_client.crm.deals.basic_api
    deal = basic.create(
        {
            "properties": {
                "dealname": "Pilot",
                "dealstage": "appointmentscheduled",
                "amount": 1200,
            },
            "associations": [
                {
                    "to": {"id": contact_id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}],
                }
            ],
        }
    )
    assert deal.properties["amount"] == "1200"
    got = basic.get_by_id(deal.id, associations=["contacts"])
    assert [a.id for a in got.associations["contacts"].results] == [contact_id]
    with pytest.raises(Exception) as err:
        basic.create({"properties": {"dealname": "No stage"}})
    assert err.value.status == 400  # type: ignore[attr-defined]
    with pytest.raises(Exception) as err:
        basic.create(
            {
                "properties": {"dealname": "Bad", "dealstage": "qualifiedtobuy"},
                "associations": [
                    {
                        "to": {"id": "999"},
                        "types": [
                            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}
                        ],
                    }
                ],
            }
        )
    assert err.value.status == 400  # type: ignore[attr-defined]


def test_tasks_require_hs_timestamp(hs_client: Any, hs_sandbox: HubSpotSandbox) -> None:
    contact_id = str(int(hs_sandbox.store.tables["contacts"].ids[1]))
    api = hs_client.crm.objects.basic_api
    assoc = [
        {
            "to": {"id": contact_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}],
        }
    ]
    task = api.create(
        "tasks",
        {
            "properties": {
                "hs_timestamp": "1782820800000",
                "hs_task_subject": "Call back",
                "hs_task_status": "NOT_STARTED",
                "hs_task_priority": "HIGH",
                "hs_task_type": "CALL",
            },
            "associations": assoc,
        },
    )
    assert task.properties["hs_timestamp"] == "2026-06-30T12:00:00.000Z"
    with pytest.raises(ObjectsApiException) as err:
        api.create("tasks", {"properties": {"hs_task_subject": "No time"}, "associations": assoc})
    assert err.value.status == 400
    assert "hs_timestamp" in _body(err.value)["message"]
    with pytest.raises(ObjectsApiException):
        api.create(
            "tasks", {"properties": {"hs_timestamp": "1782820800000", "hs_task_status": "DONE"}}
        )
    listed = hs_client.crm.contacts.basic_api.get_by_id(contact_id, associations=["tasks"])
    assert task.id in [a.id for a in listed.associations["tasks"].results]


def test_engagements_list_lazily_and_link_to_contacts(hs_client: Any) -> None:
    api = hs_client.crm.objects.basic_api
    for kind in ("emails", "meetings", "calls", "notes"):
        page = api.get_page(kind, limit=5, properties=["hs_timestamp"], associations=["contacts"])
        assert page.results, kind
        rec = page.results[0]
        assert ISO_MS.match(rec.properties["hs_timestamp"])
        contact_id = rec.associations["contacts"].results[0].id
        back = hs_client.crm.associations.v4.batch_api.get_page(
            "contacts", kind, {"inputs": [{"id": contact_id}]}
        )
        assert rec.id in [str(t.to_object_id) for t in back.results[0].to]


def test_owners_with_and_without_trailing_slash_include_a_queue(
    hs_client: Any, hs_http: Any, hs_server: Any
) -> None:
    owners = hs_client.crm.owners.owners_api.get_page(limit=100).results
    assert {o.type for o in owners} == {"PERSON", "QUEUE"}
    plain = hs_http.get(f"{hs_server.base_url}/crm/v3/owners")
    assert plain.status_code == 200
    assert [o["id"] for o in plain.json()["results"]] == [o.id for o in owners]
    one = hs_client.crm.owners.owners_api.get_by_id(int(owners[0].id))
    assert one.email == owners[0].email


def test_deals_seeded_open_won_and_lost_with_contacts(hs_client: Any) -> None:
    stages: set[str] = set()
    after = None
    while True:
        page = hs_client.crm.deals.basic_api.get_page(
            limit=100, after=after, properties=["dealstage"], associations=["contacts"]
        )
        for deal in page.results:
            stages.add(deal.properties["dealstage"])
            assert deal.associations["contacts"].results
        if page.paging is None:
            break
        after = page.paging.next.after
    assert {"closedwon", "closedlost"} <= stages
    assert stages - {"closedwon", "closedlost"}


def test_deal_and_task_writes_advance_hs_lastmodifieddate(
    hs_client: Any, hs_sandbox: HubSpotSandbox, hs_clock: ManualClock
) -> None:
    deal_id = str(int(hs_sandbox.store.tables["deals"].ids[0]))
    hs_clock.advance(90)
    hs_client.crm.deals.basic_api.update(deal_id, {"properties": {"amount": "999"}})
    got = hs_client.crm.deals.basic_api.get_by_id(deal_id, properties=["amount"])
    assert got.properties["hs_lastmodifieddate"] == "2026-06-30T12:01:30.000Z"
    assert got.updated_at.timestamp() == hs_clock.now()
    call_id = hs_client.crm.objects.basic_api.get_page("calls", limit=1).results[0].id
    hs_clock.advance(30)
    hs_client.crm.objects.basic_api.update(
        "calls", call_id, {"properties": {"hs_call_title": "Renamed"}}
    )
    call = hs_client.crm.objects.basic_api.get_by_id("calls", call_id, properties=["hs_call_title"])
    assert call.properties["hs_call_title"] == "Renamed"
    assert call.properties["hs_lastmodifieddate"] == "2026-06-30T12:02:00.000Z"


def test_at_most_ten_unique_value_properties_per_object(hs_client: Any) -> None:
    core = hs_client.crm.properties.core_api

    def unique(i: int) -> dict[str, Any]:
        return {
            "name": f"leadsync_key_{i}",
            "label": f"Key {i}",
            "type": "string",
            "fieldType": "text",
            "groupName": "contactinformation",
            "hasUniqueValue": True,
        }

    for i in range(10):
        assert core.create("contacts", unique(i)).has_unique_value is True
    with pytest.raises(PropertiesApiException) as err:
        core.create("contacts", unique(10))
    assert err.value.status == 400
