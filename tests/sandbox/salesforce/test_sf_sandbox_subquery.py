"""Parent-to-child sub-queries, as Salesforce answers them: the child records nested
as a query result under the relationship's name, or ``null`` when there are none."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest


def _opportunity(sf: Salesforce, name: str) -> str:
    account = sf.Account.create({"Name": f"{name} Co"})["id"]
    body = {"Name": name, "StageName": "Prospecting", "CloseDate": "2027-01-31"}
    return str(sf.Opportunity.create({**body, "AccountId": account})["id"])


def _contact(sf: Salesforce, name: str) -> str:
    return str(sf.Contact.create({"LastName": name})["id"])


def _by_id(sf: Salesforce, soql: str) -> dict[str, dict[str, Any]]:
    return {r["Id"]: r for r in sf.query_all(soql)["records"]}


def test_child_records_are_nested_under_the_relationship(sf: Salesforce) -> None:
    opp = _opportunity(sf, "Nested")
    first, second = _contact(sf, "First"), _contact(sf, "Second")
    for contact in (first, second):
        sf.OpportunityContactRole.create({"OpportunityId": opp, "ContactId": contact})
    record = _by_id(
        sf,
        "SELECT Id, (SELECT ContactId FROM OpportunityContactRoles ORDER BY ContactId) "
        f"FROM Opportunity WHERE Id = '{opp}'",
    )[opp]
    roles = record["OpportunityContactRoles"]
    assert roles["totalSize"] == 2 and roles["done"] is True
    assert [r["ContactId"] for r in roles["records"]] == sorted([first, second])
    assert roles["records"][0]["attributes"]["type"] == "OpportunityContactRole"


def test_no_children_is_null_and_children_belong_to_their_parent(sf: Salesforce) -> None:
    lonely, busy = _opportunity(sf, "Lonely"), _opportunity(sf, "Busy")
    contact = _contact(sf, "Only")
    sf.OpportunityContactRole.create({"OpportunityId": busy, "ContactId": contact})
    records = _by_id(
        sf,
        "select Id, (select ContactId from opportunitycontactroles) from Opportunity "
        f"where Id IN ('{lonely}', '{busy}')",
    )
    assert records[lonely]["OpportunityContactRoles"] is None
    nested = records[busy]["OpportunityContactRoles"]["records"]
    assert [r["ContactId"] for r in nested] == [contact]


def test_where_and_limit_apply_to_each_parents_children(sf: Salesforce) -> None:
    opp = _opportunity(sf, "Filtered")
    contacts = [_contact(sf, f"C{i}") for i in range(3)]
    for i, contact in enumerate(contacts):
        sf.OpportunityContactRole.create(
            {"OpportunityId": opp, "ContactId": contact, "IsPrimary": i == 0}
        )
    soql = (
        "SELECT Id, (SELECT ContactId FROM OpportunityContactRoles WHERE IsPrimary = false "
        f"ORDER BY ContactId LIMIT 1) FROM Opportunity WHERE Id = '{opp}'"
    )
    roles = _by_id(sf, soql)[opp]["OpportunityContactRoles"]
    assert [r["ContactId"] for r in roles["records"]] == [min(contacts[1:])]


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id, (SELECT Id FROM NoSuchChildren) FROM Opportunity", "INVALID_TYPE"),
        ("SELECT Id, (SELECT NoSuchField FROM OpportunityContactRoles) FROM Opportunity",
         "INVALID_FIELD"),
        ("SELECT Id, (SELECT COUNT() FROM OpportunityContactRoles) FROM Opportunity",
         "MALFORMED_QUERY"),
    ],
)  # fmt: skip
def test_bad_sub_queries_are_refused(sf: Salesforce, soql: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query(soql)
    assert exc.value.content[0]["errorCode"] == code
