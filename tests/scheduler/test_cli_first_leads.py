"""``leadsync leads``: contacts by their last written score, from the state store."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sync_fakes import MODEL_YAML, FakeCRM, fake_score, models
from typer.testing import CliRunner

from scheduler import cli_sync
from scheduler.cli import app
from scheduler.config import load_config
from scheduler.state import StateStore
from scheduler.sync import RunOptions

ENV = {"LS_TEST_TOKEN": "x" * 8}
KEYS = {"contact_id", "name", "model", "score", "band", "last_crossing_at", "owner_id", "reasons"}


def _config(tmp_path: Path) -> Path:
    (tmp_path / "model.yaml").write_text(MODEL_YAML)
    p = tmp_path / "leadsync.yaml"
    p.write_text(
        "crm:\n  type: fake\n  fake: {access_token: '${LS_TEST_TOKEN}'}\n"
        "models: model.yaml\nstate: sqlite:///state.db\n"
        "writeback: {on_cross: {owners: {pool: [bob@example.com]}}}\n"
    )
    return p


def _run(path: Path, crm: FakeCRM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LS_TEST_TOKEN", ENV["LS_TEST_TOKEN"])
    cfg = load_config(path)
    store = StateStore(cfg.state_url())
    store.migrate()
    try:
        cli_sync.execute_run(
            cfg,
            RunOptions(),
            as_json=True,
            connector=crm,
            store=store,
            models=models(),
            scorer=fake_score,
        )
    finally:
        store.close()


@pytest.fixture
def synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> Path:
    """A baseline, then ``a`` (no owner) crosses the threshold: a hot, warm and cold lead."""
    crm = FakeCRM()
    crm.add("a", points=30)
    crm.add("b", points=55, owner_id="o1")
    crm.add("c", points=10, owner_id="o3")
    path = _config(tmp_path)
    _run(path, crm, monkeypatch)
    crm.touch("a", points=85)
    _run(path, crm, monkeypatch)
    assert crm.deals_for("a"), "the crossing made a deal"
    capsys.readouterr()
    return path


def _leads(path: Path, *args: str) -> Any:
    result = CliRunner().invoke(app, ["leads", "--config", str(path), *args], env=ENV)
    assert result.exit_code == 0, result.output
    return result.output


def test_leads_json_lists_contacts_by_last_written_score_with_band_counts(synced: Path) -> None:
    data = json.loads(_leads(synced, "--json"))
    rows = data["leads"]
    assert [r["contact_id"] for r in rows] == ["a", "b", "c"]
    assert all(set(r) == KEYS for r in rows)
    assert [r["score"] for r in rows] == [85.0, 55.0, 10.0]
    assert [r["band"] for r in rows] == ["hot", "warm", "cold"]
    assert rows[0]["name"] == "Fa La"
    assert rows[0]["last_crossing_at"] is not None and rows[1]["last_crossing_at"] is None
    # leadsync gave ``a`` an owner from the pool; the local copy learns it on a re-read,
    # but the ledger already knows.
    assert rows[0]["owner_id"] == "o2" and rows[1]["owner_id"] == "o1"
    assert rows[0]["reasons"] and all(set(x) == {"rule", "points"} for x in rows[0]["reasons"])
    assert {"rule": "base", "points": 1.0} in rows[0]["reasons"]
    assert data["band_counts"] == {"main": {"hot": 1, "warm": 1, "cold": 1}}
    assert "last score written" in data["note"]


def test_leads_filters_by_band_model_and_limit(synced: Path) -> None:
    hot = json.loads(_leads(synced, "--json", "--band", "hot"))["leads"]
    assert [r["contact_id"] for r in hot] == ["a"]
    top = json.loads(_leads(synced, "--json", "--limit", "2", "--model", "main"))["leads"]
    assert [r["contact_id"] for r in top] == ["a", "b"]
    # the counts are the whole store's, whatever the filter
    data = json.loads(_leads(synced, "--json", "--band", "cold"))
    assert data["band_counts"]["main"]["hot"] == 1


def test_leads_csv_has_a_header_and_one_row_per_lead(synced: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(_leads(synced, "--csv"))))
    assert [r["contact_id"] for r in rows] == ["a", "b", "c"]
    assert set(rows[0]) == KEYS
    assert "base:+1" in rows[0]["reasons"]


def test_leads_table_says_the_score_is_the_last_written_one(synced: Path) -> None:
    out = _leads(synced)
    assert "Leads by last written score" in out
    assert "last score written to the CRM" in out
    assert "main: 1 hot, 1 warm, 1 cold" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--band", "lukewarm"], "--band: expected hot, warm or cold, got 'lukewarm'"),
        (["--model", "nope"], "--model: no model 'nope'"),
        (["--json", "--csv"], "--json and --csv: choose one"),
    ],
)
def test_leads_bad_options_are_one_line_and_exit_2(
    synced: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["leads", "--config", str(synced), *args], env=ENV)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_leads_before_any_run_lists_nothing(tmp_path: Path) -> None:
    path = _config(tmp_path)
    data = json.loads(_leads(path, "--json"))
    assert data["leads"] == [] and data["as_of"] is None
    assert data["band_counts"] == {"main": {"hot": 0, "warm": 0, "cold": 0}}
