"""A failed run as a user meets it: one line on stderr, the same exit status from
``check`` and ``run`` for the same CRM failure, hosts named, secrets never."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from sync_fakes import FakeCRM
from typer.testing import CliRunner

from connectors.base import (
    AuthError,
    ConnectorConfigError,
    CRMResponseError,
    QuotaExhausted,
)
from connectors.sandbox import HubSpotSandbox, ManualClock, SandboxApp, serve
from scheduler.cli import app
from scheduler.cli_sync import _guard
from scheduler.state import LeaseLost, StateError

TOKEN = "pat-na1-5ecret-70ken-0003"


@pytest.fixture
def hubspot(tmp_path: Path) -> Iterator[str]:
    sandbox = HubSpotSandbox(contacts=5, seed=3, tokens=(TOKEN,), clock=ManualClock())
    with serve(SandboxApp(sandbox), port=0) as srv:
        yield srv.base_url


def _config(tmp_path: Path, base_url: str) -> Path:
    (tmp_path / "model.yaml").write_text(
        "models:\n  - name: main\n    score_field: leadsync_score\n    bands: {hot: 70, warm: 40}\n"
        "    rules:\n      - {id: t, kind: fit, field: job_title, match: {exists: true}, points: 5}\n"
    )
    path = tmp_path / "leadsync.yaml"
    path.write_text(
        "crm:\n  type: hubspot\n"
        f"  hubspot: {{access_token: '${{LS_HS_TOKEN}}', base_url: '{base_url}', tier: pro}}\n"
        "models: model.yaml\nstate: sqlite:///state.db\n"
    )
    return path


def _leadsync(*args: str, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from scheduler.cli import main; main()", *args],
        env={**os.environ, "LS_HS_TOKEN": token}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def test_a_failed_run_prints_its_error_once_on_one_line_and_no_table(
    tmp_path: Path, hubspot: str
) -> None:
    path = _config(tmp_path, hubspot)
    wrong = "pat-na1-wrong-70ken-9999"
    proc = _leadsync("run", "--config", str(path), token=wrong)
    assert proc.returncode == 3
    assert proc.stdout == ""  # no table of zeros
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("stopped: "), proc.stderr
    assert "refused" in lines[0] and wrong not in proc.stderr
    proc = _leadsync("run", "--json", "--config", str(path), token=wrong)
    summary = json.loads(proc.stdout)  # with --json, the error is the object's
    assert proc.returncode == 3 and summary["status"] == "stopped"
    assert "refused" in summary["error"] and proc.stderr == "", proc.stderr


def test_check_and_run_agree_on_an_untrusted_certificate(tmp_path: Path) -> None:
    sandbox = HubSpotSandbox(contacts=5, seed=3, tokens=(TOKEN,), clock=ManualClock())
    with serve(SandboxApp(sandbox), port=0, tls=True, ca_out=tmp_path / "ca.pem") as srv:
        path = _config(tmp_path, srv.base_url)
        host = srv.base_url.removeprefix("https://")
        ran = _leadsync("run", "--config", str(path), token=TOKEN)
        checked = _leadsync("check", "--config", str(path), token=TOKEN)
    assert ran.returncode == checked.returncode == 2, (ran.stderr, checked.stderr)
    (line,) = ran.stderr.splitlines()
    assert "certificate verif" in line and host in line and ran.stdout == ""
    assert "certificate verif" in checked.stderr and TOKEN not in ran.stderr + checked.stderr


class _Failing(FakeCRM):
    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc

    def read_changes(self, *args: Any, **kwargs: Any) -> Any:
        raise self.exc


@pytest.mark.parametrize(
    "exc",
    [
        AuthError("refused"),
        QuotaExhausted("spent"),
        ConnectorConfigError("no field"),
        CRMResponseError("gave up"),
        StateError("state: cannot open"),
        LeaseLost("lost the lease"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_run_and_the_command_guard_give_one_exit_status_per_error(h, exc: Exception) -> None:
    h.crm = _Failing(exc)
    summary = h.run()
    with pytest.raises(typer.Exit) as guarded, _guard():
        raise exc
    assert summary.exit_code == guarded.value.exit_code != 0


def test_a_state_file_that_is_not_a_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = _config(tmp_path, "http://127.0.0.1:9")
    (tmp_path / "state.db").write_bytes(b"leadsync notes, not a database\n" * 200)
    for command in ("run", "status", "purge"):
        args = [command, "--config", str(path)] + (["--contact", "x"] if command == "purge" else [])
        result = CliRunner().invoke(app, args, env={"LS_HS_TOKEN": TOKEN})
        assert result.exit_code == 2, (command, result.output)
        (line,) = result.output.splitlines()
        assert "state.db" in line and "not a database" in line, line
        assert "SQL" not in line and "PRAGMA" not in line
