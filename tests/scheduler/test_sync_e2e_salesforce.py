"""The sync against the Salesforce sandbox over TLS, through the real connector."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sync_e2e import SalesforceWorld

from scheduler.state import StateStore
from scheduler.sync import RunOptions


@pytest.fixture
def w(tmp_path: Path) -> Iterator[SalesforceWorld]:
    world = SalesforceWorld(tmp_path)
    yield world
    world.close()


def _settle(w: SalesforceWorld) -> None:
    s = w.run()
    assert s.exit_code == 0, s.error
    assert w.run().exit_code == 0


def test_baseline_then_runs_with_nothing_changed(w: SalesforceWorld) -> None:
    s = w.run()
    assert s.exit_code == 0 and s.baseline_models == ["main"], s.error
    kept = w.store.count_contacts()
    assert kept > 0 and s.scores_written == kept and s.deals == 0
    s2 = w.run()
    assert s2.scores_written == 0 and w.writes() == 0 and s2.api_calls <= 3
    s3 = w.run()
    assert s3.exit_code == 0 and s3.contacts_read == 0 and s3.scores_written == 0
    assert w.writes() == 0


def test_nothing_changed_costs_at_most_3_calls(w: SalesforceWorld) -> None:
    _settle(w)
    assert w.run().api_calls <= 3


def test_incremental_run_writes_only_the_change(w: SalesforceWorld) -> None:
    _settle(w)
    cid = w.contact_ids()[1]
    w.set_title(cid, "zzwarm analyst")
    s = w.run()
    assert s.contacts_read == 1 and s.scores_written == 1
    assert 55 <= float(w.contact(cid)["leadsync_score"]) <= 65


def test_crossing_on_a_contact_creates_one_opportunity_and_one_task(w: SalesforceWorld) -> None:
    _settle(w)
    # The world's customers have Opportunities of their own: take a Contact without an
    # open one, or skip_if_open_deal rightly holds the action back.
    busy = {
        r["ContactId"]
        for r in w.query(
            "SELECT ContactId FROM OpportunityContactRole WHERE Opportunity.IsClosed = false"
        )
    }
    cid = next(c for c in w.contact_ids() if c not in busy)
    owner = w.contact(cid)["hubspot_owner_id"]
    w.set_title(cid, "zzbuyer")
    s = w.run()
    assert (s.crossings, s.deals, s.tasks) == (1, 1, 1), s.error
    assert w.run().deals == 0
    (deal,) = w.deals_of(cid)
    (task,) = w.tasks_of(cid)
    assert deal["hubspot_owner_id"] == task["hubspot_owner_id"] == owner
    assert "buyer" in task["hs_task_body"]


def test_crossing_on_a_lead_changes_its_status_and_creates_a_task(w: SalesforceWorld) -> None:
    _settle(w)
    lid = next(i for i in w.lead_ids() if w.contact(i)["status"] != "Working - Contacted")
    w.set_title(lid, "zzbuyer")
    s = w.run()
    assert s.crossings == 1 and s.tasks == 1, s.error
    assert len(w.tasks_of(lid)) == 1
    assert w.contact(lid)["status"] == "Working - Contacted"  # writeback.on_cross.deal.lead_status


def test_a_reps_open_opportunity_blocks_a_new_one(w: SalesforceWorld) -> None:
    _settle(w)
    cid = w.contact_ids()[3]
    w.rep_deal(cid)
    w.set_title(cid, "zzbuyer")
    s = w.run()
    assert s.skipped_open_deal == 1 and s.deals == 0 and w.tasks_of(cid) == []


def test_immediate_event_is_acted_on_once(w: SalesforceWorld) -> None:
    _settle(w)
    w.sandbox.simulate_activity(30, seed=5)
    s = w.run()
    assert s.immediate >= 1 and s.tasks == s.immediate, s.error
    w.clock.advance(86400)
    assert w.run().immediate == 0


def test_time_passing_moves_scores_and_writes_follow(w: SalesforceWorld) -> None:
    _settle(w)
    w.clock.advance(timedelta(days=4).total_seconds())
    s = w.run()
    assert s.contacts_read == 0 and s.scores_written > 0


def test_two_concurrent_runs_one_gets_exit_4(w: SalesforceWorld, tmp_path: Path) -> None:
    _settle(w)
    other: list[int] = []

    def during_first_run(stage: str, n: int) -> None:
        if other:
            return
        store = StateStore(f"sqlite:///{tmp_path / 'e2e.db'}", clock=w.clock.now)
        try:
            other.append(
                w.sync(store=store, connector=w.make_connector()).run(RunOptions()).exit_code
            )
        finally:
            store.close()

    w.set_title(w.contact_ids()[0], "zzwarm")
    w.clock.advance(10)
    assert w.sync(progress=during_first_run).run(RunOptions()).exit_code == 0
    assert other == [4]


def test_records_the_crm_rejects_are_reported_and_kept(w: SalesforceWorld) -> None:
    victim = w.contact_ids()[0]
    done: list[str] = []

    def archive_after_reading(stage: str, n: int) -> None:
        if stage == "read" and not done:
            w.archive(victim)
            done.append(victim)

    w.clock.advance(10)
    s = w.sync(progress=archive_after_reading).run(RunOptions())
    assert s.exit_code == 1 and s.rejected >= 1
    assert victim in [r["contact_id"] for r in w.store.rejected()]


def test_outcomes_are_read_at_most_every_outcomes_every(w: SalesforceWorld) -> None:
    """Won and lost Opportunities and Lead conversions come into the store with the
    baseline, then at most hourly: idle 15-minute runs keep their few calls."""
    first = w.run()
    assert first.outcomes_read > 0  # the world's past deals and conversions
    w.clock.advance(15 * 60)
    quiet = w.run()
    assert quiet.outcomes_read == 0 and quiet.api_calls <= 3
    w.clock.advance(3600)
    assert w.run().api_calls > quiet.api_calls  # the hourly outcome read
