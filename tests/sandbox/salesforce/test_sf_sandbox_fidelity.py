"""Behaviours of the real REST API that an independent review found the sandbox missing,
each driven through simple-salesforce; plus concurrency and the import rule."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sf_sandbox_support import PinnedSession
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from connectors.sandbox.framework import ManualClock, RunningServer
from connectors.sandbox.salesforce import SalesforceSandbox

SANDBOX_DIR = Path(__file__).resolve().parents[3] / "connectors" / "sandbox" / "salesforce"
SMALL_PAGE = {"Sforce-Query-Options": "batchSize=200"}


def _error(exc: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    body = exc.value.content
    assert isinstance(body, list) and len(body) == 1
    return dict(body[0])


def test_query_all_pages_through_query_urls_and_keep_deleted_rows(sf_both: Salesforce) -> None:
    """REST guide, "QueryAll More Results": a queryAll's ``nextRecordsUrl`` names
    ``query/``, and the rest of the pages still hold the deleted records."""
    sf = sf_both
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Task ORDER BY Id LIMIT 450")["records"]]
    sf.Task.delete(ids[300])  # on the second page of 200
    first = sf.query(
        "SELECT Id, IsDeleted FROM Task ORDER BY Id LIMIT 450",
        include_deleted=True,
        headers=SMALL_PAGE,
    )
    assert len(first["records"]) == 200 and first["done"] is False
    url = first["nextRecordsUrl"]
    assert url.startswith("/services/data/v59.0/query/") and url.endswith("-200")
    second = sf.query_more(url, identifier_is_url=True)
    assert [r["Id"] for r in second["records"]] == ids[200:400]
    assert [r["Id"] for r in second["records"] if r["IsDeleted"]] == [ids[300]]
    # the same locator through queryAll/ answers the same page
    locator = url.rsplit("/", 1)[1]
    assert sf.query_more(locator, include_deleted=True) == second
    # and a plain query does not see the deleted record at all
    live = sf.query_all("SELECT Id FROM Task ORDER BY Id LIMIT 450")["records"]
    assert ids[300] not in {r["Id"] for r in live}


@pytest.mark.parametrize(
    "where",
    [
        "Id = 'abc'",
        "Id IN ('00Q8c000000', '00Q8c0000000000EAA')",
        "WhoId = '00Qx'",
        "OwnerId != 'x'",
    ],
)
def test_malformed_id_literals_are_refused_not_answered_empty(sf: Salesforce, where: str) -> None:
    """SOQL answers "invalid ID field: ..." for a literal that cannot be an id; a
    connector that builds ids wrongly must fail here as it would in production."""
    sobject = "Task" if "WhoId" in where or "OwnerId" in where else "Lead"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(f"SELECT Id FROM {sobject} WHERE {where}")
    error = _error(caught)
    assert error["errorCode"] == "INVALID_QUERY_FILTER_OPERATOR"
    assert "invalid ID field: " in error["message"]


def test_well_formed_ids_of_no_record_match_nothing(sf: Salesforce) -> None:
    result = sf.query("SELECT Id FROM Lead WHERE Id IN ('00Q000000000000AAA', '00Q000000000001')")
    assert result == {"totalSize": 0, "done": True, "records": []}


def test_polymorphic_type_is_the_object_name(sf: Salesforce, box: SalesforceSandbox) -> None:
    """``What.Type`` names the object, even for objects with a ``Type`` field of their
    own (Account, Opportunity, Campaign); ``Owner.Type`` is ``User`` for users."""
    account = sf.query("SELECT Id, Type FROM Account WHERE Type != null LIMIT 1")["records"][0]
    task = sf.Task.create({"Subject": "Poly", "WhatId": account["Id"]})
    row = sf.query(f"SELECT What.Type, What.Name, Owner.Type FROM Task WHERE Id = '{task['id']}'")[
        "records"
    ][0]
    assert account["Type"] != "Account"
    assert row["What"]["Type"] == "Account" == row["What"]["attributes"]["type"]
    assert row["Owner"]["Type"] == "User"
    found = sf.query("SELECT Id FROM Task WHERE What.Type = 'Account' AND Subject = 'Poly'")
    assert [r["Id"] for r in found["records"]] == [task["id"]]
    lead = sf.query("SELECT Owner.Type FROM Lead WHERE Owner.Type = 'User' LIMIT 1")["records"]
    assert lead and lead[0]["Owner"]["Type"] == "User"


def test_blank_text_is_stored_and_queried_as_null(sf_both: Salesforce) -> None:
    """Salesforce keeps no empty strings: a blank write reads back as null, and
    ``= ''`` in SOQL matches nulls (indexed fields such as Email included)."""
    sf = sf_both
    lead = sf.Lead.create({"LastName": "Blank", "Company": "BlankCo", "Title": "CEO", "Email": ""})
    sf.Lead.update(lead["id"], {"Title": ""})
    record = sf.Lead.get(lead["id"])
    assert record["Title"] is None and record["Email"] is None
    blank = sf.query("SELECT Id FROM Lead WHERE Company = 'BlankCo' AND Title = ''")["records"]
    assert [r["Id"] for r in blank] == [lead["id"]]
    by_email = sf.query("SELECT COUNT() FROM Lead WHERE Email = ''")["totalSize"]
    assert by_email == sf.query("SELECT COUNT() FROM Lead WHERE Email = null")["totalSize"] >= 1
    assert (
        sf.query("SELECT COUNT() FROM Lead WHERE Company = 'BlankCo' AND Title != ''")["totalSize"]
        == 0
    )


def test_concurrent_writes_and_queries_over_tls(
    server: RunningServer, box: SalesforceSandbox, request: pytest.FixtureRequest
) -> None:
    """Several clients at once on the threaded TLS server: every write lands exactly
    once, paged reads stay consistent, and the call count adds up."""
    used_before, _ = box.api_usage()
    writers, per_writer = 4, 12
    errors: list[BaseException] = []
    created: dict[int, list[str]] = {}
    pages: list[int] = []

    sessions: list[PinnedSession] = []

    def client() -> Salesforce:
        session = PinnedSession(str(server.ca_path))
        sessions.append(session)
        return Salesforce(
            session_id="sandbox-session",
            instance_url=server.base_url,
            version="59.0",
            session=session,
        )

    def write(n: int) -> None:
        try:
            sf = client()
            mine = []
            for i in range(per_writer):
                mine.append(
                    sf.Lead.create({"LastName": f"T{n}-{i}", "Company": f"Thread{n}"})["id"]
                )
            results = sf.restful("composite/sobjects", method="PATCH", json={"records": [
                {"attributes": {"type": "Lead"}, "Id": i, "Title": f"w{n}"} for i in mine]})  # fmt: skip
            assert results is not None and all(r["success"] for r in results)
            created[n] = mine
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def read() -> None:
        try:
            sf = client()
            for _ in range(3):
                result = sf.query("SELECT Id FROM Task ORDER BY Id", headers=SMALL_PAGE)
                count = len(result["records"])
                while not result["done"]:
                    result = sf.query_more(result["nextRecordsUrl"], identifier_is_url=True)
                    count += len(result["records"])
                pages.append(count)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    request.addfinalizer(lambda: [s.close() for s in sessions])
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    threads.append(threading.Thread(target=read))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(pages) == 3 and len(set(pages)) == 1
    all_ids = [i for ids in created.values() for i in ids]
    assert len(all_ids) == len(set(all_ids)) == writers * per_writer
    sf = client()
    for n in range(writers):
        rows = sf.query(f"SELECT Id, Title FROM Lead WHERE Company = 'Thread{n}' ORDER BY Id")
        assert [r["Id"] for r in rows["records"]] == sorted(created[n])
        assert {r["Title"] for r in rows["records"]} == {f"w{n}"}
    used, _ = box.api_usage()
    task_pages = -(-pages[0] // 200)
    assert used - used_before == writers * (per_writer + 1) + 3 * task_pages + writers


def test_the_sandbox_never_imports_the_connectors() -> None:
    """Independence is what lets the sandbox catch connector bugs: neither its own
    modules nor anything they pull in may load ``connectors.salesforce`` or ``.hubspot``."""
    for path in SANDBOX_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("connectors.salesforce", "connectors.hubspot")), (
                    f"{path.name} imports {name}"
                )
    probe = (
        "import sys, connectors.sandbox.salesforce as s; "
        "s.SalesforceSandbox(contacts=20, seed=1); "
        "print(sorted(m for m in sys.modules if m.startswith(('connectors.salesforce', "
        "'connectors.hubspot'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("field", ["Ext_Id__c", "ext_id__c", "Id"])
def test_upsert_body_may_not_name_the_key(
    sf: Salesforce, box: SalesforceSandbox, field: str
) -> None:
    """REST guide, "sObject Rows by External ID": do not specify Id or the external ID
    field in the body; nothing is written."""
    box.add_custom_field("Lead", "Ext_Id__c", "string", external_id=True)
    value = "X-1" if field != "Id" else "00Q8c0000000000EAA"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.upsert("Ext_Id__c/X-1", {"LastName": "K", "Company": "KeyCo", field: value})
    assert _error(caught)["errorCode"] == "INVALID_FIELD"
    assert sf.query("SELECT COUNT() FROM Lead WHERE Company = 'KeyCo'")["totalSize"] == 0
    assert sf.Lead.upsert("Ext_Id__c/X-1", {"LastName": "K", "Company": "KeyCo"}) == 201


def test_collection_upsert_takes_external_ids_only(sf: Salesforce) -> None:
    """sObject Collections upsert: "Only external ids are supported. Don't use record ids."""
    lead = sf.query("SELECT Id FROM Lead WHERE IsConverted = false LIMIT 1")["records"][0]
    records = [{"attributes": {"type": "Lead"}, "Id": lead["Id"], "Title": "x"}]
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("composite/sobjects/Lead/Id", method="PATCH", json={"records": records})


