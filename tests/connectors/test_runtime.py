"""The shared connector machinery: table, retries, limiter, quota guard, redaction."""

from __future__ import annotations

import logging
import random

import pytest

from connectors.base import AuthError, CRMResponseError, NotRetried, QuotaExhausted
from connectors.runtime import (
    Action,
    CallMeter,
    Failure,
    Outcome,
    QuotaGuard,
    RateLimiter,
    RecordRejected,
    RedactingLogger,
    Redactor,
    ResponseTable,
    Rule,
    call_with_policy,
    parse_retry_after,
)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class HttpError(Exception):
    def __init__(self, status: int | None, body: str = "", headers: dict[str, str] | None = None):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def to_failure(exc: BaseException) -> Failure | None:
    if isinstance(exc, HttpError):
        return Failure(exc.status, exc.body, exc.headers)
    if isinstance(exc, ConnectionError):
        return Failure(None, detail=type(exc).__name__)
    return None


TABLE = ResponseTable(
    [
        Rule(Action.STOP_FOR_DAY, status=429, contains="DAILY", reason="daily limit"),
        Rule(Action.RATE_LIMITED, status=429, reason="rate limited"),
        Rule(Action.REFRESH_AUTH, status=401, reason="token refused"),
        Rule(Action.REPORT_RECORD, status=(400, 409), reason="record refused"),
        Rule(Action.RETRY, status=range(500, 600), reason="server error"),
        Rule(Action.RETRY, transport=True, reason="connection lost"),
    ]
)
CLASSIFY = TABLE.classifier(to_failure)


