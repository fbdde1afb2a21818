"""sObject Collections (``composite/sobjects``) through ``sf.restful``."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from connectors.sandbox.salesforce import SalesforceSandbox


@pytest.fixture
def sf(sf_both: Salesforce) -> Salesforce:
    """Every test here runs through ``responses`` and through the TLS server."""
    return sf_both


def _leads(n: int, company: str = "BulkCo") -> list[dict[str, Any]]:
    return [
        {"attributes": {"type": "Lead"}, "LastName": f"L{i}", "Company": company} for i in range(n)
    ]


def _count(sf: Salesforce, company: str) -> int:
    return int(sf.query(f"SELECT COUNT() FROM Lead WHERE Company = '{company}'")["totalSize"])


def test_create_200_records(sf: Salesforce) -> None:
    results = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": False, "records": _leads(200)}
    )
    assert len(results) == 200
    assert all(r["success"] and r["errors"] == [] and r["id"].startswith("00Q") for r in results)
    assert _count(sf, "BulkCo") == 200


def test_201_records_are_refused_whole(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful("composite/sobjects", method="POST", json={"records": _leads(201)})
    assert caught.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert _count(sf, "BulkCo") == 0


def test_partial_failure_without_all_or_none(sf: Salesforce) -> None:
    records = _leads(3)
    del records[1]["Company"]
    results = sf.restful("composite/sobjects", method="POST", json={"records": records})
    assert [r["success"] for r in results] == [True, False, True]
    error = results[1]["errors"][0]
    assert error["statusCode"] == "REQUIRED_FIELD_MISSING" and error["fields"] == ["Company"]
    assert "id" not in results[1]
    assert _count(sf, "BulkCo") == 2


def test_all_or_none_rolls_back(sf: Salesforce, box: SalesforceSandbox) -> None:
    existing = sf.Lead.create({"LastName": "Keep", "Company": "RollCo"})["id"]
    before = sf.Lead.get(existing)
    records = _leads(3, "RollCo")
    records[2]["Bogus__c"] = 1
    update = [{"attributes": {"type": "Lead"}, "Id": existing, "Title": "Changed"}]
    results = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": True, "records": records}
    )
    assert [r["success"] for r in results] == [False, False, False]
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "INVALID_FIELD",
    ]
    assert _count(sf, "RollCo") == 1
    mixed = [*update, {"attributes": {"type": "Lead"}, "Id": "00Q8c000000zzzzAAA", "Title": "x"}]
    results = sf.restful(
        "composite/sobjects", method="PATCH", json={"allOrNone": True, "records": mixed}
    )
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert sf.Lead.get(existing) == before  # nothing changed, not even the stamp
    # and a fresh create after a rollback gets the next id without clashing
    fresh = sf.Lead.create({"LastName": "After", "Company": "RollCo"})["id"]
    assert fresh not in {existing} and _count(sf, "RollCo") == 2


def test_update_collection(sf: Salesforce) -> None:
    created = sf.restful("composite/sobjects", method="POST", json={"records": _leads(2, "UpCo")})
    updates = [
        {"attributes": {"type": "Lead"}, "Id": created[0]["id"], "Title": "A"},
        {"attributes": {"type": "Lead"}, "Title": "no id"},
        {"attributes": {"type": "Lead"}, "Id": created[1]["id"], "Title": "B"},
    ]
    results = sf.restful("composite/sobjects", method="PATCH", json={"records": updates})
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    titles = sf.query("SELECT Title FROM Lead WHERE Company = 'UpCo' ORDER BY Title")["records"]
    assert [r["Title"] for r in titles] == ["A", "B"]


def test_upsert_collection_by_external_id(sf: Salesforce, box: SalesforceSandbox) -> None:
    box.add_custom_field("Task", "Sync_Key__c", "string", external_id=True, unique=True)
    records = [
        {"attributes": {"type": "Task"}, "Sync_Key__c": f"K{i}", "Subject": "Score changed"}
        for i in range(200)
    ]
    first = sf.restful("composite/sobjects/Task/Sync_Key__c", method="PATCH",
                       json={"allOrNone": False, "records": records})  # fmt: skip
    assert len(first) == 200 and all(r["success"] and r["created"] for r in first)
    records[0]["Subject"] = "Score changed again"
    second = sf.restful("composite/sobjects/Task/Sync_Key__c", method="PATCH",
                        json={"allOrNone": False, "records": records})  # fmt: skip
    assert all(r["success"] and r["created"] is False for r in second)
    assert [r["id"] for r in second] == [r["id"] for r in first]
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("composite/sobjects/Task/Sync_Key__c", method="PATCH",
                   json={"records": [*records, {"attributes": {"type": "Task"}, "Sync_Key__c": "K200"}]})  # fmt: skip
    count = sf.query("SELECT COUNT() FROM Task WHERE Sync_Key__c != null")["totalSize"]
    assert count == 200


def test_delete_collection(sf: Salesforce) -> None:
    created = sf.restful("composite/sobjects", method="POST", json={"records": _leads(2, "DelCo")})
    ids = ",".join(r["id"] for r in created)
    results = sf.restful("composite/sobjects", method="DELETE", params={"ids": ids})
    assert [r["success"] for r in results] == [True, True]
    assert _count(sf, "DelCo") == 0


def test_missing_type_is_a_record_error(sf: Salesforce) -> None:
    results = sf.restful(
        "composite/sobjects", method="POST", json={"records": [{"LastName": "x", "Company": "y"}]}
    )
    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "INVALID_TYPE"


def test_upsert_collection_reports_ambiguous_external_ids_per_record(
    sf: Salesforce, box: SalesforceSandbox
) -> None:
    box.add_custom_field("Contact", "Legacy__c", "string", external_id=True)
    for name in ("A", "B"):
        sf.Contact.create({"LastName": name, "Legacy__c": "SAME"})
    records = [
        {"attributes": {"type": "Contact"}, "Legacy__c": "SAME", "Title": "x"},
        {"attributes": {"type": "Contact"}, "Legacy__c": "NEW", "LastName": "C"},
    ]
    results = sf.restful("composite/sobjects/Contact/Legacy__c", method="PATCH",
                         json={"records": records})  # fmt: skip
    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "DUPLICATE_EXTERNAL_ID"
    assert results[1]["success"] is True and results[1]["created"] is True
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("composite/sobjects/Contact/Email", method="PATCH", json={"records": records})
