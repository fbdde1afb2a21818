"""The behaviours every leadsync connector must show, as pytest tests.

Use it by subclassing :class:`ConnectorSuite` in a test module and giving it a
``harness`` fixture (see :class:`connectors.testing.Harness`)::

    import pytest
    from connectors.testing import ConnectorSuite

    class TestMyCRM(ConnectorSuite):
        @pytest.fixture
        def harness(self):
            h = MyCRMHarness()
            yield h
            h.close()

Each behaviour is one test, named for what a user relies on, so that a failure says
which promise the connector breaks. Write tests are skipped for read-only
connectors; optional capabilities are tested only when the connector has them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta

import pytest

from connectors.base import (
    ActionResult,
    Connector,
    ConnectorConfigError,
    ConnectorError,
    DealSpec,
    FieldSpec,
    ReadBatch,
    ScoreUpdate,
    TaskSpec,
)
from connectors.testing import seam
from connectors.testing.harness import Fault, Harness, ObjectKind

__all__ = ["SHARED_STAMP", "ConnectorSuite"]

#: how many contacts the suite gives one modification stamp
SHARED_STAMP = 200
#: how far back events are asked for: long enough for anything the suite seeds
EVENTS_DAYS = 30


def read(connector: Connector, state: object, until: datetime) -> list[ReadBatch]:
    """A complete read from ``state`` (``None``: everything) up to ``until``."""
    return list(
        connector.read_changes(
            state,  # type: ignore[arg-type]
            until=until,
            events_since=until - timedelta(days=EVENTS_DAYS),
        )
    )


def contact_ids(batches: Sequence[ReadBatch]) -> list[str]:
    return [c.id for b in batches for c in b.contacts]


def final_state(batches: Sequence[ReadBatch]) -> object:
    """The state of a complete read, checking that only its last batch carries one."""
    assert batches, "a complete read yields at least one batch (the one with the state)"
    assert all(seam.state_of(b) is None for b in batches[:-1]), (
        "only the last batch of a read may carry a state: an earlier one would let a "
        "host store a resume point past contacts it has not applied yet"
    )
    state = seam.state_of(batches[-1])
    assert state is not None, "a complete read ends with a state"
    return state


def assert_no_twice(ids: Sequence[str]) -> None:
    twice = sorted({i for i in ids if ids.count(i) > 1})
    assert not twice, f"delivered more than once in one read: {twice[:5]}"


class ConnectorSuite:
    """Subclass as ``Test<YourCRM>`` and provide a ``harness`` fixture."""

    @pytest.fixture
    def harness(self) -> Harness:
        """Replaced by the subclass's own ``harness`` fixture."""
        pytest.fail(
            f"{type(self).__name__}: define a `harness` fixture that returns your "
            "connectors.testing.Harness (see docs/connectors.md, 'Write your own connector')"
        )

    @pytest.fixture
    def connector(self, harness: Harness) -> Iterator[Connector]:
        connector = harness.connector()
        try:
            yield connector
        finally:
            connector.close()

    def _fresh(self, harness: Harness) -> Connector:
        """A connector standing for a new process: nothing remembered in memory."""
        return harness.connector()

    def _baseline(self, harness: Harness, connector: Connector) -> dict[str, object]:
        """A full read of what the backend holds, its state as the host stores it."""
        return seam.state_to_json(final_state(read(connector, None, harness.now())))

    def _seed_later(self, harness: Harness, count: int) -> set[str]:
        ids = set(harness.seed_contacts(count, at=harness.now() + timedelta(hours=1)))
        assert len(ids) == count, f"the harness seeded {len(ids)} distinct contacts, not {count}"
        harness.settle()
        return ids

    # ------------------------------------------------------------------ reads

    def test_incremental_read_loses_no_contact_sharing_one_stamp(
        self, harness: Harness, connector: Connector
    ) -> None:
        stored = self._baseline(harness, connector)
        seeded = self._seed_later(harness, SHARED_STAMP)
        batches = read(connector, seam.load_state(connector, stored), harness.now())
        ids = contact_ids(batches)
        assert_no_twice(ids)
        missed = seeded - set(ids)
        assert not missed, f"{len(missed)} of {SHARED_STAMP} contacts changed at one instant missed"
        final_state(batches)

    def test_a_read_stopped_early_loses_nothing_when_resumed(self, harness: Harness) -> None:
        first = self._fresh(harness)
        stored = self._baseline(harness, first)
        seeded = self._seed_later(harness, SHARED_STAMP)
        stopped = first.read_changes(
            seam.load_state(first, stored),
            until=harness.now(),
            events_since=harness.now() - timedelta(days=EVENTS_DAYS),
        )
        next(stopped)  # the host crashed after applying one batch: it keeps `stored`
        close = getattr(stopped, "close", None)
        if callable(close):
            close()
        first.close()
        resumed = self._fresh(harness)
        try:
            ids = contact_ids(read(resumed, seam.load_state(resumed, stored), harness.now()))
        finally:
            resumed.close()
        missed = seeded - set(ids)
        assert not missed, f"{len(missed)} contacts lost by the read that was stopped and resumed"

    def test_state_round_trips_through_json(self, harness: Harness, connector: Connector) -> None:
        stored = self._baseline(harness, connector)
        other = self._fresh(harness)
        try:
            again = seam.state_to_json(seam.load_state(other, stored))
            assert again == stored, "load_state(to_json(state)) must give the same state back"
            assert seam.load_state(other, None) is None
        finally:
            other.close()

    def test_a_read_from_a_stored_state_delivers_only_what_changed(self, harness: Harness) -> None:
        first = self._fresh(harness)
        stored = self._baseline(harness, first)
        first.close()
        harness.advance(60)
        second = self._fresh(harness)
        try:
            quiet = read(second, seam.load_state(second, stored), harness.now())
            assert contact_ids(quiet) == [], "nothing changed, yet contacts were delivered"
            if quiet:  # a read that yields nothing leaves the stored state as it is
                stored = seam.state_to_json(final_state(quiet))
            seeded = self._seed_later(harness, 5)
            ids = contact_ids(read(second, seam.load_state(second, stored), harness.now()))
            assert seeded <= set(ids), "a change after the stored state was missed"
        finally:
            second.close()

    def test_read_contacts_by_id(self, harness: Harness, connector: Connector) -> None:
        if not seam.reads_contacts(connector):
            pytest.skip("optional capability: the connector cannot read contacts by id")
        wanted = sorted(self._seed_later(harness, 3))
        batch = connector.read_contacts(  # type: ignore[attr-defined]
            wanted, events_since=harness.now() - timedelta(days=EVENTS_DAYS)
        )
        assert sorted(c.id for c in batch.contacts) == wanted
        assert seam.state_of(batch) is None, "a read by id is no resume point"

    def test_unreadable_input_is_reported_and_the_rest_delivered(
        self, harness: Harness, connector: Connector
    ) -> None:
        if not seam.reports_rejected(connector):
            pytest.skip("optional capability: the connector does not report skipped input")
        stored = self._baseline(harness, connector)
        assert list(connector.rejected) == [], "nothing was skipped yet"  # type: ignore[attr-defined]
        harness.advance(3600)
        try:
            harness.seed_unreadable()
        except NotImplementedError:
            pytest.skip("the harness's backend cannot hold an unreadable record")
        seeded = self._seed_later(harness, 3)
        ids = contact_ids(read(connector, seam.load_state(connector, stored), harness.now()))
        assert seeded <= set(ids), "an unreadable record stopped the others"
        rejected = list(connector.rejected)  # type: ignore[attr-defined]
        assert len(rejected) == 1 and str(rejected[0]).strip(), rejected

    # ------------------------------------------------------------------ writes

    def _writer(self, harness: Harness) -> None:
        if harness.read_only:
            pytest.skip("read-only connector: writes are not part of its contract")

    def _ready(self, harness: Harness, connector: Connector) -> None:
        check = connector.ensure_fields([FieldSpec(harness.score_field)])
        assert not check.missing, f"set the harness's backend up with {check.missing}"

    def test_rejected_score_writes_are_reported_per_record(
        self, harness: Harness, connector: Connector
    ) -> None:
        self._writer(harness)
        self._ready(harness, connector)
        good = sorted(self._seed_later(harness, 3))
        unknown = harness.unknown_contact_id()
        updates = [ScoreUpdate(cid, {harness.score_field: 50}) for cid in good]
        updates.insert(1, ScoreUpdate(unknown, {harness.score_field: 50}))
        result = connector.write_scores(updates)
        assert sorted(result.succeeded) == good, "a refused record must not stop the others"
        assert [f.id for f in result.failed] == [unknown], "each refusal is reported by id"
        assert result.failed[0].reason.strip(), "a refusal says why"

    def test_the_state_a_read_yielded_is_unchanged_by_writes(
        self, harness: Harness, connector: Connector
    ) -> None:
        self._writer(harness)
        if not seam.has_checkpoint(connector):
            pytest.skip("the connector has no checkpoint(): its writes change the read's state")
        self._ready(harness, connector)
        seeded = sorted(self._seed_later(harness, 10))
        yielded = final_state(read(connector, None, harness.now()))
        before = seam.state_to_json(yielded)
        connector.write_scores([ScoreUpdate(cid, {harness.score_field: 42}) for cid in seeded])
        assert seam.state_to_json(yielded) == before, "write_scores changed a state already yielded"
        after = seam.checkpoint(connector, yielded)
        assert after is not None and after is not yielded, "checkpoint() returns a new value"

    def test_checkpoint_after_writes_loses_no_later_change(self, harness: Harness) -> None:
        self._writer(harness)
        first = self._fresh(harness)
        self._ready(harness, first)
        written = sorted(self._seed_later(harness, 10))
        yielded = final_state(read(first, None, harness.now()))
        result = first.write_scores([ScoreUpdate(c, {harness.score_field: 7}) for c in written])
        assert sorted(result.succeeded) == written
        stored = seam.state_to_json(seam.checkpoint(first, yielded))
        first.close()
        later = self._seed_later(harness, 5)
        second = self._fresh(harness)
        try:
            ids = contact_ids(read(second, seam.load_state(second, stored), harness.now()))
        finally:
            second.close()
        assert later <= set(ids), "a change after the writes was missed by the next read"

    def test_own_score_writes_are_not_read_back_as_changes(self, harness: Harness) -> None:
        self._writer(harness)
        if not harness.skips_own_writes:
            pytest.skip("optional capability: the harness does not declare skips_own_writes")
        first = self._fresh(harness)
        self._ready(harness, first)
        written = sorted(self._seed_later(harness, 10))
        yielded = final_state(read(first, None, harness.now()))
        first.write_scores([ScoreUpdate(c, {harness.score_field: 9}) for c in written])
        stored = seam.state_to_json(seam.checkpoint(first, yielded))
        first.close()
        harness.advance(60)
        second = self._fresh(harness)
        try:
            ids = contact_ids(read(second, seam.load_state(second, stored), harness.now()))
        finally:
            second.close()
        echoed = set(written) & set(ids)
        assert not echoed, f"own score writes read back as changes: {sorted(echoed)[:5]}"

    def _create(
        self, connector: Connector, harness: Harness, kind: ObjectKind, key: str, contact: str
    ) -> ActionResult:
        if kind == "deal":
            return connector.create_deal(
                DealSpec(
                    key=key,
                    contact_id=contact,
                    name="Conformance deal",
                    owner_id=None,
                    stage=harness.deal_stage,
                    crm_options=harness.deal_options,
                    close_date=date(2030, 1, 31),
                )
            )
        return connector.create_task(
            TaskSpec(
                key=key,
                contact_id=contact,
                owner_id=None,
                subject="Conformance task",
                body="Created by the connector conformance suite",
                due_at=harness.now() + timedelta(days=1),
            )
        )

    @pytest.mark.parametrize("kind", ["deal", "task"])
    def test_keyed_create_is_created_once(
        self, harness: Harness, connector: Connector, kind: ObjectKind
    ) -> None:
        self._writer(harness)
        contact = harness.action_contact()
        key = f"conformance-{kind}-plain"
        first = self._create(connector, harness, kind, key, contact)
        assert first.created and first.id, "a first create reports created=True with an id"
        second = self._create(connector, harness, kind, key, contact)
        assert (second.created, second.id) == (False, first.id), "same key, same record"
        assert list(harness.keyed(kind, key)) == [first.id]

    @pytest.mark.parametrize("fault", list(Fault), ids=[f.value for f in Fault])
    @pytest.mark.parametrize("kind", ["deal", "task"])
    def test_keyed_create_never_duplicates_under_a_fault(
        self, harness: Harness, connector: Connector, kind: ObjectKind, fault: Fault
    ) -> None:
        self._writer(harness)
        contact = harness.action_contact()
        key = f"conformance-{kind}-{fault.value}"
        harness.inject(fault)
        try:
            first: ActionResult | None = self._create(connector, harness, kind, key, contact)
        except ConnectorError:
            first = None  # allowed: a clean error; the host retries the action later
        held = list(harness.keyed(kind, key))
        assert len(held) <= 1, f"{fault.value}: {len(held)} records under one key"
        if first is not None:
            assert held == [first.id], f"{fault.value}: the id returned is not the one held"
        retry = self._create(connector, harness, kind, key, contact)
        assert list(harness.keyed(kind, key)) == [retry.id], f"{fault.value}: duplicated"
        if held:
            assert not retry.created, "the retry of an applied create reports created=False"
            assert retry.id == held[0]

    def test_read_only_connector_refuses_every_write(
        self, harness: Harness, connector: Connector
    ) -> None:
        if not harness.read_only:
            pytest.skip("the connector writes")
        today = date(2030, 1, 1)
        due = harness.now()
        attempts = [
            lambda: connector.write_scores([ScoreUpdate("x", {harness.score_field: 1})]),
            lambda: connector.create_deal(DealSpec("k", "x", "n", None, harness.deal_stage, today)),
            lambda: connector.create_task(TaskSpec("k", "x", None, "s", "b", due)),
            lambda: connector.set_owner("x", "o"),
        ]
        for attempt in attempts:
            with pytest.raises(ConnectorConfigError):
                attempt()  # type: ignore[no-untyped-call]
