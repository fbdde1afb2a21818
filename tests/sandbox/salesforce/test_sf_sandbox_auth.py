"""Sessions, OAuth grants and the daily allocation, over the loopback TLS server."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import requests
from sf_sandbox_support import PinnedSession
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceRefusedRequest

from connectors.sandbox.framework import ManualClock, SandboxApp
from connectors.sandbox.salesforce import SalesforceSandbox
from connectors.sandbox.world import World


def test_official_client_over_tls(tls_sf: Salesforce, server: Any) -> None:
    assert server.base_url.startswith("https://127.0.0.1:")
    result = tls_sf.query("SELECT Id, Name FROM Account LIMIT 3")
    assert result["totalSize"] == 3
    assert tls_sf.api_usage["api-usage"].used == 1
    assert tls_sf.api_usage["api-usage"].total == 100_000


def test_environment_ca_bundle_does_not_trust_the_sandbox(server: Any) -> None:
    # REQUESTS_CA_BUNDLE (set on these machines) wins over session.verify: a plain
    # session with verify=<CA> still checks against the system bundle and fails.
    session = requests.Session()
    session.verify = str(server.ca_path)
    with session, pytest.raises(requests.exceptions.SSLError):
        session.get(f"{server.base_url}/services/data/", timeout=10)
    with PinnedSession(str(server.ca_path)) as pinned:
        assert pinned.get(f"{server.base_url}/services/data/", timeout=10).status_code == 200


def _client(server: Any, session_id: str) -> Salesforce:
    return Salesforce(
        session_id=session_id,
        instance_url=server.base_url,
        version="59.0",
        session=PinnedSession(str(server.ca_path)),
    )


def test_unknown_session_is_401(server: Any) -> None:
    sf = _client(server, "wrong")
    with pytest.raises(SalesforceExpiredSession) as caught:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert caught.value.status == 401
    assert caught.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_session_expires_after_ttl_of_inactivity(sf: Salesforce, clock: ManualClock) -> None:
    clock.advance(7200)  # exactly the timeout: still valid, and the use extends it
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] > 0
    clock.advance(7200.5)
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT COUNT() FROM Lead")


def test_expire_token_after_fault(sf: Salesforce, app: SandboxApp) -> None:
    app(_post_faults({"expire_token_after": 2}))
    sf.query("SELECT COUNT() FROM Lead")
    sf.query("SELECT COUNT() FROM Lead")
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT COUNT() FROM Lead")


def _post_faults(payload: dict[str, Any]) -> Any:
    import json

    from connectors.sandbox.framework import Request

    return Request("POST", "/__sandbox/faults", body=json.dumps(payload).encode())


def _token(server: Any, data: dict[str, str], **kw: Any) -> requests.Response:
    with PinnedSession(str(server.ca_path)) as session:
        return session.post(f"{server.base_url}/services/oauth2/token", data=data, timeout=10, **kw)


def _assertion(box: SalesforceSandbox, clock: ManualClock, **claims: Any) -> str:
    payload = {
        "iss": box.client_id,
        "sub": box.username,
        "aud": "https://login.salesforce.com",
        "exp": int(clock.now()) + 180,
    }
    payload.update(claims)
    key = claims.pop("key", None) or box.jwt_private_key_pem
    payload.pop("key", None)
    return jwt.encode(payload, key, algorithm="RS256")


def test_jwt_bearer_grant(server: Any, box: SalesforceSandbox, clock: ManualClock) -> None:
    answer = _token(server, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                             "assertion": _assertion(box, clock)})  # fmt: skip
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) >= {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
    }
    assert body["token_type"] == "Bearer" and body["instance_url"] == server.base_url
    assert body["issued_at"] == str(int(clock.now() * 1000))
    sf = _client(server, body["access_token"])
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] > 0


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"iss": "someone-else"}, "invalid_client_id"),
        ({"sub": "nobody@example.com"}, "invalid_grant"),
        ({"aud": "https://elsewhere.example"}, "invalid_grant"),
        ({"exp": 0}, "invalid_grant"),
    ],
)
def test_jwt_bearer_refusals(
    server: Any, box: SalesforceSandbox, clock: ManualClock, claims: dict[str, Any], error: str
) -> None:
    answer = _token(server, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                             "assertion": _assertion(box, clock, **claims)})  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["error"] == error


def test_jwt_signed_with_another_key_is_refused(
    server: Any, box: SalesforceSandbox, clock: ManualClock
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    answer = _token(server, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                             "assertion": _assertion(box, clock, key=other)})  # fmt: skip
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": "invalid assertion"}


def test_jwt_expiry_is_checked_on_the_sandbox_clock(
    server: Any, box: SalesforceSandbox, clock: ManualClock
) -> None:
    assertion = _assertion(box, clock)  # valid for 180 s
    clock.advance(181)
    answer = _token(server, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                             "assertion": assertion})  # fmt: skip
    assert answer.json()["error"] == "invalid_grant"


def test_refresh_token_grant(server: Any) -> None:
    good = _token(server, {"grant_type": "refresh_token", "client_id": "sandbox-client",
                           "client_secret": "sandbox-secret", "refresh_token": "sandbox-refresh"})  # fmt: skip
    assert good.status_code == 200
    assert _client(server, good.json()["access_token"]).query("SELECT COUNT() FROM Lead")
    bad = _token(server, {"grant_type": "refresh_token", "client_id": "sandbox-client",
                          "refresh_token": "stale"})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"


def test_client_credentials_grant(server: Any) -> None:
    good = _token(server, {"grant_type": "client_credentials", "client_id": "sandbox-client",
                           "client_secret": "sandbox-secret"})  # fmt: skip
    assert good.status_code == 200
    basic = base64.b64encode(b"sandbox-client:sandbox-secret").decode()
    via_header = _token(server, {"grant_type": "client_credentials"},
                        headers={"Authorization": f"Basic {basic}"})  # fmt: skip
    assert via_header.status_code == 200
    assert via_header.json()["access_token"] != good.json()["access_token"]
    bad = _token(server, {"grant_type": "client_credentials", "client_id": "sandbox-client",
                          "client_secret": "nope"})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"
    assert "nope" not in bad.text


def test_issued_sessions_survive_expire_credentials_only_until_called(
    sf: Salesforce, box: SalesforceSandbox
) -> None:
    box.expire_credentials()
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT COUNT() FROM Lead")


def test_daily_allocation(
    small_world: World, clock: ManualClock, mount_tls: Callable[[SandboxApp], Any]
) -> None:
    box = SalesforceSandbox(
        world=small_world, clock=clock, daily_limit=3, session_ttl_seconds=7 * 86_400
    )
    srv = mount_tls(SandboxApp(box))
    sf = _client(srv, "sandbox-session")
    for used in (1, 2, 3):  # one below the limit, then the last allowed call
        sf.query("SELECT COUNT() FROM Lead")
        assert sf.api_usage["api-usage"].used == used
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT COUNT() FROM Lead")
    assert caught.value.status == 403
    assert caught.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    clock.advance(3600)
    with pytest.raises(SalesforceRefusedRequest):
        sf.query("SELECT COUNT() FROM Lead")  # refused calls do not count, nor free anything
    clock.advance(86_400 - 3600)  # the first calls leave the rolling 24 hours
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] > 0


def test_limits_endpoint(sf: Salesforce) -> None:
    sf.query("SELECT COUNT() FROM Lead")
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 100_000
    assert limits["DailyApiRequests"]["Remaining"] == 100_000 - 2


def test_every_response_carries_the_limit_header(rsps: Any) -> None:
    session = requests.Session()
    base = "https://acme.my.salesforce.example/services/data/v59.0"
    ok = session.get(f"{base}/limits", headers={"Authorization": "Bearer sandbox-session"})
    refused = session.get(f"{base}/limits", headers={"Authorization": "Bearer nope"})
    missing = session.get(
        f"{base}/sobjects/Nope", headers={"Authorization": "Bearer sandbox-session"}
    )
    for response in (ok, refused, missing):
        assert response.headers["Sforce-Limit-Info"].startswith("api-usage=")
    assert (ok.status_code, refused.status_code, missing.status_code) == (200, 401, 404)
