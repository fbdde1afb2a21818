"""The one duplicate window: a crash after the destination's 2xx and before the
ledger write. The process is really killed (SIGKILL) there; the next pass sends
that alert again — once — and nothing else twice. A rerun after a clean pass
sends nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from alert_helpers import alerts, event, plan_and_store

from scheduler.alerts.deliver import CRASH_AFTER_SENT, deliver

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import datetime, UTC
    from scheduler.alerts.config import validate_alerts
    from scheduler.alerts.deliver import deliver
    from scheduler.state import StateStore

    url, state, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
    config = validate_alerts([{"type": "slack", "url": url}], "<config>")
    store = StateStore(state)
    hits = []

    def crash(point):
        hits.append(point)
        if len(hits) == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    deliver(store, None, config=config, sleep=lambda s: None, crash=crash)
    """
)


def test_killed_between_the_2xx_and_the_ledger_write_sends_that_alert_once_more(
    tmp_path, store, clock, catcher
) -> None:
    config = alerts({"type": "slack", "url": catcher.url("/slack")})
    plan_and_store(store, config, [event(1), event(2), event(3)], clock.now())
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.run(
        [sys.executable, "-c", CHILD, catcher.url("/slack"), store.url, "2"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    # c1 delivered and recorded; c2 delivered, then the process died; c3 not sent.
    assert [e.status for e in store.ledger_for("c1")] == ["done"]
    assert [e.status for e in store.ledger_for("c2")] == ["intent"]
    assert [e.status for e in store.ledger_for("c3")] == ["intent"]
    names = [b["blocks"][1]["text"]["text"] for b in catcher.bodies()]
    assert names == [
        "*<https://crm.test/contact/c1|Lee Number1>*",
        "*<https://crm.test/contact/c2|Lee Number2>*",
    ]

    report = deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    assert report.sent == 2
    names = [b["blocks"][1]["text"]["text"].split("|")[1] for b in catcher.bodies()]
    assert names == ["Lee Number1>*", "Lee Number2>*", "Lee Number2>*", "Lee Number3>*"]
    # One duplicate at most, and a further pass (a rerun) sends nothing.
    assert deliver(store, None, config=config, now=clock.now, sleep=clock.sleep).sent == 0
    assert len(catcher.requests) == 4
    assert CRASH_AFTER_SENT == "after_alert_sent"


def test_a_retry_after_a_failure_does_not_resend_what_was_delivered(store, clock, catcher) -> None:
    from scheduler.alerts.catcher import Reply

    config = alerts({"type": "slack", "url": catcher.url("/slack")})
    plan_and_store(store, config, [event(1), event(2)], clock.now())
    catcher.script = [Reply(200)] + [Reply(500)] * 3
    first = deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    assert (first.sent, first.failed) == (1, 1)
    second = deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    assert second.sent == 1
    bodies = [b["text"] for b in catcher.bodies()]
    assert sum("Number1" in t for t in bodies) == 1
    assert sum("Number2" in t for t in bodies) == 4  # three refused, one delivered


def test_while_another_process_delivers_nothing_is_sent_twice(store, clock, catcher) -> None:
    from scheduler.state import StateStore

    config = alerts({"type": "slack", "url": catcher.url("/slack")})
    plan_and_store(store, config, [event(1)], clock.now())
    other = StateStore(store.url, clock=lambda: clock.now().timestamp())
    other.acquire("default:alerts", ttl=60)  # a real-time process, mid-delivery
    try:
        report = deliver(
            store,
            None,
            config=config,
            now=clock.now,
            sleep=clock.sleep,
            lock="default:alerts",
            heartbeat=False,
        )
        assert report.locked and report.sent == 0
        assert catcher.requests == []
    finally:
        other.release("default:alerts")
        other.close()
    report = deliver(
        store,
        None,
        config=config,
        now=clock.now,
        sleep=clock.sleep,
        lock="default:alerts",
        heartbeat=False,
    )
    assert (report.locked, report.sent) == (False, 1)
