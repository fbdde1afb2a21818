"""A contact that crosses, falls below ``rearm_below`` and crosses again while
leadsync's own deal is still open gets nothing new (``skip_if_open_deal: ours``), on
both CRMs, with a new connector and a new state store object for every run, as
separate ``leadsync run`` processes have."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_e2e import HubSpotWorld, SalesforceWorld

from scheduler.state import StateStore
from scheduler.sync import RunOptions, RunSummary


@pytest.fixture(params=["hubspot", "salesforce"])
def w(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HubSpotWorld]:
    world = HubSpotWorld(tmp_path) if request.param == "hubspot" else SalesforceWorld(tmp_path)
    world.writeback = {"skip_if_open_deal": "ours"}
    yield world
    world.close()


def _fresh_run(w: HubSpotWorld, **opts: bool) -> RunSummary:
    """One run as its own process would make it: nothing shared with earlier runs but
    the CRM and the database file."""
    w.clock.advance(10)
    store = StateStore(f"sqlite:///{w.tmp_path / 'e2e.db'}", clock=w.clock.now)
    connector = w.make_connector()
    try:
        return w.sync(store=store, connector=connector).run(RunOptions(**opts))
    finally:
        connector.close()
        store.close()


def test_re_crossing_with_our_deal_open_creates_nothing(w: HubSpotWorld) -> None:
    assert _fresh_run(w).exit_code == 0  # baseline
    assert _fresh_run(w).exit_code == 0
    cid = w.contact_ids()[2]
    w.set_title(cid, "zzbuyer")
    s = _fresh_run(w)
    assert (s.crossings, s.deals, s.tasks) == (1, 1, 1), s.error
    w.set_title(cid, "zzcool")  # below rearm_below: armed again
    assert _fresh_run(w).exit_code == 0
    w.set_title(cid, "zzbuyer")
    s = _fresh_run(w)
    assert s.exit_code == 0, s.error
    assert (s.deals, s.tasks, s.skipped_open_deal) == (0, 0, 1)
    assert len(w.deals_of(cid)) == 1 and len(w.tasks_of(cid)) == 1


def test_a_reps_open_deal_does_not_block_under_ours(w: HubSpotWorld) -> None:
    assert _fresh_run(w).exit_code == 0
    assert _fresh_run(w).exit_code == 0
    cid = w.contact_ids()[3]
    w.rep_deal(cid)
    w.set_title(cid, "zzbuyer")
    s = _fresh_run(w)
    assert (s.deals, s.tasks, s.skipped_open_deal) == (1, 1, 0), s.error
