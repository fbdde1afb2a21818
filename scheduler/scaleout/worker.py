"""One tenant's run, as a Celery task performs it (and tests call it directly).

The run is ``scheduler.cli_sync.execute_run`` on the tenant's configuration, with the
deployment's PostgreSQL database and the tenant's own schema as the state store. A
worker serves many tenants, so nothing here is process-global: each run gets its own
redactor (the tenant's secrets are masked in its output and no other's) and its own
crash hook, passed only when ``execute_run`` accepts them.

A run that finds its tenant's run lock taken is dropped (the store's lock answers
"locked" at once): the next due slot runs it, so a slow run never queues behind itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from connectors.base import AuthError, CallLimiter, Connector, ConnectorConfigError, RuntimeContext
from scheduler.config import ConfigError, SyncConfig, load_config, redact
from scheduler.scaleout.deployment import Deployment, Tenant, tenants
from scheduler.scaleout.tenant_state import TenantStates
from scheduler.state import StateError, StateStore

if TYPE_CHECKING:
    from connectors.runtime import Redactor

log = logging.getLogger("leadsync.scaleout")
DEFAULT_INTERVAL = timedelta(minutes=15)
CRASH_ENV = "LEADSYNC_TENANT_CRASH_AT"  # "<tenant>:<point>[:N]": SIGKILL the worker there


@dataclass(frozen=True, slots=True)
class Outcome:
    tenant: str
    state: str  # ok | rejected | stopped | auth | locked | config | removed | error
    exit_code: int | None = None
    error: str | None = None
    run_id: str | None = None


def interval_of(config: SyncConfig, now: datetime) -> timedelta:
    """The tenant's interval: ``every``, or the gap between its cron's next two times."""
    from scheduler.jobs import make_trigger

    if config.schedule.every is not None or not config.schedule.cron:
        return config.schedule.every or DEFAULT_INTERVAL
    trigger = make_trigger(config.schedule)
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
    if first is None or second is None:
        return DEFAULT_INTERVAL
    gap: timedelta = second - first
    return gap


def bucket_of(connector: Connector, config: SyncConfig) -> str:
    """The API budget the tenant spends: the connector's ``bucket``, or the same value
    derived from the settings for connectors that do not yet name one."""
    bucket = getattr(connector, "bucket", None)
    if isinstance(bucket, str) and bucket:
        return bucket
    settings = config.crm.settings()
    token = settings.get("access_token")
    if config.crm.type == "hubspot" and isinstance(token, str):
        return "hubspot:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    return f"{config.crm.type}:unknown"


def tenant_crash_hook(tenant: str) -> Callable[[str], None]:
    """The crash hook of one tenant's runs: ``LEADSYNC_TENANT_CRASH_AT=acme:after_intents``
    kills the process serving acme's run at that point (as SIGKILL would), and no other
    tenant's run; the crash tests of a worker serving many tenants need exactly that."""
    target = os.environ.get(CRASH_ENV, "")
    who, _, rest = target.partition(":")
    point, _, nth = rest.partition(":")
    hits = {"n": 0}

    def crash(name: str) -> None:
        if not target or who != tenant or name != point:
            return
        hits["n"] += 1
        if hits["n"] >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)

    return crash


class _AuthWatch:
    """The connector as the sync sees it, noting whether the CRM refused the
    credentials: the run summary says "stopped" for quota and outages too, and only a
    refused credential backs a tenant off for longer than its interval."""

    def __init__(self, inner: Connector) -> None:
        self._inner = inner
        self.refused = False

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                out = value(*args, **kwargs)
            except AuthError:
                self.refused = True
                raise
            return self._watch(out) if isinstance(out, Iterator) else out

        return call

    def _watch(self, it: Iterator[Any]) -> Iterator[Any]:
        try:
            yield from it
        except AuthError:
            self.refused = True
            raise


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    return name in inspect.signature(fn).parameters


def make_context(limiter: CallLimiter | None, redactor: Redactor | None) -> RuntimeContext:
    """The runtime context, with the shared limiter and the run's redactor where this
    version of ``RuntimeContext`` has room for them."""
    names = {f.name for f in fields(RuntimeContext)}
    extra: dict[str, Any] = {}  # only the fields this RuntimeContext has
    if "limiter" in names and limiter is not None:
        extra["limiter"] = limiter
    if "redactor" in names and redactor is not None:
        extra["redactor"] = redactor
    return RuntimeContext(now=lambda: datetime.now(UTC), sleep=time.sleep, **extra)


def open_tenant_store(deployment: Deployment, tenant: Tenant) -> StateStore:
    """The tenant's state store: the deployment's database, the tenant's schema
    (created on first use), migrated."""
    store = StateStore(deployment.state, schema=tenant.schema)
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{tenant.schema}"'))
        store.migrate()
    except sa.exc.DBAPIError as exc:
        store.close()
        raise StateError(f"state: cannot create schema {tenant.schema}: {exc.orig}") from None
    except StateError:
        store.close()
        raise
    return store


