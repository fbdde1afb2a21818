"""Alerts inside a real sync run (the fake CRM of the sync's tests), wired the way
docs/alerts.md, "Inside a run", tells ``Sync`` to call :class:`AlertsHook`: a
crossing alerts once; a rerun, a resumed run or the next run never again."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scheduler"))

from alert_helpers import alerts
from sync_fakes import fake_score, models
from wired_sync import WiredSync

from scheduler.alerts.hook import AlertsHook
from scheduler.config import config_from_mapping
from scheduler.state import StateStore
from scheduler.sync import RunOptions


@pytest.fixture
def world(tmp_path, catcher):
    from sync_fakes import T0, FakeCRM

    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    crm = FakeCRM()
    config = config_from_mapping(
        {
            "crm": {"type": "fake"},
            "models": ["unused.yaml"],
            "state": store.url,
            "writeback": {"min_change": 1},
        },
        base_dir=tmp_path,
    )
    dest = alerts({"type": "slack", "url": catcher.url("/s")})

    def run(**opts: Any) -> WiredSync:
        sync = WiredSync(
            config, crm, store, models(), scorer=fake_score, now=lambda: T0, heartbeat=False
        )
        sync.alerts = AlertsHook(
            dest,
            connector=crm,
            sleep=lambda s: None,
            link=lambda c, k: f"https://crm.test/{c}",
            heartbeat=False,
        )
        sync.run(RunOptions(**opts))
        return sync

    yield crm, store, run
    store.close()


def test_a_crossing_alerts_once_and_a_rerun_never_again(world, catcher) -> None:
    crm, store, run = world
    crm.add("c1", points=50, owner_id="o1")
    run()  # baseline: no action, no alert
    assert catcher.requests == []
    crm.touch("c1", points=90)
    sync = run()
    assert sync.report.sent == 1
    [body] = catcher.bodies()
    assert body["text"] == "Fc1 Lc1: main score 90 (hot, crossed the threshold)"
    assert "*Owner*\nAnn" in [f["text"] for f in body["blocks"][1]["fields"]]
    kinds = sorted(e.kind for e in store.ledger_for("c1"))
    assert kinds == ["alert", "deal", "task"]
    run()
    run(full=True)
    assert len(catcher.requests) == 1
    assert len(crm.deals) == 1


def test_an_alert_left_owed_is_sent_by_the_next_run_and_never_reaches_the_crm(
    world, catcher
) -> None:
    from scheduler.alerts.catcher import Reply

    crm, store, run = world
    crm.add("c1", points=50, owner_id="o1")
    run()
    crm.touch("c1", points=90)
    catcher.default = Reply(503, "down")
    sync = run()
    assert sync.report.failed == 1
    catcher.default = Reply(200)
    sync = run()  # the resumed CRM actions leave the alert alone; delivery sends it
    assert sync.report.sent == 1
    assert [e.status for e in store.ledger_for("c1") if e.kind == "alert"] == ["done"]
    assert len(crm.deals) == 1 and len(crm.tasks) == 1
