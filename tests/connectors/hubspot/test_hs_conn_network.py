"""Calls that get no answer name the host they tried (never the token), and a server
certificate the client does not trust is said so at once, not retried for 18 s."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from connectors.base import ConnectorConfigError, CRMResponseError, RuntimeContext
from connectors.hubspot import HubSpotConnector
from connectors.sandbox import HubSpotSandbox, ManualClock, SandboxApp, serve

TOKEN = "pat-na1-5ecret-70ken-0002"


def _connector(base_url: str, sleeps: list[float]) -> HubSpotConnector:
    clock = ManualClock()
    context = RuntimeContext(now=clock.datetime, sleep=sleeps.append)
    return HubSpotConnector.from_config(
        {"access_token": TOKEN, "base_url": base_url}, context=context
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_untrusted_certificate_is_one_clear_error_and_not_retried(tmp_path: Path) -> None:
    clock = ManualClock()
    app = SandboxApp(HubSpotSandbox(contacts=3, seed=1, tokens=(TOKEN,), clock=clock))
    with serve(app, tls=True, ca_out=tmp_path / "ca.pem") as srv:
        sleeps: list[float] = []
        conn = _connector(srv.base_url, sleeps)
        with pytest.raises(ConnectorConfigError) as err:
            conn.list_owners()
        conn.close()
    text = str(err.value)
    host = srv.base_url.removeprefix("https://")
    assert "certificate verif" in text and host in text, text
    assert sleeps == []  # not retried
    assert TOKEN not in text


def test_a_refused_connection_names_the_host(tmp_path: Path) -> None:
    port = _closed_port()
    sleeps: list[float] = []
    conn = _connector(f"http://127.0.0.1:{port}", sleeps)
    with pytest.raises(CRMResponseError) as err:
        conn.list_owners()
    conn.close()
    text = str(err.value)
    assert f"127.0.0.1:{port}" in text and "refused" in text.lower(), text
    assert TOKEN not in text and "MaxRetryError" not in text
    assert len(sleeps) == 4  # a dropped connection is retried