def test_closed_activity_moves_system_modstamp_not_last_modified(
    sf: Salesforce, clock: ManualClock
) -> None:
    """A closed Task or an Event sets the Who's (and a Contact's Account's)
    LastActivityDate; that system change moves SystemModstamp, not LastModifiedDate.
    Open Tasks change nothing, and an all-or-none rollback undoes the roll-up."""
    contact = sf.query(
        "SELECT Id, AccountId, SystemModstamp, LastModifiedDate FROM Contact "
        "WHERE AccountId != null ORDER BY Id LIMIT 1"
    )["records"][0]
    fields = "Id, SystemModstamp, LastModifiedDate, LastActivityDate"

    def person() -> dict[str, Any]:
        return dict(
            sf.query(f"SELECT {fields} FROM Contact WHERE Id = '{contact['Id']}'")["records"][0]
        )

    def account() -> dict[str, Any]:
        q = f"SELECT {fields} FROM Account WHERE Id = '{contact['AccountId']}'"
        return dict(sf.query(q)["records"][0])

    before, account_before = person(), account()
    clock.advance(3600)
    sf.Task.create({"WhoId": contact["Id"], "Subject": "Open", "ActivityDate": "2031-01-01"})
    assert person() == before  # an open task is not an activity yet
    rolled = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": [
        {"attributes": {"type": "Task"}, "WhoId": contact["Id"], "Status": "Completed",
         "ActivityDate": "2031-01-02"},
        {"attributes": {"type": "Task"}, "WhoId": "not-an-id"}]})  # fmt: skip
    assert rolled is not None and not any(r["success"] for r in rolled)
    assert person() == before and account() == account_before
    sf.Task.create({"WhoId": contact["Id"], "Status": "Completed", "ActivityDate": "2031-01-03"})
    after, account_after = person(), account()
    now = clock.datetime().strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    assert after["LastActivityDate"] == account_after["LastActivityDate"] == "2031-01-03"
    assert after["SystemModstamp"] == account_after["SystemModstamp"] == now
    assert after["LastModifiedDate"] == before["LastModifiedDate"]
    assert account_after["LastModifiedDate"] == account_before["LastModifiedDate"]
    clock.advance(60)
    sf.Event.create({"WhoId": contact["Id"], "StartDateTime": "2030-05-05T10:00:00Z",
                     "DurationInMinutes": 30})  # fmt: skip
    assert person() == after  # an earlier date does not move LastActivityDate


