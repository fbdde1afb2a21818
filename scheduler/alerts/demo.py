"""What ``leadsync demo`` shows of alerts: the alerts its run owes, sent to a
webhook catcher it starts on loopback, and told in a few lines."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from connectors.base import Owner
from scheduler.alerts.catcher import catching
from scheduler.alerts.config import validate_alerts
from scheduler.alerts.deliver import deliver
from scheduler.alerts.plan import ALERT, AlertEvent, Link, plan_alerts
from scheduler.state import StateStore


def events_from_ledger(store: StateStore) -> list[AlertEvent]:
    """The actions a store's ledger holds (deal, task, owner entries), as alert events:
    score and band from the last written state, the owner from the action's spec."""
    led = store.t["ledger"]
    import sqlalchemy as sa

    from scheduler.state import loads

    with store.tx() as conn:
        rows = conn.execute(
            sa.select(led.c.group_key, led.c.contact_id, led.c.model, led.c.spec)
            .where(led.c.kind != ALERT)
            .order_by(led.c.created_at, led.c.group_key, led.c.seq)
        ).all()
    seen: dict[str, AlertEvent] = {}
    states = store.model_states(sorted({r.contact_id for r in rows}))
    for r in rows:
        if r.group_key in seen:
            continue
        token = r.group_key.split(":", 2)[2] if r.group_key.count(":") >= 2 else ""
        contact, _ = store.get_contact(r.contact_id)
        st = states.get((r.contact_id, r.model))
        spec = loads(r.spec) or {}
        seen[r.group_key] = AlertEvent(
            contact_id=r.contact_id,
            model=r.model,
            kind="crossing" if token.startswith("c") else "immediate",
            token=token,
            score=float(st.written_score or 0) if st else 0.0,
            band=str(st.written_band or "") if st else "",
            contact_kind=contact.kind if contact else "contact",
            fields=contact.fields if contact else {},
            owner_id=spec.get("owner_id"),
        )
    return list(seen.values())


def demo_alerts(
    store: StateStore,
    *,
    echo: Callable[[str], None],
    link: Link | None = None,
    owners: Callable[[], Sequence[Owner]] | None = None,
    limit: int = 5,
) -> int:
    """Send the run's alerts (at most ``limit``) as Slack messages to a local catcher,
    in a store of their own (the demo's ledger is left as the run left it), and echo
    what arrived. Returns the number of alerts caught."""
    events = events_from_ledger(store)[:limit]
    if not events:
        echo("alerts: no crossing in this run, so no alert to send")
        return 0
    with tempfile.TemporaryDirectory() as tmp, catching() as catcher:
        scratch = StateStore(f"sqlite:///{tmp}/alerts-demo.db")
        scratch.migrate()
        config = validate_alerts([{"type": "slack", "url": catcher.url("/demo")}], "<demo>")
        entries = plan_alerts(events, config, now=datetime.now(UTC), owners=owners, link=link)
        with scratch.tx() as conn:
            scratch.add_intents(conn, entries, "demo")
        deliver(scratch, None, config=config, sleep=lambda s: None)
        bodies = catcher.bodies()
        scratch.close()
    echo(f"alerts: {len(bodies)} Slack message(s) a local webhook catcher received:")
    for body in bodies:
        echo(f"  {body.get('text')}")
    return len(bodies)
