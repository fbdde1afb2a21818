"""``leadsync serve`` as a process: SIGKILL right after a 2xx loses nothing; CLI errors
are one line with exit status 2."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import typer
from serve_helpers import HS_SECRET, PUBLIC, hs_event
from typer.testing import CliRunner

from scheduler import cli_serve
from scheduler.serve.inbox import Inbox
from scheduler.serve.signatures import hubspot_signature

ROOT = Path(__file__).resolve().parents[2]
CONFIG = (
    "crm: {type: files, files: {contacts: c.csv}}\n"
    "models: m.yaml\n"
    "state: sqlite:///state.db\n"
    "serve:\n"
    f"  public_url: {PUBLIC}\n"
    "  hubspot: {client_secret: '${HS_SECRET}'}\n"
    "  worker: {idle: 0.05s}\n"
)


def _write_config(tmp_path: Path) -> Path:
    path = tmp_path / "leadsync.yaml"
    path.write_text(CONFIG)
    return path


class Proc:
    """``python -m scheduler.serve`` with the port it printed."""

    def __init__(self, config: Path, *args: str) -> None:
        env = {**os.environ, "HS_SECRET": HS_SECRET, "PYTHONPATH": str(ROOT)}
        self.popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scheduler.serve",
                "--config",
                str(config),
                "--port",
                "0",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
            text=True,
        )
        found: list[str] = []
        got = threading.Event()

        def read() -> None:
            assert self.popen.stdout is not None
            for line in self.popen.stdout:
                if "listening on" in line:
                    found.append(line.strip().rsplit(" ", 1)[-1])
                    got.set()
            got.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not got.wait(30) or not found:
            self.popen.kill()
            raise AssertionError(
                f"serve did not start: {self.popen.stderr.read() if self.popen.stderr else ''}"
            )
        self.url = found[0]

    def post_hubspot(self, events: list[dict[str, object]]) -> httpx.Response:
        body = json.dumps(events).encode()
        ts = str(int(datetime.now(UTC).timestamp() * 1000))
        sig = hubspot_signature(HS_SECRET, "POST", PUBLIC + "/webhooks/hubspot", body, ts)
        return httpx.post(
            self.url + "/webhooks/hubspot",
            content=body,
            headers={"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts},
            timeout=10,
        )


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        if proc.popen.poll() is None:
            proc.popen.kill()
        proc.popen.wait(10)
        proc.reader.join(10)
        for stream in (proc.popen.stdout, proc.popen.stderr):
            if stream is not None:
                stream.close()


def _until(check: object, timeout: float = 20.0) -> None:
    """Wait for a real subprocess to get somewhere (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_sigkill_right_after_the_answer_loses_nothing(tmp_path: Path, procs: list[Proc]) -> None:
    config = _write_config(tmp_path)
    first = Proc(config, "--no-worker")
    procs.append(first)
    answer = first.post_hubspot([hs_event(1, 101), hs_event(2, 102)])
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(10)
    assert answer.status_code == 200 and answer.json()["accepted"] == 2

    inbox = Inbox(f"sqlite:///{tmp_path / 'state.db'}", now=lambda: datetime.now(UTC))
    assert inbox.counts() == {"pending": 2}  # committed before the 2xx

    record = tmp_path / "processed.jsonl"
    second = Proc(config, "--record-to", str(record))
    procs.append(second)
    _until(lambda: inbox.counts() == {"done": 2})
    keys = [json.loads(line)["key"] for line in record.read_text().splitlines()]
    assert sorted(keys) == ["hubspot:1", "hubspot:2"]
    # HubSpot redelivers what it thinks failed: a no-op
    assert second.post_hubspot([hs_event(1, 101)]).json() == {"accepted": 0, "duplicates": 1}
    second.popen.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (its convention)
    assert second.popen.wait(20) in (0, -signal.SIGTERM)
    assert second.popen.stderr is not None
    assert "Application shutdown complete" in second.popen.stderr.read()
    inbox.close()


def _cli() -> typer.Typer:
    app = typer.Typer()
    cli_serve.register(app)

    @app.command()
    def other() -> None:  # two commands, so that ``serve`` is a subcommand as in leadsync
        pass

    return app


def test_a_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "leadsync.yaml"
    path.write_text(CONFIG.replace("'${HS_SECRET}'", "written-in-the-file"))
    result = CliRunner().invoke(
        _cli(), ["serve", "--config", str(path)], env={"HS_SECRET": "x" * 10}
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [
        f"{path}:6: serve.hubspot.client_secret: secrets must not be written in the file; "
        "use ${ENV_VAR} or ${file:PATH}"
    ]


def test_a_taken_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = _write_config(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            _cli(),
            ["serve", "--config", str(path), "--port", str(port)],
            env={"HS_SECRET": HS_SECRET},
        )
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: --port: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert "Traceback" not in result.output
