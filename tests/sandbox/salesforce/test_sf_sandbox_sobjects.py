"""sObject rows and describe through simple-salesforce."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from connectors.sandbox.framework import ManualClock
from connectors.sandbox.salesforce import SalesforceSandbox
from connectors.sandbox.world import World


@pytest.fixture
def sf(sf_both: Salesforce) -> Salesforce:
    """Every test here runs through ``responses`` and through the TLS server."""
    return sf_both


def _error(exc: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    body = exc.value.content
    assert isinstance(body, list) and len(body) == 1
    return dict(body[0])


def test_create_answers_201_with_id(sf: Salesforce) -> None:
    result = sf.Lead.create({"LastName": "Ng", "Company": "Ng Ltd", "Email": "ng@ng.example"})
    assert set(result) == {"id", "success", "errors"}
    assert result["success"] is True and result["errors"] == []
    assert result["id"].startswith("00Q") and len(result["id"]) == 18
    record = sf.Lead.get(result["id"])
    assert record["Name"] == "Ng" and record["Status"] == "Open - Not Contacted"
    assert record["IsConverted"] is False and record["OwnerId"].startswith("005")


@pytest.mark.parametrize(
    ("sobject", "body", "missing"),
    [
        ("Lead", {"LastName": "A"}, ["Company"]),
        ("Lead", {"Company": "A"}, ["LastName"]),
        ("Lead", {"FirstName": "A"}, ["LastName", "Company"]),
        ("Opportunity", {"Name": "Deal"}, ["StageName", "CloseDate"]),
        ("Opportunity", {"StageName": "Prospecting", "CloseDate": "2026-07-01"}, ["Name"]),
    ],
)
def test_required_fields(
    sf: Salesforce, sobject: str, body: dict[str, Any], missing: list[str]
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        getattr(sf, sobject).create(body)
    error = _error(caught)
    assert error["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert error["message"] == f"Required fields are missing: [{', '.join(missing)}]"
    assert error["fields"] == missing


def test_required_fields_present_is_enough(sf: Salesforce) -> None:
    assert sf.Opportunity.create(
        {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-07-01"}
    )["success"]
    assert sf.Task.create({"Subject": "Call"})["success"]  # Task needs nothing else


def test_unknown_and_read_only_fields_are_refused(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({"LastName": "A", "Company": "B", "leadsync_score__c": 5})
    error = _error(caught)
    assert error["errorCode"] == "INVALID_FIELD"
    assert "leadsync_score__c" in error["message"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({"LastName": "A", "Company": "B", "SystemModstamp": "2024-01-01T00:00:00Z"})
    assert _error(caught)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_value_checks(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({"LastName": "A", "Company": "B", "Email": "not-an-address"})
    assert _error(caught)["errorCode"] == "INVALID_EMAIL_ADDRESS"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({"LastName": "A", "Company": "B", "NumberOfEmployees": "many"})
    assert _error(caught)["errorCode"] == "JSON_PARSER_ERROR"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Contact.create({"LastName": "A", "AccountId": "001000000000000AAA"})
    assert _error(caught)["errorCode"] == "MALFORMED_ID"


def test_get_with_fields(sf: Salesforce) -> None:
    lead = sf.Lead.create({"LastName": "F", "Company": "C", "Title": "CTO"})
    record = sf.Lead.get(lead["id"], params={"fields": "Title,Company"})
    assert set(record) == {"attributes", "Title", "Company"}
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.get(lead["id"], params={"fields": "Nope"})
    assert _error(caught)["errorCode"] == "INVALID_FIELD"


def test_get_unknown_record(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Lead.get("00Q8c000000zzzzAAA")
    assert caught.value.status == 404
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Lead.get("not-an-id")
    assert _error(caught)["errorCode"] == "NOT_FOUND"


def test_update_answers_204_and_advances_stamps(sf: Salesforce, clock: ManualClock) -> None:
    lead = sf.Lead.create({"LastName": "U", "Company": "C"})
    before = sf.Lead.get(lead["id"])
    clock.advance(61.5)
    assert sf.Lead.update(lead["id"], {"Title": "Head of Ops"}) == 204
    after = sf.Lead.get(lead["id"])
    assert after["Title"] == "Head of Ops"
    assert after["SystemModstamp"] > before["SystemModstamp"]
    assert after["LastModifiedDate"] == after["SystemModstamp"]
    assert after["CreatedDate"] == before["CreatedDate"]
    assert after["SystemModstamp"].endswith(":01.500+0000")


def test_update_refuses_required_to_null_and_converted_leads(sf: Salesforce) -> None:
    lead = sf.Lead.create({"LastName": "U", "Company": "C"})
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.update(lead["id"], {"Company": None})
    assert _error(caught)["errorCode"] == "REQUIRED_FIELD_MISSING"
    converted = sf.query("SELECT Id FROM Lead WHERE IsConverted = true LIMIT 1")["records"][0]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.update(converted["Id"], {"Title": "x"})
    assert _error(caught)["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"


def test_delete_answers_204_then_record_is_gone(sf: Salesforce) -> None:
    lead = sf.Lead.create({"LastName": "D", "Company": "C"})
    assert sf.Lead.delete(lead["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Lead.get(lead["id"])
    assert _error(caught)["errorCode"] == "ENTITY_IS_DELETED"


def test_describe_without_custom_fields_by_default(sf: Salesforce) -> None:
    describe = sf.Lead.describe()
    fields = {f["name"]: f for f in describe["fields"]}
    assert describe["name"] == "Lead" and describe["keyPrefix"] == "00Q"
    assert "leadsync_score__c" not in fields
    assert not any(f["custom"] for f in fields.values())
    status = fields["Status"]
    assert status["type"] == "picklist"
    assert "Closed - Converted" in [p["value"] for p in status["picklistValues"]]
    assert fields["LastName"]["nillable"] is False and fields["Email"]["type"] == "email"
    assert fields["SystemModstamp"]["createable"] is False
    stage = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}["StageName"]
    assert "Closed Won" in [p["value"] for p in stage["picklistValues"]]
    for key in ("name", "type", "label", "custom", "externalId", "unique", "nillable",
                "createable", "updateable", "picklistValues"):  # fmt: skip
        assert key in status


def test_custom_field_added_at_runtime(sf: Salesforce, box: SalesforceSandbox) -> None:
    box.add_custom_field("Lead", "leadsync_score__c", "double")
    field = {f["name"]: f for f in sf.Lead.describe()["fields"]}["leadsync_score__c"]
    assert (field["type"], field["custom"], field["externalId"]) == ("double", True, False)
    lead = sf.query("SELECT Id FROM Lead WHERE IsConverted = false LIMIT 1")["records"][0]
    sf.Lead.update(lead["Id"], {"leadsync_score__c": 87.5})
    found = sf.query("SELECT Id, leadsync_score__c FROM Lead WHERE leadsync_score__c > 80")
    assert [(r["Id"], r["leadsync_score__c"]) for r in found["records"]] == [(lead["Id"], 87.5)]


def test_custom_fields_from_the_constructor(small_world: World, clock: ManualClock) -> None:
    box = SalesforceSandbox(
        world=small_world,
        clock=clock,
        custom_fields={"Contact": [{"name": "Ext_Id__c", "type": "string", "externalId": True}]},
    )
    assert box.store.schema["Contact"].get("ext_id__c") is not None
    with pytest.raises(ValueError, match="end in '__c'"):
        SalesforceSandbox(
            world=small_world, clock=clock, custom_fields={"Lead": [{"name": "Score"}]}
        )
    with pytest.raises(ValueError, match="unknown sObject"):
        SalesforceSandbox(world=small_world, clock=clock, custom_fields={"Nope": []})


def test_upsert_by_external_id(sf: Salesforce, box: SalesforceSandbox) -> None:
    box.add_custom_field("Opportunity", "Ext_Id__c", "string", external_id=True)
    body = {"Name": "Up", "StageName": "Prospecting", "CloseDate": "2026-08-01"}
    assert sf.Opportunity.upsert("Ext_Id__c/E-1", body) == 201
    assert sf.Opportunity.upsert("Ext_Id__c/E-1", {"Amount": 1000}) == 200
    raw = sf.Opportunity.upsert("Ext_Id__c/E-1", {"Amount": 1200}, raw_response=True)
    assert raw.status_code == 200
    assert raw.json()["created"] is False and raw.json()["success"] is True
    created = sf.Opportunity.upsert("Ext_Id__c/E-2", body, raw_response=True)
    assert created.status_code == 201 and created.json()["created"] is True
    rows = sf.query(
        "SELECT Ext_Id__c, Amount FROM Opportunity WHERE Ext_Id__c != null ORDER BY Ext_Id__c"
    )
    assert [(r["Ext_Id__c"], r["Amount"]) for r in rows["records"]] == [
        ("E-1", 1200.0),
        ("E-2", None),
    ]
    record = sf.Opportunity.get_by_custom_id("Ext_Id__c", "E-1")
    assert record["Amount"] == 1200.0


def test_upsert_with_several_matches_answers_300(sf: Salesforce, box: SalesforceSandbox) -> None:
    box.add_custom_field("Lead", "Legacy_Id__c", "string", external_id=True)
    for name in ("A", "B"):
        lead = sf.Lead.create({"LastName": name, "Company": "Dup"})
        sf.Lead.update(lead["id"], {"Legacy_Id__c": "L-9"})
    with pytest.raises(SalesforceMoreThanOneRecord) as caught:
        sf.Lead.upsert("Legacy_Id__c/L-9", {"Title": "x"})
    assert caught.value.status == 300
    urls = caught.value.content
    assert len(urls) == 2 and all(
        u.startswith("/services/data/v59.0/sobjects/Lead/00Q") for u in urls
    )


def test_upsert_on_a_field_that_is_not_an_external_id(sf: Salesforce) -> None:
    # Email is a standard idLookup field, which upsert accepts; Title is neither.
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Lead.upsert("Title/Boss", {"LastName": "x", "Company": "y"})
    assert "external ID" in _error(caught)["message"]


def test_unique_custom_field(sf: Salesforce, box: SalesforceSandbox) -> None:
    box.add_custom_field("Contact", "Badge__c", "string", external_id=True, unique=True)
    sf.Contact.create({"LastName": "One", "Badge__c": "B1"})
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Contact.create({"LastName": "Two", "Badge__c": "b1"})
    assert _error(caught)["errorCode"] == "DUPLICATE_VALUE"


def test_global_describe_and_versions(sf: Salesforce) -> None:
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Lead", "Contact", "Account", "Opportunity", "OpportunityContactRole", "Task",
            "Event", "Campaign", "CampaignMember", "User"} <= names  # fmt: skip
    versions = sf.session.get(f"https://{sf.sf_instance}/services/data/").json()
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in versions
    resources = sf.restful("")
    assert resources["query"] == "/services/data/v59.0/query"


def test_updated_and_deleted_ids(sf: Salesforce, clock: ManualClock) -> None:
    start = clock.datetime()
    clock.advance(120)
    kept = sf.Lead.create({"LastName": "Kept", "Company": "RepCo"})["id"]
    gone = sf.Lead.create({"LastName": "Gone", "Company": "RepCo"})["id"]
    clock.advance(60)
    sf.Lead.delete(gone)
    clock.advance(120)
    end = clock.datetime()
    updated = sf.Lead.updated(start, end)
    assert updated["ids"] == [kept]
    assert updated["latestDateCovered"] == end.strftime("%Y-%m-%dT%H:%M:00.000+0000")
    deleted = sf.Lead.deleted(start, end)
    assert [d["id"] for d in deleted["deletedRecords"]] == [gone]
    assert deleted["deletedRecords"][0]["deletedDate"].startswith(
        (start + timedelta(seconds=180)).strftime("%Y-%m-%dT%H:%M")
    )
    with pytest.raises(SalesforceMalformedRequest):
        sf.Lead.updated(end, start)
