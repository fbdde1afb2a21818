"""What the deployment remembers per tenant, in Redis: when its next run is due, how
its last run ended, and its credential back-off. Redis rather than the tenant's
schema, so that beat decides what is due with one round trip per tenant and never
opens a PostgreSQL connection.

Keys (under the deployment's ``name``): ``<name>:tenant:<id>`` is a hash with
``next_run_at``, ``last_run_at``, ``last_due_at``, ``lag_seconds``, ``state``,
``error``, ``exit_code``, ``run_id``, ``bucket``, ``auth_failures``,
``backoff_until``, ``worker``, ``pid``, ``started_at``; ``<name>:claim:<id>:<slot>``
makes one due slot dispatch once, whichever beat asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import redis

CLAIM_TTL = 86_400


@dataclass(frozen=True, slots=True)
class TenantRecord:
    tenant: str
    fields: dict[str, str]

    def number(self, name: str) -> float | None:
        value = self.fields.get(name)
        try:
            return None if value is None or value == "" else float(value)
        except ValueError:
            return None


class TenantStates:
    def __init__(self, client: redis.Redis, name: str) -> None:
        self.r = client
        self.name = name

    def _key(self, tenant: str) -> str:
        return f"{self.name}:tenant:{tenant}"

    def get(self, tenant: str) -> TenantRecord:
        raw: dict[bytes | str, bytes | str] = self.r.hgetall(self._key(tenant))  # type: ignore[assignment]
        return TenantRecord(tenant, {_s(k): _s(v) for k, v in raw.items()})

    def update(self, tenant: str, **values: object) -> None:
        keep = {k: str(v) for k, v in values.items() if v is not None}
        drop = [k for k, v in values.items() if v is None]
        pipe = self.r.pipeline()
        if keep:
            pipe.hset(self._key(tenant), mapping=keep)
        if drop:
            pipe.hdel(self._key(tenant), *drop)
        pipe.execute()

    def forget(self, tenant: str) -> None:
        self.r.delete(self._key(tenant))

    def claim(self, tenant: str, slot: float) -> bool:
        """True for the first caller only: a due slot is dispatched once."""
        key = f"{self.name}:claim:{tenant}:{int(slot)}"
        return bool(self.r.set(key, "1", nx=True, ex=CLAIM_TTL))

    def known(self) -> set[str]:
        return {_s(m) for m in self.r.smembers(f"{self.name}:tenants")}  # type: ignore[union-attr]

    def set_known(self, tenants: set[str]) -> None:
        key = f"{self.name}:tenants"
        pipe = self.r.pipeline()
        pipe.delete(key)
        if tenants:
            pipe.sadd(key, *sorted(tenants))
        pipe.execute()

    def auth_failed(self, tenant: str, now: float, interval: timedelta, cap: timedelta) -> float:
        """Count a refused credential; returns when the tenant may run again: one
        interval after the first failure, then two, four, ... at most ``cap``."""
        failures = int(self.r.hincrby(self._key(tenant), "auth_failures", 1))  # type: ignore[arg-type]
        wait = min(interval.total_seconds() * 2.0 ** (failures - 1), cap.total_seconds())
        until = float(now + wait)
        self.update(tenant, backoff_until=until)
        return until

    def auth_ok(self, tenant: str) -> None:
        self.update(tenant, auth_failures=None, backoff_until=None)


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
