"""``leadsync schedule``: the job's options, surviving a failing run, SIGTERM — with an
injected trigger so that nothing waits for a real interval."""

from __future__ import annotations

import logging
import signal
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.debug import DebugExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.config import ScheduleConfig, register_secret
from scheduler.jobs import add_sync_job, guarded, install_sigterm, make_trigger, run_scheduled


class _Burst(BaseTrigger):
    """Fires ``n`` times, each a millisecond after the scheduler last looked, then never
    again: the scheduler's own wait is all the time that passes."""

    def __init__(self, n: int) -> None:
        self.left = n

    def get_next_fire_time(self, previous_fire_time: Any, now: datetime) -> datetime | None:
        if self.left <= 0:
            return None
        self.left -= 1
        return now + timedelta(milliseconds=1)


class _Recorder:
    def __init__(self) -> None:
        self.jobs: list[tuple[Any, Any, dict[str, Any]]] = []
        self.stopped: list[bool] = []
        self.running = True

    def add_job(self, func: Any, trigger: Any, **kw: Any) -> Any:
        self.jobs.append((func, trigger, kw))
        return None

    def shutdown(self, wait: bool = True) -> None:
        self.stopped.append(wait)


def test_triggers_from_the_config() -> None:
    every = make_trigger(ScheduleConfig(every=timedelta(minutes=15)))
    assert isinstance(every, IntervalTrigger) and every.interval == timedelta(minutes=15)
    cron = make_trigger(ScheduleConfig(cron="*/15 * * * *"))
    assert isinstance(cron, CronTrigger)
    start = datetime(2026, 6, 30, 12, 1, tzinfo=UTC)
    assert cron.get_next_fire_time(None, start) == datetime(2026, 6, 30, 12, 15, tzinfo=UTC)
    assert isinstance(make_trigger(ScheduleConfig()), IntervalTrigger)


def test_the_job_never_overlaps_coalesces_and_has_a_grace_time() -> None:
    rec = _Recorder()
    add_sync_job(rec, _Burst(1), lambda: 0, ScheduleConfig(misfire_grace=timedelta(minutes=3)))
    ((_, _, kw),) = rec.jobs
    assert kw["max_instances"] == 1 and kw["coalesce"] is True
    assert kw["misfire_grace_time"] == 180


def test_a_failing_run_is_logged_and_does_not_raise(caplog) -> None:
    register_secret("sched-secret-123456")

    def boom() -> int:
        raise RuntimeError("CRM down, token sched-secret-123456")

    with caplog.at_level(logging.INFO, logger="leadsync.schedule"):
        assert guarded(boom)() is None
        assert guarded(lambda: 1)() == 1
    assert "run failed: RuntimeError: CRM down" in caplog.text
    assert "sched-secret-123456" not in caplog.text
    assert "exit 1" in caplog.text


def test_sigterm_shuts_the_scheduler_down_after_the_current_run() -> None:
    rec = _Recorder()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        handler = install_sigterm(rec)
        assert signal.getsignal(signal.SIGTERM) is handler
        handler(signal.SIGTERM, None)
        assert rec.stopped == [True]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_real_scheduler_keeps_going_after_a_failure_and_stops_cleanly() -> None:
    from apscheduler.events import EVENT_JOB_REMOVED

    # The debug executor runs each job in the scheduler's own thread: deterministic.
    scheduler = BlockingScheduler(timezone=UTC, executors={"default": DebugExecutor()})
    # When the trigger has no more fire times the job is removed: stop there.
    scheduler.add_listener(lambda _e: scheduler.shutdown(wait=False), EVENT_JOB_REMOVED)
    calls: list[int] = []

    def once() -> int:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("first run fails")
        return 0

    previous = signal.getsignal(signal.SIGTERM)
    # APScheduler asks for a first fire time when the job is added and again when the
    # scheduler starts; three runs follow.
    assert run_scheduled(ScheduleConfig(), once, scheduler=scheduler, trigger=_Burst(5)) == 0
    assert calls == [0, 1, 2]
    assert signal.getsignal(signal.SIGTERM) is previous  # handler restored on the way out