def tenant_config(deployment: Deployment, tenant: Tenant) -> SyncConfig:
    """The tenant's configuration with the deployment's database as its state."""
    config = load_config(tenant.config_path)
    return config.model_copy(update={"state": deployment.state})


def run_tenant(
    deployment: Deployment,
    tenant_id: str,
    *,
    states: TenantStates,
    limiter: CallLimiter | None = None,
    due_at: float | None = None,
    worker: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Outcome:
    """Perform one run of ``tenant_id`` and record how it ended."""
    from connectors.runtime import Redactor
    from scheduler.cli_sync import UsageError, execute_run
    from scheduler.sync import RunOptions

    found = {t.id: t for t in tenants(deployment)}
    tenant = found.get(tenant_id)
    if tenant is None:
        return Outcome(tenant_id, "removed")
    started = clock()
    states.update(
        tenant_id,
        started_at=started,
        worker=worker or socket.gethostname(),
        pid=os.getpid(),
        lag_seconds=None if due_at is None else round(max(0.0, started - due_at), 3),
    )
    try:
        config = tenant_config(deployment, tenant)
    except ConfigError as exc:
        return _record(states, Outcome(tenant_id, "config", 2, exc.problems[0]), clock)
    redactor = Redactor(_secrets(config))
    try:
        store = open_tenant_store(deployment, tenant)
    except StateError as exc:
        return _record(states, Outcome(tenant_id, "config", 2, str(exc)), clock)
    watch: _AuthWatch | None = None
    try:
        inner = _connector(config, limiter, redactor)
        watch = _AuthWatch(inner)
        states.update(tenant_id, bucket=bucket_of(inner, config))
        kwargs: dict[str, Any] = {"as_json": True, "store": store, "connector": watch}
        if _accepts(execute_run, "redactor"):
            kwargs["redactor"] = redactor
        if _accepts(execute_run, "crash"):
            kwargs["crash"] = tenant_crash_hook(tenant_id)
        if _accepts(execute_run, "limiter"):
            kwargs["limiter"] = limiter
        code, summary = execute_run(config, RunOptions(), **kwargs)
    except UsageError as exc:
        return _record(states, Outcome(tenant_id, "config", 2, redactor(exc.lines[0])), clock)
    except AuthError as exc:
        return _auth(deployment, states, tenant_id, config, redactor(str(exc)), clock)
    except ConnectorConfigError as exc:
        return _record(states, Outcome(tenant_id, "config", 2, redactor(str(exc))), clock)
    except Exception as exc:  # a bug or an outage: recorded, the worker goes on
        log.exception("tenant %s: run failed", tenant_id)
        text = redactor(redact(f"{type(exc).__name__}: {exc}"))
        return _record(states, Outcome(tenant_id, "error", 1, text.splitlines()[0]), clock)
    finally:
        if watch is not None:
            with contextlib.suppress(Exception):  # closing is best effort
                watch._inner.close()
        store.close()
    error = redactor(summary.error) if summary.error else None
    if summary.status == "locked":
        # Dropped, not queued: the run in progress is this slot's run.
        states.update(tenant_id, dropped_at=clock())
        return Outcome(tenant_id, "locked", code, error, summary.run_id)
    if watch.refused:
        return _auth(deployment, states, tenant_id, config, error or "credentials refused", clock)
    states.auth_ok(tenant_id)
    return _record(states, Outcome(tenant_id, summary.status, code, error, summary.run_id), clock)


def _connector(
    config: SyncConfig, limiter: CallLimiter | None, redactor: Redactor | None
) -> Connector:
    """As ``cli_sync.make_connector``, with the limiter and redactor in the context."""
    from connectors import registry

    context = make_context(limiter, redactor)
    settings = config.crm.settings()
    if config.crm.type == "files" and "base_dir" not in settings:
        settings = {**settings, "base_dir": config.base_dir}
    return registry.create(config.crm.type, settings, context=context)


def _auth(
    deployment: Deployment,
    states: TenantStates,
    tenant_id: str,
    config: SyncConfig,
    error: str,
    clock: Callable[[], float],
) -> Outcome:
    now = clock()
    interval = interval_of(config, datetime.fromtimestamp(now, UTC))
    until = states.auth_failed(tenant_id, now, interval, deployment.max_backoff)
    states.update(tenant_id, next_run_at=until)
    return _record(states, Outcome(tenant_id, "auth", 3, error), clock)


def _record(states: TenantStates, outcome: Outcome, clock: Callable[[], float]) -> Outcome:
    states.update(
        outcome.tenant,
        last_run_at=clock(),
        state=outcome.state,
        exit_code=outcome.exit_code,
        error=outcome.error if outcome.error else None,
        run_id=outcome.run_id,
    )
    if outcome.error:
        log.warning("tenant %s: %s: %s", outcome.tenant, outcome.state, outcome.error)
    return outcome


def _secrets(config: SyncConfig) -> list[str]:
    """The tenant's credentials, for its run's redactor."""
    from scheduler.config import _SECRET_KEY

    out: list[str] = []

    def walk(value: object, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, str) and _SECRET_KEY.search(key):
            out.append(value)

    walk(config.crm.settings())
    return out
