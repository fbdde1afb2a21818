"""SOQL over REST through simple-salesforce (mounted with ``responses``)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connectors.sandbox.framework import ManualClock, SandboxApp
from connectors.sandbox.salesforce import SalesforceSandbox
from connectors.sandbox.world import World


def _error(exc: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    body = exc.value.content
    assert isinstance(body, list) and len(body) == 1
    return dict(body[0])


def test_query_shape_with_parent_fields(sf: Salesforce, small_world: World) -> None:
    result = sf.query(
        "SELECT Id, Name, Email, Account.Name, Owner.Email, SystemModstamp FROM Contact "
        "ORDER BY Id LIMIT 5"
    )
    assert result["totalSize"] == 5 and result["done"] is True
    assert "nextRecordsUrl" not in result
    record = result["records"][0]
    assert next(iter(record)) == "attributes"
    assert record["attributes"]["type"] == "Contact"
    assert record["attributes"]["url"] == f"/services/data/v59.0/sobjects/Contact/{record['Id']}"
    assert record["Account"]["attributes"]["type"] == "Account"
    assert isinstance(record["Account"]["Name"], str)
    assert "@" in record["Owner"]["Email"]
    # Salesforce's datetime format: 2013-05-20T20:49:32.000+0000
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", record["SystemModstamp"])


def test_field_names_are_case_insensitive_and_answered_canonically(sf: Salesforce) -> None:
    record = sf.query("select id, EMAIL, account.name from contact limit 1")["records"][0]
    assert set(record) == {"attributes", "Id", "Email", "Account"}
    assert set(record["Account"]) == {"attributes", "Name"}


def test_missing_parent_is_null(sf: Salesforce) -> None:
    lead = sf.Lead.create({"LastName": "Solo", "Company": "Own Co"})
    record = sf.query(f"SELECT Id, ConvertedAccount.Name FROM Lead WHERE Id = '{lead['id']}'")[
        "records"
    ][0]
    assert record["ConvertedAccount"] is None


def test_where_operators(sf: Salesforce) -> None:
    ids = []
    for i, (email, amount) in enumerate(
        [("a@x.example", 10.0), ("B@x.example", 20.0), (None, 30.0), ("c@y.example", None)]
    ):
        body: dict[str, Any] = {"LastName": f"Op{i}", "Company": "OpCo", "AnnualRevenue": amount}
        if email:
            body["Email"] = email
        ids.append(sf.Lead.create(body)["id"])

    def names(where: str) -> list[str]:
        result = sf.query(
            f"SELECT LastName FROM Lead WHERE Company = 'OpCo' AND ({where}) ORDER BY LastName"
        )
        return [r["LastName"] for r in result["records"]]

    assert names("Email = 'b@X.EXAMPLE'") == ["Op1"]  # string equality ignores case
    assert names("Email != 'a@x.example'") == ["Op1", "Op2", "Op3"]  # != keeps nulls
    assert names("Email = null") == ["Op2"]
    assert names("Email != null") == ["Op0", "Op1", "Op3"]
    assert names("AnnualRevenue > 10") == ["Op1", "Op2"]
    assert names("AnnualRevenue >= 10 AND AnnualRevenue <= 20") == ["Op0", "Op1"]
    assert names("AnnualRevenue < 30") == ["Op0", "Op1"]  # null is not < 30
    assert names("Email IN ('a@x.example', 'c@y.example')") == ["Op0", "Op3"]
    assert names("Email NOT IN ('a@x.example')") == ["Op1", "Op2", "Op3"]
    assert names("Email LIKE '%@x.%'") == ["Op0", "Op1"]
    assert names("NOT Email LIKE '%@x.%'") == ["Op2", "Op3"]
    assert names("(Email LIKE 'a%' OR Email LIKE 'c%') AND AnnualRevenue = 10") == ["Op0"]
    assert names(f"Id = '{ids[2][:15]}'") == ["Op2"]  # 15-character ids match too


def test_order_by_several_fields_with_nulls(sf: Salesforce) -> None:
    for name, revenue in [("N1", None), ("N2", 5.0), ("N3", 5.0), ("N4", 1.0)]:
        sf.Lead.create({"LastName": name, "Company": "SortCo", "AnnualRevenue": revenue})

    def order(clause: str) -> list[str]:
        result = sf.query(f"SELECT LastName FROM Lead WHERE Company = 'SortCo' ORDER BY {clause}")
        return [r["LastName"] for r in result["records"]]

    assert order("AnnualRevenue, LastName") == ["N1", "N4", "N2", "N3"]  # nulls first by default
    assert order("AnnualRevenue ASC NULLS LAST, LastName DESC") == ["N4", "N3", "N2", "N1"]
    assert order("AnnualRevenue DESC NULLS FIRST, LastName") == ["N1", "N2", "N3", "N4"]
    assert order("AnnualRevenue DESC NULLS LAST, LastName LIMIT 2 OFFSET 1") == ["N3", "N4"]


def test_count(sf: Salesforce, small_world: World) -> None:
    leads = sum(p.sf_kind in ("lead", "converted_lead") for p in small_world.people)
    converted = sum(p.sf_kind == "converted_lead" for p in small_world.people)
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == leads
    result = sf.query("SELECT COUNT() FROM Lead WHERE IsConverted = true")
    assert result == {"totalSize": converted, "done": True, "records": []}


def test_first_page_holds_2000_and_next_records_url_is_a_path(sf: Salesforce) -> None:
    total = sf.query("SELECT COUNT() FROM Task")["totalSize"]
    assert total > 2001, "the small world must hold more than one page of Tasks"
    at_limit = sf.query("SELECT Id FROM Task LIMIT 2000")
    assert at_limit["done"] is True and len(at_limit["records"]) == 2000
    above = sf.query("SELECT Id FROM Task LIMIT 2001")
    assert above["done"] is False and len(above["records"]) == 2000
    assert above["totalSize"] == 2001
    url = above["nextRecordsUrl"]
    assert url.startswith("/services/data/v59.0/query/01g") and url.endswith("-2000")
    rest = sf.query_more(url, identifier_is_url=True)
    assert rest["done"] is True and len(rest["records"]) == 1
    # simple-salesforce's other form: the locator alone
    again = sf.query("SELECT Id FROM Task LIMIT 2001")
    assert len(sf.query_more(again["nextRecordsUrl"].rsplit("/", 1)[1])["records"]) == 1


def test_query_all_pages_through_everything(sf: Salesforce) -> None:
    total = sf.query("SELECT COUNT() FROM Task")["totalSize"]
    result = sf.query_all("SELECT Id, WhoId FROM Task")
    ids = [r["Id"] for r in result["records"]]
    assert len(ids) == total == len(set(ids))


def test_batch_size_header(sf: Salesforce) -> None:
    result = sf.query("SELECT Id FROM Task", headers={"Sforce-Query-Options": "batchSize=500"})
    assert len(result["records"]) == 500 and result["nextRecordsUrl"].endswith("-500")


def test_query_all_includes_deleted_records(sf: Salesforce) -> None:
    lead = sf.Lead.create({"LastName": "Gone", "Company": "DelCo"})
    sf.Lead.delete(lead["id"])
    soql = "SELECT Id, IsDeleted FROM Lead WHERE Company = 'DelCo'"
    assert sf.query(soql)["totalSize"] == 0
    deleted = sf.query_all(soql, include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in deleted] == [(lead["id"], True)]
    # cancelled meetings are seeded as deleted Events
    live = sf.query("SELECT COUNT() FROM Event")["totalSize"]
    everything = sf.query("SELECT COUNT() FROM Event", include_deleted=True)["totalSize"]
    assert everything > live


def test_incremental_read_on_system_modstamp(
    sf: Salesforce, clock: ManualClock, box: SalesforceSandbox
) -> None:
    clock.advance(3600)
    cursor = clock.datetime().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert sf.query(f"SELECT Id FROM Lead WHERE SystemModstamp >= {cursor}")["totalSize"] == 0
    target = sf.query("SELECT Id FROM Lead WHERE IsConverted = false ORDER BY Id LIMIT 1")
    lead_id = target["records"][0]["Id"]
    sf.Lead.update(lead_id, {"Title": "VP Sales"})
    changed = sf.query(
        f"SELECT Id, SystemModstamp, LastModifiedDate FROM Lead WHERE SystemModstamp >= {cursor} "
        "ORDER BY SystemModstamp, Id"
    )["records"]
    assert [r["Id"] for r in changed] == [lead_id]
    assert changed[0]["SystemModstamp"] == clock.datetime().strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    offset_form = clock.datetime().strftime("%Y-%m-%dT%H:%M:%S+0000")
    assert (
        sf.query(f"SELECT COUNT() FROM Lead WHERE SystemModstamp > {offset_form}")["totalSize"] == 0
    )


def test_writes_without_a_clock_tick_share_one_stamp(sf: Salesforce) -> None:
    created = [sf.Lead.create({"LastName": f"T{i}", "Company": "TickCo"})["id"] for i in range(3)]
    stamps = {
        r["SystemModstamp"]
        for r in sf.query("SELECT SystemModstamp FROM Lead WHERE Company = 'TickCo'")["records"]
    }
    assert len(created) == 3 and len(stamps) == 1


def test_date_literals_on_date_fields(sf: Salesforce) -> None:
    sf.Opportunity.create(
        {"Name": "Dated", "StageName": "Prospecting", "CloseDate": "2031-03-04", "Amount": 5}
    )
    found = sf.query("SELECT Name FROM Opportunity WHERE CloseDate >= 2031-01-01")["records"]
    assert [r["Name"] for r in found] == ["Dated"]


def test_who_polymorphic_fields(sf: Salesforce) -> None:
    record = sf.query("SELECT Id, Who.Name, Who.Type FROM Task ORDER BY Id LIMIT 1")["records"][0]
    assert record["Who"]["Type"] in ("Lead", "Contact")
    assert record["Who"]["attributes"]["type"] == record["Who"]["Type"]


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Lead GROUP BY Id", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE a = 1 AND b = 2 OR c = 3", "MALFORMED_QUERY"),
        ("SELECT Nope FROM Lead", "INVALID_FIELD"),
        ("SELECT Id FROM Lead WHERE Nope__c = 1", "INVALID_FIELD"),
        ("SELECT Nope.Name FROM Lead", "INVALID_FIELD"),
        ("SELECT leadsync_score__c FROM Lead", "INVALID_FIELD"),
        ("SELECT Id FROM Nothing", "INVALID_TYPE"),
        (
            "SELECT Id FROM Lead WHERE SystemModstamp > '2024-01-01'",
            "INVALID_QUERY_FILTER_OPERATOR",
        ),
        ("SELECT Id FROM Lead WHERE SystemModstamp > 2024-01-01", "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id FROM Lead WHERE IsConverted = 'false'", "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id FROM Lead WHERE Email = 5", "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id FROM Lead WHERE Id LIKE '00Q%'", "INVALID_QUERY_FILTER_OPERATOR"),
    ],
)
def test_refused_queries(sf: Salesforce, soql: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    assert caught.value.status == 400
    assert _error(caught)["errorCode"] == code


def test_unknown_query_locator(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query_more("/services/data/v59.0/query/01g8c0000000999AAA-2000", identifier_is_url=True)
    assert _error(caught)["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_locators_last_two_days_from_the_query(
    sf: Salesforce, clock: ManualClock, box: SalesforceSandbox
) -> None:
    # Since API 56.0 locators are kept two days after the query, however idle (the old
    # 15-minute idle expiry and 10-cursor limit are gone).
    box.session_ttl_seconds = 3 * 86_400
    first = sf.query("SELECT Id FROM Task")
    clock.advance(3600)
    page = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert len(page["records"]) > 0
    # the same page again (a client retrying a lost answer) still works
    assert sf.query_more(first["nextRecordsUrl"], identifier_is_url=True) == page
    clock.advance(2 * 86_400 - 3600 + 1)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert _error(caught)["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_index_and_scan_agree(sf: Salesforce, app: SandboxApp) -> None:
    """Lookups answered from indexes give the same rows as a full scan would."""
    row = sf.query("SELECT Id, WhoId, Who.Email FROM Task WHERE TaskSubtype = 'Call' LIMIT 1")[
        "records"
    ][0]
    who = row["WhoId"]
    by_index = sf.query(f"SELECT Id FROM Task WHERE WhoId = '{who}' ORDER BY Id")["records"]
    # an OR with an unindexed field forces a full scan
    by_scan = sf.query(
        f"SELECT Id FROM Task WHERE WhoId = '{who}' OR Subject = 'never used' ORDER BY Id"
    )["records"]
    assert by_index == by_scan and row["Id"] in {r["Id"] for r in by_index}
    email = row["Who"]["Email"]
    sobject = row["Who"]["attributes"]["type"]
    exact = sf.query(f"SELECT Id FROM {sobject} WHERE Email = '{email.upper()}' ORDER BY Id")[
        "records"
    ]
    like = sf.query(f"SELECT Id FROM {sobject} WHERE Email LIKE '{email}' ORDER BY Id")["records"]
    assert exact == like and who in {r["Id"] for r in exact}


def test_column_filters_follow_writes(sf: Salesforce, box: SalesforceSandbox) -> None:
    """Boolean filters answered from seeded columns still see later writes."""

    def count(where: str) -> int:
        return int(sf.query(f"SELECT COUNT() FROM Lead WHERE {where}")["totalSize"])

    open_before, opted_before = count("IsConverted = false"), count("HasOptedOutOfEmail = true")
    assert count("NOT IsConverted = true") == open_before
    new = sf.Lead.create({"LastName": "Col", "Company": "ColCo", "HasOptedOutOfEmail": True})
    assert count("IsConverted = false") == open_before + 1
    assert count("HasOptedOutOfEmail = true") == opted_before + 1
    seeded = sf.query(
        "SELECT Id FROM Lead WHERE HasOptedOutOfEmail = false AND IsConverted = false ORDER BY Id LIMIT 1"
    )["records"][0]["Id"]
    sf.Lead.update(seeded, {"HasOptedOutOfEmail": True})
    assert count("HasOptedOutOfEmail = true") == opted_before + 2
    sf.Lead.delete(new["id"])
    assert count("HasOptedOutOfEmail = true") == opted_before + 1
    assert count("HasOptedOutOfEmail IN (true, false)") == count("Id != null")
    deleted = sf.query("SELECT COUNT() FROM Lead WHERE IsDeleted = true", include_deleted=True)[
        "totalSize"
    ]
    assert deleted == 1


def test_offset_through_the_client(sf: Salesforce) -> None:
    ordered = [r["Id"] for r in sf.query("SELECT Id FROM Lead ORDER BY Id LIMIT 5")["records"]]
    shifted = sf.query("SELECT Id FROM Lead ORDER BY Id LIMIT 3 OFFSET 2")["records"]
    assert [r["Id"] for r in shifted] == ordered[2:5]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id FROM Lead OFFSET 2001")
    assert _error(caught)["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"


def test_email_lookup_follows_updates_of_seeded_rows(sf: Salesforce) -> None:
    record = sf.query(
        "SELECT Id, Email FROM Lead WHERE IsConverted = false AND Email != null ORDER BY Id LIMIT 1"
    )["records"][0]
    sf.Lead.update(record["Id"], {"Email": "moved@new.example"})
    old = sf.query(f"SELECT Id FROM Lead WHERE Email = '{record['Email']}'")["records"]
    new = sf.query("SELECT Id FROM Lead WHERE Email IN ('MOVED@new.example')")["records"]
    assert record["Id"] not in {r["Id"] for r in old}
    assert [r["Id"] for r in new] == [record["Id"]]


def test_every_served_object_describes_and_queries(sf: Salesforce) -> None:
    for name in ("Lead", "Contact", "Account", "Opportunity", "OpportunityContactRole", "Task",
                 "Event", "Campaign", "CampaignMember", "User"):  # fmt: skip
        describe = getattr(sf, name).describe()
        names = [f["name"] for f in describe["fields"]]
        assert len(names) == len(set(names)) and "Id" in names and "SystemModstamp" in names
        fields = ", ".join(n for n in names if n != "Id")
        result = sf.query(f"SELECT Id, {fields} FROM {name} LIMIT 1")
        assert result["totalSize"] == 1, name
        assert set(result["records"][0]) == {"attributes", "Id", *names}


def test_relative_date_literals_use_the_sandbox_clock(
    sf: Salesforce, clock: ManualClock, box: SalesforceSandbox
) -> None:
    # ManualClock starts 2026-06-30T12:00Z; days run from 00:00 UTC.
    box.session_ttl_seconds = 7 * 86_400  # the test moves a day on
    sf.Task.create({"Subject": "Due tomorrow", "ActivityDate": "2026-07-01"})
    sf.Task.create({"Subject": "Due in a week", "ActivityDate": "2026-07-07"})

    def subjects(where: str) -> set[str]:
        rows = sf.query_all(f"SELECT Subject FROM Task WHERE Subject LIKE 'Due%' AND {where}")
        return {r["Subject"] for r in rows["records"]}

    assert subjects("ActivityDate = TOMORROW") == {"Due tomorrow"}
    assert subjects("ActivityDate = NEXT_N_DAYS:7") == {"Due tomorrow", "Due in a week"}
    assert subjects("ActivityDate > NEXT_N_DAYS:6") == {"Due in a week"}
    assert subjects("ActivityDate < TODAY") == set()
    created_today = sf.query("SELECT COUNT() FROM Task WHERE CreatedDate = TODAY")["totalSize"]
    last_week = sf.query("SELECT COUNT() FROM Task WHERE CreatedDate = LAST_N_DAYS:7")["totalSize"]
    by_literal = sf.query("SELECT COUNT() FROM Task WHERE CreatedDate >= 2026-06-23T00:00:00Z")[
        "totalSize"
    ]
    assert created_today >= 2 and last_week == by_literal > created_today
    clock.advance(86_400)
    assert sf.query("SELECT COUNT() FROM Task WHERE CreatedDate = YESTERDAY")["totalSize"] == (
        created_today
    )
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id FROM Task WHERE Subject = TODAY")
    assert _error(caught)["errorCode"] == "INVALID_QUERY_FILTER_OPERATOR"
