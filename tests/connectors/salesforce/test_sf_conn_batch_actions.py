"""Salesforce actions in batches against the sandbox: a few calls per 200, exactly one
Opportunity, contact role and Task per key through lost answers and duplicates, and
the Task key without External ID and Unique."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from sf_conn_support import Org, responses_org

from connectors.base import ActionResult, CreatesInBatches, DealSpec, OwnerSpec, TaskSpec
from connectors.salesforce import SalesforceConnector
from connectors.sandbox.framework import ManualClock, Request


@pytest.fixture
def big_org(clock: ManualClock) -> Iterator[Org]:
    yield from responses_org(clock, 1200)


def _faults(org: Org, **faults: Any) -> None:
    response = org.app(Request("POST", "/__sandbox/faults", body=json.dumps(faults).encode()))
    assert response.status == 200, response.body


def _people(c: SalesforceConnector, org: Org, kind: str) -> list[str]:
    now = org.clock.datetime()
    batches = c.read_changes(None, until=now, events_since=now)
    return [x.id for b in batches for x in b.contacts if x.kind == kind]


def _deal(contact: str, key: str, kind: str = "contact") -> DealSpec:
    return DealSpec(
        key=key, contact_id=contact, name=f"Inbound {contact}", owner_id=None,
        stage="Prospecting", close_date=date(2026, 7, 31), amount=100.0,
        contact_kind=kind,  # type: ignore[arg-type]
        crm_options={"lead_status": "Working - Contacted"},
    )  # fmt: skip


def _task(contact: str, key: str, kind: str = "contact") -> TaskSpec:
    return TaskSpec(
        key=key, contact_id=contact, owner_id=None, subject="Call", body="crossed",
        due_at=ManualClock().datetime(), contact_kind=kind,  # type: ignore[arg-type]
    )  # fmt: skip


def _rows(c: SalesforceConnector, soql: str) -> list[dict[str, Any]]:
    return c._query_one(soql, what="test query")


def _calls(org: Org) -> int:
    return sum(
        n for route, n in org.app.stats()["by_route"].items() if "/services/oauth2" not in route
    )


def test_150_deals_tasks_and_owners_cost_a_few_calls_and_exist_once(big_org: Org) -> None:
    org = big_org
    org.add_leadsync_fields()
    c = org.connector()
    assert isinstance(c, CreatesInBatches)
    contacts = _people(c, org, "contact")[:150]
    assert len(contacts) == 150
    owner = next(o for o in c.list_owners() if o.kind == "person" and o.active)
    c.ensure_fields([])
    org.app.reset_stats()
    deals = c.create_deals([_deal(p, f"d-{p}") for p in contacts])
    tasks = c.create_tasks([_task(p, f"t-{p}") for p in contacts])
    owners = c.set_owners([OwnerSpec(f"o-{p}", p, owner.id) for p in contacts])
    # deals: contact read, keyed read, upsert, contact roles; tasks: keyed read,
    # upsert; owners: one update (each per 200)
    assert _calls(org) <= 8, org.app.stats()["by_route"]
    assert all(isinstance(o, ActionResult) and o.created for o in [*deals, *tasks, *owners])
    opps = _rows(c, "SELECT Id, leadsync_key__c FROM Opportunity WHERE leadsync_key__c != null")
    assert Counter(r["leadsync_key__c"] for r in opps) == Counter(f"d-{p}" for p in contacts)
    roles = _rows(
        c,
        "SELECT OpportunityId, ContactId FROM OpportunityContactRole "
        "WHERE Opportunity.leadsync_key__c != null",
    )
    assert {(r["OpportunityId"], r["ContactId"]) for r in roles} == {
        (d.id, p)
        for d, p in zip(deals, contacts, strict=True)  # type: ignore[union-attr]
    }
    assert len(roles) == 150
    owned = _rows(c, f"SELECT Id FROM Contact WHERE OwnerId = '{owner.id}'")
    assert set(contacts) <= {r["Id"] for r in owned}
    org.app.reset_stats()
    again = c.create_deals([_deal(p, f"d-{p}") for p in contacts])
    assert [a.id for a in again] == [d.id for d in deals]  # type: ignore[union-attr]
    assert not any(a.created for a in again)  # type: ignore[union-attr]
    assert len(_rows(c, "SELECT Id FROM OpportunityContactRole WHERE ContactId != null")) >= 150


def test_dropped_answers_leave_one_opportunity_role_and_task_per_key(org: Org) -> None:
    org.add_leadsync_fields()
    c = org.connector()
    contacts = _people(c, org, "contact")[:30]
    _faults(org, commit_then_drop=0.5)
    first_d = c.create_deals([_deal(p, f"d-{p}") for p in contacts])
    first_t = c.create_tasks([_task(p, f"t-{p}") for p in contacts])
    _faults(org)
    again_d = c.create_deals([_deal(p, f"d-{p}") for p in contacts])
    again_t = c.create_tasks([_task(p, f"t-{p}") for p in contacts])
    assert all(isinstance(o, ActionResult) for o in [*again_d, *again_t])
    for done, later in zip([*first_d, *first_t], [*again_d, *again_t], strict=True):
        if isinstance(done, ActionResult):
            assert done.id == later.id  # type: ignore[union-attr]
    opps = _rows(c, "SELECT Id, leadsync_key__c FROM Opportunity WHERE leadsync_key__c != null")
    tasks = _rows(c, "SELECT Id, leadsync_key__c FROM Task WHERE leadsync_key__c != null")
    assert Counter(r["leadsync_key__c"] for r in opps) == Counter(f"d-{p}" for p in contacts)
    assert Counter(r["leadsync_key__c"] for r in tasks) == Counter(f"t-{p}" for p in contacts)
    roles = _rows(c, "SELECT OpportunityId FROM OpportunityContactRole WHERE ContactId != null")
    per_opp = Counter(r["OpportunityId"] for r in roles)
    assert all(per_opp[o["Id"]] == 1 for o in opps)
    assert org.app.stats()["by_status"].get("dropped", 0) >= 1


def test_leads_get_status_changes_in_one_update(org: Org) -> None:
    org.add_leadsync_fields()
    c = org.connector()
    leads = _people(c, org, "lead")[:20]
    org.app.reset_stats()
    out = c.create_deals([_deal(p, f"d-{p}", "lead") for p in leads])
    assert _calls(org) == 2
    assert all(isinstance(o, ActionResult) and o.created for o in out)
    again = c.create_deals([_deal(p, f"d-{p}", "lead") for p in leads])
    assert not any(a.created for a in again)  # type: ignore[union-attr]


def test_actions_never_sent_are_written_without_a_keyed_read(big_org: Org) -> None:
    """An action the ledger never sent cannot be in the org: no read before its upsert
    (nor, on a retry after a lost answer, without one)."""
    org = big_org
    org.add_leadsync_fields()
    c = org.connector()
    contacts = _people(c, org, "contact")[:150]
    c.ensure_fields([])
    org.app.reset_stats()
    deals = c.create_deals([replace(_deal(p, f"d-{p}"), first_attempt=True) for p in contacts])
    tasks = c.create_tasks([replace(_task(p, f"t-{p}"), first_attempt=True) for p in contacts])
    # deals: contact read, upsert, contact roles; tasks: upsert (each per 200)
    assert _calls(org) <= 4, org.app.stats()["by_route"]
    assert all(isinstance(o, ActionResult) and o.created for o in [*deals, *tasks])
    _faults(org, commit_then_drop=0.5)
    more = _people(c, org, "lead")[:40]
    first = c.create_tasks([replace(_task(p, f"l-{p}", "lead"), first_attempt=True) for p in more])
    _faults(org)
    c.create_tasks([_task(p, f"l-{p}", "lead") for p in more])
    tasks_made = _rows(c, "SELECT Id, leadsync_key__c FROM Task WHERE leadsync_key__c != null")
    keys = Counter(r["leadsync_key__c"] for r in tasks_made)
    assert all(keys[f"l-{p}"] == 1 for p in more) and all(keys[f"t-{p}"] == 1 for p in contacts)
    assert any(isinstance(o, ActionResult) for o in first)


def test_task_key_without_external_id_falls_back_to_the_people_tasks(org: Org) -> None:
    for obj in ("Lead", "Contact"):
        org.sandbox.add_custom_field(obj, "lead_score__c", "double")
    org.sandbox.add_custom_field(
        "Opportunity", "leadsync_key__c", "string", external_id=True, unique=True
    )
    org.sandbox.add_custom_field("Task", "leadsync_key__c", "string")  # neither
    c = org.connector()
    check = c.ensure_fields([])
    assert not check.missing  # usable as it is, and ``check`` says how
    [task_key] = [p for p in check.present if p.startswith("Task.leadsync_key__c")]
    assert "not External ID and Unique" in task_key and "person's Tasks" in task_key
    contacts = _people(c, org, "contact")[:10]
    _faults(org, commit_then_drop=0.5)
    first = c.create_tasks([_task(p, f"t-{p}") for p in contacts])
    _faults(org)
    again = c.create_tasks([_task(p, f"t-{p}") for p in contacts])
    assert all(isinstance(o, ActionResult) for o in again)
    for done, later in zip(first, again, strict=True):
        if isinstance(done, ActionResult):
            assert done.id == later.id  # type: ignore[union-attr]
    tasks = _rows(c, "SELECT Id, leadsync_key__c FROM Task WHERE leadsync_key__c != null")
    assert Counter(r["leadsync_key__c"] for r in tasks) == Counter(f"t-{p}" for p in contacts)
