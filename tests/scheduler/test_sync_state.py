"""The state store on SQLite and on the local PostgreSQL service, with the same tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from scheduler.state import (
    SCHEMA_VERSION,
    LedgerEntry,
    LockHeld,
    ModelState,
    StateError,
    StateStore,
    StoredContact,
)

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_available() -> str | None:
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"no PostgreSQL server answers at {PG_URL}: {type(exc).__name__}"


class _Clock:
    def __init__(self) -> None:
        self.t = 1_780_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}", None
        return
    reason = _pg_available()
    if reason:
        pytest.skip(reason)
    schema = f"ls_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield PG_URL, schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture
def store(backend: tuple[str, str | None], clock: _Clock) -> Iterator[StateStore]:
    url, schema = backend
    s = StateStore(url, schema=schema, clock=clock)
    assert s.migrate() == SCHEMA_VERSION
    yield s
    s.close()


def test_migrations_are_recorded_and_rerunning_keeps_data(
    store: StateStore, backend: tuple[str, str | None], clock: _Clock
) -> None:
    with store.tx() as conn:
        store.set_cursor(conn, "p", {"after": "42", "at": datetime(2026, 1, 2, tzinfo=UTC)})
    again = StateStore(backend[0], schema=backend[1], clock=clock)
    assert again.migrate() == SCHEMA_VERSION  # an upgrade with nothing new is a no-op
    assert again.get_cursor("p") == {"after": "42", "at": datetime(2026, 1, 2, tzinfo=UTC)}
    again.close()


def test_a_newer_schema_is_refused(store: StateStore, backend: tuple[str, str | None]) -> None:
    with store.tx() as conn:
        conn.execute(
            store.t["migrations"].insert().values(version=SCHEMA_VERSION + 1, applied_at=0)
        )
    newer = StateStore(backend[0], schema=backend[1])
    with pytest.raises(StateError, match="newer leadsync"):
        newer.migrate()
    newer.close()


def test_local_copy_chunks_merges_and_purges(store: StateStore) -> None:
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    with store.tx() as conn:
        store.upsert_contacts(
            conn,
            [
                StoredContact(
                    f"c{i}",
                    "contact",
                    converted=False,
                    fields={"email": f"{i}@x.io", "created_at": t0},
                )
                for i in range(5)
            ],
        )
        store.upsert_events(
            conn,
            [
                {
                    "event_id": f"e{i}",
                    "contact_id": f"c{i % 5}",
                    "type": "page_view",
                    "occurred_at": t0 + timedelta(days=i),
                    "attributes": {"url": f"/p{i}"},
                }
                for i in range(10)
            ],
        )
    chunks = list(store.iter_chunks(2))
    assert [[c.id for c in cs] for cs, _ in chunks] == [["c0", "c1"], ["c2", "c3"], ["c4"]]
    assert [e["id"] for e in chunks[0][1]] == ["e0", "e5", "e1", "e6"]
    assert chunks[0][0][0].fields["created_at"] == t0
    assert chunks[0][1][0]["url"] == "/p0" and chunks[0][1][0]["occurred_at"] == t0
    with store.tx() as conn:
        store.merge_contact(conn, "c1", "c0")
        store.purge_contact(conn, "c2")
        assert store.prune_events(conn, t0 + timedelta(days=3)) == 2  # e0 e1 (e2 purged)
    assert store.contact_ids() == ["c0", "c3", "c4"]
    _, events = store.get_contact("c0")
    assert sorted(e["id"] for e in events) == ["e5", "e6"]


def test_model_state_ledger_and_rejected(store: StateStore) -> None:
    with store.tx() as conn:
        store.put_model_states(
            conn, [ModelState("c1", "m", None, None, armed=True, crossings=0, last_event=None)]
        )
        store.set_written(conn, [("c1", "m", 71.5, "hot")])
        store.reject(conn, "c2", "INVALID_EMAIL")
        store.reject(conn, "c2", "INVALID_EMAIL again")
        entry = LedgerEntry(
            "m:c1:c1:deal", "m:c1:c1", 1, "c1", "m", "deal", "intent", {"name": "D"}, None, None, 0
        )
        store.add_intents(conn, [entry, entry], "run1")  # the same key twice is one action
    st = store.model_states(["c1"])[("c1", "m")]
    assert (st.written_score, st.written_band, st.armed) == (71.5, "hot", True)
    assert [r["attempts"] for r in store.rejected()] == [2]
    (pending,) = store.pending_actions()
    assert pending.spec == {"name": "D"}
    store.record_outcome(pending.key, status="done", result_id="d-1")
    assert store.pending_actions() == []
    assert store.ledger_counts() == {"deal:done": 1}
    with store.tx() as conn:
        store.purge_contact(conn, "c1")
    assert store.ledger_for("c1")[0].spec is None  # the key stays, the details go
    assert store.ledger_for("c1")[0].status == "done"


def test_marking_entries_sent_tells_which_no_call_had_carried(store: StateStore) -> None:
    """The mark that lets a connector skip its keyed read: it is committed before each
    call, and says which entries are certainly not in the CRM yet."""
    keys = [f"m:c{i}:1:deal" for i in range(3)]
    with store.tx() as conn:
        store.add_intents(
            conn,
            [
                LedgerEntry(k, k[:-5], 1, f"c{i}", "m", "deal", "intent", {}, None, None, 0)
                for i, k in enumerate(keys)
            ],
            "run1",
        )
    assert store.mark_sent(keys[:2]) == set(keys[:2])
    assert store.mark_sent(keys) == {keys[2]}  # the first two may be there now
    store.record_outcome(keys[0], status="failed", error="x")
    assert store.mark_sent(keys) == set()  # an outcome does not undo the mark
    with store.tx() as conn:  # a key planned again is the same entry, still sent
        store.add_intents(
            conn,
            [LedgerEntry(keys[1], "g", 1, "c1", "m", "deal", "intent", {}, None, None, 0)],
            "r2",
        )
    assert store.mark_sent([keys[1]]) == set()


def test_the_run_lock_excludes_a_second_holder(
    store: StateStore, backend: tuple[str, str | None], clock: _Clock
) -> None:
    other = StateStore(backend[0], schema=backend[1], clock=clock)
    store.acquire("p", ttl=60)
    with pytest.raises(LockHeld):
        other.acquire("p", ttl=60)
    other.acquire("another-pipeline", ttl=60)  # pipelines do not block each other
    store.release("p")
    other.acquire("p", ttl=60)
    other.release("p")
    other.release("another-pipeline")
    other.close()


def test_a_lease_or_lock_of_a_killed_holder_does_not_block_for_long(
    store: StateStore, backend: tuple[str, str | None], clock: _Clock
) -> None:
    dead = StateStore(backend[0], schema=backend[1], clock=clock)
    dead.acquire("p", ttl=60)
    # The process dies: its connections go, nothing is released.
    for conn in dead._pg_lock_conns.values():
        conn.connection.dbapi_connection.close()
        conn.invalidate()
    dead._pg_lock_conns.clear()
    dead.engine.dispose()
    if store.dialect == "sqlite":
        with pytest.raises(LockHeld, match="lease ends within"):
            store.acquire("p", ttl=60)
        clock.t += 61
    store.acquire("p", ttl=60)  # PostgreSQL freed the advisory lock with the session
    store.release("p")


def test_renewing_keeps_the_lease(store: StateStore, clock: _Clock) -> None:
    if store.dialect != "sqlite":
        pytest.skip("PostgreSQL holds an advisory lock for the session; nothing to renew")
    store.acquire("p", ttl=60)
    clock.t += 50
    store.renew("p", ttl=60)
    clock.t += 50
    other = StateStore(store.url, clock=clock)
    with pytest.raises(LockHeld):
        other.acquire("p", ttl=60)
    other.close()
    store.release("p")


def test_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    broken = StateStore(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    with pytest.raises(StateError, match="cannot open"):
        broken.migrate()
    broken.close()
    with pytest.raises(StateError, match="cannot use"):
        StateStore("nosuchdb://x/y")


def test_a_whole_sync_cycle_on_this_backend(
    store: StateStore, clock: _Clock, tmp_path: Path
) -> None:
    """The run's own SQL (upserts, booleans, chunked reads, the ledger) on both databases."""
    from sync_fakes import T0, FakeCRM, fake_score, models

    from scheduler.config import config_from_mapping
    from scheduler.sync import RunOptions, Sync

    crm = FakeCRM()
    for i in range(12):
        crm.add(f"c{i:02d}", points=50, owner_id="o1")
    crm.event("c03", "form-1", T0 - timedelta(hours=2), type="form_submit")
    config = config_from_mapping(
        {"crm": {"type": "fake"}, "models": ["m.yaml"], "state": "sqlite://"}, base_dir=tmp_path
    )

    def run() -> int:
        sync = Sync(
            config,
            crm,
            store,
            models(),
            scorer=fake_score,
            now=lambda: T0,
            chunk_size=5,
            heartbeat=False,
        )
        s = sync.run(RunOptions())
        assert s.exit_code == 0, s.error
        return s.deals

    assert run() == 0  # baseline; the form is seen, not acted on
    crm.touch("c05", points=90)
    crm.event("c07", "form-2", T0 - timedelta(hours=1), type="form_submit")
    assert run() == 2
    assert run() == 0
    assert sorted(crm.deals) == ["main:c05:c1:deal", "main:c07:e:form-2:deal"]
    assert store.ledger_counts() == {"deal:done": 2, "task:done": 2}
    assert store.get_cursor("default") == {"seq": crm.seq}


def test_a_merge_carries_what_was_done_to_the_survivor(store: StateStore) -> None:
    """A Lead acted on and then converted lives on as its Contact: the Contact must not
    cross again (a second Opportunity and Task for one crossing)."""
    with store.tx() as conn:
        store.put_model_states(
            conn,
            [
                ModelState("lead", "m", 82.0, "hot", armed=False, crossings=1, last_event="e1"),
                ModelState("lead", "n", 10.0, "cold", armed=True, crossings=0, last_event=None),
                ModelState("contact", "n", 55.0, "warm", armed=True, crossings=2, last_event=None),
            ],
        )
        store.merge_contact(conn, "lead", "contact")
    states = store.model_states(["lead", "contact"])
    assert ("lead", "m") not in states and ("lead", "n") not in states
    moved = states[("contact", "m")]
    assert (moved.armed, moved.crossings, moved.last_event) == (False, 1, "e1")
    assert moved.written_score is None  # the Contact's CRM record holds no score yet
    both = states[("contact", "n")]
    assert (both.armed, both.crossings, both.written_score) == (True, 2, 55.0)
