"""``purge`` and ``explain --config`` on contacts the state store does not hold."""

from __future__ import annotations

from pathlib import Path

from sync_fakes import MODEL_YAML, FakeCRM, fake_score, models
from typer.testing import CliRunner

from scheduler import cli_sync
from scheduler.cli import app
from scheduler.config import load_config
from scheduler.state import StateStore
from scheduler.sync import RunOptions

ENV = {"LS_TEST_TOKEN": "x" * 8}


def _synced(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "model.yaml").write_text(MODEL_YAML)
    path = tmp_path / "leadsync.yaml"
    path.write_text(
        "crm:\n  type: fake\n  fake: {access_token: '${LS_TEST_TOKEN}'}\n"
        "models: model.yaml\nstate: sqlite:///state.db\n"
    )
    monkeypatch.setenv("LS_TEST_TOKEN", ENV["LS_TEST_TOKEN"])
    crm = FakeCRM()
    crm.add("a", points=55, owner_id="o1")
    cfg = load_config(path)
    store = StateStore(cfg.state_url())
    store.migrate()
    try:
        cli_sync.execute_run(
            cfg, RunOptions(), as_json=True, connector=crm, store=store, models=models(),
            scorer=fake_score,
        )  # fmt: skip
    finally:
        store.close()
    return path


def test_purge_of_an_unknown_contact_exits_1(tmp_path: Path, monkeypatch, capsys) -> None:
    path = _synced(tmp_path, monkeypatch)
    capsys.readouterr()
    result = CliRunner().invoke(app, ["purge", "--config", str(path), "--contact", "zz"], env=ENV)
    assert result.exit_code == 1
    assert "zz" in result.output and "not found" in result.output
    assert "purged contact" not in result.output


def test_purge_warns_that_the_next_run_reads_the_contact_again(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    path = _synced(tmp_path, monkeypatch)
    capsys.readouterr()
    result = CliRunner().invoke(app, ["purge", "--config", str(path), "--contact", "a"], env=ENV)
    assert result.exit_code == 0, result.output
    assert "purged contact a" in result.output
    assert "read again" in result.output and "CRM" in result.output
    again = CliRunner().invoke(app, ["purge", "--config", str(path), "--contact", "a"], env=ENV)
    assert again.exit_code == 1 and "not found" in again.output


def test_explain_config_of_an_unknown_contact_exits_2(tmp_path: Path, monkeypatch, capsys) -> None:
    path = _synced(tmp_path, monkeypatch)
    capsys.readouterr()
    assert cli_sync.explain_state(str(path), "zz") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "zz" in err[0] and "not in the state store" in err[0]
