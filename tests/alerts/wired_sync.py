"""``Sync`` with the alerts wired in the way docs/alerts.md, "Inside a run", and the
merge notes describe: the three calls applied around its methods, so that the tests
run a real sync with alerts before ``scheduler/sync.py`` itself makes the calls."""

from __future__ import annotations

from typing import Any

from scheduler.alerts.hook import AlertsHook
from scheduler.sync import RunOptions, Sync


class WiredSync(Sync):
    """``Sync`` with the three calls of the wiring, applied around its methods."""

    alerts: AlertsHook

    def _decide(
        self, candidates: Any, contacts: Any, changed: Any, pool: Any, as_of: Any, s: Any, opts: Any
    ) -> Any:
        groups = super()._decide(candidates, contacts, changed, pool, as_of, s, opts)
        if not opts.dry_run:
            planned = self.alerts.plan(groups, now=as_of)
            with self.store.tx() as conn:  # (wired: in the transaction of the groups)
                self.store.add_intents(conn, planned, s.run_id)
        return groups

    def _resume_pending(self, s: Any) -> None:
        real = self.store.pending_actions
        self.store.pending_actions = lambda: [e for e in real() if not self.alerts.owns(e)]  # type: ignore[method-assign]
        try:
            super()._resume_pending(s)
        finally:
            self.store.pending_actions = real  # type: ignore[method-assign]

    def run(self, options: RunOptions | None = None) -> Any:
        summary = super().run(options)
        if not (options and options.dry_run):
            self.report = self.alerts.deliver(self.store)
        return summary
