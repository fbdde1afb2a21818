"""Machinery every CRM connector shares: response table, retries, rate limit, quota, redaction.

How a connector uses it:
 1. Write one ``ResponseTable`` of ``Rule``s in its own package (status / body text /
    header -> ``Action``) and a ``to_failure(exc) -> Failure | None`` that turns its
    client's exceptions into the CRM-neutral ``Failure`` (None = a bug, re-raised as is).
 2. Build one ``CallMeter`` per connector: a ``RateLimiter`` per limit (e.g. 10-second
    window, search per second), a ``QuotaGuard`` for the daily share, a call counter.
 3. Wrap every API call: ``call_with_policy(fn, classify=table.classifier(to_failure),
    idempotent=..., sleep=ctx.sleep, before_attempt=meter.before_call, on_refresh=...)``;
    after each response feed the rate-limit headers to ``meter.observe(...)``.
 4. Register every secret with a ``Redactor`` and pass it to ``call_with_policy``; log
    through ``RedactingLogger`` so that no token reaches a message, a log or a file.
 5. ``meter.budget()`` answers ``Connector.budget()``.
See docs/connectors.md for the reasoning (which calls are retried, and why).
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import TypeVar

import tenacity

from connectors.base import (
    AuthError,
    Budget,
    ConnectorConfigError,
    CRMResponseError,
    NotRetried,
    QuotaExhausted,
    Redactor,
)

__all__ = [
    "Action",
    "CallMeter",
    "Failure",
    "Outcome",
    "QuotaGuard",
    "RateLimiter",
    "RecordRejected",
    "RedactingLogger",
    "Redactor",
    "ResponseTable",
    "Rule",
    "call_with_policy",
    "no_answer",
    "parse_retry_after",
]

T = TypeVar("T")

# ------------------------------------------------------------------ actions and table


class Action(Enum):
    """What to do with a failed call (one table per CRM maps responses to these)."""

    RETRY = "retry"  # transient (5xx, dropped connection): back off, retry if safe
    RATE_LIMITED = "rate_limited"  # short-window limit: wait Retry-After or back off
    REFRESH_AUTH = "refresh_auth"  # token expired: refresh once, then retry
    STOP_FOR_DAY = "stop_for_day"  # daily quota gone: end the run cleanly
    REPORT_RECORD = "report_record"  # this record is refused; report it, carry on
    FAIL = "fail"  # unusable answer: stop with a clear error
    FAIL_SETUP = "fail_setup"  # cannot work until the user fixes the set-up (TLS trust)


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    retry_after: float | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed call as the table sees it, whatever client made it.

    ``status`` is None when no answer arrived (connection dropped, timeout): the
    request may or may not have been applied.
    """

    status: int | None
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    detail: str = ""  # e.g. the exception class, for messages
    host: str = ""  # ``host:port`` that gave no answer (never the URL: it may carry a token)


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of a response table. Every given condition must match.

    ``status`` is one code, a tuple of codes or a ``range``; ``transport=True`` matches
    only calls that got no answer; ``contains`` is a case-insensitive body substring;
    ``header`` must be present.
    """

    action: Action
    status: int | tuple[int, ...] | range | None = None
    contains: str | None = None
    header: str | None = None
    transport: bool = False
    reason: str = ""
    hint: str = ""  # what the user can do, after the CRM's own words

    def matches(self, failure: Failure) -> bool:
        if self.transport != (failure.status is None):
            return False
        if self.status is not None and failure.status is not None:
            if isinstance(self.status, int):
                if failure.status != self.status:
                    return False
            elif failure.status not in self.status:
                return False
        if self.contains is not None and self.contains.lower() not in failure.body.lower():
            return False
        return not (self.header is not None and _header(failure.headers, self.header) is None)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        reference = now if now is not None else datetime.now(UTC).timestamp()
        seconds = when.timestamp() - reference
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


_MESSAGE_KEYS = ("message", "error", "errorCode", "category", "policyName")


def _message_excerpt(body: str, limit: int = 300) -> str:
    """A short human-readable part of an error body (the JSON ``message`` if any)."""
    import json

    text = body.strip()
    try:
        payload = json.loads(text) if text else None
    except ValueError:
        payload = None
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        payload = payload[0]
    if isinstance(payload, dict):
        parts = [str(payload[k]) for k in _MESSAGE_KEYS if payload.get(k)]
        if parts:
            text = "; ".join(dict.fromkeys(parts))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ResponseTable:
    """A CRM's response → action table; the first matching rule wins.

    Keeping the whole policy in one literal table (per CRM) is what makes it reviewable
    against the CRM's documentation; see ``connectors/hubspot/policy.py``.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        default: Action = Action.FAIL,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.default = default
        self._now = now

    def classify(self, failure: Failure) -> Outcome:
        rule = next((r for r in self.rules if r.matches(failure)), None)
        action = rule.action if rule else self.default
        retry_after = None
        if action in (Action.RETRY, Action.RATE_LIMITED):
            retry_after = parse_retry_after(
                _header(failure.headers, "Retry-After"),
                now=self._now() if self._now else None,
            )
        if failure.status is not None:
            where = f"HTTP {failure.status}"
        else:
            where = "no response" + (f" from {failure.host}" if failure.host else "")
        label = rule.reason if rule and rule.reason else where
        excerpt = _message_excerpt(failure.body) or failure.detail
        reason = f"{label} ({where})" if label != where else label
        if excerpt:
            reason = f"{reason}: {excerpt}"
        if rule and rule.hint:
            reason = f"{reason}; {rule.hint}"
        return Outcome(action, retry_after, reason)

    def classifier(
        self, to_failure: Callable[[BaseException], Failure | None]
    ) -> Callable[[BaseException], Outcome | None]:
        """A ``classify`` for ``call_with_policy`` from a client-specific converter."""

        def classify(exc: BaseException) -> Outcome | None:
            failure = to_failure(exc)
            return None if failure is None else self.classify(failure)

        return classify


