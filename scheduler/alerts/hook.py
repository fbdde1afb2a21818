"""The sync's one handle on alerts: plan with the run's actions, deliver after them.

``Sync`` holds an :class:`AlertsHook` (None without an ``alerts`` section) and calls
it in three places (docs/alerts.md, "Inside a run"): :meth:`plan` on the groups its
``_decide`` returned, storing the result with ``add_intents`` in the transaction that
stores the groups; :meth:`owns` to leave alert entries out of the CRM actions it
resumes; :meth:`deliver` once the run's CRM actions are done.

The CRM is asked for the portal id (HubSpot) or instance URL (Salesforce) and for the
owners only when a run owes an alert, so an idle run makes no call for alerts.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from connectors.runtime import Redactor
from scheduler.alerts.config import AlertsConfig
from scheduler.alerts.deliver import DeliveryReport, deliver, no_crash
from scheduler.alerts.links import record_links
from scheduler.alerts.plan import Link, Owners, event_from_action, is_alert, plan_alerts
from scheduler.state import LedgerEntry, StateStore

if TYPE_CHECKING:
    from scheduler.writeback import Action


class _Unset(enum.Enum):
    """No ``link`` given: work it out from the connector on first need (None means no links)."""

    UNSET = enum.auto()


_UNSET = _Unset.UNSET


class AlertsHook:
    def __init__(
        self,
        config: AlertsConfig,
        *,
        connector: object = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        redactor: Redactor | None = None,
        crash: Callable[[str], None] = no_crash,
        link: Link | _Unset | None = _UNSET,
        pipeline: str = "default",
        heartbeat: bool = True,
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.heartbeat = heartbeat
        self.connector = connector
        self.now = now
        self.sleep = sleep
        self.redactor = redactor or Redactor()
        for secret in config.secrets():
            self.redactor.add(secret)
        self.crash = crash
        self._link = link
        self._owners = Owners(getattr(connector, "list_owners", None))

    def __repr__(self) -> str:
        return f"AlertsHook({self.config!r})"

    def _links(self) -> Link | None:
        if self._link is _UNSET:
            self._link = record_links(self.connector)  # one account read, on first need
        return self._link

    def plan(
        self, groups: Sequence[tuple[Sequence[LedgerEntry], Action]], *, now: datetime
    ) -> list[LedgerEntry]:
        """The alert entries for ``Sync._decide``'s groups: (entries, action) each.
        The owner is the one the action's entries name (an assigned owner included),
        else the contact's."""
        events = []
        for entries, action in groups:
            owner = next(
                (str(e.spec["owner_id"]) for e in entries if e.spec and e.spec.get("owner_id")),
                None,
            )
            if owner is None and action.fields.get("owner_id"):
                owner = str(action.fields["owner_id"])
            events.append(event_from_action(action, owner))
        if not any(d.wants(ev.kind, ev.model) for ev in events for d in self.config.destinations):
            return []
        return plan_alerts(events, self.config, now=now, owners=self._owners, link=self._links())

    @staticmethod
    def owns(entry: LedgerEntry) -> bool:
        """An alert entry: delivered here, never executed against the CRM."""
        return is_alert(entry)

    def deliver(self, store: StateStore) -> DeliveryReport:
        """Every alert still owed (this run's, and any an earlier run left), under
        the pipeline's alerts lock (one deliverer at a time per store)."""
        return deliver(
            store,
            None,
            config=self.config,
            now=self.now,
            sleep=self.sleep,
            redactor=self.redactor,
            crash=self.crash,
            lock=f"{self.pipeline}:alerts",
            heartbeat=self.heartbeat,
        )
