"""The real processor: a batch of inbox items becomes scores, deals, tasks and alerts.

For one claimed batch it works out what to read (``plan``), reads those contacts and
their recent engagement by id through the connector (``ReadsContacts``; a connector
without it is scored from the local copy), adds the product events, and hands the
result to the sync's per-contact pass (``Sync.score_now``): the same local copy,
models, ledger and alerts as ``leadsync run``, without the pipeline lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from connectors.base import Merge, ReadBatch, ReadsContacts
from scheduler.serve.inbox import InboxItem
from scheduler.serve.plan import plan
from scheduler.serve.worker import Processed
from scheduler.sync import EPOCH, RunSummary, Sync

__all__ = ["SyncProcessor"]

log = logging.getLogger("leadsync.serve")


@dataclass
class SyncProcessor:
    """A :class:`~scheduler.serve.worker.Processor` over one pipeline's ``Sync``.

    Calls are serialized (one batch at a time per processor): the connector and its
    API budget are shared by the batch's reads and writes. ``summaries`` keeps the
    last few batches' outcomes (tests, the demo, the benchmark)."""

    sync: Sync
    keep: int = 100
    summaries: list[RunSummary] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def process(self, items: Sequence[InboxItem]) -> Processed | None:
        with self._lock:
            return self._process(items)

    def _process(self, items: Sequence[InboxItem]) -> Processed:
        sync = self.sync
        p = plan(items, contact_for_email=sync.store.contacts_for_emails)
        history = sync.history()
        events_since = EPOCH if history is None else sync.now() - history
        read = ReadBatch()
        if p.read and isinstance(sync.connector, ReadsContacts):
            read = sync.connector.read_contacts(p.read, events_since=events_since)
        batch = ReadBatch(
            contacts=read.contacts,
            events=(*read.events, *p.events),
            merges=(*read.merges, *(Merge(gone, into) for gone, into in p.merged)),
            deletions=tuple(dict.fromkeys((*read.deletions, *p.deleted))),
        )
        ids = list(dict.fromkeys([*p.read, *(e.contact_id for e in p.events)]))
        scored: list[datetime] = []
        summary = sync.score_now(batch, ids, scores_written=lambda: scored.append(sync.now()))
        self.summaries.append(summary)
        del self.summaries[: -self.keep]
        log.info(
            "scored %d contact(s) from %d notification(s): written %d, deals %d, tasks %d",
            summary.contacts_scored,
            len(items),
            summary.scores_written,
            summary.deals,
            summary.tasks,
        )
        return Processed(unmatched=p.unmatched, scored_at=scored[0] if scored else None)