# ------------------------------------------------------------------- no answer at all


def no_answer(exc: BaseException) -> Failure:
    """A call that got no answer, as the table sees it: the ``host:port`` it tried and
    what went wrong, in words (``connection refused``, ``certificate verify failed:
    self-signed certificate``), in ``body`` so that a rule's ``contains`` can tell a
    certificate the client does not trust (which no retry fixes) from a dropped
    connection. Clients wrap the socket's error several times over (requests around
    urllib3 around ssl); the whole chain is searched, and only the host is kept of
    the URL, since a query string may carry a token."""
    chain = _exception_chain(exc)
    return Failure(None, body=_cause_text(chain), detail=type(exc).__name__, host=_host(chain))


def _exception_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo and len(seen) < 20:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
    return seen


_HOST_IN_TEXT = re.compile(r"host='([^']+)'(?:, port=(\d+))?")


def _host(chain: Sequence[BaseException]) -> str:
    from urllib.parse import urlsplit

    for item in chain:
        request = getattr(item, "request", None)
        url = getattr(request, "url", None)
        if isinstance(url, str) and "://" in url:
            parts = urlsplit(url)
            if parts.hostname:
                return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
        for holder in (getattr(item, "pool", None), getattr(item, "conn", None)):
            host = getattr(holder, "host", None)
            if isinstance(host, str) and host:
                port = getattr(holder, "port", None)
                return f"{host}:{port}" if port else host
    for item in chain:
        found = _HOST_IN_TEXT.search(str(item))
        if found:
            return f"{found[1]}:{found[2]}" if found[2] else found[1]
    return ""


def _cause_text(chain: Sequence[BaseException]) -> str:
    import socket
    import ssl

    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            why = getattr(item, "verify_message", None) or ""
            return "certificate verify failed" + (f": {why}" if why else "")
    if any("CERTIFICATE_VERIFY_FAILED" in str(item) for item in chain):
        return "certificate verify failed"
    kinds: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
        (ConnectionRefusedError, "connection refused"),
        (socket.gaierror, "host name not found"),
        (ConnectionResetError, "connection reset by the server"),
        (TimeoutError, "timed out"),
        (ssl.SSLError, "TLS handshake failed"),
    )
    for kind, text in kinds:
        if any(isinstance(item, kind) for item in chain):
            return text
    names = " ".join(type(item).__name__ for item in chain)
    if "NameResolution" in names:
        return "host name not found"
    if "Timeout" in names:
        return "timed out"
    return f"connection failed ({type(chain[-1]).__name__})" if chain else "connection failed"


# ----------------------------------------------------------------------- redaction


class RedactingLogger:
    """A logger front that formats first and redacts the result, so that secrets in
    ``%s`` arguments (exception texts, URLs) never reach a handler."""

    def __init__(self, logger: logging.Logger, redactor: Redactor) -> None:
        self.logger = logger
        self.redactor = redactor

    def log(self, level: int, msg: str, *args: object) -> None:
        if not self.logger.isEnabledFor(level):
            return
        try:
            text = msg % args if args else msg
        except (TypeError, ValueError):
            text = " ".join([msg, *map(str, args)])
        self.logger.log(level, "%s", self.redactor(text))

    def debug(self, msg: str, *args: object) -> None:
        self.log(logging.DEBUG, msg, *args)

    def info(self, msg: str, *args: object) -> None:
        self.log(logging.INFO, msg, *args)

    def warning(self, msg: str, *args: object) -> None:
        self.log(logging.WARNING, msg, *args)

    def error(self, msg: str, *args: object) -> None:
        self.log(logging.ERROR, msg, *args)


