"""When each tenant's run is due, decided in beat.

Every tick re-reads the deployment file (and lists ``tenants_dir`` again), so added
and removed tenants are noticed without a restart; a file that no longer validates is
logged and the last good one is used. A tenant is due when its ``next_run_at`` has
passed (a new tenant is due at once). Its slot is claimed in Redis with ``SET NX``
before the task is sent, so two beats, or one beat restarted mid-tick, send a slot
once. Missed slots are not caught up: the next one is computed from now (one run,
not a burst, after an outage), like ``leadsync schedule``'s ``coalesce``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scheduler.config import ConfigError, SyncConfig, load_config
from scheduler.scaleout.deployment import Deployment, Tenant, load_deployment, tenants
from scheduler.scaleout.tenant_state import TenantStates
from scheduler.scaleout.worker import DEFAULT_INTERVAL

log = logging.getLogger("leadsync.scaleout")

Send = Callable[[str, float], None]  # (tenant id, due at) -> the task is queued


@dataclass
class _Cached:
    mtime: float
    config: SyncConfig | None
    error: str | None


class Dispatcher:
    def __init__(
        self,
        path: str | Path,
        states: TenantStates,
        send: Send,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.states = states
        self.send = send
        self.clock = clock
        self.deployment: Deployment | None = None
        self._configs: dict[Path, _Cached] = {}
        self._last_error: str | None = None

    def reload(self) -> Deployment | None:
        try:
            self.deployment = load_deployment(self.path)
            self._last_error = None
        except ConfigError as exc:
            if exc.problems[0] != self._last_error:
                log.error("deployment not reloaded: %s", exc.problems[0])
            self._last_error = exc.problems[0]
        return self.deployment

    def _config(self, tenant: Tenant) -> _Cached:
        try:
            mtime = tenant.config_path.stat().st_mtime
        except OSError as exc:
            return _Cached(
                0.0, None, f"{tenant.config_path}:1: (file): cannot read: {exc.strerror}"
            )
        cached = self._configs.get(tenant.config_path)
        if cached is None or cached.mtime != mtime:
            try:
                cached = _Cached(mtime, load_config(tenant.config_path), None)
            except ConfigError as exc:
                cached = _Cached(mtime, None, exc.problems[0])
            self._configs[tenant.config_path] = cached
        return cached

    def tick(self) -> list[str]:
        """Send every due tenant's run; returns the ids sent."""
        deployment = self.reload()
        if deployment is None:
            return []
        try:
            current = tenants(deployment)
        except ConfigError as exc:
            log.error("tenants not reloaded: %s", exc.problems[0])
            return []
        now = self.clock()
        ids = {t.id for t in current}
        for gone in self.states.known() - ids:
            log.info("tenant %s removed from the deployment", gone)
            self.states.forget(gone)
        self.states.set_known(ids)
        sent: list[str] = []
        for tenant in current:
            cached = self._config(tenant)
            if cached.config is None:
                self.states.update(tenant.id, state="config", error=cached.error)
                continue
            record = self.states.get(tenant.id)
            due = record.number("next_run_at")
            if due is not None and due > now:
                continue
            backoff = record.number("backoff_until")
            if backoff is not None and backoff > now:
                self.states.update(tenant.id, next_run_at=backoff)
                continue
            slot = due if due is not None else now
            if not self.states.claim(tenant.id, slot):
                continue  # another beat sent this slot
            self.states.update(tenant.id, next_run_at=next_after(cached.config, now))
            self.send(tenant.id, slot)
            sent.append(tenant.id)
        return sent


def next_after(config: SyncConfig, now: float) -> float:
    """The tenant's next due time after ``now`` (epoch seconds)."""
    if config.schedule.cron:
        from scheduler.jobs import make_trigger

        at = datetime.fromtimestamp(now, UTC)
        nxt = make_trigger(config.schedule).get_next_fire_time(None, at + timedelta(seconds=1))
        if nxt is not None:
            return float(nxt.timestamp())
    every = config.schedule.every or DEFAULT_INTERVAL
    return now + every.total_seconds()
