"""Score writes the CRM refuses: said on stderr, stopped when most fail for one reason,
and retried when the record changes or after a back-off, not on every run."""

from __future__ import annotations

from pathlib import Path

from sync_fakes import T0, FakeCRM, fake_score, models

from scheduler import cli_sync
from scheduler.config import config_from_mapping
from scheduler.state import StateStore
from scheduler.sync import RunOptions

WRONG_TYPE = "INVALID_OPTION ls_score: {} was not one of the allowed options: lead, customer"
LOCKED = "UNABLE_TO_LOCK_ROW: unable to obtain exclusive access to this record"


def _crowd(h, n: int, reason: str | None = None, *, every: int = 1) -> list[str]:
    ids = [f"c{i:04d}" for i in range(n)]
    for i, cid in enumerate(ids):
        h.crm.add(cid, points=10 + i % 50, owner_id="o1")
        if reason is not None and i % every == 0:
            h.crm.reject[cid] = reason.format(10 + i % 50)
    return ids


# ------------------------------------------------------------------- stopping


def test_most_writes_refused_for_a_set_up_reason_stop_the_run_with_exit_2(h) -> None:
    _crowd(h, 400, WRONG_TYPE)
    s = h.run()
    assert s.exit_code == 2 and s.status == "config", s
    assert "INVALID_OPTION ls_score" in (s.error or "") and "100 of 100" in (s.error or "")
    assert "max_rejected_share" in (s.error or "")
    # judged on a first write of 100: the other 300 records cost no call
    assert [len(batch) for batch in h.crm.score_writes] == [100]
    assert not s.cursor_committed


def test_most_writes_refused_for_another_reason_stop_the_run_with_exit_3(h) -> None:
    _crowd(h, 300, LOCKED)
    s = h.run()
    assert s.exit_code == 3 and s.status == "stopped" and "UNABLE_TO_LOCK_ROW" in (s.error or "")


def test_refusals_spread_over_reasons_or_under_the_share_do_not_stop(h) -> None:
    _crowd(h, 300, WRONG_TYPE, every=3)  # a third refused
    s = h.run()
    assert s.exit_code == 1 and s.rejected == 100 and s.scores_written == 200


def test_fewer_than_100_attempts_are_not_judged(h) -> None:
    _crowd(h, 60, WRONG_TYPE)
    s = h.run()
    assert s.exit_code == 1 and s.rejected == 60


def test_the_share_is_configurable(h) -> None:
    _crowd(h, 300, WRONG_TYPE, every=3)
    h.writeback = {"max_rejected_share": 0.25}
    assert h.run().exit_code == 2


# -------------------------------------------------------------------- back-off


def test_a_refused_record_waits_for_its_back_off_or_a_change(h) -> None:
    _crowd(h, 5)
    h.crm.reject["c0001"] = "FIELD_CUSTOM_VALIDATION_EXCEPTION: Phone is required"
    s = h.run()
    assert s.rejected == 1
    (row,) = h.store.rejected()
    assert row["next_attempt_at"] == T0.timestamp() + 3600
    writes = len(h.crm.score_writes)
    h.clock.advance(minutes=30)
    s = h.run()
    assert s.exit_code == 0 and s.rejected == 0 and s.rejected_waiting == 1
    assert len(h.crm.score_writes) == writes  # no call for it
    h.clock.advance(minutes=31)  # past the hour: tried again, refused again
    s = h.run()
    assert s.rejected == 1
    (row,) = h.store.rejected()
    assert row["attempts"] == 2 and row["next_attempt_at"] == (T0.timestamp() + 3660) + 7200
    h.crm.touch("c0001", phone="555")  # changed in the CRM: tried at once
    del h.crm.reject["c0001"]
    s = h.run()
    assert s.scores_written == 1 and h.store.rejected() == []


def test_the_back_off_doubles_up_to_7_days(h) -> None:
    _crowd(h, 1)
    h.crm.reject["c0000"] = "FIELD_CUSTOM_VALIDATION_EXCEPTION: no"
    waits = []
    for _ in range(10):
        h.run()
        (row,) = h.store.rejected()
        wait = row["next_attempt_at"] - h.clock().timestamp()
        waits.append(wait / 3600)
        h.clock.advance(seconds=wait)
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 168, 168]


def test_a_changed_write_target_retries_at_once(h) -> None:
    _crowd(h, 3)
    h.crm.reject["c0000"] = "INVALID_FIELD_FOR_INSERT_UPDATE: Unable to create/update fields"
    h.run()
    del h.crm.reject["c0000"]
    h.writeback = {"band_field": "ls_band"}  # the user fixed the set-up
    s = h.run()
    assert s.rejected_waiting == 0 and h.store.rejected() == []


# ------------------------------------------------------------------- printing


def _cli(tmp_path: Path, crm: FakeCRM, capsys, **writeback: object) -> tuple[int, str, str]:
    config = config_from_mapping(
        {"crm": {"type": "fake"}, "models": ["unused.yaml"],
         "state": f"sqlite:///{tmp_path / 'state.db'}", "writeback": writeback},
        base_dir=tmp_path,
    )  # fmt: skip
    store = StateStore(config.state_url())
    store.migrate()
    try:
        code, _ = cli_sync.execute_run(
            config, RunOptions(), connector=crm, store=store, models=models(),
            scorer=fake_score, now=lambda: T0,
        )  # fmt: skip
    finally:
        store.close()
    out, err = capsys.readouterr()
    return code, out, err


def test_a_run_prints_its_rejected_records_on_stderr(tmp_path: Path, capsys) -> None:
    crm = FakeCRM()
    for i in range(8):
        crm.add(f"c{i}", points=10 + i, owner_id="o1")
    for i in range(5):
        crm.reject[f"c{i}"] = WRONG_TYPE.format(10 + i)
    crm.reject["c7"] = LOCKED
    code, _, err = _cli(tmp_path, crm, capsys)
    assert code == 1
    lines = err.splitlines()
    assert "6 record(s)" in lines[0] and "leadsync status" in lines[0]
    assert any("5 ×" in line and "INVALID_OPTION ls_score" in line for line in lines[1:])
    assert any("1 ×" in line and "UNABLE_TO_LOCK_ROW" in line for line in lines[1:])
    assert len(lines) <= 4


def test_a_stopped_run_says_why_on_one_line(tmp_path: Path, capsys) -> None:
    crm = FakeCRM()
    for i in range(150):
        crm.add(f"c{i:03d}", points=10, owner_id="o1")
        crm.reject[f"c{i:03d}"] = WRONG_TYPE.format(10)
    code, out, err = _cli(tmp_path, crm, capsys)
    assert code == 2 and out == ""
    last = err.splitlines()[-1]
    assert last.startswith("error: ") and "INVALID_OPTION ls_score" in last


def test_a_record_read_again_unchanged_waits_out_its_back_off(h) -> None:
    """A stopped run commits no cursor, so the next one reads the same records again;
    so does --full. Read again without a change in the CRM, a refused record is not
    retried before its back-off ends (that would spend the quota on every run)."""
    _crowd(h, 5)
    h.crm.reject["c0001"] = "FIELD_CUSTOM_VALIDATION_EXCEPTION: Phone is required"
    assert h.run().rejected == 1
    writes = len(h.crm.score_writes)
    h.clock.advance(minutes=30)
    s = h.run(full=True)  # every record read again, none changed
    assert s.contacts_read == 5
    assert s.rejected == 0 and s.rejected_waiting == 1
    assert len(h.crm.score_writes) == writes