# -------------------------------------------------------------------------- retries


class RecordRejected(CRMResponseError):
    """The CRM refused this one record (``Action.REPORT_RECORD``); report it, go on."""

    def __init__(self, reason: str, *, status: int | None = None, what: str = "") -> None:
        super().__init__(f"{what}: {reason}" if what else reason)
        self.reason = reason  # without the call's name: for a RecordFailure
        self.status = status


class _Again(Exception):
    """Internal: the attempt failed in a way that may be retried."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


def call_with_policy(
    fn: Callable[[], T],
    *,
    classify: Callable[[BaseException], Outcome | None],
    idempotent: bool,
    sleep: Callable[[float], None],
    max_attempts: int = 5,
    on_refresh: Callable[[], None] | None = None,
    before_attempt: Callable[[], None] | None = None,
    redactor: Redactor | None = None,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    max_retry_after: float = 300.0,
    rng: random.Random | None = None,
    what: str = "call",
) -> T:
    """Run ``fn`` under the table's policy; bounded, never sleeps for real by itself.

    - RETRY / RATE_LIMITED: wait ``Retry-After`` when given, else exponential backoff
      with jitter, up to ``max_attempts`` in all; only when ``idempotent`` (a plain
      create that got no clean answer may have been applied: the caller must read
      before it creates again). A ``Retry-After`` beyond ``max_retry_after`` means
      the allowance is gone for long: ``QuotaExhausted``.
    - REFRESH_AUTH: ``on_refresh()`` once, then one more attempt (a 401 was not
      applied, so even a plain create may be re-sent); a second 401 → ``AuthError``.
    - STOP_FOR_DAY → ``QuotaExhausted``; REPORT_RECORD → ``RecordRejected``;
      FAIL or exhausted retries → ``CRMResponseError``; FAIL_SETUP →
      ``ConnectorConfigError`` at once. Every message is redacted.
    """
    redact = redactor or Redactor()
    jitter = rng or random.Random()
    refreshed = False
    last: dict[str, Outcome] = {}

    def attempt() -> T:
        nonlocal refreshed
        if before_attempt is not None:
            before_attempt()
        try:
            return fn()
        except (QuotaExhausted, AuthError, CRMResponseError):
            raise  # already decided by an inner layer
        except Exception as exc:
            outcome = classify(exc)
            if outcome is None:
                raise
            reason = redact(outcome.reason)
            outcome = Outcome(outcome.action, outcome.retry_after, reason)
            last["outcome"] = outcome
            action = outcome.action
            if action is Action.REFRESH_AUTH:
                if refreshed or on_refresh is None:
                    raise AuthError(f"{what}: credentials refused: {reason}") from None
                refreshed = True
                on_refresh()
                raise _Again(Outcome(Action.RETRY, 0.0, reason)) from None
            if action is Action.STOP_FOR_DAY:
                raise QuotaExhausted(f"{what}: daily API allowance exhausted: {reason}") from None
            if action is Action.REPORT_RECORD:
                raise RecordRejected(reason, status=_status_of(exc), what=what) from None
            if action is Action.FAIL:
                raise CRMResponseError(f"{what}: {reason}") from None
            if action is Action.FAIL_SETUP:
                raise ConnectorConfigError(f"{what}: {reason}") from None
            if not idempotent:
                raise NotRetried(
                    f"{what}: {reason} (not retried: the write is not idempotent)"
                ) from None
            if outcome.retry_after is not None and outcome.retry_after > max_retry_after:
                raise QuotaExhausted(
                    f"{what}: rate limited for {outcome.retry_after:.0f}s: {reason}"
                ) from None
            raise _Again(outcome) from None

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Again) and exc.outcome.retry_after is not None:
            return float(exc.outcome.retry_after)
        n = state.attempt_number - 1
        delay: float = min(max_delay, base_delay * (2**n))
        return min(max_delay, delay + jitter.uniform(0, base_delay))

    def stop(state: tenacity.RetryCallState) -> bool:
        # The refresh retry does not count against the transient-error budget.
        extra = 1 if refreshed else 0
        return state.attempt_number >= max_attempts + extra

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(_Again),
        wait=wait,
        stop=stop,
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except _Again as exc:
        raise CRMResponseError(
            f"{what}: gave up after {max_attempts} attempts: {exc.outcome.reason}"
        ) from None


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


# ---------------------------------------------------------------- rate and quota


class RateLimiter:
    """Client-side rolling window, so that a normal sync never meets a 429.

    At most ``floor(limit * headroom)`` calls start within any ``window`` seconds;
    ``observe`` lets the server's own ``remaining`` count (other apps share it) slow
    the pace when it falls into the reserved headroom.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        headroom: float = 0.9,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("rate limit needs limit >= 1 and window > 0")
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        self.limit = limit
        self.window = window
        self.allowed = max(1, math.floor(limit * headroom))
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                while self._starts and self._starts[0] <= now - self.window:
                    self._starts.popleft()
                delay = self._paused_until - now
                if delay <= 0 and len(self._starts) < self.allowed:
                    self._starts.append(now)
                    return
                if delay <= 0:
                    delay = self._starts[0] + self.window - now
            delay = max(delay, 1e-3)
            self.waited += delay
            self._sleep(delay)

    def observe(self, remaining: int | None) -> None:
        """The server's own count: below the reserve means someone else (the account's
        other apps) is using this window too. Each such answer pauses the next call
        for a tenth of the window, so that our pace drops while theirs lasts; our own
        use alone never gets there, because ``acquire`` stops at the reserve."""
        if remaining is None:
            return
        if remaining < self.limit - self.allowed:
            with self._lock:
                pause = self._clock() + self.window / 10
                self._paused_until = max(self._paused_until, pause)


