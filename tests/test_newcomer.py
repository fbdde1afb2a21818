"""A newcomer's first steps, as processes: start the sandbox, ``leadsync init --sandbox``,
export what it printed, then ``check``, ``run``, ``leads --json`` and ``status --json``.

Everything runs as the user would run it (subprocesses, the installed ``leadsync``
command, loopback ports the system picks), on both CRMs.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

LEADSYNC = str(Path(sys.executable).with_name("leadsync"))
STARTUP_SECONDS = 120.0


def _wait_for_urls(proc: subprocess.Popen[str]) -> dict[str, str]:
    """Read the sandbox's banner until it says it serves; the URLs it printed. A thread
    reads the pipe (a select on the descriptor would miss lines the text wrapper has
    already buffered); the test waits on the queue, never on a timer."""
    assert proc.stdout is not None
    stream = proc.stdout
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in stream], daemon=True).start()
    urls: dict[str, str] = {}
    seen: list[str] = []
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        m = re.match(r"(HubSpot|Salesforce) sandbox:\s+(\S+)", line)
        if m:
            urls[m.group(1).lower()] = m.group(2)
        if line.startswith("Press Ctrl-C"):
            return urls
        if proc.poll() is not None and lines.empty():
            break
    err = proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
    raise AssertionError(f"the sandbox did not start: {''.join(seen)}{err}")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    home = tmp_path_factory.mktemp("newcomer")
    proc = subprocess.Popen(
        [LEADSYNC, "sandbox", "--crm", "both", "--leadsync-fields", "--ca-out", "ca.pem",
         "--hubspot-port", "0", "--salesforce-port", "0", "--contacts", "300"],
        cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield home, _wait_for_urls(proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _leadsync(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [LEADSYNC, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"leadsync {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


@pytest.mark.slow
@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_newcomer_gets_from_sandbox_to_scored_leads(
    sandbox: tuple[Path, dict[str, str]], crm: str
) -> None:
    home, urls = sandbox
    folder = home / crm
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBSPOT_", "SF_"))}
    init = _leadsync(
        folder, env, "init", "--crm", crm, "--sandbox", "--sandbox-url", urls[crm],
        "--ca-bundle", str(home / "ca.pem"),
    )  # fmt: skip
    exports = re.findall(r"^export (\w+)=(\S+)$", init.stdout, re.M)
    assert exports, init.stdout
    env.update(exports)
    check = _leadsync(folder, env, "check", "--config", "leadsync.yaml")
    assert "configuration is valid" in check.stdout
    run = _leadsync(folder, env, "run", "--config", "leadsync.yaml", "--json")
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["exit_code"] == 0 and summary["scores_written"] > 0
    leads = json.loads(
        _leadsync(folder, env, "leads", "--config", "leadsync.yaml", "--json").stdout
    )
    assert leads["leads"] and sum(leads["band_counts"]["platform"].values()) > 0
    status = json.loads(
        _leadsync(folder, env, "status", "--config", "leadsync.yaml", "--json").stdout
    )
    assert status["runs"][0]["exit_code"] == 0 and status["cursor_summary"]["bytes"] > 0
