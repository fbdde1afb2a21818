"""``leadsync sandbox``: starts, prints how to connect, answers, stops; bad options
are one-line errors."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import hubspot
import pytest
import requests
from typer.testing import CliRunner

from scheduler.cli import app
from scheduler.cli_sandbox import SandboxOptions, SandboxStartError, check_options, run_sandbox


def _start(opts: SandboxOptions) -> tuple[threading.Event, threading.Thread, list[str]]:
    stop = threading.Event()
    ready = threading.Event()
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if "Ctrl-C" in line:
            ready.set()

    thread = threading.Thread(target=run_sandbox, args=(opts,), kwargs={"stop": stop, "echo": echo})
    thread.start()
    assert ready.wait(30), "the sandbox did not start"
    return stop, thread, lines


def test_hubspot_sandbox_prints_its_url_and_token_and_answers_the_official_client() -> None:
    stop, thread, lines = _start(
        SandboxOptions(crm="hubspot", hubspot_port=0, contacts=50, seed=2, token="tok-123")
    )
    try:
        url = re.search(r"(http://127\.0\.0\.1:\d+)", lines[0]).group(1)  # type: ignore[union-attr]
        assert any("tok-123" in line for line in lines)
        client = hubspot.HubSpot(access_token="tok-123", host=url)
        page = client.crm.contacts.basic_api.get_page(limit=5)
        assert len(page.results) == 5
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (SandboxOptions(crm="pipedrive"), "--crm: expected one of hubspot, salesforce, both"),
        (SandboxOptions(tier="gold"), "--tier: expected one of"),
        (SandboxOptions(hubspot_port=70000), "--hubspot-port"),
        (SandboxOptions(contacts=-1), "--contacts"),
    ],
)
def test_bad_options_are_named(opts: SandboxOptions, message: str) -> None:
    with pytest.raises(SandboxStartError, match=re.escape(message)):
        check_options(opts)


def test_cli_reports_bad_options_in_one_line() -> None:
    result = CliRunner().invoke(app, ["sandbox", "--crm", "pipedrive"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "--crm: expected one of hubspot, salesforce, both" in result.output


def test_port_in_use_is_a_clear_error() -> None:
    stop, thread, lines = _start(SandboxOptions(crm="hubspot", hubspot_port=0, contacts=10))
    try:
        port = int(re.search(r":(\d+)", lines[0]).group(1))  # type: ignore[union-attr]
        with pytest.raises(SandboxStartError, match=f"cannot listen on 127.0.0.1:{port}"):
            run_sandbox(
                SandboxOptions(crm="hubspot", hubspot_port=port, contacts=10),
                stop=threading.Event(),
            )
    finally:
        stop.set()
        thread.join(10)


def test_both_flavours_share_one_world_and_salesforce_speaks_tls(tmp_path: Path) -> None:
    pytest.importorskip("connectors.sandbox.salesforce")
    ca = tmp_path / "ca.pem"
    stop, thread, lines = _start(
        SandboxOptions(crm="both", hubspot_port=0, salesforce_port=0, contacts=30, ca_out=ca)
    )
    try:
        sf_url = re.search(r"(https://127\.0\.0\.1:\d+)", "\n".join(lines)).group(1)  # type: ignore[union-attr]
        assert any(str(ca) in line for line in lines) and ca.exists()
        r = requests.get(
            f"{sf_url}/services/data/v59.0/limits",
            headers={"Authorization": "Bearer sandbox-session"},
            verify=str(ca),
            timeout=10,
        )
        assert r.status_code == 200
        assert "Sforce-Limit-Info" in r.headers
    finally:
        stop.set()
        thread.join(10)


def test_the_seeded_world_is_relative_to_the_sandboxs_clock() -> None:
    """Started a year on, the sandbox tells the same story a year on: its newest
    records are as fresh against its clock as they would be today."""
    from datetime import UTC, datetime, timedelta

    from connectors.sandbox import ManualClock

    newest = []
    for start in (datetime(2026, 6, 30, 12, tzinfo=UTC), datetime(2027, 6, 30, 12, tzinfo=UTC)):
        clock = ManualClock(start)
        stop = threading.Event()
        ready = threading.Event()
        lines: list[str] = []

        def echo(line: str, lines: list[str] = lines, ready: threading.Event = ready) -> None:
            lines.append(line)
            if "Ctrl-C" in line:
                ready.set()

        opts = SandboxOptions(crm="hubspot", hubspot_port=0, contacts=60, seed=3, days=400)
        thread = threading.Thread(
            target=run_sandbox, args=(opts,), kwargs={"stop": stop, "echo": echo, "clock": clock}
        )
        thread.start()
        try:
            assert ready.wait(30)
            assert "400 days of history" in lines[0]
            url = re.search(r"(http://127\.0\.0\.1:\d+)", lines[0]).group(1)  # type: ignore[union-attr]
            r = requests.post(
                f"{url}/crm/v3/objects/deals/search",
                json={"sorts": [{"propertyName": "createdate", "direction": "DESCENDING"}]},
                headers={"Authorization": "Bearer sandbox-token"},
                timeout=10,
            )
            created = datetime.fromisoformat(r.json()["results"][0]["createdAt"])
            assert start - timedelta(days=400) <= created <= start
            newest.append(start - created)
        finally:
            stop.set()
            thread.join(10)
    assert abs(newest[0] - newest[1]) < timedelta(minutes=1)
