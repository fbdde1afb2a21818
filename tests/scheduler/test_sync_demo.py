"""``leadsync demo``: the embedded sandbox, a baseline, new activity, a second run."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from scheduler.cli import app
from scheduler.cli_demo import DemoCRM, DemoResult, run_demo


def test_demo_on_hubspot_runs_a_baseline_then_an_incremental_sync() -> None:
    result = run_demo("hubspot", contacts=120, active=20, days=3, quiet=True)
    first, second = result.first, result.second
    assert first.exit_code == 0 and second.exit_code == 0, (first.error, second.error)
    assert first.baseline_models and first.scores_written > 0
    assert first.deals == first.tasks == 0  # a baseline never acts
    assert second.baseline_models == [] and second.scores_written > 0
    assert second.contacts_read < first.contacts_read + 1
    scores = [h["score"] for h in result.hottest]
    assert scores and scores == sorted(scores, reverse=True)
    assert all(h["reasons"] for h in result.hottest)
    assert len([a for a in result.actions if a["kind"] == "deal"]) == second.deals
    assert len([a for a in result.actions if a["kind"] == "task"]) == second.tasks


def test_demo_command_prints_tables_and_json() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["demo", "--contacts", "60"])
    assert out.exit_code == 0, out.output
    assert "Hottest leads" in out.output and "Deals and tasks created" in out.output
    assert "sandbox-token" not in out.output
    out = runner.invoke(app, ["demo", "--contacts", "60", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output.strip().splitlines()[-1])
    assert data["first"]["baseline_models"] and data["second"]["exit_code"] == 0
    bad = runner.invoke(app, ["demo", "--crm", "pipedrive"])
    assert bad.exit_code == 2 and "--crm: expected hubspot or salesforce" in bad.output


def test_demo_on_salesforce_runs_over_tls() -> None:
    pytest.importorskip("connectors.sandbox.salesforce")
    result = run_demo("salesforce", contacts=120, active=20, days=3, quiet=True)
    assert result.first.exit_code == 0, result.first.error
    assert result.second.exit_code == 0, result.second.error
    assert result.first.contacts_read > 0
    assert result.second.contacts_read < result.first.contacts_read


def _acted(result: DemoResult) -> dict[str, list[dict[str, Any]]]:
    by_contact: dict[str, list[dict[str, Any]]] = {}
    for a in result.actions:
        by_contact.setdefault(a["contact_id"], []).append(a)
    return by_contact


def test_demo_on_hubspot_creates_one_deal_and_one_task_per_hot_contact_for_its_owner() -> None:
    """The demo's point: new demo requests after the baseline send leads to sales."""
    seen: dict[str, Any] = {}

    def inspect(crm: DemoCRM) -> None:
        http = requests.Session()
        http.headers.update(crm.headers)

        def get(path: str) -> Any:
            r = http.get(crm.base_url + path, timeout=10)
            if r.status_code == 429:  # our own inspection used up the rate window
                crm.advance(10)
                r = http.get(crm.base_url + path, timeout=10)
            assert r.status_code == 200, r.text
            return r.json()

        for cid in seen["ids"]:
            contact = get(f"/crm/v3/objects/contacts/{cid}?properties=hubspot_owner_id")
            deals: list[dict[str, Any]] = []
            tasks: list[dict[str, Any]] = []
            for kind, props, out in (
                ("deals", "leadsync_key,hubspot_owner_id", deals),
                ("tasks", "leadsync_key,hubspot_owner_id,hs_task_subject", tasks),
            ):
                links = get(f"/crm/v4/objects/contacts/{cid}/associations/{kind}?limit=500")
                for link in links["results"]:
                    rec = get(f"/crm/v3/objects/{kind}/{link['toObjectId']}?properties={props}")
                    if rec["properties"].get("leadsync_key"):
                        out.append(rec["properties"])
            seen[cid] = (contact["properties"]["hubspot_owner_id"], deals, tasks)

    # First pass finds who the demo acts on (deterministic: seeded world, seeded
    # activity); the second, identical, run checks them in the CRM before it stops.
    first = run_demo("hubspot", quiet=True)
    seen["ids"] = sorted(_acted(first))
    result = run_demo("hubspot", quiet=True, inspect=inspect)
    assert sorted(_acted(result)) == seen["ids"]
    assert result.first.deals == result.first.tasks == 0  # the baseline only reports
    assert result.second.deals >= 3 and result.second.tasks == result.second.deals
    owner_ids = {o for o, *_ in (seen[c] for c in seen["ids"])}
    for cid, items in _acted(result).items():
        owner, deals, tasks = seen[cid]
        assert [a["kind"] for a in items] == ["deal", "task"]  # once per contact
        assert all(a["status"] == "done" and a["owner_id"] == owner for a in items)
        assert len(deals) == 1 and len(tasks) == 1, (cid, deals, tasks)
        assert deals[0]["hubspot_owner_id"] == tasks[0]["hubspot_owner_id"] == owner
    assert None not in owner_ids


