"""The host side of the connector seam: the state is stored after the writes (from
``checkpoint()``), the crash hook is injected, ledger entries carry typed specs, exit
codes and ledger vocabularies are defined once, the redactor is the host's."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sync_fakes import SeqState

from connectors.base import ActionResult, DealSpec, Redactor, TaskSpec
from scheduler.cli_common import ExitCode
from scheduler.config import parse_config
from scheduler.state import LedgerEntry, LedgerKind, LedgerStatus
from scheduler.sync import RunOptions
from scheduler.writeback import (
    deal_from_ledger,
    deal_to_ledger,
    task_from_ledger,
    task_to_ledger,
)


def test_the_state_stored_is_the_checkpoint_after_the_writes(h) -> None:
    h.crm.add("a", points=10, owner_id="o1")
    stored: list[str] = []

    def checkpoint() -> SeqState | None:
        # the writes of the run are done when the sync asks
        stored.append(f"after {len(h.crm.score_writes)} write batch(es)")
        return SeqState(1000)

    h.crm.checkpoint = checkpoint  # type: ignore[method-assign]
    s = h.run()
    assert s.cursor_committed and stored == ["after 1 write batch(es)"]
    assert h.store.get_cursor("default") == {"seq": 1000}
    # and the next run starts from it
    assert h.crm.load_state(h.store.get_cursor("default")) == SeqState(1000)


def test_a_dry_run_stores_no_state(h) -> None:
    h.crm.add("a", points=10, owner_id="o1")
    h.run(dry_run=True)
    assert h.store.get_cursor("default") is None


def test_the_crash_hook_is_called_at_each_point_in_order(h) -> None:
    h.crm.add("hot", points=10, owner_id="o1")
    h.run()
    h.crm.add("hot", points=90, owner_id="o1")  # crosses on the next run
    seen: list[str] = []
    h.sync(crash=seen.append).run(RunOptions())
    points = list(dict.fromkeys(seen))
    assert points == [
        "after_read_batch",
        "after_intents",
        "after_crm_write",
        "after_ledger",
        "before_score_write",
        "after_score_write",
        "before_cursor",
    ]


class _Killed(BaseException):
    """The process dies here: nothing after this point runs."""


def test_an_action_is_a_first_attempt_until_a_call_may_have_carried_it(h) -> None:
    """The connector may skip its keyed read only for an entry the ledger proves was
    never sent; after a death past the call, the next run's spec says it may exist."""
    h.crm.add("hot", points=10, owner_id="o1")
    h.run()
    h.crm.add("hot", points=90, owner_id="o1")  # crosses on the next run
    seen: list[tuple[str, bool]] = []
    create_deal = h.crm.create_deal

    def recording(spec: DealSpec) -> ActionResult:
        seen.append((spec.key, spec.first_attempt))
        return create_deal(spec)

    h.crm.create_deal = recording  # type: ignore[method-assign]

    def die(point: str) -> None:
        if point == "after_crm_write":
            raise _Killed(point)

    with pytest.raises(_Killed):
        h.sync(crash=die).run(RunOptions())
    assert [first for _, first in seen] == [True]
    assert h.run().exit_code == 0
    assert seen[1:] == [(seen[0][0], False)]  # resumed: looked for before creating
    assert len(h.crm.deals_for("hot")) == 1


def test_the_contacts_acted_on_get_their_score_writes_after_the_actions(h) -> None:
    """A HubSpot deal moves its contact's modification stamp; a score write after it
    answers with the moved stamp, which spares a read. So even when the writes of a
    long run go out before its act step, those of the contacts acted on wait for it."""
    for i in range(40):
        h.crm.add(f"c{i:02}", points=10, owner_id="o1")
    h.run()
    hot = {f"c{i:02}" for i in range(0, 40, 3)}
    for i in range(40):  # every score moves; every third contact crosses
        h.crm.add(f"c{i:02}", points=90 if f"c{i:02}" in hot else 20, owner_id="o1")
    order: list[tuple[str, str]] = []
    create_deal, write_scores = h.crm.create_deal, h.crm.write_scores

    def deal(spec: DealSpec) -> ActionResult:
        order.append(("deal", spec.contact_id))
        return create_deal(spec)

    def write(updates: Any) -> Any:
        order.extend(("write", u.contact_id) for u in updates)
        return write_scores(updates)

    h.crm.create_deal = deal  # type: ignore[method-assign]
    h.crm.write_scores = write  # type: ignore[method-assign]
    h.writeback = {"write_batch": 20}  # two batches go out before the act step
    s = h.run()
    assert s.crossings == len(hot) and s.scores_written == 40
    first_deal = order.index(next(o for o in order if o[0] == "deal"))
    assert any(kind == "write" for kind, _ in order[:first_deal])  # batches went out early
    for _, cid in order[:first_deal]:
        assert cid not in hot, cid
    assert {cid for kind, cid in order[first_deal:] if kind == "write"} >= hot


