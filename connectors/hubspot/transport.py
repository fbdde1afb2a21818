"""Every HubSpot call goes through here: auth, pacing, retries, quota, redaction.

Calls use the generated ``hubspot-api-client`` APIs with ``_preload_content=False``:
the SDK still builds the URL, the auth header and the body and raises its
``ApiException`` on a non-2xx, but we get the status and the rate-limit headers of
every response (its models drop headers, and it returns ``None`` for a status the
endpoint does not list). We check the status against the documented one ourselves.
The legacy v1 endpoints the SDK does not wrap (marketing e-mail events, form
submissions) go through one ``requests.Session`` of our own: ``client.api_request``
has no timeout and prints failed URLs to stdout, which would corrupt ``--json`` output.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
import urllib3
from hubspot import HubSpot

from connectors.base import AuthError, ConnectorConfigError
from connectors.hubspot.policy import (
    OAUTH_APP,
    SEARCH_PER_SECOND,
    TIERS,
    HubSpotHttpError,
    make_table,
    rate_headers,
    record_reason,
    to_failure,
)
from connectors.runtime import (
    Action,
    CallMeter,
    Outcome,
    QuotaGuard,
    RateLimiter,
    RedactingLogger,
    Redactor,
    call_with_policy,
)

log = logging.getLogger("leadsync.connectors.hubspot")

# refresh an OAuth token this long before it expires rather than waiting for a 401
REFRESH_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    data: Any
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class OAuthCredentials:
    client_id: str
    client_secret: str
    refresh_token: str


class HubSpotTransport:
    def __init__(
        self,
        *,
        base_url: str,
        access_token: str | None,
        oauth: OAuthCredentials | None,
        tier: str,
        headroom: float,
        quota_share: float,
        now: Callable[[], datetime],
        sleep: Callable[[float], None],
        max_attempts: int = 5,
        timeout: float = 30.0,
        redactor: Redactor | None = None,
        reserve: Callable[[str], None] = lambda kind: None,
    ) -> None:
        """``redactor``: the host's, to which the credentials are added; ``reserve``:
        called before every API request with its limit kind (``search`` has a limit of
        its own), to wait for a shared budget if there is one."""
        if (access_token is None) == (oauth is None):
            raise ConnectorConfigError("hubspot: give exactly one of access_token or oauth")
        if tier not in TIERS:
            raise ConnectorConfigError(
                f"hubspot.tier: {tier!r} is not one of {', '.join(sorted(TIERS))}"
            )
        self.base_url = base_url.rstrip("/")
        self.now = now
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.oauth = oauth
        self.redactor = redactor if redactor is not None else Redactor()
        self.redactor.add(access_token)
        self.reserve = reserve
        if oauth is not None:
            self.redactor.add(oauth.client_secret)
            self.redactor.add(oauth.refresh_token)
        self.log = RedactingLogger(log, self.redactor)
        self._token = access_token
        self._expires_at: datetime | None = None
        limits = OAUTH_APP if oauth is not None else TIERS[tier]
        clock = lambda: now().timestamp()  # noqa: E731
        self.meter = CallMeter(
            {
                "default": RateLimiter(
                    limits.per_ten_seconds, 10.0, headroom=headroom, clock=clock, sleep=sleep
                ),
                # search has its own per-second limit and is exempt from the 10 s one
                "search": RateLimiter(
                    SEARCH_PER_SECOND, 1.0, headroom=headroom, clock=clock, sleep=sleep
                ),
            },
            quota=QuotaGuard(quota_share),
        )
        self.table = make_table(clock)
        self.client = HubSpot(
            access_token=access_token or "",
            host=self.base_url,  # the generated APIs
            base_url=self.base_url,  # client.api_request (legacy v1 endpoints)
            retry=urllib3.util.Retry(total=0, respect_retry_after_header=False),
        )
        self._apis: dict[str, Any] = {}
        self._session = requests.Session()
        self.token_refreshes = 0
        # records received per kind of read ("list contacts", "batch read calls", ...):
        # what a run had to read, for budgets and benchmarks
        self.rows_read: Counter[str] = Counter()

    # -- SDK objects ------------------------------------------------------------------
    def api(self, path: str) -> Any:
        """``api("crm.objects.basic_api")``, built once: each discovery access
        creates a new client and connection pool."""
        if path not in self._apis:
            obj: Any = self.client
            for part in path.split("."):
                obj = getattr(obj, part)
            if self._token:
                obj.api_client.configuration.access_token = self._token
            self._apis[path] = obj
        return self._apis[path]

    def close(self) -> None:
        for api in self._apis.values():
            client = getattr(api, "api_client", None)
            if client is not None:
                client.rest_client.pool_manager.clear()
                client.close()
        self._apis.clear()
        self._session.close()

    # -- auth ---------------------------------------------------------------------------
    def _set_token(self, token: str) -> None:
        self.redactor.add(token)
        self._token = token
        self.client.access_token = token
        for api in self._apis.values():
            api.api_client.configuration.access_token = token

    def refresh(self) -> None:
        """Obtain a new access token from ``{base_url}/oauth/v1/token``."""
        if self.oauth is None:
            raise AuthError("hubspot: the private-app access token was refused")
        oauth = self.oauth
        tokens = self.api("oauth.tokens_api")

        def send() -> Reply:
            resp = tokens.create(
                grant_type="refresh_token",
                client_id=oauth.client_id,
                client_secret=oauth.client_secret,
                refresh_token=oauth.refresh_token,
                _preload_content=False,
                _request_timeout=self.timeout,
            )
            return self._reply(resp, (200,))

        def classify(exc: BaseException) -> Any:
            failure = to_failure(exc)
            if failure is None:
                return None
            if failure.status in (400, 401, 403):
                raise AuthError("hubspot: the OAuth refresh token was refused") from None
            return self.table.classify(failure)

        reply = call_with_policy(
            send,
            classify=classify,
            idempotent=True,
            sleep=self.sleep,
            max_attempts=self.max_attempts,
            redactor=self.redactor,
            what="hubspot token refresh",
        )
        data = reply.data if isinstance(reply.data, dict) else {}
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthError("hubspot: the token endpoint answered without an access_token")
        expires_in = data.get("expires_in")
        seconds = float(expires_in) if isinstance(expires_in, int | float) else 1800.0
        self._expires_at = self.now() + timedelta(seconds=seconds)
        new_refresh = data.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh and new_refresh != oauth.refresh_token:
            self.redactor.add(new_refresh)
            self.oauth = OAuthCredentials(oauth.client_id, oauth.client_secret, new_refresh)
        self._set_token(token)
        self.token_refreshes += 1
        self.log.info("hubspot: access token refreshed (valid %.0f s)", seconds)

    def _ensure_fresh(self) -> None:
        if self.oauth is None:
            return
        if (
            self._token is None
            or self._expires_at is None
            or self._expires_at - self.now() <= REFRESH_MARGIN
        ):
            self.refresh()

    # -- calls ----------------------------------------------------------------------------
    def _reply(self, resp: Any, expect: tuple[int, ...]) -> Reply:
        try:
            raw = resp.data
        finally:
            release = getattr(resp, "release_conn", None)
            if release is not None:
                release()
        headers = {str(k): str(v) for k, v in resp.headers.items()}
        status = int(resp.status)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
        if status not in expect:
            raise HubSpotHttpError(status, text, headers)
        try:
            data = json.loads(text) if text.strip() else None
        except ValueError:
            raise HubSpotHttpError(status, "response is not JSON", headers) from None
        return Reply(status, data, headers)

    def _observe(self, headers: Mapping[str, str], limiter: str = "default") -> None:
        h = rate_headers(headers)
        self.meter.observe(
            window_remaining=h["window_remaining"],
            window_limit=h["window_limit"],
            daily_remaining=h["daily_remaining"],
            daily_limit=h["daily_limit"],
            limiter=limiter,
        )

    def _observe_failure(self, exc: BaseException) -> None:
        headers = getattr(exc, "headers", None)
        if isinstance(headers, Mapping):
            self._observe({str(k): str(v) for k, v in headers.items()})

    def call(
        self,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        expect: tuple[int, ...] = (200,),
        idempotent: bool = True,
        search: bool = False,
        record_statuses: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> Reply:
        """One SDK call under the HubSpot policy. Reads are idempotent; a plain create
        passes ``idempotent=False`` and is never re-sent after an unclear failure.
        ``record_statuses`` turn those statuses into ``RecordRejected`` (with the
        status) so that the caller can deal with the records concerned."""
        kind = "search" if search else "default"

        def attempt() -> Reply:
            resp = fn(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
            reply = self._reply(resp, expect)
            self._observe(reply.headers, kind)
            return reply

        def before() -> None:
            self._ensure_fresh()
            self.meter.before_call(kind)
            self.reserve(kind)

        def classify(exc: BaseException) -> Any:
            self._observe_failure(exc)
            failure = to_failure(exc)
            if failure is None:
                return None
            outcome = self.table.classify(failure)
            if failure.status in record_statuses:
                reason = record_reason(failure.body) or outcome.reason
                outcome = Outcome(Action.REPORT_RECORD, None, reason)
            self.log.debug("hubspot: %s failed: %s", what, outcome.reason)
            return outcome

        return call_with_policy(
            attempt,
            classify=classify,
            idempotent=idempotent,
            sleep=self.sleep,
            max_attempts=self.max_attempts,
            on_refresh=self.refresh if self.oauth is not None else None,
            before_attempt=before,
            redactor=self.redactor,
            what=f"hubspot {what}",
        )

    def legacy_get(self, what: str, path: str, query: Mapping[str, Any]) -> Reply:
        """A GET on a v1 endpoint the generated SDK does not cover."""

        def attempt() -> Reply:
            resp = self._session.get(
                self.base_url + path,
                params=dict(query),
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
                timeout=self.timeout,
            )
            headers = {str(k): str(v) for k, v in resp.headers.items()}
            if resp.status_code != 200:
                raise HubSpotHttpError(resp.status_code, resp.text, headers)
            self._observe(headers)
            try:
                data = resp.json() if resp.content else None
            except ValueError:
                raise HubSpotHttpError(resp.status_code, "response is not JSON", headers) from None
            return Reply(resp.status_code, data, headers)

        def before() -> None:
            self._ensure_fresh()
            self.meter.before_call("default")
            self.reserve("default")

        def classify(exc: BaseException) -> Any:
            self._observe_failure(exc)
            failure = to_failure(exc)
            return None if failure is None else self.table.classify(failure)

        return call_with_policy(
            attempt,
            classify=classify,
            idempotent=True,
            sleep=self.sleep,
            max_attempts=self.max_attempts,
            on_refresh=self.refresh if self.oauth is not None else None,
            before_attempt=before,
            redactor=self.redactor,
            what=f"hubspot {what}",
        )
