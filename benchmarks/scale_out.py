"""Many tenants on Celery: runs per minute, lag behind schedule, 429s, broker and
PostgreSQL load.

One multi-portal HubSpot sandbox (one portal per tenant, told apart by token), real
Celery workers and one beat as subprocesses, Redis as broker and limiter, PostgreSQL
with one schema per tenant. Every tenant runs every ``--every``; the benchmark samples
each tenant's record in Redis until ``--minutes`` have passed and reports:

* runs per minute (completed runs, from the tenants' run ids),
* lag: how late each run started after its due time (p50, p95, max),
* 429 answers from the sandbox (the shared budget should keep this at zero),
* Redis commands per second and memory, PostgreSQL transactions per second (of the
  whole ``test`` database, other users included), leadsync's connections at most,
  and the size of the tenants' schemas.

Run: ``python benchmarks/scale_out.py [--tenants 50] [--workers 2] [--minutes 3]``
(needs Redis, PostgreSQL at 127.0.0.1; prints one JSON object last).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from tests.scaleout.harness import Deploy

REDIS = "redis://127.0.0.1:6379/0"
APP_NAME = "leadsync-scale-bench"
PG = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?application_name={APP_NAME}"


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def _pg(engine: sa.Engine, schemas: list[str]) -> dict[str, Any]:
    with engine.connect() as conn:
        xacts = conn.execute(
            sa.text(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'test'"
            )
        ).scalar()
        ours = conn.execute(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :a"),
            {"a": APP_NAME},
        ).scalar()
        size = conn.execute(
            sa.text(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = ANY(:s) AND c.relkind = 'r'"
            ),
            {"s": schemas},
        ).scalar()
    return {"xacts": int(xacts or 0), "connections": int(ours or 0), "bytes": int(size or 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--contacts", type=int, default=200)
    parser.add_argument("--every", default="1m")
    parser.add_argument("--minutes", type=float, default=3.0)
    args = parser.parse_args()

    name = "lsbench" + uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as tmp:
        deploy = Deploy(
            Path(tmp),
            name,
            REDIS,
            REDIS,
            PG,
            tenants=args.tenants,
            contacts=args.contacts,
            every=args.every,
        )
        from scheduler.scaleout.deployment import schema_for

        schemas = [schema_for(t) for t in deploy.ids]
        engine = sa.create_engine(PG.split("?")[0])
        try:
            r0 = deploy.redis.info()
            p0 = _pg(engine, schemas)
            for i in range(args.workers):
                deploy.start("worker", "-c", str(args.concurrency), "-n", f"w{i}-{name}@bench")
            deploy.start("beat")
            t0 = time.monotonic()
            seen: dict[str, str] = {}
            runs: list[tuple[float, str, float | None, str, int]] = []
            count: dict[str, int] = {}
            max_conns = 0
            while time.monotonic() - t0 < args.minutes * 60:
                for t in deploy.ids:
                    rec = deploy.states.get(t)
                    run_id = rec.fields.get("run_id")
                    if run_id and seen.get(t) != run_id:
                        seen[t] = run_id
                        count[t] = count.get(t, 0) + 1
                        runs.append(
                            (
                                time.monotonic() - t0,
                                t,
                                rec.number("lag_seconds"),
                                rec.fields.get("state", ""),
                                count[t],
                            )
                        )
                max_conns = max(max_conns, _pg(engine, schemas)["connections"])
                time.sleep(2.0)
            elapsed = time.monotonic() - t0
            r1 = deploy.redis.info()
            p1 = _pg(engine, schemas)
            stats = deploy.portals.stats()
            lags = [r[2] for r in runs if r[2] is not None]
            # every tenant's first run is due at once (and is a full read): the steady
            # state is what the later runs see
            steady = [r[2] for r in runs if r[2] is not None and r[4] > 1]
            result = {
                "tenants": args.tenants,
                "workers": args.workers,
                "concurrency": args.concurrency,
                "contacts_per_tenant": args.contacts,
                "every": args.every,
                "minutes": round(elapsed / 60, 2),
                "runs": len(runs),
                "later_runs": len(steady),
                "runs_per_minute": round(len(runs) / (elapsed / 60), 1),
                "states": {s: sum(1 for r in runs if r[3] == s) for s in {r[3] for r in runs}},
                "lag_seconds": {
                    "p50": _pct(lags, 0.5),
                    "p95": _pct(lags, 0.95),
                    "max": max(lags, default=None),
                },
                "lag_seconds_later_runs": {
                    "p50": _pct(steady, 0.5),
                    "p95": _pct(steady, 0.95),
                    "max": max(steady, default=None),
                },
                "api_calls": stats["total"],
                "http_429": int(stats["by_status"].get("429", 0)),
                "redis_commands_per_second": round(
                    (r1["total_commands_processed"] - r0["total_commands_processed"]) / elapsed, 1
                ),
                "redis_used_memory_mib": round(r1["used_memory"] / 2**20, 1),
                "pg_transactions_per_second_whole_db": round(
                    (p1["xacts"] - p0["xacts"]) / elapsed, 1
                ),
                "pg_connections_max": max_conns,
                "pg_schemas_mib": round(p1["bytes"] / 2**20, 2),
            }
            print(json.dumps(result, indent=2))
        finally:
            deploy.close()
            engine.dispose()


if __name__ == "__main__":
    main()