class Script:
    """Raises the given errors in order, then returns 'ok'."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def run(fn: Script, clock: FakeClock, **kw: object) -> str:
    kw.setdefault("idempotent", True)
    return call_with_policy(fn, classify=CLASSIFY, sleep=clock.sleep, rng=random.Random(1), **kw)  # type: ignore[arg-type]


def test_table_first_match_wins_and_reads_retry_after() -> None:
    out = TABLE.classify(Failure(429, '{"message":"ten secondly"}', {"retry-after": "7"}))
    assert out.action is Action.RATE_LIMITED and out.retry_after == 7.0
    assert "ten secondly" in out.reason
    daily = TABLE.classify(Failure(429, '{"policyName":"DAILY"}'))
    assert daily.action is Action.STOP_FOR_DAY
    assert TABLE.classify(Failure(418)).action is Action.FAIL  # default
    assert TABLE.classify(Failure(None)).action is Action.RETRY
    # a transport rule never matches a real status, and vice versa
    assert TABLE.classify(Failure(503)).reason.startswith("server error")


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


def test_retry_after_is_honoured() -> None:
    clock = FakeClock()
    fn = Script(HttpError(429, "{}", {"Retry-After": "4"}))
    assert run(fn, clock) == "ok"
    assert clock.sleeps == [4.0] and fn.calls == 2


def test_backoff_without_retry_after_is_exponential_with_jitter() -> None:
    clock = FakeClock()
    fn = Script(HttpError(429), HttpError(503), HttpError(503))
    assert run(fn, clock) == "ok"
    assert len(clock.sleeps) == 3
    for n, slept in enumerate(clock.sleeps):
        assert 2**n <= slept <= 2**n + 1


def test_retries_are_bounded_then_clean_error() -> None:
    clock = FakeClock()
    fn = Script(*[HttpError(503, '{"message":"down"}') for _ in range(10)])
    with pytest.raises(CRMResponseError, match=r"gave up after 4 attempts.*down") as info:
        run(fn, clock, max_attempts=4, what="read contacts")
    assert fn.calls == 4 and len(clock.sleeps) == 3
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_plain_create_is_never_retried() -> None:
    clock = FakeClock()
    for error in (ConnectionError("reset"), HttpError(503), HttpError(429)):
        fn = Script(error)
        with pytest.raises(CRMResponseError, match="not idempotent") as info:
            run(fn, clock, idempotent=False)
        # callers branch on the class: it may have been applied, look before retrying
        assert isinstance(info.value, NotRetried)
        assert fn.calls == 1
    assert clock.sleeps == []


def test_refresh_once_then_retry_even_for_a_create() -> None:
    clock = FakeClock()
    refreshes: list[int] = []
    fn = Script(HttpError(401))
    out = run(fn, clock, idempotent=False, on_refresh=lambda: refreshes.append(1))
    assert out == "ok" and refreshes == [1] and fn.calls == 2


def test_second_auth_failure_is_auth_error() -> None:
    clock = FakeClock()
    fn = Script(HttpError(401), HttpError(401))
    with pytest.raises(AuthError):
        run(fn, clock, on_refresh=lambda: None)
    with pytest.raises(AuthError):  # nothing to refresh with
        run(Script(HttpError(401)), clock)


def test_stop_for_day_report_record_and_fail() -> None:
    clock = FakeClock()
    with pytest.raises(QuotaExhausted):
        run(Script(HttpError(429, '{"policyName":"DAILY"}')), clock)
    with pytest.raises(RecordRejected) as rejected:
        run(Script(HttpError(409, '{"message":"exists"}')), clock)
    assert rejected.value.status == 409 and "exists" in rejected.value.reason
    assert str(rejected.value).startswith("call: record refused")
    with pytest.raises(CRMResponseError):
        run(Script(HttpError(418)), clock)
    assert clock.sleeps == []


def test_long_retry_after_stops_the_run() -> None:
    with pytest.raises(QuotaExhausted):
        run(Script(HttpError(429, "", {"Retry-After": "86400"})), FakeClock())


def test_unclassified_exception_propagates() -> None:
    with pytest.raises(KeyError):
        run(Script(KeyError("bug")), FakeClock())


def test_messages_are_redacted() -> None:
    redactor = Redactor(["tok-SECRET-123"])
    fn = Script(HttpError(418, '{"message":"bad token tok-SECRET-123"}'))
    with pytest.raises(CRMResponseError) as info:
        run(fn, FakeClock(), redactor=redactor)
    assert "tok-SECRET-123" not in str(info.value) and "***" in str(info.value)


def test_redactor_patterns_and_encoded_forms() -> None:
    r = Redactor(["a/b+c=secret", None, "ab"])
    assert "secret" not in r("url?x=a%2Fb%2Bc%3Dsecret")
    assert "abc.def-123456" not in r("Authorization: Bearer abc.def-123456")
    assert "xyz987654" not in r("header bearer xyz987654")
    assert "00D5g000001abcd!AQ" not in r("sid 00D5g000001abcdEAA!AQ.xyz_123")
    assert "r-tok" not in r('{"refresh_token": "r-tok-9999"}')
    assert r("ab is short and stays") == "ab is short and stays"
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    assert "MIIEvQ" not in r(f"key: {pem}")


def test_redacting_logger(caplog: pytest.LogCaptureFixture) -> None:
    log = RedactingLogger(logging.getLogger("leadsync.test"), Redactor(["tok-XYZ-1"]))
    with caplog.at_level(logging.INFO, logger="leadsync.test"):
        log.info("call failed: %s", "tok-XYZ-1 refused")
    assert "tok-XYZ-1" not in caplog.text and "***" in caplog.text


def test_rate_limiter_keeps_under_headroom_in_any_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, 10.0, headroom=0.9, clock=clock.now, sleep=clock.sleep)
    starts: list[float] = []
    for i in range(400):
        limiter.acquire()
        starts.append(clock.t)
        clock.t += 0.01 if i % 7 else 0.0
    for i, t in enumerate(starts):
        in_window = [s for s in starts[i:] if s < t + 10.0]
        assert len(in_window) <= 90
    assert limiter.waited > 0


def test_rate_limiter_slows_down_when_others_use_the_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, 10.0, clock=clock.now, sleep=clock.sleep)
    limiter.acquire()
    limiter.observe(10)  # exactly the reserve: our own use at full pace, no pause
    limiter.acquire()
    assert clock.sleeps == []
    limiter.observe(5)  # other apps are eating into the reserve
    limiter.acquire()
    assert clock.sleeps == [1.0]
    limiter.observe(None)
    limiter.acquire()
    assert clock.sleeps == [1.0]


def test_quota_guard_stops_at_share_of_remaining() -> None:
    guard = QuotaGuard(0.25)
    guard.count_call()
    guard.observe(999)  # 1000 remained before the run
    assert guard.allowance == 250
    guard.check()
    guard.observe(751)
    with pytest.raises(QuotaExhausted, match=r"250 of 250"):
        guard.calls = 250
        guard.check()


def test_quota_guard_counts_other_apps_and_zero_remaining() -> None:
    guard = QuotaGuard(0.5)
    guard.count_call()
    guard.observe(99)
    guard.observe(40)  # other apps spent most of it
    with pytest.raises(QuotaExhausted):
        guard.check()
    empty = QuotaGuard(1.0)
    empty.observe(0)
    with pytest.raises(QuotaExhausted):
        empty.check()
    with pytest.raises(ValueError):
        QuotaGuard(0)


def test_call_meter_budget_and_guard_in_policy() -> None:
    clock = FakeClock()
    meter = CallMeter(
        {"default": RateLimiter(10, 1.0, clock=clock.now, sleep=clock.sleep)},
        quota=QuotaGuard(0.25),
    )

    def call() -> str:
        meter.observe(window_remaining=9, window_limit=10, daily_remaining=20 - meter.calls)
        return "ok"

    for _ in range(5):
        call_with_policy(
            call,
            classify=CLASSIFY,
            idempotent=True,
            sleep=clock.sleep,
            before_attempt=meter.before_call,
        )
    with pytest.raises(QuotaExhausted):
        call_with_policy(
            call,
            classify=CLASSIFY,
            idempotent=True,
            sleep=clock.sleep,
            before_attempt=meter.before_call,
        )
    budget = meter.budget()
    assert budget.calls == 5 and budget.daily_remaining == 15 and budget.window_limit == 10


def test_outcome_defaults() -> None:
    assert Outcome(Action.FAIL).retry_after is None
