"""The commands as a user meets them: exit statuses, JSON output, one-line errors, and
secrets that never reach output, logs or the state database."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sync_fakes import MODEL_YAML, FakeCRM, fake_score, models
from typer.testing import CliRunner

from scheduler import cli_status, cli_sync
from scheduler.cli import app
from scheduler.config import load_config
from scheduler.state import StateStore
from scheduler.sync import RunOptions

TOKEN = "pat-na1-0f9e8d7c-PLANTED-SECRET"


def _config(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "model.yaml").write_text(MODEL_YAML)
    p = tmp_path / "leadsync.yaml"
    p.write_text(
        "crm:\n  type: fake\n  fake: {access_token: '${LS_TEST_TOKEN}'}\n"
        "models: model.yaml\nstate: sqlite:///state.db\n" + extra
    )
    return p


def _run(cfg_path: Path, crm: FakeCRM, monkeypatch, **opts):
    monkeypatch.setenv("LS_TEST_TOKEN", TOKEN)
    cfg = load_config(cfg_path)
    store = StateStore(cfg.state_url())
    store.migrate()
    try:
        as_json = opts.pop("as_json", True)
        return cli_sync.execute_run(
            cfg,
            RunOptions(**opts),
            as_json=as_json,
            connector=crm,
            store=store,
            models=models(),
            scorer=fake_score,
        )
    finally:
        store.close()


def test_json_summary_and_exit_codes(tmp_path: Path, monkeypatch, capsys) -> None:
    crm = FakeCRM()
    crm.add("a", points=80, owner_id="o1")
    crm.add("b", points=10, owner_id="o1")
    path = _config(tmp_path)
    code, _ = _run(path, crm, monkeypatch)
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["exit_code"] == 0 and out["scores_written"] == 2
    assert out["baseline_models"] == ["main"] and out["baseline_above_threshold"] == 1
    for key in ("contacts_read", "crossings", "deals", "tasks", "api_calls", "rejected", "seconds"):
        assert key in out
    crm.reject["b"] = "INVALID: no"
    crm.touch("b", points=20)
    code, _ = _run(path, crm, monkeypatch)
    assert code == 1 and json.loads(capsys.readouterr().out)["rejected"] == 1
    crm.touch("b", points=30)
    crm.quota_after = crm.calls
    code, _ = _run(path, crm, monkeypatch)
    assert code == 3
    assert json.loads(capsys.readouterr().out)["status"] == "stopped"


def test_a_planted_token_never_reaches_output_logs_or_the_state_db(
    tmp_path: Path, monkeypatch, capsys, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    crm = FakeCRM()
    crm.add("a", points=80, owner_id="o1")
    crm.add("b", points=90, owner_id="o1")
    crm.reject["b"] = f'401 {{"message": "token {TOKEN} is invalid"}}'
    path = _config(tmp_path)
    code, _ = _run(path, crm, monkeypatch, act_on_baseline=True)
    assert code == 1
    crm.fail_creates = 2
    crm.touch("a", points=10)
    _run(path, crm, monkeypatch, as_json=False)
    captured = capsys.readouterr()
    cli_status.print_status(
        cli_status.status_data(StateStore(f"sqlite:///{tmp_path / 'state.db'}"), "default"),
        as_json=True,
    )
    status_out = capsys.readouterr().out
    assert "***" in status_out  # the reason is kept, the token is not
    for text in (captured.out, captured.err, caplog.text, status_out):
        assert TOKEN not in text
    for f in tmp_path.iterdir():
        if f.name.startswith("state.db"):
            assert TOKEN.encode() not in f.read_bytes(), f.name


def test_run_with_a_bad_config_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    path = _config(tmp_path, "writeback: {min_change: lots}\n")
    result = CliRunner().invoke(app, ["run", "--config", str(path)], env={"LS_TEST_TOKEN": "x" * 8})
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line]
    assert lines == [
        f"{path}:6: writeback.min_change: Input should be a valid number, unable to parse string as a number"
    ]


def test_run_with_a_bad_model_file_exits_2(tmp_path: Path) -> None:
    path = _config(tmp_path)
    (tmp_path / "model.yaml").write_text("models:\n  - name: Bad Name\n")
    result = CliRunner().invoke(app, ["run", "--config", str(path)], env={"LS_TEST_TOKEN": "x" * 8})
    assert result.exit_code == 2
    assert "model.yaml:2:" in result.output and "Traceback" not in result.output


def test_unknown_connector_is_a_usage_error(tmp_path: Path) -> None:
    path = _config(tmp_path)
    result = CliRunner().invoke(app, ["run", "--config", str(path)], env={"LS_TEST_TOKEN": "x" * 8})
    assert result.exit_code == 2
    assert "crm.type: unknown connector 'fake'" in result.output


def test_status_purge_and_explain_read_the_state_store(tmp_path: Path, monkeypatch, capsys) -> None:
    crm = FakeCRM()
    crm.add("a", points=55, owner_id="o1")
    crm.add("b", points=20, owner_id="o1")
    path = _config(tmp_path)
    _run(path, crm, monkeypatch)
    capsys.readouterr()
    runner = CliRunner()
    result = runner.invoke(
        app, ["status", "--config", str(path), "--json"], env={"LS_TEST_TOKEN": "x" * 8}
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["contacts_kept"] == 2 and data["cursor_summary"]["entries"] == 0
    assert data["runs"][0]["scores_written"] == 2 and data["rejected"] == []
    result = runner.invoke(
        app, ["purge", "--config", str(path), "--contact", "a"], env={"LS_TEST_TOKEN": "x" * 8}
    )
    assert result.exit_code == 0 and "purged contact a" in result.output
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    assert store.contact_ids() == ["b"] and store.model_states(["a"]) == {}
    store.close()
    monkeypatch.setenv("LS_TEST_TOKEN", "x" * 8)
    assert cli_sync.explain_state(str(path), "a") == 2
    assert "not in the state store" in capsys.readouterr().err


def test_check_config_reports_file_problems(tmp_path: Path, monkeypatch, capsys) -> None:
    path = _config(tmp_path, "pipeline: 'bad name'\n")
    monkeypatch.setenv("LS_TEST_TOKEN", "x" * 8)
    assert cli_sync.check_config(str(path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{path}:6: pipeline: String should match pattern")


@pytest.mark.parametrize("engine_used", [True])
def test_explain_shows_reasons_from_the_local_copy(
    tmp_path: Path, monkeypatch, capsys, engine_used
) -> None:
    pytest.importorskip("scoring.engine")
    crm = FakeCRM()
    crm.add("a", points=55, owner_id="o1")
    path = _config(tmp_path)
    _run(path, crm, monkeypatch)
    capsys.readouterr()
    assert cli_sync.explain_state(str(path), "a") == 0
    out = capsys.readouterr().out
    assert "main:" in out and "base" in out and "last written: 55.0" in out
