"""Sending the alerts the ledger owes, and recording each outcome.

Guarantees (docs/alerts.md, "Delivery guarantees"):

* Each planned alert is sent at least once per (event, destination): an entry stays
  ``intent`` (or ``failed``) until its destination answered 2xx, and every delivery
  pass — the end of each run — sends what is still owed.
* Never twice because of a rerun or a retry: the plan's key is the event's and the
  destination's, and an entry is sent only while it is not ``done``.
* The one duplicate: a crash after the destination's 2xx and before the ledger write
  (the ``after_alert_sent`` crash point). None of these destinations takes an
  idempotency key, so the next pass sends that alert again — once, since the window
  holds one message at a time. E-mail repeats its ``Message-ID``, which clients use
  to show it once.

Limits: a pause between two messages to one webhook (Slack about one a second),
``Retry-After`` on 429, transient failures retried with exponential back-off
(tenacity, with the injected sleeper), at most ``max_attempts`` passes per alert
before it is ``gave_up`` (``leadsync status`` shows it). Past ``max_per_minute`` a
destination with ``digest`` gets the rest of the minute's alerts as one message, each
folded alert then ``done`` with the digest's key; without ``digest`` the rest wait
for the next minute.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import sqlalchemy as sa
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from connectors.runtime import Redactor
from scheduler.alerts.config import AlertsConfig, Destination, EmailDestination
from scheduler.alerts.plan import ALERT, is_alert
from scheduler.alerts.render import Message
from scheduler.alerts.senders import DeliveryError, Permanent, Sender, Transient, build_sender
from scheduler.state import LedgerEntry, LockHeld, StateStore, loads

log = logging.getLogger("leadsync.alerts")

MAX_ATTEMPTS = 5  # delivery passes (runs) of one alert before it is given up
ATTEMPTS_PER_PASS = 3  # tries within one pass for a transient failure
MAX_BACKOFF = 30.0
CRASH_AFTER_SENT = "after_alert_sent"
RATE_KEY = "alerts:rate:"
SUMMARY_KEY = "alerts:summary:"


def no_crash(point: str) -> None:
    del point


@dataclass
class DeliveryReport:
    sent: int = 0  # messages for single alerts
    digests: int = 0  # digest messages
    folded: int = 0  # alerts delivered inside a digest
    failed: int = 0  # alerts to try again on the next pass
    gave_up: int = 0
    summaries: int = 0
    locked: bool = False  # another process was delivering: nothing sent by this one
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, int | bool]:
        return {
            "sent": self.sent,
            "digests": self.digests,
            "folded": self.folded,
            "failed": self.failed,
            "gave_up": self.gave_up,
            "summaries": self.summaries,
            "locked": self.locked,
        }


def _recipients(spec: Mapping[str, object]) -> list[str]:
    """An alert's e-mail recipients as planned (``to`` in its ledger spec)."""
    to = spec.get("to")
    return [str(a) for a in to] if isinstance(to, list | tuple) else []


def _backoff(attempt: int) -> float:
    return float(min(MAX_BACKOFF, 2 ** max(0, attempt - 1)))


