"""``--act-on-baseline`` on a run after the baseline: it acts on the contacts that were
above the threshold at the baseline, still are, and were never acted on, within
``max_actions_per_run``; the rest are acted on by the next runs. The baseline line is
printed only where its advice holds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sync_fakes import T0, FakeCRM, fake_score, models

from connectors.base import FieldCheck, FieldSpec
from scheduler import cli_sync
from scheduler.config import config_from_mapping
from scheduler.state import MIGRATIONS, StateStore
from scheduler.sync import RunOptions


def _acted(h) -> list[str]:
    return sorted(d.contact_id for d in h.crm.deals.values())


def test_a_later_run_acts_on_contacts_hot_since_the_baseline(h) -> None:
    h.crm.add("hot1", points=80, owner_id="o1")
    h.crm.add("hot2", points=95, owner_id="o1")
    h.crm.add("warm", points=50, owner_id="o1")
    s = h.run()
    assert s.baseline_above_threshold == 2 and h.crm.deals == {}
    h.clock.advance(hours=1)
    assert h.run().crossings == 0  # without the option nothing happens
    h.clock.advance(hours=1)
    s = h.run(act_on_baseline=True)
    assert (s.crossings, s.deals, s.tasks) == (2, 2, 2)
    assert _acted(h) == ["hot1", "hot2"]
    for _ in range(2):  # acted on once: never again
        h.clock.advance(hours=1)
        s = h.run(act_on_baseline=True)
        assert (s.crossings, s.deals) == (0, 0)
    assert len(h.crm.deals) == len(h.crm.tasks) == 2


def test_beyond_max_actions_per_run_the_rest_wait_for_later_runs(h) -> None:
    for i in range(5):
        h.crm.add(f"hot{i}", points=80 + i, owner_id="o1")
    h.run()
    h.writeback = {"max_actions_per_run": 2}
    s = h.run(act_on_baseline=True)
    assert (s.crossings, s.actions_waiting) == (2, 3)
    s = h.run()  # a scheduled run, without the option, goes on with the rest
    assert (s.crossings, s.actions_waiting) == (2, 1)
    s = h.run()
    assert (s.crossings, s.actions_waiting) == (1, 0)
    assert _acted(h) == [f"hot{i}" for i in range(5)]
    assert h.run(act_on_baseline=True).crossings == 0


def test_only_contacts_still_hot_and_never_acted_on(h) -> None:
    h.crm.add("cooled", points=80, owner_id="o1")  # hot at baseline, warm now
    h.crm.add("rearmed", points=80, owner_id="o1")  # fell below rearm_below, crossed again
    h.crm.add("later", points=10, owner_id="o1")  # became hot after the baseline
    h.crm.add("still", points=90, owner_id="o1")
    h.run()
    h.crm.touch("cooled", points=55)
    h.crm.touch("rearmed", points=10)
    h.run()
    h.crm.touch("rearmed", points=85)
    h.crm.touch("later", points=85)
    s = h.run()
    assert _acted(h) == ["later", "rearmed"] and s.crossings == 2
    s = h.run(act_on_baseline=True)
    assert s.crossings == 1 and _acted(h) == ["later", "rearmed", "still"]


def test_immediate_events_seen_at_the_baseline_are_not_replayed(h) -> None:
    h.crm.add("asked", points=10, owner_id="o1")
    h.crm.event("asked", "e1", T0 - timedelta(days=1), type="form_submit")
    h.crm.add("hot", points=90, owner_id="o1")
    h.run()
    s = h.run(act_on_baseline=True)
    assert (s.immediate, s.crossings) == (0, 1) and _acted(h) == ["hot"]


def test_a_contact_acted_on_for_an_immediate_event_is_not_acted_on_again(h) -> None:
    h.crm.add("hot", points=90, owner_id="o1")
    h.run()
    h.crm.event("hot", "e1", T0, type="form_submit")
    s = h.run()
    assert s.immediate == 1 and len(h.crm.deals) == 1
    assert h.run(act_on_baseline=True).crossings == 0
    assert len(h.crm.deals) == 1


def test_a_model_change_keeps_what_was_never_acted_on(h) -> None:
    h.crm.add("hot", points=90, owner_id="o1")
    h.run()
    h.models = models(_model_v2())
    s = h.run()
    assert s.baseline_models == ["main"] and s.baseline_above_threshold == 1
    assert h.run(act_on_baseline=True).crossings == 1


def _model_v2() -> str:
    from sync_fakes import MODEL_YAML

    return MODEL_YAML.replace("points: 5,", "points: 6,")


def test_states_of_an_older_database_are_held_when_never_acted_on(tmp_path: Path) -> None:
    """A database from before this column: contacts the baseline itself left disarmed,
    with no crossing acted on and no action in the ledger, are the ones it left above
    the threshold; one a later run disarmed (skipped for an open deal) is not."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = StateStore(url)
    with old.tx() as conn:
        old.t["migrations"].create(conn)
        ms = old.t["model_state"]
        cols = [c for c in ms.columns if c.name != "baseline_hot"]
        sa.Table("ls_model_state", sa.MetaData(), *(c._copy() for c in cols)).create(conn)
        MIGRATIONS[0][1](conn, {k: v for k, v in old.t.items() if k != "model_state"})
        conn.execute(old.t["migrations"].insert().values(version=1, applied_at=0))
        # The baseline ran at t=10; "skipped" was disarmed by a later run (an open deal).
        conn.execute(old.t["models"].insert().values(model="main", hash="h", baselined_at=10))
        rows = [
            ("held", False, 0, 10),
            ("acted", False, 1, 10),
            ("armed", True, 0, 10),
            ("imm", False, 0, 10),
            ("skipped", False, 0, 20),
        ]
        for cid, armed, crossings, at in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO ls_model_state (contact_id, model, armed, crossings, updated_at)"
                    " VALUES (:c, 'main', :a, :n, :t)"
                ),
                {"c": cid, "a": armed, "n": crossings, "t": at},
            )
        conn.execute(
            old.t["ledger"]
            .insert()
            .values(
                key="main:imm:e:x:deal",
                group_key="main:imm:e:x",
                seq=1,
                run_id="r",
                contact_id="imm",
                model="main",
                kind="deal",
                status="done",
                attempts=1,
                created_at=0,
                updated_at=0,
            )
        )
    old.close()
    store = StateStore(url)
    store.migrate()
    states = store.model_states(["held", "acted", "armed", "imm", "skipped"])
    assert {cid for (cid, _), st in states.items() if st.baseline_hot} == {"held"}
    store.close()


