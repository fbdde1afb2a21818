"""Batch endpoints: limits one below and one above, partial failures, upserts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hubspot.crm.contacts import (
    ApiException,
    BatchResponseSimplePublicObject,
    BatchResponseSimplePublicObjectWithErrors,
    BatchResponseSimplePublicUpsertObject,
)

from connectors.sandbox import HubSpotSandbox, ManualClock


def _ids(hs: HubSpotSandbox, n: int) -> list[str]:
    table = hs.store.tables["contacts"]
    return [str(int(table.ids[s])) for s in table.listable(archived=False)[:n]]


def test_batch_read_of_100_is_fine_and_101_gets_the_exact_400(
    hs_client: Any, hs_sandbox: HubSpotSandbox
) -> None:
    batch = hs_client.crm.contacts.batch_api
    ids = _ids(hs_sandbox, 101)
    ok = batch.read({"inputs": [{"id": i} for i in ids[:100]], "properties": ["email"]})
    assert isinstance(ok, BatchResponseSimplePublicObject)
    assert ok.status == "COMPLETE" and len(ok.results) == 100
    with pytest.raises(ApiException) as err:
        batch.read({"inputs": [{"id": i} for i in ids], "properties": ["email"]})
    assert err.value.status == 400
    body = json.loads(err.value.body)
    assert set(body) == {"status", "message", "correlationId", "category"}
    assert body["status"] == "error"
    assert body["category"] == "VALIDATION_ERROR"
    assert body["message"] == (
        "The maximum number of inputs supported in a batch is 100. "
        "Please reduce the number of items and try again"
    )


@pytest.mark.parametrize("op", ["create", "update", "upsert"])
def test_every_batch_write_refuses_101_inputs(hs_client: Any, op: str) -> None:
    batch = hs_client.crm.contacts.batch_api
    inputs: list[dict[str, Any]]
    if op == "create":
        inputs = [{"properties": {"email": f"b{i}@example.org"}} for i in range(101)]
    elif op == "update":
        inputs = [{"id": str(i), "properties": {"firstname": "x"}} for i in range(101)]
    else:
        inputs = [
            {"idProperty": "email", "id": f"u{i}@example.org", "properties": {}} for i in range(101)
        ]
    with pytest.raises(ApiException) as err:
        getattr(batch, op)({"inputs": inputs})
    assert err.value.status == 400
    assert "maximum number of inputs" in json.loads(err.value.body)["message"]
    # and 100 goes through
    result = getattr(batch, op)({"inputs": inputs[:100]})
    assert result is not None


def test_batch_create_answers_201_with_a_model(hs_client: Any, hs_sandbox: HubSpotSandbox) -> None:
    result = hs_client.crm.contacts.batch_api.create(
        {"inputs": [{"properties": {"email": f"c{i}@example.org"}} for i in range(3)]}
    )
    assert isinstance(result, BatchResponseSimplePublicObject)
    assert sorted(r.properties["email"] for r in result.results) == [
        "c0@example.org",
        "c1@example.org",
        "c2@example.org",
    ]


def test_batch_read_with_unknown_ids_is_207_object_not_found(
    hs_client: Any, hs_sandbox: HubSpotSandbox
) -> None:
    ids = _ids(hs_sandbox, 2)
    result = hs_client.crm.contacts.batch_api.read(
        {"inputs": [{"id": ids[0]}, {"id": "12"}, {"id": ids[1]}], "properties": []}
    )
    assert isinstance(result, BatchResponseSimplePublicObjectWithErrors)
    assert result.num_errors == 1
    error = result.errors[0]
    assert error.category == "OBJECT_NOT_FOUND"
    assert error.context == {"ids": ["12"]}
    assert sorted(r.id for r in result.results) == sorted(ids)


def test_batch_read_by_email(hs_client: Any, hs_sandbox: HubSpotSandbox) -> None:
    table = hs_sandbox.store.tables["contacts"]
    slot = int(table.listable(archived=False)[3])
    email = table.props(slot)["email"]
    result = hs_client.crm.contacts.batch_api.read(
        {"inputs": [{"id": email}], "idProperty": "email", "properties": ["email"]}
    )
    assert result.results[0].id == str(int(table.ids[slot]))


def test_batch_update_applies_known_ids_and_reports_unknown(
    hs_client: Any, hs_sandbox: HubSpotSandbox, hs_clock: ManualClock
) -> None:
    ids = _ids(hs_sandbox, 2)
    before = hs_client.crm.contacts.basic_api.get_by_id(ids[0]).properties["lastmodifieddate"]
    hs_clock.advance(5)
    result = hs_client.crm.contacts.batch_api.update(
        {
            "inputs": [
                {"id": ids[0], "properties": {"jobtitle": "Head of Ops"}},
                {"id": "77", "properties": {"jobtitle": "Nobody"}},
                {"id": ids[1], "properties": {"jobtitle": "VP Sales"}},
            ]
        }
    )
    assert isinstance(result, BatchResponseSimplePublicObjectWithErrors)
    assert result.errors[0].context == {"ids": ["77"]}
    got = hs_client.crm.contacts.basic_api.get_by_id(ids[0], properties=["jobtitle"])
    assert got.properties["jobtitle"] == "Head of Ops"
    assert got.properties["lastmodifieddate"] > before


def test_batch_update_is_200_when_all_ids_exist(hs_client: Any, hs_sandbox: HubSpotSandbox) -> None:
    ids = _ids(hs_sandbox, 3)
    result = hs_client.crm.contacts.batch_api.update(
        {"inputs": [{"id": i, "properties": {"hs_lead_status": "OPEN"}} for i in ids]}
    )
    assert isinstance(result, BatchResponseSimplePublicObject)
    assert len(result.results) == 3


def test_batch_update_rejects_unknown_properties_for_the_whole_batch(
    hs_client: Any, hs_sandbox: HubSpotSandbox
) -> None:
    ids = _ids(hs_sandbox, 2)
    with pytest.raises(ApiException) as err:
        hs_client.crm.contacts.batch_api.update(
            {
                "inputs": [
                    {"id": ids[0], "properties": {"jobtitle": "fine"}},
                    {"id": ids[1], "properties": {"leadsync_scor": "1"}},
                ]
            }
        )
    assert err.value.status == 400
    assert "PROPERTY_DOESNT_EXIST" in json.loads(err.value.body)["message"]
    got = hs_client.crm.contacts.basic_api.get_by_id(ids[0], properties=["jobtitle"])
    assert got.properties["jobtitle"] != "fine"


def test_batch_update_refuses_duplicate_ids(hs_client: Any, hs_sandbox: HubSpotSandbox) -> None:
    ids = _ids(hs_sandbox, 1)
    with pytest.raises(ApiException) as err:
        hs_client.crm.contacts.batch_api.update(
            {"inputs": [{"id": ids[0], "properties": {}}, {"id": ids[0], "properties": {}}]}
        )
    assert err.value.status == 400


def test_batch_upsert_creates_then_updates_by_email(hs_client: Any) -> None:
    batch = hs_client.crm.contacts.batch_api
    first = batch.upsert(
        {
            "inputs": [
                {"idProperty": "email", "id": "up@example.org", "properties": {"firstname": "Up"}}
            ]
        }
    )
    assert isinstance(first, BatchResponseSimplePublicUpsertObject)
    assert first.results[0].new is True
    second = batch.upsert(
        {
            "inputs": [
                {"idProperty": "email", "id": "up@example.org", "properties": {"lastname": "Date"}}
            ]
        }
    )
    assert second.results[0].new is False
    assert second.results[0].id == first.results[0].id
    got = hs_client.crm.contacts.basic_api.get_by_id(
        "up@example.org", id_property="email", properties=["firstname", "lastname"]
    )
    assert (got.properties["firstname"], got.properties["lastname"]) == ("Up", "Date")


def test_batch_upsert_needs_a_unique_id_property(hs_client: Any) -> None:
    with pytest.raises(ApiException) as err:
        hs_client.crm.contacts.batch_api.upsert(
            {"inputs": [{"idProperty": "firstname", "id": "Ann", "properties": {}}]}
        )
    assert err.value.status == 400


def test_batch_archive_is_204(hs_client: Any, hs_sandbox: HubSpotSandbox) -> None:
    ids = _ids(hs_sandbox, 2)
    assert hs_client.crm.contacts.batch_api.archive({"inputs": [{"id": i} for i in ids]}) is None
    result = hs_client.crm.contacts.batch_api.read({"inputs": [{"id": i} for i in ids]})
    assert result.num_errors == 1 and sorted(result.errors[0].context["ids"]) == sorted(ids)


def test_deal_and_task_batch_read_and_upsert(hs_client: Any, hs_sandbox: HubSpotSandbox) -> None:
    hs_client.crm.properties.core_api.create(
        "tasks",
        {
            "name": "leadsync_task_key",
            "label": "Key",
            "type": "string",
            "fieldType": "text",
            "groupName": "task",
            "hasUniqueValue": True,
        },
    )
    batch = hs_client.crm.objects.batch_api
    up = batch.upsert(
        "tasks",
        {
            "inputs": [
                {
                    "idProperty": "leadsync_task_key",
                    "id": "t-1",
                    "properties": {
                        "hs_timestamp": "2026-06-30T12:00:00Z",
                        "hs_task_subject": "Call",
                    },
                }
            ]
        },
    )
    assert up.results[0].new is True
    again = batch.upsert(
        "tasks",
        {
            "inputs": [
                {
                    "idProperty": "leadsync_task_key",
                    "id": "t-1",
                    "properties": {"hs_task_subject": "Re-call"},
                }
            ]
        },
    )
    assert again.results[0].new is False and again.results[0].id == up.results[0].id
    # a new task without hs_timestamp is refused
    with pytest.raises(Exception) as err:
        batch.upsert(
            "tasks",
            {"inputs": [{"idProperty": "leadsync_task_key", "id": "t-2", "properties": {}}]},
        )
    assert err.value.status == 400  # type: ignore[attr-defined]
    deal_ids = [str(int(i)) for i in hs_sandbox.store.tables["deals"].ids[:3]]
    read = batch.read(
        "deals", {"inputs": [{"id": i} for i in deal_ids], "properties": ["dealstage"]}
    )
    assert sorted(r.id for r in read.results) == sorted(deal_ids)
