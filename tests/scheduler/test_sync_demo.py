"""``leadsync demo``: the promise, told by the packaged starter model and the sandbox's
ordinary activity: a baseline, simulated days each with a run in which leads cross the
threshold through their behaviour (deal or Lead status change, task with the reasons,
owner) next to a few immediate events, and a final run that creates nothing."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from scheduler.cli import app
from scheduler.cli_demo import DemoCRM, DemoResult, run_demo
from scheduler.sync import RunSummary

CRMS = ["hubspot", "salesforce"]


def _groups(actions: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for a in actions:
        out.setdefault(a["group"], []).append(a)
    return out


def assert_the_story(data: dict[str, Any]) -> None:
    """What ``demo --json`` must show, read only through its documented keys."""
    runs, actions, hottest = data["runs"], data["actions"], data["hottest"]
    run_keys = set(RunSummary().to_dict()) - {"bad_rows"}  # as `run --json` prints them
    assert all(set(r) == run_keys for r in runs)
    assert len(runs) >= 3, "a baseline, a run that acts, a final run"
    assert runs[0]["baseline_models"] and runs[0]["deals"] == runs[0]["tasks"] == 0
    assert all(r["exit_code"] == 0 for r in runs), [r["error"] for r in runs]
    assert {a["why"] for a in actions} <= {"crossed", "event"}
    crossed = [
        items
        for items in _groups(actions).values()
        if items[0]["why"] == "crossed"
        and any(a["kind"] == "deal" and a["status"] == "done" and a["crm_id"] for a in items)
    ]
    assert crossed, "no lead crossed the threshold through its behaviour"
    for items in crossed:
        task = next(a for a in items if a["kind"] == "task")
        assert task["status"] == "done" and task["crm_id"]
        body = task["body"]
        assert "crossed" in body and "Top reasons:" in body, body
        assert re.search(r"^- [\w-]+: [+-]\d", body, re.M), body  # a rule and its points
        assert all(a["owner_id"] for a in items)
    assert any(h["band"] == "hot" for h in hottest), hottest
    assert runs[-1]["deals"] == 0 and runs[-1]["tasks"] == 0
    assert data["active_people"] > 0
    # Immediate events at a realistic rate: a few per cent of the people active.
    events = {a["group"] for a in actions if a["why"] == "event"}
    assert len(events) <= 0.06 * data["active_people"], (len(events), data["active_people"])


@pytest.mark.parametrize("crm", CRMS)
def test_demo_json_shows_a_crossing_a_hot_lead_and_a_final_run_that_creates_nothing(
    crm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(app, ["demo", "--crm", crm, "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output.strip().splitlines()[-1])
    assert data["crm"] == crm
    assert data["models"]["platform"]["threshold"] == 70  # the packaged starter, unchanged
    assert_the_story(data)
    # The demo's temporary folder is gone; its report stays where the user ran it.
    report = tmp_path / "leadsync-demo-report.html"
    assert data["report"] == str(report)
    text = report.read_text()
    assert text.startswith("<!DOCTYPE html>") and "ROC" in text


@pytest.mark.slow
@pytest.mark.parametrize("crm", CRMS)
def test_demo_tells_the_same_story_a_year_later(crm: str) -> None:
    later = datetime.now(UTC) + timedelta(days=365)
    result = run_demo(crm, start=later, quiet=True)
    assert result.started_at == later
    assert_the_story(result.to_json())
    # The runs happened on the demo's clock, a year on: the ledger and the crossings
    # are dated then, not today.
    assert all(a["run"] is not None and 0 < a["run"] < len(result.runs) - 1 for a in result.actions)


def test_demo_passes_its_history_length_to_the_world() -> None:
    result = run_demo("hubspot", contacts=60, active=10, simulated_days=1, days=400, quiet=True)
    assert result.history_days == 400
    assert result.to_json()["history_days"] == 400


def test_demo_prints_the_threshold_the_story_and_what_to_try_next(monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # a narrow terminal: ids must still be whole
    result = run_demo("hubspot")
    out = capsys.readouterr().out
    assert "Model platform: threshold 70" in out
    assert "Leads that crossed the threshold" in out and "Immediate events" in out
    assert "What the rep reads in each task:" in out and "Top reasons:" in out
    assert re.search(r"\d+ distinct people of \d+ were active", out)
    assert "Final run, with no new activity: 0 deal(s), 0 task(s)" in out
    tail = out.strip().splitlines()[-8:]
    for command in ("leadsync init", "leadsync check", "leadsync run"):
        assert any(line.strip().startswith(command) for line in tail), (command, tail)
    ids = {a["contact_id"] for a in result.actions} | {
        str(a["crm_id"]) for a in result.actions if a["crm_id"]
    }
    ids |= {h["contact_id"] for h in result.hottest}
    assert ids
    for i in ids:
        assert re.search(rf"(?<![\w]){re.escape(i)}(?![\w])", out), f"id {i} cut or wrapped"
    assert "…" not in out
    assert "sandbox-token" not in out


def test_demo_rejects_an_unknown_crm() -> None:
    bad = CliRunner().invoke(app, ["demo", "--crm", "pipedrive"])
    assert bad.exit_code == 2 and "--crm: expected hubspot or salesforce" in bad.output


def _acted(result: DemoResult) -> dict[str, list[dict[str, Any]]]:
    by_contact: dict[str, list[dict[str, Any]]] = {}
    for a in result.actions:
        by_contact.setdefault(a["contact_id"], []).append(a)
    return by_contact


@pytest.mark.slow
def test_demo_on_hubspot_creates_one_deal_and_one_task_per_contact_for_its_owner() -> None:
    seen: dict[str, Any] = {}

    def inspect(crm: DemoCRM) -> None:
        assert crm.result is not None
        http = requests.Session()
        http.headers.update(crm.headers)

        def get(path: str) -> Any:
            r = http.get(crm.base_url + path, timeout=10)
            if r.status_code == 429:  # our own inspection used up the rate window
                crm.advance(10)
                r = http.get(crm.base_url + path, timeout=10)
            assert r.status_code == 200, r.text
            return r.json()

        for cid in _acted(crm.result):
            contact = get(f"/crm/v3/objects/contacts/{cid}?properties=hubspot_owner_id")
            deals: list[dict[str, Any]] = []
            tasks: list[dict[str, Any]] = []
            for kind, props, out in (
                ("deals", "leadsync_key,hubspot_owner_id", deals),
                ("tasks", "leadsync_key,hubspot_owner_id,hs_task_subject,hs_task_body", tasks),
            ):
                links = get(f"/crm/v4/objects/contacts/{cid}/associations/{kind}?limit=500")
                for link in links["results"]:
                    rec = get(f"/crm/v3/objects/{kind}/{link['toObjectId']}?properties={props}")
                    if rec["properties"].get("leadsync_key"):
                        out.append(rec["properties"])
            seen[cid] = (contact["properties"]["hubspot_owner_id"], deals, tasks)

    result = run_demo("hubspot", quiet=True, inspect=inspect)
    assert sum(r.deals for r in result.runs) >= 3
    assert sum(r.tasks for r in result.runs) == sum(r.deals for r in result.runs)
    for cid, items in _acted(result).items():
        owner, deals, tasks = seen[cid]
        assert owner is not None
        assert [a["kind"] for a in items] == ["deal", "task"]  # once per contact
        assert all(a["status"] == "done" and a["owner_id"] == owner for a in items)
        assert len(deals) == 1 and len(tasks) == 1, (cid, deals, tasks)
        assert deals[0]["hubspot_owner_id"] == tasks[0]["hubspot_owner_id"] == owner
        assert "Top reasons:" in (tasks[0].get("hs_task_body") or "")


@pytest.mark.slow
def test_demo_on_salesforce_changes_lead_status_or_opens_an_opportunity_once() -> None:
    pytest.importorskip("connectors.sandbox.salesforce")
    seen: dict[str, Any] = {}

    def inspect(crm: DemoCRM) -> None:
        assert crm.ca_path is not None and crm.result is not None
        http = requests.Session()
        http.headers.update(crm.headers)
        ca = str(crm.ca_path)

        def query(soql: str) -> list[dict[str, Any]]:
            url = f"{crm.base_url}/services/data/v59.0/query/"
            r = http.get(url, params={"q": soql}, verify=ca, timeout=10)
            assert r.status_code == 200, r.text
            return list(r.json()["records"])

        for cid in _acted(crm.result):
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
    assert sum(r.deals for r in result.runs) >= 3
    kinds = {a["action"] for a in result.actions}
    assert {"lead status", "task"} <= kinds
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
