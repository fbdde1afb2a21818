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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote_plus

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

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


# Query operations one ``/composite`` request may hold (query, queryAll, query more).
COMPOSITE_QUERIES = 5


@dataclass(frozen=True)
class Query:
    """One SOQL query to run: ``what`` labels it in errors and in ``rows_read``."""

    soql: str
    what: str
    include_deleted: bool = False


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
        # False once the org (or whatever answers in its place) refused ``/composite``.
        self.composite = True
        # First pages fetched ahead (``prefetch``), by query; dropped when a query not
        # fetched with them starts first, so that a page is never served stale.
        self._ahead: dict[tuple[str, bool], dict[str, Any]] = {}

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

    def _query_headers(self) -> dict[str, str]:
        if self.page_size == 2000:
            return {}
        return {"Sforce-Query-Options": f"batchSize={self.page_size}"}

    def query_pages(
        self,
        soql: str,
        *,
        what: str,
        include_deleted: bool = False,
        first: Mapping[str, Any] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages (up to 2,000 records each) of one SOQL query, following
        ``nextRecordsUrl``. ``first``: its first page, already fetched (``first_pages``).
        Raises ``QueryLocatorExpired`` when a locator stops working."""
        timeout = self.settings.timeout_seconds
        headers = self._query_headers()
        fetched = self.ahead(Query(soql, what, include_deleted))
        if fetched is None:
            self._ahead.clear()  # another query came first: the pages ahead may be stale
        result: Any = first if first is not None else fetched
        if result is None:
            result = self.call(
                what,
                lambda sf: sf.query(
                    soql, include_deleted=include_deleted, timeout=timeout, headers=headers
                ),
            )
        got = 0
        ahead: list[Any] = []  # pages fetched before they are wanted (``_more_pages``)
        while True:
            records = result.get("records") if isinstance(result, dict) else None
            if not isinstance(records, list):
                raise CRMResponseError(f"salesforce {what}: query answer has no records list")
            self.rows_read[what] += len(records)
            got += len(records)
            yield records
            next_url = result.get("nextRecordsUrl")
            if result.get("done", True) or not next_url:
                return
            if not ahead:
                total = result.get("totalSize")
                left = total - got if isinstance(total, int) else 0
                ahead = self._more_pages(what, str(next_url), timeout, left, len(records))
            result = ahead.pop(0)

    def _more(self, what: str, url: str, timeout: float) -> Any:
        return self.call(what, lambda sf: _query_more(sf, url, timeout))

    def _more_pages(self, what: str, url: str, timeout: float, left: int, page: int) -> list[Any]:
        """The next pages of a query: as many as ``left`` rows need (at most five)
        in one ``/composite`` request, each following the one before it by a
        reference to its ``nextRecordsUrl``. A failed first subrequest is asked
        again alone, so that an expired locator raises ``QueryLocatorExpired``; a
        later failure keeps the pages before it (the reader goes on from there)."""
        wanted = min(COMPOSITE_QUERIES, -(-left // page)) if page > 0 and left > 0 else 1
        if wanted < 2 or not self.composite:
            return [self._more(what, url, timeout)]
        results = self._composite(
            [
                {"method": "GET", "url": url if i == 0 else f"@{{m{i - 1}.nextRecordsUrl}}"}
                for i in range(wanted)
            ],
            what=what,
            prefix="m",
        )
        pages: list[Any] = []
        for result in results or ():
            if result is None:
                break
            pages.append(result)
        return pages or [self._more(what, url, timeout)]

    def _composite(
        self,
        subrequests: Sequence[Mapping[str, Any]],
        *,
        what: str,
        prefix: str,
        body_key: str = "records",
    ) -> list[dict[str, Any] | None] | None:
        """One ``/composite`` request of read-only subrequests, referenced as
        ``<prefix><n>``: the body of each that answered 200 with a records list,
        else None. None for the whole when ``/composite`` is refused (and not
        tried again by this process)."""
        body = {
            "allOrNone": False,
            "compositeRequest": [
                {**sub, "referenceId": f"{prefix}{i}"} for i, sub in enumerate(subrequests)
            ],
        }
        timeout = self.settings.timeout_seconds

        def attempt(sf: Salesforce) -> Any:
            try:
                return sf.restful("composite", method="POST", json=body, timeout=timeout)
            except (SalesforceMalformedRequest, SalesforceResourceNotFound):
                return None
            except SalesforceError as exc:
                if exc.status == 405:
                    return None
                raise

        answer = self.call(what, attempt)
        results = answer.get("compositeResponse") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(subrequests):
            self.composite = False
            self.log.info("salesforce: /composite is not available here; queries go one by one")
            return None
        pages: list[dict[str, Any] | None] = []
        for i, result in enumerate(results):
            ok = (
                isinstance(result, dict)
                and result.get("referenceId") == f"{prefix}{i}"
                and result.get("httpStatusCode") == 200
                and isinstance(result.get("body"), dict)
                and isinstance(result["body"].get(body_key), list)
            )
            pages.append(result["body"] if ok else None)
        return pages

    def ahead(self, query: Query) -> dict[str, Any] | None:
        """The first page ``prefetch`` fetched for ``query``, taken (None if none)."""
        return self._ahead.pop((query.soql, query.include_deleted), None)

    def describe_many(self, objects: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``describe`` of several objects in one ``/composite`` request; an object
        whose subrequest failed is described alone (``describe``, with its errors)."""
        results: list[dict[str, Any] | None] | None = None
        if len(objects) > 1 and self.composite:
            version = self.settings.version
            results = self._composite(
                [
                    {"method": "GET", "url": f"/services/data/v{version}/sobjects/{obj}/describe"}
                    for obj in objects
                ],
                what="describe " + ", ".join(objects),
                prefix="d",
                body_key="fields",
            )
        out: dict[str, dict[str, Any]] = {}
        for i, obj in enumerate(objects):
            found = results[i] if results is not None else None
            out[obj] = found if found is not None else self.describe(obj)
        return out

    def prefetch(self, queries: Sequence[Query]) -> None:
        """Fetch the first pages of queries that will run one after the other
        (``first_pages``): each is served to the ``query_pages`` of the same query if
        no other query starts before it."""
        for query, page in zip(queries, self.first_pages(queries), strict=True):
            if page is not None:
                self._ahead[(query.soql, query.include_deleted)] = page

    def first_pages(self, queries: Sequence[Query]) -> list[dict[str, Any] | None]:
        """The first page of each query, five queries to a ``/composite`` request:
        Salesforce counts the whole request as one call against the org's daily
        allowance, where the queries alone would cost one each. ``None`` stands for
        a query to run alone with ``query_pages``: a subrequest that failed (run
        alone, it meets the full response table: retries, session renewal, a clear
        error) or every query when ``/composite`` is refused (an endpoint in front
        of the org that lacks it)."""
        out: list[dict[str, Any] | None] = [None] * len(queries)
        if len(queries) < 2:
            return out
        for start in range(0, len(queries), COMPOSITE_QUERIES):
            chunk = queries[start : start + COMPOSITE_QUERIES]
            if len(chunk) < 2 or not self.composite:
                continue  # one query costs one call either way
            for offset, page in enumerate(self._composite_queries(chunk)):
                out[start + offset] = page
        return out

    def _composite_queries(self, queries: Sequence[Query]) -> list[dict[str, Any] | None]:
        version = self.settings.version
        headers = self._query_headers()
        results = self._composite(
            [
                {
                    "method": "GET",
                    "url": f"/services/data/v{version}/"
                    f"{'queryAll' if q.include_deleted else 'query'}/?q={quote_plus(q.soql)}",
                    **({"httpHeaders": headers} if headers else {}),
                }
                for q in queries
            ],
            what=" + ".join(q.what for q in queries),
            prefix="q",
        )
        return results if results is not None else [None] * len(queries)

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
