"""HTTPS for real CRM hostnames: a tool with a hard-coded host reaches the sandbox
through a hosts-file entry and trusts its CA. Tests connect to loopback and present
the real name through SNI, as such a tool would; nothing resolves the real names."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from connectors.sandbox import SandboxApp, generate_world, serve
from connectors.sandbox.hubspot import HubSpotSandbox
from connectors.sandbox.tls import SandboxCA, parse_hostnames, serve_options


def _get(port: int, hostname: str, ca: Path, path: str = "/crm/v3/owners") -> bytes:
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=hostname) as tls,
    ):
        tls.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {hostname}\r\nAuthorization: Bearer sandbox-token\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def app() -> SandboxApp:
    return SandboxApp(HubSpotSandbox(world=generate_world(30, seed=2)))


def test_serves_the_given_hostnames_with_the_ca(app: SandboxApp, tmp_path: Path) -> None:
    with serve(app, tls_hostnames=("api.hubapi.com",), ca_out=tmp_path / "ca.pem") as server:
        assert server.base_url.startswith("https://")
        assert server.ca_path == tmp_path / "ca.pem"
        answer = _get(server.port, "api.hubapi.com", server.ca_path)
        assert answer.startswith(b"HTTP/1.1 200")
        assert _get(server.port, "localhost", server.ca_path).startswith(b"HTTP/1.1 200")


def test_a_name_not_asked_for_fails_verification(app: SandboxApp, tmp_path: Path) -> None:
    with serve(app, tls_hostnames=("api.hubapi.com",), ca_out=tmp_path / "ca.pem") as server:
        assert server.ca_path is not None
        with pytest.raises(ssl.SSLCertVerificationError):
            _get(server.port, "login.salesforce.com", server.ca_path)


def test_a_kept_ca_is_reused_across_starts(app: SandboxApp, tmp_path: Path) -> None:
    first = SandboxCA.load_or_create(tmp_path / "ca")
    second = SandboxCA.load_or_create(tmp_path / "ca")
    assert first.cert_pem == second.cert_pem
    assert (tmp_path / "ca" / "sandbox-ca-key.pem").stat().st_mode & 0o077 == 0
    with serve(app, tls_hostnames=["login.salesforce.com"], ca=second) as server:
        assert server.ca_path == first.cert_path
        # trusting the CA kept from the first start is enough
        assert first.cert_path is not None
        assert _get(server.port, "login.salesforce.com", first.cert_path).startswith(b"HTTP/1.1")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("api.hubapi.com, login.salesforce.com", ("api.hubapi.com", "login.salesforce.com")),
        ("API.HubAPI.com.,api.hubapi.com", ("api.hubapi.com",)),
        ("*.my.salesforce.com", ("*.my.salesforce.com",)),
        ("", ()),
    ],
)
def test_parse_hostnames(text: str, expected: tuple[str, ...]) -> None:
    assert parse_hostnames(text) == expected


@pytest.mark.parametrize("bad", ["https://api.hubapi.com", "api.hubapi.com:443", "a b", "*.com"])
def test_parse_hostnames_names_the_bad_entry(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a hostname"):
        parse_hostnames(f"login.salesforce.com,{bad}")


def test_serve_options_share_one_ca_across_servers(app: SandboxApp, tmp_path: Path) -> None:
    assert serve_options(None) == {} and serve_options("") == {}
    options = serve_options("api.hubapi.com,login.salesforce.com", tmp_path / "kept")
    assert options["tls_hostnames"] == ("api.hubapi.com", "login.salesforce.com")
    with serve(app, **options) as one, serve(app, **options) as two:
        assert one.ca_path == two.ca_path == tmp_path / "kept" / "sandbox-ca.pem"
        assert _get(one.port, "api.hubapi.com", one.ca_path).startswith(b"HTTP/1.1 200")
        assert _get(two.port, "login.salesforce.com", one.ca_path).startswith(b"HTTP/1.1")


def test_serve_options_refuse_a_bad_name() -> None:
    with pytest.raises(ValueError, match=r"'https://x\.example' is not a hostname"):
        serve_options("https://x.example")
