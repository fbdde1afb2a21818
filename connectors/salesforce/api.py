"""simple-salesforce behind one door: auth renewal, call counting, quota, retries, redaction.

Every request the connector makes goes through :meth:`SalesforceApi.call`, which runs
it under the Salesforce response table (``policy.py``) with the shared
``call_with_policy``. The HTTP session counts each request and reads
``Sforce-Limit-Info`` from every response, errors included (simple-salesforce only
parses it on success).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from connectors.base import (
    ConnectorConfigError,
    CRMResponseError,
    QuotaExhausted,
    RuntimeContext,
    bucket_of,
)
from connectors.runtime import CallMeter, QuotaGuard, RedactingLogger, call_with_policy
from connectors.salesforce import policy
from connectors.salesforce.auth import TOKEN_PATH, CABundleSession, Token, TokenSource
from connectors.salesforce.config import SalesforceSettings

T = TypeVar("T")
log = logging.getLogger("leadsync.connectors.salesforce")


class QueryLocatorExpired(CRMResponseError):
    """``nextRecordsUrl`` no longer works (locators expire after ~15 minutes idle):
    the reader restarts the query after the last row it has."""


class SalesforceApi:
    def __init__(
        self,
        settings: SalesforceSettings,
        context: RuntimeContext,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._ctx = context
        self._rng = rng or random.Random()
        # The host's redactor: the secrets added here are masked in its messages too.
        self.redactor = context.redactor
        for secret in settings.auth.secrets():
            self.redactor.add(secret)
        self.log = RedactingLogger(log, self.redactor)
        self.meter = CallMeter(quota=QuotaGuard(settings.quota_share))
        self.token_requests = 0
        self.session = CABundleSession(settings.ca_bundle, before_send=self._before_send)
        self.session.hooks["response"].append(self._on_response)
        self._last_headers: Mapping[str, str] = {}
        self._classify = policy.table(now=self._now_ts).classifier(
            policy.make_to_failure(lambda: self._last_headers)
        )
        self._tokens = TokenSource(
            settings.auth,
            login_url=settings.login_url,
            session=self.session,
            now=context.now,
            timeout=settings.timeout_seconds,
            redact=self.redactor,
        )
        self._sf: Salesforce | None = None
        self.user_id: str | None = None  # who the API runs as (to recognise our own writes)
        self.org_id: str | None = None  # the org (names the API budget once known)
        self.rows_read: Counter[str] = Counter()  # records per query label, for benchmarks
        self.page_size = 2000  # Sforce-Query-Options batchSize (200..2000); tests lower it

    # -- plumbing -----------------------------------------------------------------------
    @property
    def bucket(self) -> str:
        """The API budget: the org once logged in, else the login endpoint and the
        connected app (a digest; never a secret)."""
        if self.org_id:
            return f"salesforce:{self.org_id}"
        where = self.settings.instance_url or self.settings.login_url
        return bucket_of("salesforce", f"{where}|{self.settings.auth.client_id}")

    def _now_ts(self) -> float:
        return float(self._ctx.now().timestamp())

    def _before_send(self, request: requests.PreparedRequest) -> None:
        if (request.path_url or "").startswith(TOKEN_PATH):
            self.token_requests += 1  # OAuth requests do not count against the API allowance
            return
        # A budget shared with other processes: wait (through the injected sleep)
        # until it grants this request.
        self._ctx.reserve(self.bucket)
        limit, remaining = self.meter.daily_limit, self.meter.daily_remaining
        if limit and remaining is not None and limit - remaining >= self.settings.headroom * limit:
            raise QuotaExhausted(
                f"salesforce: the org has used {limit - remaining} of its {limit} daily API "
                f"calls (headroom {self.settings.headroom:g}); stopped cleanly, progress is saved"
            )
        self.meter.before_call()

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_headers = response.headers
        info = response.headers.get("Sforce-Limit-Info")
        if not info:
            return
        usage = Salesforce.parse_api_usage(info).get("api-usage")
        if usage is not None:
            self.meter.observe(
                daily_remaining=max(0, usage.total - usage.used), daily_limit=usage.total
            )

    def _fetch_token(self) -> Token:
        a = self.settings.auth
        if a.kind == "session_id":
            return Token(access_token=a.session_id, instance_url=self.settings.instance_url or "")
        token = call_with_policy(
            self._tokens.fetch,
            classify=self._classify,
            idempotent=True,
            sleep=self._ctx.sleep,
            max_attempts=self.settings.max_attempts,
            redactor=self.redactor,
            rng=self._rng,
            what="salesforce token request",
        )
        self.redactor.add(token.access_token)
        return token

    def _connect(self) -> Salesforce:
        token = self._fetch_token()
        self.user_id = token.user_id or self.user_id
        self.org_id = token.org_id or self.org_id
        instance = self.settings.instance_url or token.instance_url
        if not instance:
            raise ConnectorConfigError(
                "salesforce.instance_url: not configured and the token response named none"
            )
        self._sf = Salesforce(
            session_id=token.access_token,
            instance_url=instance,
            version=self.settings.version,
            session=self.session,
        )
        return self._sf

    def client(self) -> Salesforce:
        return self._sf if self._sf is not None else self._connect()

    def renew(self) -> None:
        """A fresh session after ``INVALID_SESSION_ID``."""
        self.log.info("salesforce: session expired or invalid; obtaining a new one")
        self._sf = None
        self._connect()

    # -- calls --------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[[Salesforce], T], *, idempotent: bool = True) -> T:
        """Run ``fn(client)`` under the response table. ``idempotent`` must be False for
        a plain create, which is then never repeated after an unclear answer."""
        return call_with_policy(
            lambda: fn(self.client()),
            classify=self._classify,
            idempotent=idempotent,
            sleep=self._ctx.sleep,
            max_attempts=self.settings.max_attempts,
            on_refresh=self.renew if self._tokens.can_refresh else None,
            redactor=self.redactor,
            rng=self._rng,
            what=f"salesforce {what}",
        )

    def query_pages(
        self, soql: str, *, what: str, include_deleted: bool = False
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages (up to 2,000 records each) of one SOQL query, following
        ``nextRecordsUrl``. Raises ``QueryLocatorExpired`` when a locator stops working."""
        timeout = self.settings.timeout_seconds
        headers = (
            {"Sforce-Query-Options": f"batchSize={self.page_size}"}
            if self.page_size != 2000
            else {}
        )
        result = self.call(
            what,
            lambda sf: sf.query(
                soql, include_deleted=include_deleted, timeout=timeout, headers=headers
            ),
        )
        while True:
            records = result.get("records") if isinstance(result, dict) else None
            if not isinstance(records, list):
                raise CRMResponseError(f"salesforce {what}: query answer has no records list")
            self.rows_read[what] += len(records)
            yield records
            next_url = result.get("nextRecordsUrl")
            if result.get("done", True) or not next_url:
                return
            result = self._more(what, str(next_url), timeout)

    def _more(self, what: str, url: str, timeout: float) -> Any:
        return self.call(what, lambda sf: _query_more(sf, url, timeout))

    def collection(
        self, method: str, records: list[dict[str, Any]], *, what: str, path: str = ""
    ) -> list[dict[str, Any]]:
        """One sObject Collections call (``allOrNone: false``); per-record results in
        the order of ``records``. Only for idempotent writes (updates, upserts)."""
        body = {"allOrNone": False, "records": records}
        target = "composite/sobjects" + (f"/{path}" if path else "")
        timeout = self.settings.timeout_seconds
        result = self.call(
            what, lambda sf: sf.restful(target, method=method, json=body, timeout=timeout)
        )
        if not isinstance(result, list) or len(result) != len(records):
            raise CRMResponseError(
                f"salesforce {what}: expected {len(records)} results, got "
                f"{len(result) if isinstance(result, list) else type(result).__name__}"
            )
        return result

    def describe(self, obj: str) -> dict[str, Any]:
        timeout = self.settings.timeout_seconds
        result = self.call(
            f"describe {obj}", lambda sf: sf.restful(f"sobjects/{obj}/describe", timeout=timeout)
        )
        if not isinstance(result, dict):
            raise CRMResponseError(f"salesforce describe {obj}: unexpected answer")
        return result

    def close(self) -> None:
        self.session.close()


def _query_more(sf: Salesforce, url: str, timeout: float) -> Any:
    try:
        return sf.query_more(url, identifier_is_url=True, timeout=timeout)
    except (SalesforceMalformedRequest, SalesforceResourceNotFound) as exc:
        if "INVALID_QUERY_LOCATOR" in policy.error_codes(exc.content) or exc.status == 404:
            raise QueryLocatorExpired("salesforce: query locator expired") from None
        raise