def test_simulated_activity_is_a_system_change(sf: Salesforce, box: SalesforceSandbox) -> None:
    ids = box.simulate_activity(20, seed=3)
    for record_id in ids:
        sobject = "Lead" if record_id.startswith("00Q") else "Contact"
        row = sf.query(
            f"SELECT SystemModstamp, LastModifiedDate FROM {sobject} WHERE Id = '{record_id}'"
        )["records"][0]
        assert row["SystemModstamp"] > row["LastModifiedDate"]


def test_events_need_a_start_and_a_length_unless_all_day(sf: Salesforce) -> None:
    """Object reference, Event: when IsAllDayEvent is false, a value must be supplied
    for either DurationInMinutes or EndDateTime (and a start)."""
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Event.create({"Subject": "No times"})
    error = _error(caught)
    assert error["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert error["fields"] == ["ActivityDateTime", "DurationInMinutes"]
    with pytest.raises(SalesforceMalformedRequest):
        sf.Event.create({"Subject": "No length", "StartDateTime": "2030-01-01T09:00:00Z"})
    ended = sf.Event.create({"StartDateTime": "2030-01-01T09:00:00Z",
                             "EndDateTime": "2030-01-01T09:45:00Z"})  # fmt: skip
    assert sf.Event.get(ended["id"])["DurationInMinutes"] == 45
    assert sf.Event.create({"IsAllDayEvent": True, "ActivityDate": "2030-01-02"})["success"]
