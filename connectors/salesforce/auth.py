"""OAuth for Salesforce at any login URL, and an HTTP session that trusts our CA.

simple-salesforce's own logins hard-code ``https://{domain}.salesforce.com``
(``simple_salesforce/login.py``), so the connector obtains the token itself with
requests and hands simple-salesforce a session id and an instance URL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt
import requests

from connectors.base import AuthError, QuotaExhausted
from connectors.runtime import Redactor
from connectors.salesforce.config import AuthSettings

log = logging.getLogger("leadsync.connectors.salesforce")

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - a path, not a secret
JWT_LIFETIME_SECONDS = 180  # Salesforce accepts assertions valid for at most 3 minutes


class CABundleSession(requests.Session):
    """A session whose CA bundle wins over ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``.

    requests lets those environment variables replace ``session.verify``
    (``Session.merge_environment_settings``); proxies from the environment are kept.
    """

    def __init__(
        self,
        ca_bundle: str | None = None,
        *,
        before_send: Callable[[requests.PreparedRequest], None] | None = None,
    ) -> None:
        super().__init__()
        self.ca_bundle = ca_bundle
        self.before_send = before_send
        if ca_bundle:
            self.verify = ca_bundle

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        # The one place every HTTP request passes, whoever builds it (simple-salesforce,
        # the token request): calls are counted and the quota checked here.
        if self.before_send is not None:
            self.before_send(request)
        return super().send(request, **kwargs)

    def merge_environment_settings(
        self,
        url: Any,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> dict[str, Any]:
        settings: dict[str, Any] = super().merge_environment_settings(
            url, proxies, stream, verify, cert
        )
        if self.ca_bundle and verify is not False:
            settings["verify"] = self.ca_bundle
        return settings


@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    instance_url: str
    user_id: str | None = None  # the API user, from the identity URL ``.../id/{org}/{user}``
    org_id: str | None = None  # the org, from the same URL


class TokenSource:
    """Obtains access tokens at ``{login_url}/services/oauth2/token``."""

    def __init__(
        self,
        auth: AuthSettings,
        *,
        login_url: str,
        session: requests.Session,
        now: Callable[[], datetime],
        timeout: float = 60.0,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self._redact = redact or Redactor(auth.secrets())
        self._auth = auth
        self._login_url = login_url.rstrip("/")
        self._session = session
        self._now = now
        self._timeout = timeout

    @property
    def can_refresh(self) -> bool:
        return self._auth.kind != "session_id"

    def _form(self) -> dict[str, str]:
        a = self._auth
        if a.kind == "jwt":
            issued = int(self._now().timestamp())
            claims = {
                "iss": a.client_id,
                "sub": a.username,
                "aud": self._login_url,
                "exp": issued + JWT_LIFETIME_SECONDS,
            }
            try:
                assertion = jwt.encode(claims, a.private_key, algorithm="RS256")
            except (ValueError, TypeError, jwt.PyJWTError) as exc:
                raise AuthError(
                    f"salesforce.jwt.private_key: cannot sign with it ({type(exc).__name__})"
                ) from None
            return {"grant_type": JWT_GRANT, "assertion": assertion}
        if a.kind == "refresh_token":
            form = {"grant_type": "refresh_token", "client_id": a.client_id}
            if a.client_secret:
                form["client_secret"] = a.client_secret
            form["refresh_token"] = a.refresh_token
            return form
        if a.kind == "client_credentials":
            return {
                "grant_type": "client_credentials",
                "client_id": a.client_id,
                "client_secret": a.client_secret,
            }
        raise AuthError("salesforce: the session id was refused and cannot be renewed")

    def fetch(self) -> Token:
        """One token request. Raises ``AuthError`` when the credentials are refused,
        ``TokenEndpointBusy`` or a requests exception when a retry may help."""
        url = self._login_url + TOKEN_PATH
        # Transport errors propagate as requests exceptions: the caller's retry policy
        # classifies them (a token request is safe to repeat).
        resp = self._session.post(url, data=self._form(), timeout=self._timeout)
        if resp.status_code >= 500 or resp.status_code == 429:
            raise TokenEndpointBusy(resp.status_code, resp.text, dict(resp.headers))
        if resp.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in resp.text:
            # Token requests do not count against the API allowance, but an edge (or
            # the sandbox's rate_limit_storm) may refuse them with the API's answer:
            # that is the allowance running out, not a credentials problem.
            raise QuotaExhausted(
                f"salesforce: token request at {url} refused with REQUEST_LIMIT_EXCEEDED; "
                "stopped cleanly, progress is saved"
            )
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or not isinstance(body, dict):
            error = body.get("error", "?") if isinstance(body, dict) else "?"
            detail = body.get("error_description", "") if isinstance(body, dict) else ""
            message = f"salesforce: token request refused at {url}: HTTP {resp.status_code} {error}"
            if detail:
                message += f" ({str(detail)[:200]})"
            raise AuthError(self._redact(message))
        access = body.get("access_token")
        instance = body.get("instance_url")
        if not isinstance(access, str) or not access:
            raise AuthError(f"salesforce: token response from {url} has no access_token")
        log.info("salesforce: obtained an access token (%s)", self._auth.kind)
        identity = body.get("id")
        parts = identity.rstrip("/").rsplit("/", 2) if isinstance(identity, str) else []
        user_id = parts[-1] if parts else None
        org_id = parts[-2] if len(parts) == 3 else None
        return Token(
            access_token=access,
            instance_url=str(instance or ""),
            user_id=user_id or None,
            org_id=org_id or None,
        )


class TokenEndpointBusy(Exception):
    """The token endpoint answered 5xx or 429: worth retrying (not a ConnectorError, so
    that the retry policy sees it)."""

    def __init__(self, status: int, body: str, headers: dict[str, str]) -> None:
        super().__init__(f"token endpoint answered HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers
