"""``schedule.retrain_every``: retrain when due, replace only when at least as good,
keep the old artifact otherwise and say why; the scheduler runs it as a job of its own."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.executors.debug import DebugExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from predictive_world import MODEL_FILE, OPTIONS, world, write_project

from scheduler.cli_sync import _load
from scheduler.cli_train import execute_retrain, retrain_job
from scheduler.config import ScheduleConfig
from scheduler.jobs import RETRAIN_JOB_ID, run_scheduled
from scoring.predictive import parse_artifact

EVERY = timedelta(days=10)
# A single stump: clearly worse than the regression on the same holdout.
STUMP = replace(OPTIONS, estimator="trees", trees=1, max_leaf_nodes=2)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("retrain")
    return write_project(world("before", contacts=1500), root, {"model.yaml": MODEL_FILE})


def test_retrain_writes_when_due_and_keeps_a_better_artifact(project: Path) -> None:
    config = _load(str(project))
    artifact = project.parent / "learned.json"
    first = execute_retrain(
        config, every=EVERY, now=datetime(2026, 1, 1, tzinfo=UTC), options=OPTIONS
    )
    assert [(o.model, o.action) for o in first] == [("learned", "replaced")]
    assert first[0].reason == "no usable artifact yet"
    written = artifact.read_text()
    end = datetime.fromisoformat(parse_artifact(written, "a").training["data_end"])

    # not due yet: nothing is trained, the file is untouched
    early = execute_retrain(
        config, every=EVERY, now=end + EVERY - timedelta(hours=1), options=STUMP
    )
    assert [o.action for o in early] == ["not due"]
    assert artifact.read_text() == written

    # due, but the new model (a stump, other features) is worse on the same pairs: kept
    due = execute_retrain(config, every=EVERY, now=end + EVERY, options=STUMP)
    assert [o.action for o in due] == ["kept"]
    assert " < " in due[0].reason and "latest holdout" in due[0].reason
    assert artifact.read_text() == written
    assert not list(project.parent.glob("*.tmp"))

    # the same training again is as good: replaced (equal is good enough)
    again = execute_retrain(config, every=EVERY, now=end + EVERY, options=OPTIONS)
    assert [o.action for o in again] == ["replaced"] and " >= " in again[0].reason


def test_retrain_with_too_little_data_keeps_the_old_artifact(tmp_path: Path) -> None:
    config_path = write_project(world("before", contacts=120), tmp_path, {"model.yaml": MODEL_FILE})
    (tmp_path / "learned.json").write_text("kept as it is")
    out = execute_retrain(
        _load(str(config_path)), every=EVERY, now=datetime(2026, 1, 1, tzinfo=UTC), options=OPTIONS
    )
    assert [o.action for o in out] == ["refused"] and "too little data" in out[0].reason
    assert (tmp_path / "learned.json").read_text() == "kept as it is"


def test_retrain_job_logs_what_it_did_per_model(project: Path, caplog: Any) -> None:
    if not (project.parent / "learned.json").exists():  # when run on its own
        execute_retrain(_load(str(project)), every=EVERY, now=datetime.now(UTC), options=OPTIONS)
    caplog.set_level(logging.INFO, logger="leadsync.retrain")
    job = retrain_job(str(project), EVERY, lambda: datetime(2020, 1, 1, tzinfo=UTC))
    assert job() == 0
    assert any("retrain learned: not due" in r.getMessage() for r in caplog.records)


class _Burst(BaseTrigger):
    def __init__(self, n: int) -> None:
        self.left = n

    def get_next_fire_time(self, previous_fire_time: Any, now: datetime) -> datetime | None:
        if self.left <= 0:
            return None
        self.left -= 1
        return now + timedelta(milliseconds=1)


class _Recorder:
    def __init__(self) -> None:
        self.jobs: dict[str, tuple[Any, dict[str, Any]]] = {}
        self.running = False

    def add_job(self, func: Any, trigger: Any, **kw: Any) -> Any:
        self.jobs[kw["id"]] = (trigger, kw)
        return None

    def start(self) -> None:
        return None


def test_scheduler_adds_a_daily_retrain_check_that_never_overlaps() -> None:
    rec = _Recorder()
    run_scheduled(
        ScheduleConfig(),
        lambda: 0,
        scheduler=rec,
        trigger=_Burst(1),
        retrain_every=EVERY,
        retrain=lambda: 0,
    )
    trigger, kw = rec.jobs[RETRAIN_JOB_ID]
    assert isinstance(trigger, IntervalTrigger) and trigger.interval == timedelta(days=1)
    assert kw["max_instances"] == 1 and kw["coalesce"] is True
    hourly = _Recorder()
    run_scheduled(
        ScheduleConfig(),
        lambda: 0,
        scheduler=hourly,
        trigger=_Burst(1),
        retrain_every=timedelta(hours=6),
        retrain=lambda: 0,
    )
    assert hourly.jobs[RETRAIN_JOB_ID][0].interval == timedelta(hours=6)
    without = _Recorder()
    run_scheduled(ScheduleConfig(), lambda: 0, scheduler=without, trigger=_Burst(1))
    assert RETRAIN_JOB_ID not in without.jobs


def test_a_real_scheduler_runs_the_retrain_job_beside_the_sync_and_survives_its_failure() -> None:
    from apscheduler.events import EVENT_JOB_REMOVED

    scheduler = BlockingScheduler(timezone=UTC, executors={"default": DebugExecutor()})
    removed: list[int] = []

    def on_removed(_event: Any) -> None:
        removed.append(1)
        if len(removed) == 2:
            scheduler.shutdown(wait=False)

    scheduler.add_listener(on_removed, EVENT_JOB_REMOVED)
    syncs: list[int] = []
    retrains: list[int] = []

    def retrain() -> int:
        retrains.append(1)
        if len(retrains) == 1:
            raise RuntimeError("first retrain fails")
        return 0

    code = run_scheduled(
        ScheduleConfig(),
        lambda: syncs.append(1) or 0,
        scheduler=scheduler,
        trigger=_Burst(3),
        retrain_every=EVERY,
        retrain=retrain,
        retrain_trigger=_Burst(4),
    )
    assert code == 0 and syncs and len(retrains) == 2