# ----------------------------------------------------------------- the baseline line


def _cli_run(tmp_path: Path, crm: FakeCRM, capsys, **opts) -> tuple[int, str, str]:
    config = config_from_mapping(
        {"crm": {"type": "fake"}, "models": ["unused.yaml"],
         "state": f"sqlite:///{tmp_path / 'state.db'}"},
        base_dir=tmp_path,
    )  # fmt: skip
    store = StateStore(config.state_url())
    store.migrate()
    try:
        code, _ = cli_sync.execute_run(
            config,
            RunOptions(**opts),
            connector=crm,
            store=store,
            models=models(),
            scorer=fake_score,
            now=lambda: T0,
        )
    finally:
        store.close()
    out, err = capsys.readouterr()
    return code, out, err


BASELINE_LINE = "already above the threshold"


def test_the_baseline_line_on_a_baseline_that_wrote_scores(tmp_path: Path, capsys) -> None:
    crm = FakeCRM()
    crm.add("hot", points=90, owner_id="o1")
    code, out, _ = _cli_run(tmp_path, crm, capsys)
    assert code == 0 and "1 contact(s) " + BASELINE_LINE in out
    assert "--act-on-baseline" in out
    code, out, _ = _cli_run(tmp_path, crm, capsys)
    assert BASELINE_LINE not in out  # not a baseline


def test_no_baseline_line_on_a_dry_run(tmp_path: Path, capsys) -> None:
    crm = FakeCRM()
    crm.add("hot", points=90, owner_id="o1")
    _, out, _ = _cli_run(tmp_path, crm, capsys, dry_run=True)
    assert BASELINE_LINE not in out


def test_no_baseline_line_when_acting_on_the_baseline(tmp_path: Path, capsys) -> None:
    crm = FakeCRM()
    crm.add("hot", points=90, owner_id="o1")
    _, out, _ = _cli_run(tmp_path, crm, capsys, act_on_baseline=True)
    assert BASELINE_LINE not in out and len(crm.deals) == 1


class _MissingField(FakeCRM):
    def ensure_fields(self, fields: list[FieldSpec]) -> FieldCheck:  # type: ignore[override]
        return FieldCheck(missing=("ls_score",), instructions=("create ls_score",))


def test_no_baseline_line_when_the_run_failed_before_reading(tmp_path: Path, capsys) -> None:
    crm = _MissingField()
    crm.add("hot", points=90, owner_id="o1")
    code, out, err = _cli_run(tmp_path, crm, capsys)
    assert code == 2 and BASELINE_LINE not in out + err


@pytest.fixture(autouse=True)
def _quiet_logs(caplog) -> None:
    caplog.set_level("CRITICAL", logger="leadsync")


def test_an_older_database_takes_its_unfinished_actions_for_sent(tmp_path: Path) -> None:
    """A release before the sent mark left no proof that an intent was never sent (a
    crash may have followed its call), so every existing entry counts as sent."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = StateStore(url)
    with old.tx() as conn:
        old.t["migrations"].create(conn)
        led = old.t["ledger"]
        cols = [c for c in led.columns if c.name != "sent"]
        sa.Table("ls_ledger", sa.MetaData(), *(c._copy() for c in cols)).create(conn)
        for _, migration in MIGRATIONS[:3]:  # the ledger is there: it is kept as it is
            migration(conn, old.t)
        for version in (1, 2, 3):
            conn.execute(old.t["migrations"].insert().values(version=version, applied_at=0))
        conn.execute(
            sa.text(
                "INSERT INTO ls_ledger (key, group_key, seq, run_id, contact_id, model, kind,"
                " status, attempts, created_at, updated_at) VALUES"
                " ('main:c1:e:x:deal', 'main:c1:e:x', 1, 'r', 'c1', 'main', 'deal', 'intent',"
                " 0, 0, 0)"
            )
        )
    old.close()
    store = StateStore(url)
    store.migrate()
    assert [e.key for e in store.pending_actions()] == ["main:c1:e:x:deal"]
    assert store.mark_sent(["main:c1:e:x:deal"]) == set()  # may have been sent
    store.close()
