"""Sync benchmark: a full and an incremental ``leadsync run`` against the HubSpot sandbox.

For each size (default 10,000 and 100,000 contacts) it prints wall time, API calls,
the time HubSpot's ``pro`` rate limit (190 calls per 10 s) allows for those calls, the
simulated time the run spent (the connector's rate limiter sleeps on a simulated
clock, so the benchmark never waits for real), and peak RSS.

The sandbox seeds and serves in a forked child process (as in
``benchmarks/sandbox_throughput.py``), so the peak RSS printed is the sync process's
own: connector, state store, scoring. Both processes share one simulated clock
through shared memory, so that the sandbox's rate windows see the sync's sleeps.
Usage::

    python benchmarks/sync.py [--sizes 10000,100000] [--changed 0.01]
"""

from __future__ import annotations

import argparse
import multiprocessing
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


class SharedClock(ManualClock):
    """A manual clock whose time lives in shared memory, so that a forked sandbox and
    the sync in the parent read and move the same simulated time."""

    def __init__(self, value: Any) -> None:
        super().__init__(float(value.value))
        self._value = value

    def now(self) -> float:
        with self._value.get_lock():
            return float(self._value.value)

    def advance(self, seconds: float) -> None:
        with self._value.get_lock():
            self._value.value += seconds


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _starter() -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files("scoring").joinpath("data/models/starter.yaml")))


def _serve_child(size: int, value: Any, conn: Any) -> None:
    """Seed the sandbox and serve it; answer the parent's few control requests (stats,
    new activity) over a pipe until it says stop."""
    clock = SharedClock(value)
    t0 = time.perf_counter()
    sandbox = HubSpotSandbox(contacts=size, seed=7, clock=clock, search_lag_seconds=3.0)
    app = SandboxApp(sandbox, sleep=clock.sleep)
    with serve(app, port=0) as server:
        conn.send((server.base_url, time.perf_counter() - t0))
        while True:
            command, arg = conn.recv()
            if command == "stop":
                conn.send(_rss_mib())
                return
            if command == "reset_stats":
                app.reset_stats()
                conn.send(None)
            elif command == "stats":
                conn.send(app.stats())
            elif command == "simulate_activity":
                conn.send(sandbox.simulate_activity(int(arg), seed=1))


def bench(size: int, changed: float) -> list[dict[str, Any]]:
    ctx = multiprocessing.get_context("fork")
    value = ctx.Value("d", datetime.now(UTC).timestamp())
    clock = SharedClock(value)
    parent, child_end = ctx.Pipe()
    child = ctx.Process(target=_serve_child, args=(size, value, child_end), daemon=True)
    child.start()
    base_url, world_s = parent.recv()

    def ask(command: str, arg: Any = None) -> Any:
        parent.send((command, arg))
        return parent.recv()

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        models = load_model_files([_starter()])
        config = config_from_mapping(
            {
                "crm": {
                    "type": "hubspot",
                    "hubspot": {
                        "access_token": "sandbox-token",
                        "base_url": base_url,
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
        for label in ("full", "settle", "incremental"):
            if label == "incremental":
                ask("simulate_activity", max(1, int(size * changed)))
            clock.advance(10)  # past the search lag
            ask("reset_stats")
            sim0 = clock.now()
            t0 = time.perf_counter()
            summary = Sync(config, connector, store, models, now=clock.datetime).run(RunOptions())
            wall = time.perf_counter() - t0
            stats = ask("stats")
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
                    "sync_peak_rss_mib": round(_rss_mib()),
                    "world_build_s": round(world_s, 1),
                }
            )
            print(rows[-1], flush=True)
        connector.close()
        store.close()
    sandbox_rss = ask("stop")
    child.join(timeout=60)
    print({"contacts": size, "sandbox_process_peak_rss_mib": round(sandbox_rss)}, flush=True)
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
