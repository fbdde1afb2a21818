"""``leadsync schedule``: the pipeline on an interval or a cron, with APScheduler 3.x.

``max_instances=1`` and ``coalesce=True`` mean a slow run never overlaps the next one
and a backlog of missed fire times (a laptop asleep, a long run) becomes a single run;
the misfire grace time lets a run that fires a little late still happen. The state
store's lock guards the same pipeline across processes; this guards it within one.
A failing run is logged and the schedule goes on; SIGTERM stops the scheduler after
the run in progress has finished.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.config import ScheduleConfig, redact

log = logging.getLogger("leadsync.schedule")
DEFAULT_EVERY_SECONDS = 15 * 60
JOB_ID = "leadsync-sync"
RETRAIN_JOB_ID = "leadsync-retrain"
# How often the retrain job looks whether a model is due (the check reads one small
# file per predictive model; training happens only when ``retrain_every`` has passed).
RETRAIN_CHECK_EVERY = timedelta(days=1)


def make_trigger(schedule: ScheduleConfig) -> BaseTrigger:
    if schedule.cron:
        return CronTrigger.from_crontab(schedule.cron, timezone=UTC)
    seconds = schedule.every.total_seconds() if schedule.every else DEFAULT_EVERY_SECONDS
    return IntervalTrigger(seconds=seconds, timezone=UTC)


def guarded(run_once: Callable[[], int]) -> Callable[[], int | None]:
    """The job as the scheduler calls it: never raises, so one bad run (a CRM outage,
    a bug on one record) does not take the schedule down."""

    def job() -> int | None:
        try:
            code = run_once()
        except Exception as exc:
            log.error("run failed: %s", redact(f"{type(exc).__name__}: {exc}"))
            return None
        if code == 0:
            log.info("run finished: exit 0")
        else:
            log.warning("run finished: exit %s", code)
        return code

    return job


def add_sync_job(
    scheduler: Any, trigger: BaseTrigger, run_once: Callable[[], int], schedule: ScheduleConfig
) -> Any:
    return scheduler.add_job(
        guarded(run_once),
        trigger,
        id=JOB_ID,
        name="leadsync sync",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(1, int(schedule.misfire_grace.total_seconds())),
        replace_existing=True,
    )


def add_retrain_job(
    scheduler: Any,
    retrain_every: timedelta,
    retrain: Callable[[], int],
    schedule: ScheduleConfig,
    *,
    trigger: BaseTrigger | None = None,
) -> Any:
    """``schedule.retrain_every``: a job of its own beside the sync, checking at most
    daily whether a predictive model is due (``retrain`` decides and logs why it kept or
    replaced an artifact). It never overlaps itself; a failure is logged and the
    schedule goes on."""
    seconds = min(retrain_every, RETRAIN_CHECK_EVERY).total_seconds()
    return scheduler.add_job(
        guarded(retrain),
        trigger or IntervalTrigger(seconds=seconds, timezone=UTC),
        id=RETRAIN_JOB_ID,
        name="leadsync retrain",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(1, int(schedule.misfire_grace.total_seconds())),
        replace_existing=True,
    )


def install_sigterm(scheduler: Any) -> Callable[[int, FrameType | None], None]:
    """Stop on SIGTERM (systemd, Kubernetes) the way Ctrl-C stops: after the current run."""

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("SIGTERM received: stopping after the current run")
        if getattr(scheduler, "running", True):
            scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, handler)
    return handler


def run_scheduled(
    schedule: ScheduleConfig,
    run_once: Callable[[], int],
    *,
    scheduler: Any = None,
    trigger: BaseTrigger | None = None,
    run_now: bool = True,
    retrain_every: timedelta | None = None,
    retrain: Callable[[], int] | None = None,
    retrain_trigger: BaseTrigger | None = None,
) -> int:
    """Block until stopped. ``scheduler``/``trigger`` are injectable for tests.

    With ``retrain_every`` and ``retrain`` (``scheduler.cli_train.retrain_job``), the
    predictive models are retrained when due, in a job of their own."""
    if scheduler is None:
        from apscheduler.schedulers.blocking import BlockingScheduler

        scheduler = BlockingScheduler(timezone=UTC)
    trig = trigger or make_trigger(schedule)
    job = add_sync_job(scheduler, trig, run_once, schedule)
    if run_now and trigger is None:
        job.modify(next_run_time=datetime.now(UTC))
    if retrain_every is not None and retrain is not None:
        add_retrain_job(scheduler, retrain_every, retrain, schedule, trigger=retrain_trigger)
    previous = signal.getsignal(signal.SIGTERM)
    install_sigterm(scheduler)
    log.info("scheduled: %s", trig)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        if getattr(scheduler, "running", False):
            scheduler.shutdown(wait=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
