"""The real service (on uvicorn) with the real processor over a sandbox world: the
sync's HubSpot and Salesforce worlds of the scheduler tests, their connector and
state store, and a drainer driven by hand. (Named apart from ``conftest``.)"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from serve_helpers import Clock, Live, serve_config, start_server

from connectors.runtime import Redactor
from scheduler.serve.app import Service
from scheduler.serve.inbox import Inbox
from scheduler.serve.metrics import Metrics
from scheduler.serve.processor import SyncProcessor
from scheduler.serve.worker import Drainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scheduler"))
from sync_e2e import HubSpotWorld, SalesforceWorld

__all__ = ["HubSpotWorld", "RealTime", "SalesforceWorld", "start_realtime"]


@dataclass
class RealTime:
    """A :class:`Live` service whose worker is the real :class:`SyncProcessor`."""

    live: Live
    processor: SyncProcessor

    def drain(self) -> int:
        """Process everything due, one batch at a time; returns the items handled."""
        total = 0
        while (n := self.live.drainer.run_once()) > 0:
            total += n
        return total

    def close(self) -> None:
        self.live.close()


def start_realtime(world: HubSpotWorld, tmp_path: Path, **sync_kw: Any) -> RealTime:
    """The service on the world's state database (its inbox beside the sync's tables)."""
    clock = Clock(world.clock.datetime())  # the world's time, moved on by hand
    inbox = Inbox(f"sqlite:///{tmp_path / 'e2e.db'}", now=clock)
    inbox.create()
    metrics = Metrics(depth=inbox.depth)
    processor = SyncProcessor(world.sync(**sync_kw))
    drainer = Drainer(inbox, processor, now=clock, sleep=lambda s: None, metrics=metrics)
    service = Service(serve_config(), inbox, clock, metrics, Redactor(), drainer=None)
    running = start_server(service)
    live = Live(running, clock, inbox, processor, drainer, httpx.Client(timeout=10))  # type: ignore[arg-type]
    return RealTime(live, processor)
