"""The Celery app of a deployment: settings, the run task, the beat scheduler.

Delivery: ``task_acks_late`` with ``task_reject_on_worker_lost`` and a prefetch of one
means a message is acknowledged only after its run ended, and a run whose process
died (a killed pool child, a killed worker) is delivered again to a worker that is
alive. Runs are safe to repeat: the store's ledger makes every action happen once.
The brokers' own redelivery timers are set above the longest run, or a run still in
progress would be handed to a second worker: Redis's ``visibility_timeout`` and
RabbitMQ's consumer timeout (the ``x-consumer-timeout`` queue argument, in ms).
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

from celery import Celery
from kombu.entity import Queue
from redbeat import RedBeatScheduler

from scheduler.scaleout.deployment import Deployment, load_deployment

if TYPE_CHECKING:
    from scheduler.scaleout.limiter import RedisCallLimiter
    from scheduler.scaleout.tenant_state import TenantStates

TASK = "leadsync.run_tenant"
log = logging.getLogger("leadsync.scaleout")


def redelivery_seconds(deployment: Deployment) -> int:
    """How long an unacknowledged run is left alone: the longest run plus a quarter.
    A run still going after that is delivered to a second worker too, which finds the
    run lock taken and drops it: never two runs at once, but set ``longest_run`` right."""
    return math.ceil(deployment.longest_run.total_seconds() * 1.25)


def celery_settings(deployment: Deployment, path: str) -> dict[str, object]:
    timeout = redelivery_seconds(deployment)
    is_amqp = deployment.broker.startswith("amqp")
    queue_args = {"x-consumer-timeout": timeout * 1000} if is_amqp else None
    settings: dict[str, object] = {
        "broker_url": deployment.broker,
        "broker_connection_retry_on_startup": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_default_queue": deployment.queue,
        "task_queues": (Queue(deployment.queue, queue_arguments=queue_args),),  # type: ignore[no-untyped-call]
        "task_routes": {TASK: {"queue": deployment.queue}},
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "beat_scheduler": "scheduler.scaleout.celery_app:DeploymentScheduler",
        "beat_max_loop_interval": deployment.dispatch_every.total_seconds(),
        "redbeat_redis_url": deployment.redis,
        "redbeat_key_prefix": deployment.key("redbeat"),
        "redbeat_lock_timeout": max(30, int(deployment.dispatch_every.total_seconds() * 5)),
        "leadsync_deployment": path,
    }
    if not is_amqp:
        settings["broker_transport_options"] = {
            "visibility_timeout": timeout,
            # Look for runs abandoned by a dead worker every few seconds (the default
            # sweep is every 100 s), so that another worker takes them over promptly
            # once their visibility timeout has passed.
            "unacked_restore_interval": max(1, min(10, timeout // 4)),
            "unacked_restore_throttle": 1,
            "global_keyprefix": deployment.key("kombu") + ":",
        }
    return settings


def make_app(path: str) -> Celery:
    """The app for the deployment file at ``path`` (loaded now; bad files raise
    ``ConfigError`` before any broker is contacted)."""
    deployment = load_deployment(path)
    app = Celery(f"leadsync-{deployment.name}")
    app.conf.update(celery_settings(deployment, path))

    state: dict[str, tuple[TenantStates, RedisCallLimiter]] = {}

    def context() -> tuple[TenantStates, RedisCallLimiter]:
        # Built lazily in each pool process (after the fork), never shared across it.
        if "context" not in state:
            import redis

            from scheduler.scaleout.limiter import limiter_for
            from scheduler.scaleout.tenant_state import TenantStates

            client = redis.Redis.from_url(deployment.redis)
            state["context"] = (TenantStates(client, deployment.name), limiter_for(deployment))
        return state["context"]

    @app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def run_tenant_task(self: Any, tenant_id: str, due_at: float | None = None) -> str:
        from scheduler.scaleout.worker import run_tenant

        states, limiter = context()
        fresh = load_deployment(path)  # tenants added or changed since the worker started
        outcome = run_tenant(
            fresh,
            tenant_id,
            states=states,
            limiter=limiter,
            due_at=due_at,
            worker=self.request.hostname,
        )
        log.info("tenant %s: %s (exit %s)", tenant_id, outcome.state, outcome.exit_code)
        return outcome.state

    return app


class DeploymentScheduler(RedBeatScheduler):  # type: ignore[misc]
    """RedBeat (its Redis lock keeps a second beat from ticking) plus the dispatcher,
    which sends each due tenant's run on every tick."""

    def __init__(self, app: Celery, *args: Any, **kwargs: Any) -> None:
        super().__init__(app, *args, **kwargs)
        import redis

        from scheduler.scaleout.dispatch import Dispatcher
        from scheduler.scaleout.tenant_state import TenantStates

        deployment = load_deployment(app.conf.get("leadsync_deployment"))
        states = TenantStates(redis.Redis.from_url(deployment.redis), deployment.name)
        queue = deployment.queue

        def send(tenant_id: str, due_at: float) -> None:
            app.send_task(TASK, args=[tenant_id, due_at], queue=queue)
            log.info("tenant %s: run sent (due %.0f)", tenant_id, due_at)

        self.dispatcher = Dispatcher(
            app.conf.get("leadsync_deployment"), states, send, clock=time.time
        )
        self._every = deployment.dispatch_every.total_seconds()

    def tick(self, min: Any = min, **kwargs: Any) -> float:
        delay = float(super().tick(min=min, **kwargs))
        try:
            self.dispatcher.tick()
        except Exception:  # Redis or the broker away for a moment: the next tick retries
            log.exception("dispatch failed")
        return float(min(delay, self._every))
