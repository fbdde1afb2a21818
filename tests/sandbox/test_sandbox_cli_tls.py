"""``leadsync sandbox --tls-hostnames``: both CRMs served over HTTPS under real names,
signed by one CA the user trusts once (``--ca-dir``)."""

from __future__ import annotations

import re
import ssl
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.sandbox import ManualClock
from scheduler.cli_sandbox import SandboxOptions, SandboxStartError, run_sandbox
from tests.sandbox.test_tls_surface import _get

pytest.importorskip("connectors.sandbox.salesforce")


def test_both_crms_answer_under_their_real_names_with_one_kept_ca(tmp_path: Path) -> None:
    opts = SandboxOptions(
        crm="both",
        hubspot_port=0,
        salesforce_port=0,
        contacts=20,
        days=30,
        tls_hostnames="api.hubapi.com,login.salesforce.com",
        ca_dir=tmp_path / "ca",
    )
    stop, ready, lines = threading.Event(), threading.Event(), []

    def echo(line: str) -> None:
        lines.append(line)
        if "Ctrl-C" in line:
            ready.set()

    clock = ManualClock(datetime(2026, 6, 30, tzinfo=UTC))
    thread = threading.Thread(
        target=run_sandbox, args=(opts,), kwargs={"stop": stop, "echo": echo, "clock": clock}
    )
    thread.start()
    try:
        assert ready.wait(30), lines
        text = "\n".join(lines)
        ports = [int(p) for p in re.findall(r"https://127\.0\.0\.1:(\d+)", text)]
        assert len(ports) == 2, text  # HubSpot is on HTTPS too, as the real one is
        cas = set(re.findall(r"CA certificate:\s+(\S+)", text))
        assert len(cas) == 1, text  # one CA signs both servers
        ca = Path(cas.pop())
        assert _get(ports[0], "api.hubapi.com", ca).startswith(b"HTTP/1.1 200")
        answer = _get(ports[1], "login.salesforce.com", ca, path="/services/data/")
        assert answer.startswith(b"HTTP/1.1 200")
        with pytest.raises(ssl.SSLCertVerificationError):
            _get(ports[0], "api.example.com", ca)
    finally:
        stop.set()
        thread.join(10)
    assert any((tmp_path / "ca").iterdir())  # kept for the next start


def test_a_bad_hostname_is_a_start_error() -> None:
    opts = SandboxOptions(hubspot_port=0, contacts=10, days=10, tls_hostnames="bad host!")
    with pytest.raises(SandboxStartError, match="--tls-hostnames"):
        run_sandbox(opts, stop=threading.Event(), echo=lambda _line: None)


def test_a_ca_dir_that_cannot_be_made_or_read_is_a_start_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    opts = SandboxOptions(hubspot_port=0, contacts=10, days=10, ca_dir=blocker / "ca")
    with pytest.raises(SandboxStartError, match="--ca-dir"):
        run_sandbox(opts, stop=threading.Event(), echo=lambda _line: None)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "sandbox-ca.pem").write_text("garbage")
    (bad / "sandbox-ca-key.pem").write_text("garbage")
    opts = SandboxOptions(hubspot_port=0, contacts=10, days=10, ca_dir=bad)
    with pytest.raises(SandboxStartError, match="--ca-dir"):
        run_sandbox(opts, stop=threading.Event(), echo=lambda _line: None)
