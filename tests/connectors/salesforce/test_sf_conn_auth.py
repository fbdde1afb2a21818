"""OAuth token requests at any login URL, and the CA bundle beating the environment."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import requests
import responses
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.base import AuthError
from connectors.salesforce.auth import JWT_GRANT, CABundleSession, TokenEndpointBusy, TokenSource
from connectors.salesforce.config import parse_settings
from connectors.sandbox.framework import Request, Response, SandboxApp, serve

LOGIN = "https://login.example.test"
NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


def _keypair() -> tuple[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, key.public_key()


def _source(cfg: dict[str, Any]) -> TokenSource:
    s = parse_settings({"login_url": LOGIN, **cfg})
    return TokenSource(s.auth, login_url=s.login_url, session=requests.Session(), now=lambda: NOW)


@responses.activate
def test_jwt_bearer_assertion_is_signed_rs256_for_the_login_url() -> None:
    pem, public = _keypair()
    forms: list[dict[str, list[str]]] = []

    def token(req: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        forms.append(parse_qs(str(req.body)))
        return 200, {}, '{"access_token": "00Dxx!tok", "instance_url": "https://na1.example.test"}'

    responses.add_callback(responses.POST, f"{LOGIN}/services/oauth2/token", callback=token)
    got = _source({"jwt": {"client_id": "cid", "username": "u@x.test", "private_key": pem}}).fetch()
    assert got.access_token == "00Dxx!tok"
    assert got.instance_url == "https://na1.example.test"
    [form] = forms
    assert form["grant_type"] == [JWT_GRANT]
    claims = jwt.decode(
        form["assertion"][0],
        public,
        algorithms=["RS256"],
        audience=LOGIN,
        options={"verify_exp": False},
    )
    assert claims["iss"] == "cid" and claims["sub"] == "u@x.test"
    assert claims["exp"] == int(NOW.timestamp()) + 180
    assert "00Dxx!tok" not in repr(got)


@responses.activate
def test_refresh_token_and_client_credentials_forms() -> None:
    forms: list[dict[str, list[str]]] = []

    def token(req: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        forms.append(parse_qs(str(req.body)))
        return 200, {}, '{"access_token": "tok", "instance_url": "https://i.test"}'

    responses.add_callback(responses.POST, f"{LOGIN}/services/oauth2/token", callback=token)
    _source(
        {"refresh_token": {"client_id": "c", "client_secret": "s", "refresh_token": "r"}}
    ).fetch()
    _source({"client_credentials": {"client_id": "c", "client_secret": "s"}}).fetch()
    assert forms[0] == {
        "grant_type": ["refresh_token"],
        "client_id": ["c"],
        "client_secret": ["s"],
        "refresh_token": ["r"],
    }
    assert forms[1] == {
        "grant_type": ["client_credentials"],
        "client_id": ["c"],
        "client_secret": ["s"],
    }


@responses.activate
def test_refused_credentials_raise_auth_error_without_secrets() -> None:
    responses.add(
        responses.POST,
        f"{LOGIN}/services/oauth2/token",
        status=400,
        json={"error": "invalid_grant", "error_description": "bad refresh_token plantedRT123"},
    )
    src = _source(
        {
            "refresh_token": {
                "client_id": "c",
                "client_secret": "plantedCS",
                "refresh_token": "plantedRT123",
            }
        }
    )
    with pytest.raises(AuthError) as info:
        src.fetch()
    assert "invalid_grant" in str(info.value)
    assert "planted" not in str(info.value)


@responses.activate
def test_token_endpoint_5xx_is_marked_retriable() -> None:
    responses.add(responses.POST, f"{LOGIN}/services/oauth2/token", status=503, body="busy")
    with pytest.raises(TokenEndpointBusy) as info:
        _source({"client_credentials": {"client_id": "c", "client_secret": "s"}}).fetch()
    assert info.value.status == 503


class _Hello:
    """The smallest flavour: answers every request with 200 {"ok": true}."""

    name = "hello"

    def handle(self, request: Request) -> Response:
        return Response.json(200, {"ok": True})

    def route_key(self, request: Request) -> str:
        return f"{request.method} {request.path}"

    def is_write(self, request: Request) -> bool:
        return False

    def error_response(self, request: Request, status: int) -> Response:
        return Response.json(status, [{"errorCode": "X", "message": "x"}])

    def rate_limited_response(self, request: Request) -> Response:
        return Response.json(403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "x"}])

    def expire_credentials(self) -> None:
        return None

    def reset(self) -> None:
        return None


def test_ca_bundle_wins_over_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))  # a CA that did not sign the server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(other))
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with serve(SandboxApp(_Hello()), tls=True) as srv:
        assert srv.ca_path is not None
        plain = requests.Session()
        plain.verify = str(srv.ca_path)
        with pytest.raises(requests.exceptions.SSLError):
            plain.get(srv.base_url + "/x", timeout=10)  # the environment overrides verify
        ours = CABundleSession(str(srv.ca_path))
        assert ours.get(srv.base_url + "/x", timeout=10).json() == {"ok": True}
        settings = ours.merge_environment_settings("https://elsewhere.test/", {}, None, None, None)
        assert settings["verify"] == str(srv.ca_path)
        assert settings["proxies"]["https"] == "http://proxy.invalid:3128"  # proxies kept
        plain.close()
        ours.close()
