"""The inbox and its drainer: dedupe, grouping, retry with back-off, unknown e-mails,
leases, purge; on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from serve_helpers import T0, Clock

from scheduler.serve.inbox import Inbox, InboxItem
from scheduler.serve.intake import Incoming
from scheduler.serve.metrics import Metrics
from scheduler.serve.settings import WorkerSettings
from scheduler.serve.worker import Drainer, Processed, Processor, RecordingProcessor

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_reason() -> str | None:
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:
        return f"no PostgreSQL at {PG_URL}: {type(exc).__name__}"
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def inbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Inbox, Clock]]:
    clock = Clock()
    if request.param == "sqlite":
        box = Inbox(f"sqlite:///{tmp_path / 'state.db'}", now=clock)
        box.create()
        box.create()  # idempotent
        yield box, clock
        box.close()
        return
    reason = _pg_reason()
    if reason:
        pytest.skip(reason)
    schema = f"ls_serve_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    box = Inbox(PG_URL, now=clock, schema=schema)
    box.create()
    box.create()
    try:
        yield box, clock
    finally:
        box.close()
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def _in(key: str, contact: str | None, *, seconds: int = 0, email: str | None = None) -> Incoming:
    return Incoming(
        key=key,
        source="events" if email else "hubspot",
        kind="event" if email else "changed",
        contact_id=contact,
        email=email,
        occurred_at=T0 + timedelta(seconds=seconds),
        payload={"n": key},
    )


class Failing:
    def __init__(self, times: int) -> None:
        self.times = times
        self.calls: list[list[str]] = []

    def process(self, items: Sequence[InboxItem]) -> Processed | None:
        self.calls.append([i.key for i in items])
        if len(self.calls) <= self.times:
            raise RuntimeError("CRM down")
        return None


def _drainer(box: Inbox, clock: Clock, processor: Processor, **kw: object) -> Drainer:
    settings = WorkerSettings(**kw)  # type: ignore[arg-type]
    return Drainer(box, processor, now=clock, sleep=lambda s: None, settings=settings)


def test_processor_protocol_is_what_the_default_satisfies() -> None:
    assert isinstance(RecordingProcessor(), Processor)


def test_duplicates_in_and_across_requests_insert_once(inbox: tuple[Inbox, Clock]) -> None:
    box, _ = inbox
    assert box.add([_in("a", "1"), _in("a", "1"), _in("b", "2")]) == (2, 1)
    assert box.add([_in("b", "2"), _in("c", "3")]) == (1, 1)
    assert box.counts() == {"pending": 3}


def test_a_batch_groups_the_contacts_that_arrived_together(inbox: tuple[Inbox, Clock]) -> None:
    box, _ = inbox
    box.add([_in("a1", "A", seconds=5), _in("b1", "B"), _in("c1", "C")])
    box.add([_in("a2", "A", seconds=1)])  # later, for the same contact
    claimed = box.claim(2)
    assert [i.key for i in claimed] == ["b1", "a2", "a1"]  # A's items together, by time
    assert box.claim(10)[0].key == "c1"
    assert box.claim(10) == []  # the rest is leased


def test_a_claimed_batch_comes_back_after_its_lease(inbox: tuple[Inbox, Clock]) -> None:
    box, clock = inbox
    box.add([_in("a", "1")])
    assert len(box.claim(10)) == 1  # ... and its worker died
    clock.advance(minutes=4)
    assert box.claim(10) == []
    clock.advance(minutes=2)
    assert [i.key for i in box.claim(10)] == ["a"]


def test_a_failed_batch_is_retried_with_back_off_then_kept_as_failed(
    inbox: tuple[Inbox, Clock],
) -> None:
    box, clock = inbox
    box.add([_in("a", "1"), _in("b", "2")])
    metrics = Metrics(depth=box.depth)
    failing = Failing(times=2)
    drainer = _drainer(box, clock, failing)
    drainer.metrics = metrics
    assert drainer.run_once() == 2  # fails: back off 1 s
    assert drainer.run_once() == 0
    clock.advance(seconds=1)
    assert drainer.run_once() == 2  # fails again: back off 2 s
    clock.advance(seconds=1)
    assert drainer.run_once() == 0
    clock.advance(seconds=1)
    assert drainer.run_once() == 2  # succeeds
    assert box.counts() == {"done": 2}
    assert failing.calls == [["a", "b"]] * 3
    assert "leadsync_process_failures_total 2.0" in metrics.render().decode()

    box.add([_in("c", "3")])
    hopeless = _drainer(box, clock, Failing(times=99), max_attempts=3)
    for _ in range(3):
        hopeless.run_once()
        clock.advance(minutes=20)
    assert box.status_of("c") == "failed"
    assert hopeless.run_once() == 0


class Matching:
    """Knows the contacts of some e-mails only."""

    def __init__(self, known: set[str]) -> None:
        self.known = known

    def process(self, items: Sequence[InboxItem]) -> Processed | None:
        return Processed(
            unmatched=frozenset(
                i.id for i in items if i.contact_id is None and i.email not in self.known
            )
        )


def test_events_for_unknown_emails_wait_then_match_or_expire(inbox: tuple[Inbox, Clock]) -> None:
    box, clock = inbox
    box.add(
        [_in("e1", None, email="new@example.com"), _in("e2", None, email="later@example.com")],
        keep_unknown=timedelta(days=2),
    )
    processor = Matching(known=set())
    drainer = _drainer(box, clock, processor)
    assert drainer.run_once() == 2
    assert box.counts() == {"waiting": 2}
    assert box.depth() == 0  # waiting is not backlog
    assert [i.key for i in box.waiting_events(["NEW@example.com"])] == ["e1"]
    clock.advance(hours=1)
    processor.known.add("new@example.com")  # a run brought the contact in
    assert drainer.run_once() == 2
    assert box.status_of("e1") == "done" and box.status_of("e2") == "waiting"
    clock.advance(days=2, hours=1)
    drainer.run_once()
    assert box.status_of("e2") == "expired"


def test_finished_rows_are_purged_after_keep_done(inbox: tuple[Inbox, Clock]) -> None:
    box, clock = inbox
    box.add([_in("a", "1")])
    drainer = _drainer(box, clock, RecordingProcessor(), keep_done="3d")
    drainer.run_once()
    clock.advance(days=2)
    assert box.add([_in("a", "1")]) == (0, 1)  # still deduplicated two days on
    clock.advance(days=2)
    drainer.run_once()
    assert box.counts() == {}


def test_time_to_score_is_measured_from_receipt(inbox: tuple[Inbox, Clock]) -> None:
    box, clock = inbox
    box.add([_in("a", "1")])
    metrics = Metrics(depth=box.depth)
    drainer = _drainer(box, clock, RecordingProcessor())
    drainer.metrics = metrics
    clock.advance(seconds=1.5)
    drainer.run_once()
    text = metrics.render().decode()
    assert 'leadsync_event_to_score_seconds_bucket{le="1.0"} 0.0' in text
    assert 'leadsync_event_to_score_seconds_bucket{le="2.0"} 1.0' in text


def test_group_commit_counts_each_key_once_across_requests(inbox: tuple[Inbox, Clock]) -> None:
    box, _ = inbox
    box.add([_in("a", "1")])
    got = box.add_groups([[_in("a", "1"), _in("b", "2")], [_in("b", "2"), _in("c", "3")], []])
    assert got == [(1, 1), (1, 1), (0, 0)]
    assert box.counts() == {"pending": 3}


class ScoresFirst:
    """A processor whose score write is acknowledged at ``scored`` and whose actions
    (deals, tasks) then take ``actions`` more seconds."""

    def __init__(self, clock: Clock, *, scored: float, actions: float) -> None:
        self.clock, self.scored, self.actions = clock, scored, actions

    def process(self, items: Sequence[InboxItem]) -> Processed | None:
        self.clock.advance(seconds=self.scored)
        at = self.clock()
        self.clock.advance(seconds=self.actions)
        return Processed(scored_at=at)


def test_time_to_score_ends_when_the_score_write_is_acknowledged(
    inbox: tuple[Inbox, Clock],
) -> None:
    box, clock = inbox
    box.add([_in("a", "1")])
    metrics = Metrics(depth=box.depth)
    drainer = _drainer(box, clock, ScoresFirst(clock, scored=0.5, actions=3.0))
    drainer.metrics = metrics
    drainer.run_once()
    text = metrics.render().decode()
    assert 'leadsync_event_to_score_seconds_bucket{le="1.0"} 1.0' in text
    with box.engine.connect() as conn:
        received, scored, done = conn.execute(
            sa.select(box.t.c.received_at, box.t.c.scored_at, box.t.c.done_at)
        ).one()
    assert scored - received == pytest.approx(0.5)  # the score, as a rep sees it
    assert done - received == pytest.approx(3.5)  # the whole item, actions included


def test_an_inbox_made_before_scored_at_existed_gains_the_column(tmp_path: Path) -> None:
    clock = Clock()
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Inbox(url, now=clock)
    old.create()
    with old.engine.begin() as conn:  # the layout of an earlier release
        conn.execute(sa.text(f"ALTER TABLE {old.t.name} DROP COLUMN scored_at"))
    old.close()
    box = Inbox(url, now=clock)
    box.create()
    box.add([_in("a", "1")])
    box.done([i.id for i in box.claim(10)], scored_at=clock())
    assert box.counts() == {"done": 1}
    box.close()


def test_batch_starts_are_spaced_by_min_interval_so_items_join_the_next_batch(
    tmp_path: Path,
) -> None:
    """Each batch costs the same few API calls whatever its size: spacing batch starts
    lets a steady stream form larger batches instead of pausing inside one on the
    CRM's rate limit. A batch that took longer than the interval is not followed by a
    pause."""
    import threading

    clock = Clock()
    box = Inbox(f"sqlite:///{tmp_path / 'state.db'}", now=clock)
    box.create()
    stop = threading.Event()
    pauses: list[float] = []
    sizes: list[int] = []

    class Slow:
        def process(self, items: Sequence[InboxItem]) -> Processed | None:
            sizes.append(len(items))
            clock.advance(seconds=0.3 if len(sizes) == 1 else 1.5)
            return None

    def sleep(seconds: float) -> None:
        pauses.append(round(seconds, 3))
        clock.advance(seconds=seconds)
        if len(sizes) >= 2:
            stop.set()

    box.add([_in("a", "1")])
    box.add([_in("b", "2")])
    drainer = Drainer(
        box, Slow(), now=clock, sleep=sleep,
        settings=WorkerSettings(batch_size=1, min_interval="1s"),  # type: ignore[arg-type]
    )  # fmt: skip
    drainer.run(stop)
    assert sizes == [1, 1]
    # 1 s from the first batch's start; none after the slow second; then idle.
    assert pauses == [0.7, 1.0]
    box.close()
