"""``leadsync init``: a commented configuration and the starter model to start from."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.salesforce.config import parse_settings
from scheduler.cli import app
from scheduler.cli_init import InitPlan, config_text
from scheduler.cli_sync import load_model_files
from scheduler.config import load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
PACKAGED = files("scoring").joinpath("data", "models", "starter.yaml").read_text("utf-8")


def _init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str, code: int = 0) -> str:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["init", *args])
    assert result.exit_code == code, result.output
    return result.output


def test_examples_starter_is_a_real_file_equal_to_the_packaged_one() -> None:
    starter = EXAMPLES / "models" / "starter.yaml"
    assert not os.path.islink(starter)
    assert starter.read_text("utf-8") == PACKAGED


def test_init_hubspot_writes_the_example_configuration_and_the_starter_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _init(tmp_path, monkeypatch)  # HubSpot is the default
    config = tmp_path / "leadsync.yaml"
    assert config.read_text("utf-8") == (EXAMPLES / "leadsync.yaml").read_text("utf-8")
    assert (tmp_path / "models" / "starter.yaml").read_text("utf-8") == PACKAGED
    assert "wrote leadsync.yaml" in out and "leadsync check --config leadsync.yaml" in out
    assert "# " in config.read_text("utf-8")  # commented for the reader
    cfg = load_config(config, env={"HUBSPOT_ACCESS_TOKEN": "pat-test-token"})
    assert cfg.crm.type == "hubspot"
    assert cfg.crm.settings()["base_url"] == "https://api.hubapi.com"
    assert [m.name for m in load_model_files(cfg.model_paths())] == ["platform", "services"]


def test_init_salesforce_writes_the_salesforce_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _init(tmp_path, monkeypatch, "--crm", "salesforce")
    text = (tmp_path / "leadsync.yaml").read_text("utf-8")
    example = (EXAMPLES / "leadsync-salesforce.yaml").read_text("utf-8")
    # The example is the same file, with a state database of its own.
    assert example == config_text(InitPlan("salesforce", state="sqlite:///leadsync-salesforce.db"))
    assert text == config_text(InitPlan("salesforce"))
    assert text.splitlines()[:20] == example.splitlines()[:20]
    (tmp_path / "salesforce-jwt.key").write_text("-----BEGIN PRIVATE KEY-----\n")
    cfg = load_config(tmp_path / "leadsync.yaml", env={"SF_CLIENT_ID": "3MVG-client"})
    assert cfg.crm.type == "salesforce" and "jwt" in cfg.crm.settings()


def test_init_refuses_to_overwrite_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "leadsync.yaml").write_text("# mine\n")
    out = _init(tmp_path, monkeypatch, code=2)
    lines = [line for line in out.splitlines() if line]
    assert lines == ["leadsync init: not overwriting leadsync.yaml (--force does)"]
    assert (tmp_path / "leadsync.yaml").read_text() == "# mine\n"
    assert not (tmp_path / "models").exists()  # nothing written when refused
    _init(tmp_path, monkeypatch, "--force")
    assert (tmp_path / "leadsync.yaml").read_text() != "# mine\n"


def test_init_sandbox_hubspot_points_at_the_sandbox_and_prints_what_to_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _init(tmp_path, monkeypatch, "--sandbox", "--sandbox-url", "http://127.0.0.1:9123/")
    exports = [line for line in out.splitlines() if line.startswith("export ")]
    assert exports == ["export HUBSPOT_ACCESS_TOKEN=sandbox-token"]
    cfg = load_config(tmp_path / "leadsync.yaml", env={"HUBSPOT_ACCESS_TOKEN": "sandbox-token"})
    assert cfg.crm.settings()["base_url"] == "http://127.0.0.1:9123"
    assert cfg.crm.settings()["access_token"] == "sandbox-token"
    pool = cfg.writeback.on_cross.owners.pool
    assert len(pool) == 3 and all(p.endswith("@acmecloud.example") for p in pool)


def test_init_sandbox_salesforce_uses_the_session_and_the_sandbox_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _init(tmp_path, monkeypatch, "--crm", "salesforce", "--sandbox")
    exports = [line for line in out.splitlines() if line.startswith("export ")]
    assert exports == ["export SF_SESSION_ID=sandbox-session"]
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")  # the sandbox's --ca-out
    cfg = load_config(tmp_path / "leadsync.yaml", env={"SF_SESSION_ID": "sandbox-session"})
    section = cfg.crm.settings()
    assert section["instance_url"] == "https://127.0.0.1:8766"
    assert Path(section["ca_bundle"]) == (tmp_path / "ca.pem").resolve()
    monkeypatch.chdir(REPO)  # the connector reads the CA from anywhere
    settings = parse_settings({"type": "salesforce", **section})
    assert settings.auth.kind == "session_id" and settings.instance_url == section["instance_url"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--crm", "pipedrive"], "--crm: expected hubspot or salesforce, got 'pipedrive'"),
        (["--sandbox-url", "http://x"], "--sandbox-url: only with --sandbox"),
        (["--sandbox", "--sandbox-url", "ftp://x"], "--sandbox-url: expected an http(s) URL"),
    ],
)
def test_init_bad_options_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    out = _init(tmp_path, monkeypatch, *args, code=2)
    assert message in out and "Traceback" not in out
    assert not (tmp_path / "leadsync.yaml").exists()


def test_init_that_cannot_write_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "models").write_text("a file where the models folder would go")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["init"])
    assert result.exit_code == 2
    assert result.stderr.startswith("leadsync init: cannot write in") and "Traceback" not in (
        result.output + result.stderr
    )
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]  # no leadsync.yaml
