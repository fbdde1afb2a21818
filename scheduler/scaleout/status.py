"""Per-tenant status of a deployment: what ``leadsync deployment status`` prints.

Read from Redis only (no PostgreSQL connection per tenant), so it answers in one
round trip per tenant for a thousand tenants. ``lag_seconds`` is how late the tenant
is now when its next run is overdue, otherwise how late its last run started after
its due time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

from scheduler.cli_common import stdout
from scheduler.scaleout.deployment import load_deployment, tenants

COLUMNS = ("tenant", "last_run_at", "next_run_at", "lag_seconds", "state", "error", "budget")


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


class BudgetRow(TypedDict):
    """A tenant's API budget as the shared limiter counts it."""

    bucket: str
    window_remaining: int | None
    window_limit: int | None
    daily_remaining: int | None
    daily_limit: int | None


class TenantRow(TypedDict):
    """One tenant in ``leadsync scale status`` (a JSON line with ``--json``)."""

    tenant: str
    last_run_at: str | None
    next_run_at: str | None
    lag_seconds: float | None
    state: str
    error: str | None
    budget: BudgetRow | None


def status_rows(path: str | Path, *, clock: Callable[[], float] = time.time) -> list[TenantRow]:
    import redis

    from scheduler.scaleout.limiter import limiter_for
    from scheduler.scaleout.tenant_state import TenantStates

    deployment = load_deployment(path)
    client = redis.Redis.from_url(deployment.redis)
    try:
        states = TenantStates(client, deployment.name)
        limiter = limiter_for(deployment)
        now = clock()
        rows: list[TenantRow] = []
        for tenant in tenants(deployment):
            rec = states.get(tenant.id)
            nxt = rec.number("next_run_at")
            lag: float | None
            if nxt is not None and nxt < now:
                lag = round(now - nxt, 3)
            else:
                lag = rec.number("lag_seconds")
            bucket = rec.fields.get("bucket")
            budget: BudgetRow | None = None
            if bucket:
                u = limiter.usage(bucket)
                budget = {
                    "bucket": bucket,
                    "window_remaining": u.window_remaining,
                    "window_limit": u.window_limit,
                    "daily_remaining": u.daily_remaining,
                    "daily_limit": u.daily_limit,
                }
            state = rec.fields.get("state") or "new"
            backoff = rec.number("backoff_until")
            if state == "auth" and backoff is not None:
                state = f"auth (retry {_iso(backoff)})"
            rows.append(
                {
                    "tenant": tenant.id,
                    "last_run_at": _iso(rec.number("last_run_at")),
                    "next_run_at": _iso(nxt),
                    "lag_seconds": lag,
                    "state": state,
                    "error": rec.fields.get("error"),
                    "budget": budget,
                }
            )
        return rows
    finally:
        client.close()


def print_rows(rows: Sequence[TenantRow]) -> None:
    from rich.table import Table

    table = Table(*COLUMNS)
    for row in rows:
        b = row["budget"]
        budget = (
            "-"
            if not b
            else f"{b['window_remaining']}/{b['window_limit']} now, "
            f"{b['daily_remaining']}/{b['daily_limit']} today"
        )
        table.add_row(
            row["tenant"],
            row["last_run_at"] or "-",
            row["next_run_at"] or "-",
            "-" if row["lag_seconds"] is None else f"{row['lag_seconds']:.1f}",
            row["state"],
            row["error"] or "",
            budget,
        )
    stdout.print(table)
