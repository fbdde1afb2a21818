"""``leadsync run --dry-run``: what it says it would do, and how it checks the fields."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness, make_config
from sync_fakes import T0, FakeCRM, fake_score, models

from connectors.base import FieldCheck, FieldSpec
from scheduler import cli_sync, sync
from scheduler.state import StateStore
from scheduler.sync import RunOptions


def _cli(
    tmp_path: Path, crm: FakeCRM, capsys: pytest.CaptureFixture[str], *, as_json: bool, **wb: Any
) -> tuple[int, str, str]:
    config = make_config(tmp_path, **wb)
    store = StateStore(config.state_url())
    store.migrate()
    try:
        code, _ = cli_sync.execute_run(
            config,
            RunOptions(dry_run=True, act_on_baseline=True),
            as_json=as_json,
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


def _hot(crm: FakeCRM, n: int) -> None:
    for i in range(n):
        crm.add(f"c{i:03d}", points=80, owner_id="o1")


# ------------------------------------------------------------------ would act


def test_would_act_names_the_deal_the_owner_and_the_task_subject(h: Harness) -> None:
    h.crm.add("a", points=80, owner_id="o1")
    s = h.run(dry_run=True, act_on_baseline=True)
    (act,) = s.would_act
    assert act["deal"] == "Fa La - main"
    assert act["task"] == "Follow up: Fa La scored 80"
    assert act["owner_id"] == "o1" and act["owner"] == "Ann"
    assert act["kind"] == "crossing" and act["band"] == "hot" and act["score"] == 80
    assert not h.crm.deals and not h.crm.tasks and not h.crm.score_writes


def test_would_act_names_the_owner_the_pool_would_assign(h: Harness) -> None:
    h.crm.add("a", points=80)  # no owner: the pool's next rep gets the work
    h.writeback = {"on_cross": {"owners": {"pool": ["bob@example.com"]}}}
    (act,) = h.run(dry_run=True, act_on_baseline=True).would_act
    assert act["owner_id"] == "o2" and act["owner"] == "Bob" and act["assign_owner"] is True


def test_would_act_on_a_lead_names_the_status_change(h: Harness) -> None:
    h.crm.add("l", kind="lead", points=80, owner_id="o1")
    h.writeback = {"on_cross": {"deal": {"lead_status": "Working - Contacted"}}}
    (act,) = h.run(dry_run=True, act_on_baseline=True).would_act
    assert act["lead_status"] == "Working - Contacted" and "deal" not in act


# ------------------------------------------------------------------ text output


def test_text_output_gives_totals_json_lines_and_how_many_more(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crm = FakeCRM()
    _hot(crm, 30)
    code, out, _ = _cli(tmp_path, crm, capsys, as_json=False)
    assert code == 0
    lines = out.splitlines()
    assert "would write 30 score(s):" in lines and "would act 30 action(s):" in lines
    writes = [x for x in lines if x.startswith("  would write ")]
    acts = [x for x in lines if x.startswith("  would act ")]
    assert len(writes) == 20 and len(acts) == 20
    first_write = json.loads(writes[0].removeprefix("  would write "))
    assert first_write == {"contact_id": "c000", "ls_score": 80.0}
    first_act = json.loads(acts[0].removeprefix("  would act "))
    assert first_act["deal"] == "Fc000 Lc000 - main" and first_act["owner"] == "Ann"
    assert lines.count("  ... and 10 more (run --dry-run --json to list them)") == 2


def test_text_output_of_a_short_list_has_no_more_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crm = FakeCRM()
    _hot(crm, 2)
    _, out, _ = _cli(tmp_path, crm, capsys, as_json=False)
    assert "would write 2 score(s):" in out and "more" not in out


# ------------------------------------------------------------------ --json


def test_json_lists_every_write_and_action(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crm = FakeCRM()
    _hot(crm, 60)  # more than the old cut of 50
    code, out, _ = _cli(tmp_path, crm, capsys, as_json=True)
    summary = json.loads(out)
    assert code == 0 and len(summary["would_write"]) == 60 and summary["would_write_omitted"] == 0
    assert len(summary["would_act"]) == 60 and summary["would_act_omitted"] == 0
    assert summary["would_act"][59]["task"] == "Follow up: Fc059 Lc059 scored 80"


def test_json_says_how_many_it_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync, "DRY_RUN_LIST_MAX", 5)
    crm = FakeCRM()
    _hot(crm, 8)
    _, out, _ = _cli(tmp_path, crm, capsys, as_json=True)
    summary = json.loads(out)
    assert len(summary["would_write"]) == 5 and summary["would_write_omitted"] == 3
    assert len(summary["would_act"]) == 5 and summary["would_act_omitted"] == 3
    assert summary["scores_written"] == 8 and summary["crossings"] == 8


# ------------------------------------------------------------------ fields


class _CheckingCRM(FakeCRM):
    """A CRM whose field check knows ``create``: ``absent`` fields it creates itself,
    ``manual`` ones a human must create."""

    def __init__(self, absent: Sequence[str] = (), manual: Sequence[str] = ()) -> None:
        super().__init__()
        self.absent, self.manual = set(absent), set(manual)
        self.checks: list[tuple[list[str], bool]] = []

    def ensure_fields(self, fields: Sequence[FieldSpec], *, create: bool = True) -> FieldCheck:
        self.checks.append(([f.name for f in fields], create))
        names = [f.name for f in fields]
        missing = tuple(n for n in names if n in self.manual)
        todo = tuple(n for n in names if n in self.absent)
        if create:
            self.absent -= set(todo)
            return FieldCheck(created=todo, missing=missing,
                              instructions=tuple(f"create {n}" for n in missing))  # fmt: skip
        return FieldCheck(would_create=todo, missing=missing,
                          instructions=tuple(f"create {n}" for n in missing))  # fmt: skip


def test_a_dry_run_lists_the_fields_a_real_run_would_create_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crm = _CheckingCRM(absent=["ls_score"])
    _hot(crm, 1)
    code, out, _ = _cli(tmp_path, crm, capsys, as_json=False)
    assert code == 0 and crm.checks == [(["ls_score"], False)]
    assert "would create 1 field(s) a real run creates itself: ls_score" in out
    assert crm.absent == {"ls_score"}  # still absent
    assert "would write 1 score(s):" in out


def test_a_dry_run_stops_on_fields_a_human_must_create(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crm = _CheckingCRM(manual=["ls_score"])
    _hot(crm, 1)
    code, out, err = _cli(tmp_path, crm, capsys, as_json=False)
    assert code == 2 and "create ls_score" in err and "would write" not in out


def test_a_dry_run_checks_fields_even_after_the_baseline(h: Harness) -> None:
    h.crm = _CheckingCRM()
    _hot(h.crm, 1)
    assert h.run().exit_code == 0  # the baseline ensures (and creates) the fields
    h.crm.manual = {"ls_score"}  # an admin deleted the field since
    s = h.run(dry_run=True)
    assert s.exit_code == 2 and "create ls_score" in (s.error or "")


def test_a_connector_without_a_check_only_path_is_not_asked_in_a_dry_run(h: Harness) -> None:
    _hot(h.crm, 1)
    s = h.run(dry_run=True)
    assert s.exit_code == 0 and h.crm.fields_ensured == [] and s.fields_to_create == []


def test_json_lists_the_fields_to_create(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crm = _CheckingCRM(absent=["ls_score"])
    _, out, _ = _cli(tmp_path, crm, capsys, as_json=True)
    assert json.loads(out)["fields_to_create"] == ["ls_score"]
