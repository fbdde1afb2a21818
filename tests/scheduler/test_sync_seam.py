"""The host side of the connector seam: the state is stored after the writes (from
``checkpoint()``), the crash hook is injected, ledger entries carry typed specs, exit
codes and ledger vocabularies are defined once, the redactor is the host's."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sync_fakes import SeqState

from connectors.base import DealSpec, Redactor, TaskSpec
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
