"""``Sync`` whose run keeps the alerts' delivery report as attributes, so that tests
can say ``sync.report.sent`` (the sync itself reports it as ``summary.alerts``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from scheduler.sync import RunOptions, RunSummary, Sync


class WiredSync(Sync):
    report: Any

    def run(self, options: RunOptions | None = None) -> RunSummary:
        summary = super().run(options)
        self.report = SimpleNamespace(**summary.alerts)
        return summary
