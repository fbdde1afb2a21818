"""``leadsync run`` on exports (``crm.type: files``): bad rows are reported and the run
exits 1 while the good rows are still scored; export paths resolve from the config
file; models of different files may not share a score field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sync_fakes import MODEL_YAML
from typer.testing import CliRunner

from connectors.base import ConnectorConfigError
from scheduler import cli_sync
from scheduler.cli import app
from scheduler.config import config_from_mapping


def _project(root: Path, *, extra_files: str = "") -> Path:
    """A config in ``root/proj`` whose exports sit in ``root/proj/data``: two good
    contacts, one without an id; good events, one with a bad timestamp, one broken
    JSON line and one for a contact not in the export."""
    proj = root / "proj"
    (proj / "data").mkdir(parents=True)
    (proj / "model.yaml").write_text(MODEL_YAML)
    (proj / "data" / "contacts.csv").write_text(
        "id,first_name,last_name,points\nc1,Ada,Lovelace,3\nc2,Bo,Diddley,4\n,No,Id,5\n"
    )
    recent = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    events = [
        {"id": "e1", "contact_id": "c1", "type": "page_view", "occurred_at": recent},
        {"id": "e2", "contact_id": "c1", "type": "page_view", "occurred_at": recent},
        {"id": "e3", "contact_id": "c2", "type": "page_view", "occurred_at": "last tuesday"},
    ]
    lines = [json.dumps(e) for e in events]
    lines.append('{"id": "e4", "contact_id": ')
    lines.append(
        json.dumps({"id": "e5", "contact_id": "ghost", "type": "page_view", "occurred_at": recent})
    )
    (proj / "data" / "events.jsonl").write_text("\n".join(lines) + "\n")
    cfg = proj / "leadsync.yaml"
    cfg.write_text(
        "crm:\n  type: files\n  files:\n    contacts: data/contacts.csv\n"
        f"    events: data/events.jsonl\n{extra_files}"
        "models: model.yaml\nstate: sqlite:///state.db\n"
    )
    return cfg


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run every command from a directory that is not the config's."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    return other


def test_bad_rows_go_to_stderr_and_exit_1_while_good_rows_are_scored(
    tmp_path: Path, elsewhere: Path
) -> None:
    cfg = _project(tmp_path)
    data = tmp_path / "proj" / "data"
    runner = CliRunner()
    result = runner.invoke(app, ["run", "--config", str(cfg), "--dry-run", "--json"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    summary = json.loads(result.stdout)  # stdout is exactly one JSON object
    assert summary["rejected"] == 3 and summary["status"] == "rejected"
    assert summary["contacts_read"] == 2 and summary["orphan_events"] == 1
    assert "bad_rows" not in summary
    written = {w["contact_id"]: w["ls_score"] for w in summary["would_write"]}
    assert written == {"c1": 11, "c2": 1}  # fit 1 + 5 per page view; c2's view was bad
    err = result.stderr.splitlines()
    assert f"{data / 'contacts.csv'}:4: id: missing" in err
    assert any(line.startswith(f"{data / 'events.jsonl'}:3: occurred_at: ") for line in err)
    assert any(line.startswith(f"{data / 'events.jsonl'}:4: (json): broken JSON") for line in err)
    assert any("1 event(s) name a contact that is not in the contacts data" in x for x in err)
    assert not any(str(data) in line for line in result.stdout.splitlines())

    status = runner.invoke(app, ["status", "--config", str(cfg), "--json"])
    assert status.exit_code == 0, status.output
    state = json.loads(status.stdout)
    assert state["contacts_kept"] == 2 and state["runs"][0]["exit_code"] == 1
    explain = runner.invoke(app, ["explain", "--config", str(cfg), "--contact", "c1"])
    assert explain.exit_code == 0, explain.output
    assert "main: 11" in explain.stdout and "2 event(s) kept" in explain.stdout


def test_the_table_summary_also_lists_bad_rows_on_stderr(tmp_path: Path, elsewhere: Path) -> None:
    cfg = _project(tmp_path)
    result = CliRunner().invoke(app, ["run", "--config", str(cfg), "--dry-run"])
    assert result.exit_code == 1, result.output
    assert "contacts.csv:4: id: missing" in result.stderr
    assert "contacts.csv:4" not in result.stdout
    assert "rejected records" in result.stdout


def test_clean_exports_exit_0(tmp_path: Path, elsewhere: Path) -> None:
    cfg = _project(tmp_path)
    data = tmp_path / "proj" / "data"
    (data / "contacts.csv").write_text("id,points\nc1,3\n")
    (data / "events.jsonl").write_text("")
    result = CliRunner().invoke(app, ["run", "--config", str(cfg), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rejected"] == 0 and result.stderr == ""


def test_export_paths_resolve_from_the_config_file_not_the_working_directory(
    tmp_path: Path, elsewhere: Path
) -> None:
    cfg = _project(tmp_path)
    # A decoy in the working directory: the wrong file must not be read.
    (elsewhere / "data").mkdir()
    (elsewhere / "data" / "contacts.csv").write_text("id,points\nwrong,1\n")
    connector = cli_sync.make_connector(cli_sync._load(str(cfg)))
    assert connector.contacts_path == tmp_path / "proj" / "data" / "contacts.csv"  # type: ignore[attr-defined]
    result = CliRunner().invoke(app, ["run", "--config", str(cfg), "--dry-run", "--json"])
    ids = {w["contact_id"] for w in json.loads(result.stdout)["would_write"]}
    assert ids == {"c1", "c2"}


def test_a_base_dir_set_by_the_user_wins(tmp_path: Path, elsewhere: Path) -> None:
    cfg = _project(tmp_path, extra_files=f"    base_dir: {elsewhere}\n")
    with pytest.raises(ConnectorConfigError, match=r"files\.contacts: .*elsewhere.*: no such file"):
        cli_sync.make_connector(cli_sync._load(str(cfg)))
    (elsewhere / "data").mkdir()
    (elsewhere / "data" / "contacts.csv").write_text("id,points\nmine,1\n")
    (elsewhere / "data" / "events.jsonl").write_text("")
    connector = cli_sync.make_connector(cli_sync._load(str(cfg)))
    assert connector.contacts_path == elsewhere / "data" / "contacts.csv"  # type: ignore[attr-defined]


def test_other_connectors_get_no_base_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def create(name: str, settings: dict[str, object], *, context: object) -> object:
        seen.update(settings)
        return object()

    monkeypatch.setattr("connectors.registry.create", create)
    config = config_from_mapping(
        {"crm": {"type": "hubspot", "hubspot": {"access_token": "x"}}, "models": ["m.yaml"]},
        base_dir=tmp_path,
    )
    cli_sync.make_connector(config)
    assert seen == {"access_token": "x"}


def _second_model(score_field: str) -> str:
    return MODEL_YAML.replace("name: main", "name: other").replace("ls_score", score_field)


def test_models_of_two_files_sharing_a_score_field_are_rejected(
    tmp_path: Path, elsewhere: Path
) -> None:
    cfg = _project(tmp_path)
    proj = tmp_path / "proj"
    (proj / "second.yaml").write_text(_second_model("ls_score"))
    text = cfg.read_text().replace("models: model.yaml", "models: [model.yaml, second.yaml]")
    cfg.write_text(text)
    for command in (["run", "--config", str(cfg), "--dry-run"], ["check", "--config", str(cfg)]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert result.stderr.splitlines() == [
            f"{proj / 'second.yaml'}:1: models: score_field 'ls_score' of model 'other' "
            f"is also written by model 'main' in {proj / 'model.yaml'}"
        ]
    # Different fields are fine.
    (proj / "second.yaml").write_text(_second_model("ls_other_score"))
    models = cli_sync.load_model_files([proj / "model.yaml", proj / "second.yaml"])
    assert [m.score_field for m in models] == ["ls_score", "ls_other_score"]
