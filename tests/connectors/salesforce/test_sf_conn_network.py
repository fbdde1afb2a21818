"""Calls that get no answer name the host they tried (never a secret), and a server
certificate the client does not trust is said so at once, not retried."""

from __future__ import annotations

import socket

import pytest
from sf_conn_support import Org

from connectors.base import ConnectorConfigError, CRMResponseError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_untrusted_certificate_is_one_clear_error_and_not_retried(tls_org: Org) -> None:
    tls_org.ca_path = None  # the org's CA is not trusted
    conn = tls_org.connector("refresh_token")
    with pytest.raises(ConnectorConfigError) as err:
        conn.list_owners()
    conn.close()
    text = str(err.value)
    host = tls_org.base_url.removeprefix("https://")
    assert "certificate verif" in text and host in text and "ca_bundle" in text, text
    assert tls_org.sleeps == []
    assert "sandbox-secret" not in text and "sandbox-refresh" not in text


def test_a_refused_connection_names_the_host(tls_org: Org) -> None:
    port = _closed_port()
    url = f"http://127.0.0.1:{port}"
    tls_org.base_url = url
    tls_org.ca_path = None
    conn = tls_org.connector("refresh_token")
    with pytest.raises(CRMResponseError) as err:
        conn.list_owners()
    conn.close()
    text = str(err.value)
    assert f"127.0.0.1:{port}" in text and "refused" in text.lower(), text
    assert "sandbox-secret" not in text