def test_demo_on_salesforce_changes_lead_status_or_opens_an_opportunity_once() -> None:
    pytest.importorskip("connectors.sandbox.salesforce")
    first = run_demo("salesforce", quiet=True)
    ids = sorted(_acted(first))
    seen: dict[str, Any] = {}

    def inspect(crm: DemoCRM) -> None:
        assert crm.ca_path is not None
        http = requests.Session()
        http.headers.update(crm.headers)
        ca = str(crm.ca_path)

        def query(soql: str) -> list[dict[str, Any]]:
            url = f"{crm.base_url}/services/data/v59.0/query/"
            r = http.get(url, params={"q": soql}, verify=ca, timeout=10)
            assert r.status_code == 200, r.text
            return list(r.json()["records"])

        for cid in ids:
            obj = "Lead" if cid.startswith("00Q") else "Contact"
            extra = ", Status" if obj == "Lead" else ""
            person = query(f"SELECT OwnerId{extra} FROM {obj} WHERE Id = '{cid}'")[0]
            tasks = query(
                f"SELECT OwnerId, Subject FROM Task WHERE WhoId = '{cid}' "
                "AND leadsync_key__c != null"
            )
            opps = []
            if obj == "Contact":
                opps = query(
                    "SELECT Opportunity.OwnerId FROM OpportunityContactRole "
                    f"WHERE ContactId = '{cid}' AND Opportunity.leadsync_key__c != null"
                )
            seen[cid] = (person, tasks, opps)

    result = run_demo("salesforce", quiet=True, inspect=inspect)
    assert sorted(_acted(result)) == ids
    assert result.first.deals == result.first.tasks == 0
    assert result.second.deals >= 3 and result.second.tasks == result.second.deals
    kinds = {a["action"] for a in result.actions}
    assert {"deal", "lead status", "task"} <= kinds  # Contacts and Leads both acted on
    for cid, items in _acted(result).items():
        person, tasks, opps = seen[cid]
        owner = person["OwnerId"]
        assert owner.startswith("005"), "a queue cannot own a Task: the Lead went to a rep"
        assert [a["kind"] for a in items] == ["deal", "task"]
        assert all(a["status"] == "done" and a["owner_id"] == owner for a in items)
        assert len(tasks) == 1 and tasks[0]["OwnerId"] == owner
        if cid.startswith("00Q"):
            assert person["Status"] == "Working - Contacted" and not opps
        else:
            assert len(opps) == 1 and opps[0]["Opportunity"]["OwnerId"] == owner


def test_demo_prints_who_got_which_deal_and_task() -> None:
    out = CliRunner().invoke(app, ["demo", "--crm", "salesforce"])
    assert out.exit_code == 0, out.output
    table = out.output.split("Deals and tasks created", 1)[1]
    assert "-> Working" in table and "event" in table
    assert "sandbox-secret" not in out.output and "sandbox-refresh" not in out.output
