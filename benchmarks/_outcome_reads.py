"""API calls of the outcome reads (deals, Opportunities, Lead conversions) that feed
``leadsync backtest``: the first (full) read, then an incremental one an hour later
with nothing new, as the sync makes them (``scheduler.outcomes.sync_outcomes``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from connectors.base import Connector
from connectors.sandbox import ManualClock
from scheduler.outcomes import sync_outcomes
from scheduler.state import StateStore


def outcome_reads(connector: Connector, clock: ManualClock) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store.migrate()
        try:
            out: dict[str, Any] = {}
            for name in ("outcomes_full", "outcomes_incremental"):
                before = connector.budget().calls
                read = sync_outcomes(store, connector, pipeline="bench", started=clock.datetime())
                out[name] = {
                    "calls": connector.budget().calls - before,
                    "deals": read.deals,
                    "conversions": read.conversions,
                }
                clock.advance(3600)
            return out
        finally:
            store.close()
