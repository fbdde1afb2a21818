"""Owners, open deals, deal outcomes and owner changes, and discovery by entry point."""

from __future__ import annotations

from datetime import UTC, datetime

from sf_conn_support import Org

from connectors.base import Connector, RuntimeContext
from connectors.registry import available, create
from connectors.salesforce import SalesforceConnector


def test_registered_under_the_entry_point(org: Org) -> None:
    assert available()["salesforce"].load() is SalesforceConnector
    c = create(
        "salesforce", org.config(), context=RuntimeContext(now=org.clock.datetime, sleep=org.sleep)
    )
    assert isinstance(c, SalesforceConnector) and isinstance(c, Connector)


def test_owners_are_users_with_their_active_flag(org: Org) -> None:
    c = org.connector()
    owners = c.list_owners()
    users = org.sandbox.store.tables["User"]
    people = [o for o in owners if o.kind == "person"]
    assert {o.id for o in people} == {users.id_of(s) for s in range(users.n)}
    assert any(o.active for o in people) and all(o.email and "@" in o.email for o in people)
    # Lead queues too (Group with Type = 'Queue'): they can own Leads, not Tasks.
    groups = org.sandbox.store.tables["Group"]
    queue_ids = {groups.id_of(s) for s in range(groups.n) if groups.row(s).get("Type") == "Queue"}
    assert queue_ids and {o.id for o in owners if o.kind == "queue"} == queue_ids
    assert len(people) + len(queue_ids) == len(owners)


def test_deal_outcomes_carry_win_dates_amounts_and_contacts(org: Org) -> None:
    c = org.connector()
    outcomes = list(c.read_deal_outcomes(None, include_open=False))
    assert outcomes and all(not d.is_open for d in outcomes)
    assert {d.is_won for d in outcomes} == {True, False}
    assert all(d.closed_at and d.closed_at.tzinfo is UTC for d in outcomes)
    assert all(d.contact_id.startswith("003") for d in outcomes)
    won = [d for d in outcomes if d.is_won]
    assert all(d.amount is not None and d.amount > 0 for d in won)
    later = list(c.read_deal_outcomes(datetime(2100, 1, 1, tzinfo=UTC)))
    assert later == []


def test_open_deals_by_contact_and_owner_change(org: Org) -> None:
    c = org.connector()
    roles = c._query_one(
        "SELECT ContactId, OpportunityId FROM OpportunityContactRole WHERE Opportunity.IsClosed = false",
        what="test",
    )
    assert roles
    contact = roles[0]["ContactId"]
    deals = c.open_deals([contact, "00Q000000000000AAA"])
    assert {d.id for d in deals[contact]} >= {roles[0]["OpportunityId"]}
    assert all(d.is_open and d.contact_id == contact for d in deals[contact])
    assert deals["00Q000000000000AAA"] == []  # Leads have no Opportunities
    owners = [o for o in c.list_owners() if o.active]
    c.set_owner(contact, owners[-1].id)
    row = c._query_one(f"SELECT OwnerId FROM Contact WHERE Id = '{contact}'", what="test")
    assert row[0]["OwnerId"] == owners[-1].id
