"""``leadsync demo``: the embedded sandbox, a baseline, new activity, a second run."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from scheduler.cli import app
from scheduler.cli_sync import run_demo


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
