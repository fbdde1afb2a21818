"""The state store's parts for ``leadsync serve``: the compare-and-set that consumes a
crossing without the pipeline lock, e-mail look-ups, and serve's own-write records;
on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from scheduler.state import ModelState, StateStore, StoredContact

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "sqlite":
        s = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
        s.migrate()
        yield s
        s.close()
        return
    engine = sa.create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            schema = f"ls_rt_{uuid.uuid4().hex[:12]}"
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError:
        pytest.skip("PostgreSQL is not reachable")
    s = StateStore(PG_URL, schema=schema)
    s.migrate()
    try:
        yield s
    finally:
        s.close()
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def _state(**kw: object) -> ModelState:
    base = ModelState("c1", "main", None, None, armed=True, crossings=0, last_event=None)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_a_swap_wins_once(store: StateStore) -> None:
    fresh = _state(armed=False, crossings=1)
    with store.tx() as conn:
        assert store.swap_model_state(conn, None, fresh) is True
    with store.tx() as conn:  # a second process saw no row either: it lost
        assert store.swap_model_state(conn, None, fresh) is False
    seen = store.model_states(["c1"])[("c1", "main")]
    rearmed = _state(armed=True, crossings=1)
    with store.tx() as conn:
        assert store.swap_model_state(conn, seen, rearmed) is True
    with store.tx() as conn:  # stale: the row moved since ``seen`` was read
        assert store.swap_model_state(conn, seen, _state(armed=False, crossings=2)) is False
    assert store.model_states(["c1"])[("c1", "main")].armed is True


def test_a_swap_compares_a_null_last_event(store: StateStore) -> None:
    with store.tx() as conn:
        store.put_model_states(conn, [_state(last_event="e:1")])
    with store.tx() as conn:
        assert store.swap_model_state(conn, _state(), _state(last_event="e:2")) is False
        assert store.swap_model_state(conn, _state(last_event="e:1"), _state(last_event="e:2"))


def test_emails_are_found_without_case_and_wildcards_do_not_match(store: StateStore) -> None:
    with store.tx() as conn:
        store.upsert_contacts(
            conn,
            [
                StoredContact(
                    "1", "contact", converted=False, fields={"email": "Ann.Lee@Example.com"}
                ),
                StoredContact(
                    "2", "contact", converted=False, fields={"email": "annxlee@example.com"}
                ),
                StoredContact(
                    "3", "contact", converted=False, fields={"note": "ann.lee@example.com"}
                ),
            ],
        )
    found = store.contacts_for_emails(["ann.lee@example.com", "a%@example.com", "nobody@x.org"])
    assert found == {"ann.lee@example.com": "1"}


def test_serve_writes_are_kept_until_a_run_settles_them(store: StateStore) -> None:
    with store.tx() as conn:
        store.add_serve_writes(conn, {"1": {"score": 61.0}}, at=100.0)
        store.add_serve_writes(conn, {"2": {"score": 20.0}}, at=200.0)
    assert store.serve_writes(["1", "2", "3"]) == {"1": {"score": 61.0}, "2": {"score": 20.0}}
    with store.tx() as conn:
        store.forget_serve_writes(conn, before=150.0)
    assert store.serve_writes(["1", "2"]) == {"2": {"score": 20.0}}
    assert store.has_serve_writes()
