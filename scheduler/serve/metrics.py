"""The service's Prometheus metrics, on a registry of its own.

A registry per service (not the process-wide default) keeps two services in one test
process, or a library that registers its own collectors, from colliding.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# From receipt to the score written: seconds for a webhook, up to the idle pause and
# back-off for a busy or failing worker.
_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)


class Metrics:
    """``leadsync_events_received_total{source}``, ``leadsync_events_refused_total{reason}``,
    ``leadsync_events_duplicate_total{source}``, ``leadsync_inbox_depth``,
    ``leadsync_event_to_score_seconds``, ``leadsync_process_failures_total``."""

    def __init__(self, depth: Callable[[], int] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "leadsync_events_received",
            "Notifications accepted into the inbox (redeliveries not counted).",
            ["source"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "leadsync_events_duplicate",
            "Redelivered notifications, already in the inbox.",
            ["source"],
            registry=self.registry,
        )
        self.refused = Counter(
            "leadsync_events_refused",
            "Requests refused, by reason (signature, size, malformed, ...).",
            ["reason"],
            registry=self.registry,
        )
        self.depth = Gauge(
            "leadsync_inbox_depth", "Inbox rows still to process.", registry=self.registry
        )
        self.to_score = Histogram(
            "leadsync_event_to_score_seconds",
            "From receipt of a notification to its processing finished.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.failures = Counter(
            "leadsync_process_failures",
            "Batches the processor failed (left in the inbox for retry).",
            registry=self.registry,
        )
        if depth is not None:
            self.depth.set_function(lambda: _safe(depth))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _safe(read: Callable[[], int]) -> float:
    """The depth, or NaN when the database cannot say: a scrape never fails on it."""
    try:
        return float(read())
    except Exception:
        return math.nan
