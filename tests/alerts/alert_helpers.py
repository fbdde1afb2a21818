"""Building alert configurations and planned entries for the tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from connectors.base import Owner
from scheduler.alerts.config import AlertsConfig, validate_alerts
from scheduler.alerts.plan import AlertEvent, plan_alerts
from scheduler.state import LedgerEntry, StateStore

OWNERS = [
    Owner(id="o1", email="ana@example.com", name="Ana Reyes"),
    Owner(id="o2", email=None, name="No Mail"),
]


def alerts(*items: dict[str, Any]) -> AlertsConfig:
    return validate_alerts(list(items), "<config>")


def event(n: int = 1, *, kind: str = "crossing", owner: str | None = "o1", **kw: Any) -> AlertEvent:
    values: dict[str, Any] = {
        "contact_id": f"c{n}",
        "model": "fit",
        "kind": kind,
        "token": "c1" if kind == "crossing" else f"e:ev{n}",
        "score": 80.0 + n,
        "band": "hot",
        "reasons": (("visited pricing", 20.0), ("title is VP", 15.5), ("bounced", -5.0)),
        "fields": {"first_name": "Lee", "last_name": f"Number{n}", "email": f"lee{n}@acme.test"},
        "owner_id": owner,
    }
    values.update(kw)
    return AlertEvent(**values)


def plan_and_store(
    store: StateStore,
    config: AlertsConfig,
    events: Sequence[AlertEvent],
    now: datetime,
    run_id: str = "run1",
) -> list[LedgerEntry]:
    entries = plan_alerts(
        events,
        config,
        now=now,
        owners=lambda: OWNERS,
        link=lambda cid, kind: f"https://crm.test/{kind}/{cid}",
    )
    with store.tx() as conn:
        store.add_intents(conn, entries, run_id)
    return entries
