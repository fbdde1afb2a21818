"""The run's progress hook: phase names, totals where known, final counts."""

from __future__ import annotations

import io
from collections import defaultdict

from conftest import Harness
from rich.console import Console
from sync_fakes import T0

from connectors.base import EventRecord
from scheduler.cli_sync import _progress
from scheduler.sync import RunOptions


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int | None]] = []
        self.done: dict[str, int] = defaultdict(int)

    def start(self, phase: str, total: int | None) -> None:
        self.calls.append(("start", phase, total))

    def advance(self, phase: str, n: int) -> None:
        self.calls.append(("advance", phase, n))
        self.done[phase] += n

    def totals(self, phase: str) -> list[int | None]:
        return [t for kind, p, t in self.calls if kind == "start" and p == phase]

    def phases(self) -> list[str]:
        return list(dict.fromkeys(p for _, p, _ in self.calls))


def _world(h: Harness, n: int, hot: int) -> None:
    for i in range(n):
        h.crm.add(f"c{i:02d}", points=80 if i < hot else 10, owner_id="o1")


def test_each_phase_reports_its_total_and_its_final_count(h: Harness) -> None:
    _world(h, 17, hot=4)  # 17 contacts: three chunks of 7
    rec = Recorder()
    s = h.sync(progress=rec).run(RunOptions(act_on_baseline=True))
    assert s.exit_code == 0
    assert rec.phases() == ["read", "score", "act", "write"]
    assert rec.totals("read") == [None]  # the CRM does not say how many changed
    assert rec.done["read"] == 17
    assert rec.totals("score") == [17] and rec.done["score"] == 17
    # totals grow as the chunks are decided, and end at what was done
    assert rec.totals("write")[-1] == rec.done["write"] == s.scores_written == 17
    assert rec.totals("write") == sorted(rec.totals("write"))
    assert rec.totals("act")[-1] == rec.done["act"] == 4 == s.deals


def test_an_idle_run_shows_no_write_or_act_phase(h: Harness) -> None:
    _world(h, 5, hot=0)
    assert h.run().exit_code == 0
    rec = Recorder()
    h.sync(progress=rec).run(RunOptions())
    assert rec.phases() == ["read", "score"] and rec.done["read"] == 0
    assert rec.totals("score") == [5] and rec.done["score"] == 5


def test_a_dry_run_reads_and_scores_only(h: Harness) -> None:
    _world(h, 9, hot=2)
    rec = Recorder()
    h.sync(progress=rec).run(RunOptions(dry_run=True, act_on_baseline=True))
    assert rec.phases() == ["read", "score"] and rec.done["score"] == 9


def test_resumed_actions_count_in_the_act_phase(h: Harness) -> None:
    _world(h, 3, hot=0)
    assert h.run().exit_code == 0
    h.crm.events.append(
        EventRecord("e1", "c00", "form_submit", T0, {"points": 0})  # an immediate event
    )
    h.crm.touch("c00")
    h.crm.fail_creates = 3  # the deal fails: the action stays an intent
    assert h.run().actions_failed == 1
    h.crm.fail_creates = 0
    rec = Recorder()
    s = h.sync(progress=rec).run(RunOptions())
    assert s.actions_resumed == 1 and rec.totals("act")[0] == 1 and rec.done["act"] == 1


def test_a_plain_callable_still_gets_phase_and_count(h: Harness) -> None:
    _world(h, 3, hot=0)
    seen: list[tuple[str, int]] = []
    h.sync(progress=lambda phase, n: seen.append((phase, n))).run(RunOptions())
    assert ("read", 3) in seen and ("score", 3) in seen


def test_rich_bars_render_with_and_without_a_total() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=100)
    with _progress(enabled=True, console=console) as bars:
        assert bars is not None
        bars.start("read", None)
        bars.advance("read", 120)
        bars.start("score", 120)
        bars.advance("score", 120)
        bars.start("write", 10)
        bars.advance("write", 10)
        tasks = {t.description: t for t in bars.progress.tasks}
        assert tasks["Reading changes"].total is None
        assert tasks["Scoring"].total == 120 and tasks["Scoring"].completed == 120
        bars.progress.refresh()
    assert "Scoring" in buf.getvalue()
    with _progress(enabled=False) as none:
        assert none is None
