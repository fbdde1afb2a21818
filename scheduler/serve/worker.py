"""Draining the inbox: claim a batch, hand it to the :class:`Processor`, record the outcome.

The processor is the one narrow seam between the service and the sync: the service
knows nothing of connectors, models or the ledger, and the sync knows nothing of HTTP.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

from connectors.runtime import RedactingLogger, Redactor
from scheduler.serve.inbox import Inbox, InboxError, InboxItem
from scheduler.serve.metrics import Metrics
from scheduler.serve.settings import WorkerSettings

__all__ = ["Drainer", "Processed", "Processor", "RecordingProcessor"]


@dataclass(frozen=True, slots=True)
class Processed:
    """What a processor reports besides success: the ids of items whose contact is not
    known yet (a product event for an e-mail no CRM record has). They wait, and are
    handed over again later, until the ``events.keep_unknown`` period ends.
    ``scored_at`` is when the batch's score write was acknowledged (before its deals
    and tasks): the end of "receipt to score written". ``None``: when processing ended."""

    unmatched: frozenset[int] = frozenset()
    scored_at: datetime | None = None


@runtime_checkable
class Processor(Protocol):
    """Turns a batch of inbox items into scores and actions.

    The contract:

    - ``items`` is one claimed batch, sorted by ``occurred_at``; it may hold several
      items about one contact (a batch groups the contacts that arrived together), and
      items may arrive late or out of order: re-read the contact's current state from
      the CRM rather than applying payloads in turn.
    - Returning (``None`` or :class:`Processed`) marks every item done, except the
      ``unmatched`` ones, which wait for their contact.
    - Raising leaves the whole batch in the inbox: it is handed over again after a
      back-off (1 s doubling, at most 15 min), up to ``worker.max_attempts`` times,
      then kept as ``failed``. A batch may also come again after a crash (the claim's
      lease ran out), so processing must be idempotent: the ledger's keys make a second
      attempt a no-op.
    - It runs in the worker thread, never on the event loop, and must not take the
      pipeline lock (a scheduled run holds it for minutes).
    """

    def process(self, items: Sequence[InboxItem]) -> Processed | None: ...


class RecordingProcessor:
    """The default processor until the sync is wired in: it records what would be
    processed (in memory, in the log, and as JSON lines in ``record_to`` if given)."""

    def __init__(
        self, *, record_to: Path | None = None, log: RedactingLogger | None = None
    ) -> None:
        self.record_to = record_to
        self.log = log or RedactingLogger(logging.getLogger("leadsync.serve"), Redactor())
        self.seen: list[InboxItem] = []
        self._lock = threading.Lock()

    def process(self, items: Sequence[InboxItem]) -> Processed | None:
        contacts = {i.contact_id or i.email for i in items}
        self.log.info(
            "would score %d contact(s) from %d notification(s)", len(contacts), len(items)
        )
        with self._lock:
            self.seen.extend(items)
            if self.record_to is not None:
                with self.record_to.open("a", encoding="utf-8") as out:
                    for item in items:
                        out.write(
                            json.dumps(
                                {
                                    "key": item.key,
                                    "kind": item.kind,
                                    "contact_id": item.contact_id,
                                    "email": item.email,
                                    "occurred_at": item.occurred_at.isoformat(),
                                }
                            )
                            + "\n"
                        )
        return None


@dataclass
class Drainer:
    """Claims batches and processes them until stopped.

    ``sleep`` is injected; left out, the drainer waits on its stop event, so that
    stopping the service wakes it. Tests drive :meth:`run_once` with a manual clock."""

    inbox: Inbox
    processor: Processor
    now: Callable[[], datetime]
    sleep: Callable[[float], object] | None = None  # None: wait on the stop event
    settings: WorkerSettings = field(default_factory=WorkerSettings)
    metrics: Metrics | None = None
    log: RedactingLogger = field(
        default_factory=lambda: RedactingLogger(logging.getLogger("leadsync.serve"), Redactor())
    )
    recheck: timedelta = timedelta(hours=1)  # unmatched product events
    purge_every: timedelta = timedelta(hours=1)
    _last_purge: datetime | None = None

    def run_once(self) -> int:
        """Process one batch; returns how many items it held (0: nothing due)."""
        self._maybe_purge()
        items = self.inbox.claim(self.settings.batch_size)
        if not items:
            return 0
        try:
            outcome = self.processor.process(items)
        except Exception as exc:  # the processor's failure is the batch's, not ours
            if self.metrics is not None:
                self.metrics.failures.inc()
            self.log.warning(
                "processing %d item(s) failed, left for retry: %s: %s",
                len(items),
                type(exc).__name__,
                exc,
            )
            self.inbox.retry(
                items, error=f"{type(exc).__name__}: {exc}", max_attempts=self.settings.max_attempts
            )
            return len(items)
        unmatched = outcome.unmatched if outcome is not None else frozenset()
        scored = outcome.scored_at if outcome is not None else None
        finished = [i for i in items if i.id not in unmatched]
        self.inbox.done([i.id for i in finished], scored_at=scored)
        if unmatched:
            self.inbox.wait([i for i in items if i.id in unmatched], recheck=self.recheck)
        if self.metrics is not None:
            end = scored or self.now()
            for item in finished:
                self.metrics.to_score.observe(max(0.0, (end - item.received_at).total_seconds()))
        return len(items)

    def run(self, stop: threading.Event) -> None:
        """Drain until ``stop`` is set; pause ``settings.idle`` when nothing is due,
        start batches at least ``settings.min_interval`` apart, and back off when the
        database fails. A batch takes whatever is waiting (up to ``batch_size``): it
        never waits to fill."""
        sleep = self.sleep or stop.wait
        failures = 0
        gap = self.settings.min_interval.total_seconds()
        while not stop.is_set():
            started = self.now()
            try:
                handled = self.run_once()
                failures = 0
            except InboxError as exc:
                failures += 1
                self.log.warning("inbox unavailable: %s", exc)
                sleep(min(2.0**failures, 60.0))
                continue
            if handled == 0:
                sleep(self.settings.idle.total_seconds())
            elif gap > 0:
                rest = gap - (self.now() - started).total_seconds()
                if rest > 0:  # what arrives meanwhile joins the next batch
                    sleep(rest)

    def _maybe_purge(self) -> None:
        now = self.now()
        if self._last_purge is not None and now - self._last_purge < self.purge_every:
            return
        self._last_purge = now
        self.inbox.purge(older_than=self.settings.keep_done)