class QuotaGuard:
    """Stops a run once it has used ``share`` of the daily allowance it found.

    The daily quota is shared with the account's other apps, so the run's allowance is
    ``share`` of what remained at its first response, and the spend is measured from
    the headers (falling back to the run's own call count when the CRM sends none).
    """

    def __init__(self, share: float = 0.25) -> None:
        if not 0 < share <= 1:
            raise ValueError("quota_share must be in (0, 1]")
        self.share = share
        self.reset()

    def reset(self) -> None:
        self.start_remaining: int | None = None
        self.latest_remaining: int | None = None
        self.calls = 0

    @property
    def allowance(self) -> int | None:
        if self.start_remaining is None:
            return None
        return math.floor(self.start_remaining * self.share)

    @property
    def spent(self) -> int:
        if self.start_remaining is None or self.latest_remaining is None:
            return self.calls
        return max(self.calls, self.start_remaining - self.latest_remaining)

    def count_call(self) -> None:
        self.calls += 1

    def observe(self, daily_remaining: int | None) -> None:
        if daily_remaining is None:
            return
        if self.start_remaining is None:
            # the first answer already includes this run's first call
            self.start_remaining = daily_remaining + self.calls
        self.latest_remaining = daily_remaining

    def check(self) -> None:
        """Raise ``QuotaExhausted`` before a call that the run may not make."""
        if self.latest_remaining is not None and self.latest_remaining <= 0:
            raise QuotaExhausted("daily API allowance is used up; the run stopped cleanly")
        allowance = self.allowance
        if allowance is not None and self.spent >= allowance:
            raise QuotaExhausted(
                f"this run used its share of the daily API allowance "
                f"({self.spent} of {allowance} calls, quota_share={self.share:g}); "
                "stopped cleanly, progress so far is saved"
            )


class CallMeter:
    """Counts calls, paces them through the limiters and checks the quota guard."""

    def __init__(
        self,
        limiters: Mapping[str, RateLimiter] | None = None,
        *,
        quota: QuotaGuard | None = None,
    ) -> None:
        self.limiters = dict(limiters or {})
        self.quota = quota or QuotaGuard(1.0)
        self.calls = 0
        self.by_kind: dict[str, int] = {}
        self.window_remaining: int | None = None
        self.window_limit: int | None = None
        self.daily_remaining: int | None = None
        self.daily_limit: int | None = None
        self._lock = threading.Lock()

    def before_call(self, *kinds: str) -> None:
        """Call before each attempt; ``kinds`` name the limiters that apply
        (``"default"`` when none are named)."""
        self.quota.check()
        for kind in kinds or ("default",):
            limiter = self.limiters.get(kind)
            if limiter is not None:
                limiter.acquire()
        with self._lock:
            self.calls += 1
            key = kinds[0] if kinds else "default"
            self.by_kind[key] = self.by_kind.get(key, 0) + 1
        self.quota.count_call()

    def observe(
        self,
        *,
        window_remaining: int | None = None,
        window_limit: int | None = None,
        daily_remaining: int | None = None,
        daily_limit: int | None = None,
        limiter: str = "default",
    ) -> None:
        with self._lock:
            if window_remaining is not None:
                self.window_remaining = window_remaining
            if window_limit is not None:
                self.window_limit = window_limit
            if daily_remaining is not None:
                self.daily_remaining = daily_remaining
            if daily_limit is not None:
                self.daily_limit = daily_limit
        if limiter in self.limiters:
            self.limiters[limiter].observe(window_remaining)
        self.quota.observe(daily_remaining)

    def budget(self) -> Budget:
        return Budget(
            calls=self.calls,
            window_remaining=self.window_remaining,
            window_limit=self.window_limit,
            daily_remaining=self.daily_remaining,
            daily_limit=self.daily_limit,
        )
