"""Sync benchmark: a full and an incremental ``leadsync run`` against the HubSpot sandbox.

For each size (default 10,000 and 100,000 contacts) it prints wall time, API calls,
the time HubSpot's ``pro`` rate limit (190 calls per 10 s) allows for those calls, the
simulated time the run spent (the connector's rate limiter sleeps on a simulated
clock, so the benchmark never waits for real), and peak RSS.

The sandbox runs in this process, so RSS is reported twice: the process's peak, and
the growth of that peak during the runs (the sync's own memory, as near as one process
can tell). Usage::

    python benchmarks/sync.py [--sizes 10000,100000] [--changed 0.01]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors import registry
from connectors.base import RuntimeContext
from connectors.sandbox import HubSpotSandbox, ManualClock, SandboxApp, serve
from scheduler.cli_sync import load_model_files
from scheduler.config import config_from_mapping
from scheduler.state import StateStore
from scheduler.sync import RunOptions, Sync

PRO_CALLS_PER_SECOND = 190 / 10.0


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _starter() -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files("scoring").joinpath("data/models/starter.yaml")))


def bench(size: int, changed: float) -> list[dict[str, Any]]:
    clock = ManualClock(datetime.now(UTC))
    t_world = time.perf_counter()
    sandbox = HubSpotSandbox(contacts=size, seed=7, clock=clock, search_lag_seconds=3.0)
    app = SandboxApp(sandbox, sleep=clock.sleep)
    world_s = time.perf_counter() - t_world
    rows: list[dict[str, Any]] = []
    with serve(app, port=0) as server, tempfile.TemporaryDirectory() as tmp:
        models = load_model_files([_starter()])
        config = config_from_mapping(
            {
                "crm": {
                    "type": "hubspot",
                    "hubspot": {
                        "access_token": "sandbox-token",
                        "base_url": server.base_url,
                        "tier": "pro",
                    },
                },
                "models": [str(_starter())],
                "state": f"sqlite:///{Path(tmp) / 'bench.db'}",
            }
        )
        store = StateStore(config.state_url(), clock=clock.now)
        store.migrate()
        connector = registry.create(
            "hubspot",
            config.crm.settings(),
            context=RuntimeContext(now=clock.datetime, sleep=clock.sleep),
        )
        rss_before = _rss_mib()
        for label in ("full", "settle", "incremental"):
            if label == "incremental":
                sandbox.simulate_activity(max(1, int(size * changed)), seed=1)
            clock.advance(10)  # past the search lag
            app.reset_stats()
            sim0 = clock.now()
            t0 = time.perf_counter()
            summary = Sync(config, connector, store, models, now=clock.datetime).run(RunOptions())
            wall = time.perf_counter() - t0
            stats = app.stats()
            calls = int(stats["total"])
            rows.append(
                {
                    "contacts": size,
                    "run": label,
                    "exit": summary.exit_code,
                    "read": summary.contacts_read,
                    "written": summary.scores_written,
                    "calls": calls,
                    "429s": int(stats["by_status"].get("429", 0)),
                    "wall_s": round(wall, 1),
                    "simulated_s": round(clock.now() - sim0, 1),
                    "limit_s": round(calls / PRO_CALLS_PER_SECOND, 1),
                    "peak_rss_mib": round(_rss_mib()),
                    "sync_rss_growth_mib": round(_rss_mib() - rss_before),
                    "world_build_s": round(world_s, 1),
                }
            )
            print(rows[-1], flush=True)
        connector.close()
        store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--changed", type=float, default=0.01)
    args = parser.parse_args()
    for size in [int(s) for s in args.sizes.split(",") if s]:
        bench(size, args.changed)


if __name__ == "__main__":
    main()