def test_ledger_specs_are_typed_specs_serialised_as_earlier_releases_stored_them() -> None:
    deal = DealSpec(
        key="m:c1:c1:deal",
        contact_id="c1",
        name="Ann - m",
        owner_id="o1",
        stage="appointmentscheduled",
        close_date=date(2026, 7, 30),
        amount=None,
        contact_kind="lead",
        crm_options={"lead_status": "Working - Contacted"},
    )
    stored = deal_to_ledger(deal)
    assert stored["lead_status"] == "Working - Contacted" and stored["name"] == "Ann - m"
    entry = LedgerEntry(
        deal.key, "m:c1:c1", 1, "c1", "m", LedgerKind.DEAL, LedgerStatus.INTENT,
        stored, None, None, 0,
    )  # fmt: skip
    assert deal_from_ledger(entry) == deal
    # an entry an earlier release wrote: pipeline and lead_status always present
    old = dict(stored, pipeline=None, close_date=datetime(2026, 7, 30, tzinfo=UTC))
    assert deal_from_ledger(LedgerEntry(**{**_fields(entry), "spec": old})) == deal
    task = TaskSpec(
        key="m:c1:c1:task",
        contact_id="c1",
        owner_id=None,
        subject="Call Ann",
        body="why",
        due_at=datetime(2026, 7, 1, 9, tzinfo=UTC),
        priority="medium",
        type="email",
    )
    entry = LedgerEntry(**{**_fields(entry), "key": task.key, "kind": LedgerKind.TASK})
    assert task_from_ledger(LedgerEntry(**{**_fields(entry), "spec": task_to_ledger(task)})) == task


def _fields(entry: LedgerEntry) -> dict[str, object]:
    return {name: getattr(entry, name) for name in entry.__slots__}  # type: ignore[attr-defined]


def test_ledger_vocabularies_compare_as_the_text_stored(h) -> None:
    assert LedgerStatus.GAVE_UP == "gave_up" and LedgerStatus.PURGED == "purged"
    assert LedgerKind.ALERT == "alert" and f"{LedgerKind.DEAL}" == "deal"
    h.crm.add("hot", points=10, owner_id="o1")
    h.run()
    h.crm.add("hot", points=90, owner_id="o1")
    h.run()
    kinds = {(e.kind, e.status) for e in h.store.ledger_for("hot")}
    assert kinds == {("deal", "done"), ("task", "done")}
    assert all(isinstance(e.kind, LedgerKind) for e in h.store.ledger_for("hot"))


def test_exit_codes_are_defined_once_with_the_values_scripts_rely_on() -> None:
    assert [int(c) for c in (ExitCode.OK, ExitCode.REJECTED, ExitCode.USAGE)] == [0, 1, 2]
    assert (ExitCode.STOPPED, ExitCode.LOCKED) == (3, 4)
    assert ExitCode.FAILED is ExitCode.REJECTED and ExitCode.CONFIG is ExitCode.USAGE
    assert ExitCode.PARTIAL is ExitCode.STOPPED


def test_the_config_hands_its_secrets_to_the_host_redactor(tmp_path) -> None:
    (tmp_path / "token.txt").write_text("file-secret-123456\n")
    cfg = parse_config(
        "crm: {type: hubspot, hubspot: {access_token: '${TOKEN}', base_url: 'https://api.hubapi.com'}}\n"
        "models: m.yaml\n"
        "writeback: {on_cross: {deal: {name: '${file:token.txt}'}}}\n",
        base_dir=tmp_path,
        env={"TOKEN": "pat-env-secret-9876"},
    )
    redactor = Redactor(cfg.secrets())
    text = redactor("token pat-env-secret-9876 and file-secret-123456")
    assert "pat-env-secret" not in text and "file-secret" not in text
