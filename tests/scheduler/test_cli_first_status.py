"""``leadsync status``: dry runs marked as such, a failed run's error, the cursor
summarised (whole only with ``--cursor``), no ``None of None`` budget."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from sync_fakes import MODEL_YAML, FakeCRM, fake_score, models
from typer.testing import CliRunner

from scheduler import cli_status, cli_sync
from scheduler.cli import app
from scheduler.config import load_config
from scheduler.state import StateStore
from scheduler.sync import RunOptions

ENV = {"LS_TEST_TOKEN": "x" * 8}


def _config(tmp_path: Path) -> Path:
    (tmp_path / "model.yaml").write_text(MODEL_YAML)
    p = tmp_path / "leadsync.yaml"
    p.write_text(
        "crm:\n  type: fake\n  fake: {access_token: '${LS_TEST_TOKEN}'}\n"
        "models: model.yaml\nstate: sqlite:///state.db\n"
    )
    return p


def _run(path: Path, crm: FakeCRM, monkeypatch: pytest.MonkeyPatch, **opts: Any) -> None:
    monkeypatch.setenv("LS_TEST_TOKEN", ENV["LS_TEST_TOKEN"])
    cfg = load_config(path)
    store = StateStore(cfg.state_url())
    store.migrate()
    try:
        cli_sync.execute_run(
            cfg,
            RunOptions(**opts),
            as_json=True,
            connector=crm,
            store=store,
            models=models(),
            scorer=fake_score,
        )
    finally:
        store.close()


def _status(path: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["status", "--config", str(path), *args], env=ENV)
    assert result.exit_code == 0, result.output
    return result.output


def _set_cursor(path: Path, cursor: dict[str, Any]) -> None:
    store = StateStore(f"sqlite:///{path.parent / 'state.db'}")
    store.migrate()
    with store.tx() as conn:
        store.set_cursor(conn, "default", cursor)
    store.close()


def test_a_dry_run_is_marked_as_one(tmp_path: Path, monkeypatch, capsys) -> None:
    crm = FakeCRM()
    crm.add("a", points=50, owner_id="o1")
    path = _config(tmp_path)
    _run(path, crm, monkeypatch)
    crm.touch("a", points=60)
    _run(path, crm, monkeypatch, dry_run=True)
    capsys.readouterr()
    runs = json.loads(_status(path, "--json"))["runs"]
    assert [r["dry_run"] for r in runs] == [True, False]
    text = _status(path)
    kinds = re.findall(r"│ (dry run|run)\s+│", text)
    assert kinds == ["dry run", "run"], text
    assert "a dry run writes nothing" in text


def test_a_failed_run_shows_its_error(tmp_path: Path, monkeypatch, capsys) -> None:
    crm = FakeCRM()
    crm.add("a", points=50, owner_id="o1")
    path = _config(tmp_path)
    crm.quota_after = 0
    _run(path, crm, monkeypatch)
    capsys.readouterr()
    run = json.loads(_status(path, "--json"))["runs"][0]
    assert run["exit_code"] == 3 and run["status"] == "stopped"
    assert "daily API allowance" in run["error"]
    text = _status(path)
    assert "stopped: daily API allowance share for this run is spent" in text


def test_json_summarises_the_cursor_and_prints_it_whole_only_on_request(tmp_path: Path) -> None:
    path = _config(tmp_path)
    ids = ",".join(str(i) for i in range(5000))
    cursor = {
        "version": 1,
        "since": "1782820800000",  # 2026-06-30T12:00:00Z in epoch milliseconds
        "boundary": {"1782820800000": ids},
        "own": {"1782820799000": "7:abc,8:def"},
    }
    _set_cursor(path, cursor)
    data = json.loads(_status(path, "--json"))
    assert "cursor" not in data
    summary = data["cursor_summary"]
    assert summary["since"] == "2026-06-30T12:00:00+00:00"
    assert summary["entries"] == 5002
    assert summary["bytes"] == len(json.dumps(cursor, sort_keys=True).encode())
    out = _status(path, "--json")
    assert len(out) < 2000  # not the cursor's 24 KB
    assert json.loads(_status(path, "--json", "--cursor"))["cursor"] == cursor
    text = _status(path)
    assert "next read from 2026-06-30 12:00:00" in text and "5002 remembered" in text
    assert ids not in text
    assert ids in _status(path, "--cursor")


def test_cursor_summary_reads_salesforce_positions_per_object() -> None:
    cursor = {
        "v": 1,
        "objects": {
            "Lead": {"until": "2026-06-30T12:00:00.000+0000", "seen": {"00Q1": "s", "00Q2": "s"}},
            "Contact": {"until": "2026-06-29T08:00:00.000+0000", "seen": {"0031": "s"}},
        },
        "own_writes": {},
    }
    summary = cli_status.cursor_summary(cursor)
    assert summary["since"] == "2026-06-29T08:00:00+00:00"
    assert summary["entries"] == 3
    assert cli_status.cursor_summary(None) == {"since": None, "entries": 0, "bytes": 0}


def test_no_none_of_none_for_a_connector_without_a_daily_budget(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    crm = FakeCRM()  # knows its call count, no limits
    crm.add("a", points=50, owner_id="o1")
    path = _config(tmp_path)
    _run(path, crm, monkeypatch)
    capsys.readouterr()
    text = _status(path)
    assert "None" not in text
    assert re.search(r"^API budget: \d+ call\(s\) made$", text, re.M), text
    assert cli_status.budget_text({}) is None
    assert (
        cli_status.budget_text(
            {"calls": 3, "daily_remaining": 900, "daily_limit": 1000, "window_remaining": 80}
        )
        == "API budget: 3 call(s) made; 900 of 1000 left today; "
        "80 left in the current window"
    )


def test_rejected_records_show_when_they_are_tried_again_when_the_store_says(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    rows = [
        {
            "contact_id": "a",
            "reason": "INVALID: no",
            "attempts": 2,
            "next_attempt_at": 1782820800.0,
        },
        {"contact_id": "b", "reason": "INVALID: too", "attempts": 1},
    ]
    monkeypatch.setattr(store, "rejected", lambda: rows)
    data = cli_status.status_data(store, "default")
    store.close()
    assert data["rejected"][0]["next_attempt_at"] == "2026-06-30T12:00:00+00:00"
    assert "next_attempt_at" not in data["rejected"][1]
    cli_status.print_status(data, as_json=False)
    out = capsys.readouterr().out
    assert "a: INVALID: no (2 attempt(s), next attempt 2026-06-30T12:00:00+00:00)" in out
    assert "b: INVALID: too (1 attempt(s))" in out
