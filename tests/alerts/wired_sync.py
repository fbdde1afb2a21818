"""``Sync`` with the alerts wired in the way docs/alerts.md, "Inside a run", and the
merge notes describe: the three calls applied around its methods, so that the tests
run a real sync with alerts before ``scheduler/sync.py`` itself makes the calls.
Once it does (``SyncConfig`` has ``alerts``), this class adds nothing and only
exposes the run's delivery report."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from scheduler.alerts.hook import AlertsHook
from scheduler.config import SyncConfig
from scheduler.sync import RunOptions, Sync

WIRED = "alerts" in SyncConfig.model_fields


class WiredSync(Sync):
    """``Sync`` with the three calls of the wiring, applied around its methods."""

    alerts: AlertsHook
    report: Any

    def _decide(
        self, candidates: Any, contacts: Any, changed: Any, pool: Any, as_of: Any, s: Any, opts: Any
    ) -> Any:
        groups = super()._decide(candidates, contacts, changed, pool, as_of, s, opts)
        if not opts.dry_run and not WIRED:
            planned = self.alerts.plan(groups, now=as_of)
            with self.store.tx() as conn:  # (wired: in the transaction of the groups)
                self.store.add_intents(conn, planned, s.run_id)
        return groups

    def _resume_pending(self, s: Any) -> None:
        if WIRED:
            return super()._resume_pending(s)
        real = self.store.pending_actions
        self.store.pending_actions = lambda: [e for e in real() if not self.alerts.owns(e)]  # type: ignore[method-assign]
        try:
            super()._resume_pending(s)
        finally:
            self.store.pending_actions = real  # type: ignore[method-assign]

    def run(self, options: RunOptions | None = None) -> Any:
        summary = super().run(options)
        if WIRED:
            self.report = SimpleNamespace(**summary.alerts)
        elif not (options and options.dry_run):
            self.report = self.alerts.deliver(self.store)
        return summary