class _Pacer:
    """The pause a destination asks between two messages, and its per-minute count
    (kept in the store, so that runs close together share it)."""

    def __init__(
        self, store: StateStore, now: Callable[[], datetime], sleep: Callable[[float], None]
    ) -> None:
        self.store = store
        self.now = now
        self.sleep = sleep
        self.last: dict[str, datetime] = {}

    def wait_turn(self, sender: Sender) -> None:
        last = self.last.get(sender.destination)
        if last is not None and sender.min_interval > 0:
            gap = sender.min_interval - (self.now() - last).total_seconds()
            if gap > 0:
                self.sleep(gap)

    def sent(self, sender: Sender) -> None:
        self.last[sender.destination] = self.now()

    def _minute(self) -> int:
        return int(self.now().timestamp() // 60)

    def used(self, dest: str) -> int:
        got = self.store.kv_get(RATE_KEY + dest)
        if isinstance(got, dict) and got.get("minute") == self._minute():
            return int(got.get("n", 0))
        return 0

    def count(self, dest: str) -> None:
        n = self.used(dest) + 1
        with self.store.tx() as conn:
            self.store.kv_set(conn, RATE_KEY + dest, {"minute": self._minute(), "n": n})

    def wait_next_minute(self) -> None:
        now = self.now().timestamp()
        self.sleep(60.0 - (now % 60.0) + 0.001)


def pending_alerts(store: StateStore) -> list[LedgerEntry]:
    """Alert entries still owed (``intent`` or ``failed``), oldest first."""
    return [e for e in store.pending_actions() if is_alert(e)]


def given_up_alerts(store: StateStore) -> list[LedgerEntry]:
    """Alerts given up, for ``leadsync status``: key, destination (spec) and error."""
    led = store.t["ledger"]
    with store.tx() as conn:
        rows = conn.execute(
            sa.select(
                led.c.key, led.c.contact_id, led.c.model, led.c.spec, led.c.error, led.c.attempts
            )
            .where(led.c.kind == ALERT, led.c.status == "gave_up")
            .order_by(led.c.updated_at)
        ).all()
    return [
        LedgerEntry(
            key=r.key, group_key="", seq=0, contact_id=r.contact_id, model=r.model, kind=ALERT,
            status="gave_up", spec=loads(r.spec), result_id=None, error=r.error,
            attempts=int(r.attempts),
        )
        for r in rows
    ]  # fmt: skip


def deliver(
    store: StateStore,
    entries: Sequence[LedgerEntry] | None,
    *,
    config: AlertsConfig,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
    redactor: Redactor | None = None,
    senders: Mapping[str, Sender] | None = None,
    crash: Callable[[str], None] = no_crash,
    max_attempts: int = MAX_ATTEMPTS,
    attempts_per_pass: int = ATTEMPTS_PER_PASS,
    lock: str | None = None,
    lock_ttl: float = 120.0,
    heartbeat: bool = True,
) -> DeliveryReport:
    """Send the owed alerts (``entries``' keys, or every owed alert when None), then
    any daily summary that is due. Never raises for a destination's failure: it is
    recorded in the ledger and counted in the report.

    ``lock`` names a store lock held while delivering: two processes sharing a store
    (a scheduled run and real-time processing) would otherwise both send an alert
    that both found owed. When another holds it, nothing is sent (``locked``): the
    holder sends what is owed."""
    if lock is not None:
        try:
            with store.run_lock(lock, ttl=lock_ttl, heartbeat=heartbeat):
                return deliver(
                    store, entries, config=config, now=now, sleep=sleep, redactor=redactor,
                    senders=senders, crash=crash, max_attempts=max_attempts,
                    attempts_per_pass=attempts_per_pass,
                )  # fmt: skip
        except LockHeld:
            return DeliveryReport(locked=True)
    redact = redactor or Redactor()
    for secret in config.secrets():
        redact.add(secret)
    report = DeliveryReport()
    owed = pending_alerts(store)
    if entries is not None:
        keys = {e.key for e in entries}
        owed = [e for e in owed if e.key in keys]
    dests = config.by_id()
    own: dict[str, Sender] = {}

    def sender_for(dest_id: str) -> Sender:
        if senders is not None and dest_id in senders:
            return senders[dest_id]
        if dest_id not in own:
            own[dest_id] = build_sender(dests[dest_id], redactor=redact)
        return own[dest_id]

    pacer = _Pacer(store, now, sleep)
    by_dest: dict[str, list[LedgerEntry]] = {}
    for e in owed:
        dest_id = str((e.spec or {}).get("destination", ""))
        if dest_id not in dests:
            store.record_outcome(
                e.key,
                status="gave_up",
                error=f"alert destination {dest_id!r} is no longer configured",
            )
            report.gave_up += 1
            continue
        by_dest.setdefault(dest_id, []).append(e)
    try:
        for dest_id, items in by_dest.items():
            _deliver_to(
                store, dests[dest_id], sender_for(dest_id), items, pacer, report,
                redact=redact, crash=crash, max_attempts=max_attempts,
                attempts_per_pass=attempts_per_pass, sleep=sleep,
            )  # fmt: skip
        for dest in config.destinations:
            if dest.daily_summary is not None:
                _summary(store, dest, sender_for(dest.id), pacer, report, now=now, redact=redact)
    finally:
        for s in own.values():
            s.close()
    return report


def _attempt(
    sender: Sender,
    message: Message,
    to: Sequence[str],
    pacer: _Pacer,
    *,
    sleep: Callable[[float], None],
    tries: int,
) -> str | None:
    """One message with its in-pass retries: ``Retry-After`` when the destination
    gave one, else an exponential back-off."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = getattr(exc, "retry_after", None)
        return float(after) if after is not None else _backoff(state.attempt_number)

    for attempt in Retrying(
        stop=stop_after_attempt(max(1, tries)),
        wait=wait,
        retry=retry_if_exception(lambda exc: isinstance(exc, Transient) and not exc.later),
        sleep=sleep,
        reraise=True,
    ):
        with attempt:
            pacer.wait_turn(sender)
            try:
                return sender.send(message, to)
            finally:
                pacer.sent(sender)
    return None  # pragma: no cover - Retrying either returns or raises


def _deliver_to(
    store: StateStore,
    dest: Destination,
    sender: Sender,
    items: list[LedgerEntry],
    pacer: _Pacer,
    report: DeliveryReport,
    *,
    redact: Redactor,
    crash: Callable[[str], None],
    max_attempts: int,
    attempts_per_pass: int,
    sleep: Callable[[float], None],
) -> None:
    folded: list[LedgerEntry] = []
    for i, entry in enumerate(items):
        if pacer.used(dest.id) >= dest.max_per_minute:
            if dest.digest:
                folded = items[i:]
                break
            pacer.wait_next_minute()
        spec = entry.spec or {}
        message = Message(kind="alert", key=entry.key, alerts=(spec,))
        try:
            result = _attempt(
                sender, message, _recipients(spec), pacer, sleep=sleep, tries=attempts_per_pass
            )
        except DeliveryError as exc:
            _failed(store, [entry], exc, report, redact=redact, max_attempts=max_attempts)
            if isinstance(exc, Transient):
                # The destination is failing: the rest wait for the next pass
                # rather than spend its back-off one by one.
                return
            continue
        pacer.count(dest.id)
        crash(CRASH_AFTER_SENT)
        store.record_outcome(entry.key, status="done", result_id=result)
        report.sent += 1
    if not folded:
        return
    # One digest per set of recipients (an owner's e-mail gets only their leads).
    groups: dict[tuple[str, ...], list[LedgerEntry]] = {}
    for e in folded:
        groups.setdefault(tuple(_recipients(e.spec or {})), []).append(e)
    for to, group in groups.items():
        digest_key = (
            "digest:" + hashlib.sha256("\n".join(e.key for e in group).encode()).hexdigest()[:16]
        )
        message = Message(
            kind="digest",
            key=digest_key,
            alerts=tuple(e.spec or {} for e in group),
            title=f"{len(group)} more hot leads (past {dest.max_per_minute} a minute)",
        )
        try:
            _attempt(sender, message, to, pacer, sleep=sleep, tries=attempts_per_pass)
        except DeliveryError as exc:
            _failed(store, group, exc, report, redact=redact, max_attempts=max_attempts)
            if isinstance(exc, Transient):
                return
            continue
        pacer.count(dest.id)
        crash(CRASH_AFTER_SENT)
        for e in group:
            store.record_outcome(e.key, status="done", result_id=digest_key)
        report.digests += 1
        report.folded += len(group)


def _failed(
    store: StateStore,
    entries: Sequence[LedgerEntry],
    exc: DeliveryError,
    report: DeliveryReport,
    *,
    redact: Redactor,
    max_attempts: int,
) -> None:
    error = redact(str(exc))[:500]
    for e in entries:
        give_up = isinstance(exc, Permanent) or e.attempts + 1 >= max_attempts
        store.record_outcome(e.key, status="gave_up" if give_up else "failed", error=error)
        if give_up:
            report.gave_up += 1
        else:
            report.failed += 1
    report.errors.append(error)
    log.warning("alert: %s", error)


def _summary(
    store: StateStore,
    dest: Destination,
    sender: Sender,
    pacer: _Pacer,
    report: DeliveryReport,
    *,
    now: Callable[[], datetime],
    redact: Redactor,
) -> None:
    """The day's summary, once a local day, at or after the configured time."""
    daily = dest.daily_summary
    assert daily is not None  # deliver() calls this only for destinations with one
    at = now()
    local = at.astimezone(daily.zone())
    if local.time() < daily.local_time():
        return
    day = local.date().isoformat()
    if store.kv_get(SUMMARY_KEY + dest.id) == day:
        return
    done = alerts_done_since(store, dest.id, at - timedelta(days=1))
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    if isinstance(dest, EmailDestination) and dest.to == "owner":
        for spec in done:
            groups.setdefault(tuple(spec.get("to") or ()), []).append(spec)
    else:
        groups[()] = done
    try:
        for to, specs in groups.items():
            specs.sort(key=lambda s: -float(s.get("score") or 0))
            message = Message(
                kind="summary",
                key=f"summary:{dest.id}:{day}:" + ",".join(to),
                alerts=tuple(specs),
                title=f"leadsync daily summary {day}: {len(specs)} hot lead"
                + ("" if len(specs) == 1 else "s"),
            )
            _attempt(sender, message, to, pacer, sleep=lambda s: None, tries=1)
    except DeliveryError as exc:
        report.errors.append(redact(str(exc))[:500])
        log.warning("alert summary: %s", redact(str(exc)))
        return  # tried again at the next pass
    with store.tx() as conn:
        store.kv_set(conn, SUMMARY_KEY + dest.id, day)
    report.summaries += 1


def alerts_done_since(store: StateStore, dest_id: str, since: datetime) -> list[dict[str, Any]]:
    """The specs of alerts delivered to ``dest_id`` since ``since``."""
    led = store.t["ledger"]
    with store.tx() as conn:
        rows = conn.execute(
            sa.select(led.c.spec)
            .where(
                led.c.kind == ALERT,
                led.c.status == "done",
                led.c.updated_at >= since.timestamp(),
            )
            .order_by(led.c.updated_at)
        ).all()
    specs = (loads(r[0]) for r in rows)
    return [s for s in specs if isinstance(s, dict) and s.get("destination") == dest_id]


class GivenUpAlert(TypedDict):
    """An alert given up on, as ``leadsync status`` lists it."""

    key: str
    destination: object
    attempts: int
    error: str | None


class AlertsStatus(TypedDict):
    """What ``leadsync status`` shows of alerts."""

    owed: int
    given_up: int
    given_up_recent: list[GivenUpAlert]


def alerts_status(store: StateStore, *, limit: int = 10) -> AlertsStatus:
    """What ``leadsync status`` shows of alerts: how many are still owed, and the
    given-up ones (newest last) with their destination and the last error."""
    given = given_up_alerts(store)
    return {
        "owed": len(pending_alerts(store)),
        "given_up": len(given),
        "given_up_recent": [
            {
                "key": e.key,
                "destination": (e.spec or {}).get("destination"),
                "attempts": e.attempts,
                "error": e.error,
            }
            for e in given[-limit:]
        ],
    }
