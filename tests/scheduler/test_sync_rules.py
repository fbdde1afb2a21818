"""The write-back rules, one behaviour per test, against the in-memory CRM."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sync_fakes import T0, models

from connectors.base import Owner
from scheduler.state import StateStore


def _baseline(h, n: int = 3, points: float = 50) -> None:
    for i in range(n):
        h.crm.add(f"c{i}", points=points, owner_id="o9")
    s = h.run()
    assert s.exit_code == 0 and s.baseline_models == ["main"]


def test_baseline_writes_scores_but_no_actions_and_reports_hot_count(h) -> None:
    h.crm.add("hot1", points=80, owner_id="o1")
    h.crm.add("hot2", points=95, owner_id="o1")
    h.crm.add("cold", points=10, owner_id="o1")
    s = h.run()
    assert s.exit_code == 0
    assert s.baseline_models == ["main"]
    assert s.baseline_above_threshold == 2
    assert s.scores_written == 3
    assert h.crm.scores == {
        "hot1": {"ls_score": 80},
        "hot2": {"ls_score": 95},
        "cold": {"ls_score": 10},
    }
    assert h.crm.deals == {} and h.crm.tasks == {}
    assert h.crm.fields_ensured == ["ls_score"]
    # The next run is no longer a baseline, and the hot contacts are not acted on later.
    s2 = h.run()
    assert s2.baseline_models == [] and s2.crossings == 0 and h.crm.deals == {}


def test_act_on_baseline_acts_on_contacts_already_hot(h) -> None:
    h.crm.add("hot1", points=80, owner_id="o1")
    h.crm.add("warm", points=50, owner_id="o1")
    s = h.run(act_on_baseline=True)
    assert s.crossings == 1 and s.deals == 1 and s.tasks == 1
    assert [d.contact_id for d in h.crm.deals.values()] == ["hot1"]


def test_second_run_with_nothing_changed_makes_no_writes_and_one_call(h) -> None:
    _baseline(h, 20)
    before = h.crm.calls
    s = h.run()
    assert s.scores_written == 0 and s.deals == 0 and s.tasks == 0
    assert h.crm.calls - before == s.api_calls == 1  # the one (empty) change read
    assert len(h.crm.score_writes) == 1


def test_crossing_creates_exactly_one_deal_and_one_task_for_the_owner(h) -> None:
    _baseline(h)
    h.crm.touch("c1", points=85)
    s = h.run()
    assert (s.crossings, s.deals, s.tasks) == (1, 1, 1)
    (deal,) = h.crm.deals.values()
    (task,) = h.crm.tasks.values()
    assert deal.contact_id == task.contact_id == "c1"
    assert deal.owner_id == task.owner_id == "o9"
    assert deal.key == "main:c1:c1:deal" and task.key == "main:c1:c1:task"
    assert deal.name == "Fc1 Lc1 - main"
    assert task.subject == "Follow up: Fc1 Lc1 scored 85"
    assert "base: +85" in task.body
    assert task.due_at == T0 + timedelta(days=1)
    # Staying hot on later runs creates nothing new.
    for _ in range(2):
        h.clock.advance(hours=1)
        assert h.run().crossings == 0
    assert len(h.crm.deals) == 1 and len(h.crm.tasks) == 1


def test_oscillation_needs_rearm_below_before_a_new_crossing(h) -> None:
    _baseline(h, 1)
    for points, expected_deals in [(80, 1), (60, 1), (75, 1), (39, 1), (72, 2), (41, 2), (90, 2)]:
        h.crm.touch("c0", points=points)
        h.run()
        assert len(h.crm.deals) == expected_deals, points
        h.crm.close_deals()  # the rep works the deal; an open one would block the next
    assert sorted(h.crm.deals) == ["main:c0:c1:deal", "main:c0:c2:deal"]


def test_immediate_event_is_acted_on_once_per_event_id(h) -> None:
    _baseline(h, 1, points=10)
    h.crm.event("c0", "form-1", T0 - timedelta(hours=1), type="form_submit")
    s = h.run()
    assert (s.immediate, s.deals, s.tasks) == (1, 1, 1)
    assert list(h.crm.deals) == ["main:c0:e:form-1:deal"]
    for _ in range(3):  # still inside its window, but already acted on
        h.clock.advance(days=1)
        assert h.run().immediate == 0
    h.crm.close_deals()
    h.crm.event("c0", "form-2", h.clock() - timedelta(minutes=5), type="form_submit")
    assert h.run().immediate == 1
    assert sorted(h.crm.deals) == ["main:c0:e:form-1:deal", "main:c0:e:form-2:deal"]


def test_immediate_events_seen_during_baseline_are_not_acted_on(h) -> None:
    h.crm.add("c0", points=10, owner_id="o1")
    h.crm.event("c0", "form-0", T0 - timedelta(days=1), type="form_submit")
    assert h.run().immediate == 0
    assert h.run().immediate == 0
    assert h.crm.deals == {}


def test_min_change_and_band_change(h) -> None:
    h.writeback = {"min_change": 2, "band_field": "ls_band"}
    h.crm.add("a", points=50, owner_id="o1")
    h.crm.add("b", points=39, owner_id="o1")
    h.run()
    assert h.crm.scores["b"] == {"ls_score": 39, "ls_band": "cold"}
    h.crm.touch("a", points=51.5)  # moved 1.5 < 2: not written
    h.crm.touch("b", points=40)  # moved 1 but crossed into warm: written
    s = h.run()
    assert s.scores_written == 1
    assert h.crm.scores["a"]["ls_score"] == 50
    assert h.crm.scores["b"] == {"ls_score": 40, "ls_band": "warm"}
    h.crm.touch("a", points=52)  # 2 from the last *written* 50: written
    assert h.run().scores_written == 1
    assert h.crm.scores["a"]["ls_score"] == 52


def test_no_new_deal_while_a_rep_has_an_open_deal(h) -> None:
    _baseline(h, 2)
    h.crm.rep_deal("c0")
    h.crm.touch("c0", points=90)
    h.crm.touch("c1", points=90)
    s = h.run()
    assert s.skipped_open_deal == 1 and s.deals == 1
    assert h.crm.deals_for("c0") == [] and h.crm.tasks_for("c0") == []
    assert len(h.crm.deals_for("c1")) == 1
    assert h.run().deals == 0  # the skipped crossing is consumed, not retried each run


def test_skip_if_open_deal_ours_ignores_the_reps_own_deals(h) -> None:
    h.writeback = {"skip_if_open_deal": "ours"}
    _baseline(h, 1)
    h.crm.rep_deal("c0")
    h.crm.touch("c0", points=90)
    assert h.run().deals == 1


def test_converted_leads_get_scores_but_no_actions(h) -> None:
    h.crm.add("l1", kind="lead", converted=True, points=50, owner_id="o1")
    h.run()
    h.crm.touch("l1", points=90)
    s = h.run()
    assert s.skipped_converted == 1 and s.deals == 0 and s.tasks == 0
    assert h.crm.scores["l1"]["ls_score"] == 90


def test_owner_round_robin_over_the_pool_continues_across_runs(h) -> None:
    h.writeback = {"on_cross": {"owners": {"pool": ["ann@example.com", "o2", "CAT@example.com"]}}}
    h.crm.owners.append(Owner("o7", "dan@example.com", "Dan"))  # a rep outside the pool
    for i in range(4):
        h.crm.add(f"n{i}", points=10)
    h.crm.add("owned", points=10, owner_id="o7")
    h.run()
    for cid in ["n0", "n1", "owned"]:
        h.crm.touch(cid, points=80)
    h.run()
    for cid in ["n2", "n3"]:
        h.crm.touch(cid, points=80)
    h.run()
    owners = {d.contact_id: d.owner_id for d in h.crm.deals.values()}
    assert owners == {"n0": "o1", "n1": "o2", "owned": "o7", "n2": "o3", "n3": "o1"}
    assert {t.contact_id: t.owner_id for t in h.crm.tasks.values()} == owners
    assert h.crm.owner_sets == [("n0", "o1"), ("n1", "o2"), ("n2", "o3"), ("n3", "o1")]


def test_max_actions_per_run_leaves_the_rest_for_later_runs(h) -> None:
    h.writeback = {"max_actions_per_run": 2}
    _baseline(h, 5)
    for i in range(5):
        h.crm.touch(f"c{i}", points=90)
    counts = []
    for _ in range(4):
        s = h.run()
        counts.append((s.crossings, s.actions_waiting))
    assert counts == [(2, 3), (2, 1), (1, 0), (0, 0)]
    assert len(h.crm.deals) == 5 and len(h.crm.tasks) == 5


def test_cursor_is_not_committed_when_the_run_stops_early(h) -> None:
    _baseline(h, 3)
    cursor = h.store.get_cursor("default")
    for i in range(3):
        h.crm.touch(f"c{i}", points=60)
    h.crm.quota_after = h.crm.calls + 1  # the read succeeds, the score write does not
    s = h.run()
    assert s.exit_code == 3 and s.status == "stopped" and not s.cursor_committed
    assert h.store.get_cursor("default") == cursor
    h.crm.quota_after = None
    s = h.run()
    assert s.exit_code == 0 and s.contacts_read == 3 and s.scores_written == 3
    assert h.store.get_cursor("default") == {"seq": h.crm.seq}


def test_rejected_records_are_kept_and_retried_after_their_back_off(h) -> None:
    h.crm.add("good", points=10, owner_id="o1")
    h.crm.add("bad", points=20, owner_id="o1")
    h.crm.reject["bad"] = "INVALID_EMAIL: the e-mail address is not valid"
    s = h.run()
    assert s.exit_code == 1 and s.rejected == 1 and s.scores_written == 1
    assert [r["contact_id"] for r in h.store.rejected()] == ["bad"]
    assert s.cursor_committed  # the local copy holds the record; the retry needs no read
    del h.crm.reject["bad"]
    s = h.run()
    assert s.scores_written == 0 and s.rejected_waiting == 1  # not on every run
    h.clock.advance(hours=1)
    s = h.run()
    assert s.exit_code == 0 and s.scores_written == 1 and s.contacts_read == 0
    assert h.crm.scores["bad"] == {"ls_score": 20}
    assert h.store.rejected() == []


def test_dry_run_writes_nothing_and_keeps_no_state(h) -> None:
    h.crm.add("a", points=80, owner_id="o1")
    s = h.run(dry_run=True, act_on_baseline=True)
    assert s.dry_run and s.scores_written == 1 and s.crossings == 1
    assert s.would_write == [{"contact_id": "a", "ls_score": 80}]
    assert s.would_act[0]["actions"] == ["deal", "task"]
    assert h.crm.scores == {} and h.crm.deals == {} and h.crm.fields_ensured == []
    assert h.store.get_cursor("default") is None and h.store.model_hashes() == {}
    assert h.run().baseline_models == ["main"]


def test_a_lost_create_response_is_completed_next_run_without_a_duplicate(h) -> None:
    _baseline(h, 1)
    h.crm.touch("c0", points=90)
    h.crm.drop_after_create = 1  # the deal is created, its response lost
    s = h.run()
    assert s.actions_failed == 1 and s.deals == 0
    s = h.run()
    assert s.actions_resumed == 1 and s.deals == 1 and s.tasks == 1
    assert len(h.crm.deals) == 1 and len(h.crm.tasks) == 1
    assert h.run().actions_resumed == 0


def test_a_create_that_failed_before_committing_is_retried(h) -> None:
    _baseline(h, 1)
    h.crm.touch("c0", points=90)
    h.crm.fail_creates = 1
    assert h.run().actions_failed == 1 and h.crm.deals == {}
    s = h.run()
    assert (s.deals, s.tasks) == (1, 1)


def test_merge_and_deletion_purge_local_state(h) -> None:
    _baseline(h, 3)
    h.crm.event("c1", "ev-1", T0 - timedelta(days=1), points=10)
    h.run()
    h.crm.merge("c1", "c0")
    h.crm.delete("c2")
    s = h.run()
    assert s.merges == 1 and s.deletions == 1
    assert h.store.contact_ids() == ["c0"]
    contact, events = h.store.get_contact("c0")
    assert contact is not None and [e["id"] for e in events] == ["ev-1"]
    assert set(h.store.model_states(["c0", "c1", "c2"])) == {("c0", "main")}
    assert h.crm.scores["c0"]["ls_score"] == 60  # the survivor inherits the history


def test_time_passing_moves_scores_without_reading_again(h) -> None:
    h.crm.add("a", points=30, owner_id="o1")
    h.crm.event("a", "v1", T0 - timedelta(days=25), points=20)
    h.run()
    assert h.crm.scores["a"]["ls_score"] == 50
    h.clock.advance(days=6)  # the event leaves the 30-day window
    before = h.crm.calls
    s = h.run()
    assert s.contacts_read == 0 and s.scores_written == 1
    assert h.crm.scores["a"]["ls_score"] == 30
    assert h.crm.calls - before == 2  # one empty read, one write


def test_model_change_triggers_a_new_baseline(h) -> None:
    h.crm.add("a", points=50, owner_id="o1")
    h.run()
    changed = models().copy()
    text = (
        "models:\n  - name: main\n    score_field: ls_score\n    bands: {hot: 45, warm: 20}\n"
        "    rules:\n      - {id: base, kind: fit, field: points, match: {exists: true}, points: 2}\n"
    )
    changed = models(text)
    s = h.sync(model_list=changed).run()
    assert s.baseline_models == ["main"] and s.baseline_above_threshold == 1
    assert s.crossings == 0 and h.crm.deals == {}
    assert h.crm.fields_ensured == ["ls_score", "ls_score"]
    assert h.sync(model_list=changed).run().baseline_models == []


def test_a_second_run_while_one_holds_the_lock_exits_4(h, tmp_path) -> None:
    _baseline(h, 1)
    other = StateStore(f"sqlite:///{tmp_path / 'state.db'}", clock=lambda: h.clock().timestamp())
    other.acquire("default", ttl=120)
    try:
        s = h.run()
        assert s.exit_code == 4 and s.status == "locked"
        assert "another run" in (s.error or "")
    finally:
        other.release("default")
        other.close()
    assert h.run().exit_code == 0


def test_a_killed_runs_lease_expires(h, tmp_path) -> None:
    dead = StateStore(f"sqlite:///{tmp_path / 'state.db'}", clock=lambda: h.clock().timestamp())
    dead.acquire("default", ttl=120)  # never released: as if SIGKILLed
    dead.engine.dispose()
    assert h.run().exit_code == 4
    h.clock.advance(seconds=121)
    assert h.run().exit_code == 0


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_chunking_does_not_change_the_outcome(h, chunk: int) -> None:
    for i in range(10):
        h.crm.add(f"c{i:02d}", points=50 + i, owner_id="o1")
    h.sync(chunk_size=chunk).run()
    for i in range(10):
        h.crm.touch(f"c{i:02d}", points=65 + i)
    s = h.sync(chunk_size=chunk).run()
    assert s.crossings == 5 and s.scores_written == 10
    assert sorted(d.contact_id for d in h.crm.deals.values()) == [f"c{i:02d}" for i in range(5, 10)]


def test_an_action_the_crm_keeps_refusing_is_given_up_after_5_attempts(h) -> None:
    _baseline(h, 1)
    h.crm.touch("c0", points=90)
    h.crm.fail_creates = 100
    failed = [h.run().actions_failed for _ in range(7)]
    assert failed == [1, 1, 1, 1, 1, 0, 0]
    assert h.store.ledger_counts() == {"deal:gave_up": 1, "task:gave_up": 1}
    assert h.crm.deals == {}


def test_contacts_owned_by_a_queue_or_a_gone_rep_go_to_the_pool(h) -> None:
    """A queue cannot own a Salesforce Task, and a deactivated rep (or one the CRM no
    longer lists) would never see the work: such contacts are assigned like unowned
    ones. A rep outside the pool keeps their contact."""
    h.writeback = {"on_cross": {"owners": {"pool": ["o1", "o2"]}}}
    h.crm.owners += [
        Owner("q1", None, "Inbound queue", kind="queue"),
        Owner("o8", "eve@example.com", "Eve", active=False),
        Owner("o9", "fay@example.com", "Fay"),
    ]
    for cid, owner in (("queued", "q1"), ("left", "o8"), ("gone", "o404"), ("kept", "o9")):
        h.crm.add(cid, kind="lead", points=10, owner_id=owner)
    h.run()
    for cid in ("queued", "left", "gone", "kept"):
        h.crm.touch(cid, points=80)
    s = h.run()
    owners = {d.contact_id: d.owner_id for d in h.crm.deals.values()}
    assert owners == {"queued": "o1", "left": "o2", "gone": "o1", "kept": "o9"}
    assert {t.contact_id: t.owner_id for t in h.crm.tasks.values()} == owners
    assert sorted(h.crm.owner_sets) == [("gone", "o1"), ("left", "o2"), ("queued", "o1")]
    assert s.owners_assigned == 3


def test_without_a_pool_the_owner_stays_and_no_owner_list_is_read(h) -> None:
    h.crm.owners.append(Owner("q1", None, "Inbound queue", kind="queue"))
    h.crm.add("queued", points=10, owner_id="q1")
    h.run()
    h.crm.touch("queued", points=80)
    h.run()
    assert [d.owner_id for d in h.crm.deals.values()] == ["q1"]
    assert h.crm.owner_sets == []
    assert "owners" not in h.crm.calls_by
