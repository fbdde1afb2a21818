"""How fast is the HubSpot sandbox? Seeding, search latency and loopback throughput.

    python benchmarks/sandbox_throughput.py [--contacts 100000] [--seconds 10]

Targets: seeding 100,000 contacts in under 30 s and under 1 GiB; any
search over 100,000 contacts in under 50 ms; at least 300 requests/s for a mix of
list pages of 100, searches and batch updates over loopback.

The throughput run uses a manual clock that moves 0.25 s per request, so the
sandbox's own rate limits (which tests cover) do not throttle the measurement.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import random
import resource
import statistics
import threading
import time
from typing import Any

import requests

from connectors.sandbox import HubSpotSandbox, ManualClock, SandboxApp, generate_world, serve
from connectors.sandbox.framework import Request

TOKEN = "sandbox-token"  # noqa: S105  (the sandbox's own demo credential)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _TickingClock(ManualClock):
    """Moves a little on every read, so windows roll without real waiting."""

    def now(self) -> float:
        self.advance(0.25)
        return super().now()


def seed(contacts: int) -> tuple[HubSpotSandbox, ManualClock, dict[str, float]]:
    start = time.perf_counter()
    world = generate_world(contacts, seed=7)
    world_s = time.perf_counter() - start
    clock = _TickingClock()
    hs = HubSpotSandbox(world=world, clock=clock, tier="enterprise", search_lag_seconds=0)
    total = time.perf_counter() - start
    return (
        hs,
        clock,
        {
            "world_s": world_s,
            "store_s": total - world_s,
            "seed_total_s": total,
            "activities": float(len(world.activities)),
            "peak_rss_mib": peak_rss_mib(),
        },
    )


SEARCHES: list[tuple[str, dict[str, Any]]] = []


def _searches(hs: HubSpotSandbox) -> list[tuple[str, dict[str, Any]]]:
    now_ms = int(hs.world.now * 1000)
    email = hs.world.people[len(hs.world.people) // 2].email
    window = [
        {
            "propertyName": "lastmodifieddate",
            "operator": "GTE",
            "value": str(now_ms - 14 * 86_400_000),
        },
        {"propertyName": "lastmodifieddate", "operator": "LTE", "value": str(now_ms)},
    ]
    return [
        (
            "incremental window, sorted by id",
            {"filterGroups": [{"filters": window}], "sorts": ["hs_object_id"], "limit": 100},
        ),
        (
            "window + id cursor (split query)",
            {
                "filterGroups": [
                    {
                        "filters": [
                            *window,
                            {
                                "propertyName": "hs_object_id",
                                "operator": "GT",
                                "value": "2147600000",
                            },
                        ]
                    }
                ],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "limit": 200,
            },
        ),
        (
            "email EQ",
            {
                "filterGroups": [
                    {"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}
                ]
            },
        ),
        (
            "lifecyclestage IN + page views GT",
            {
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": "lifecyclestage",
                                "operator": "IN",
                                "values": ["lead", "marketingqualifiedlead"],
                            },
                            {
                                "propertyName": "hs_analytics_num_page_views",
                                "operator": "GT",
                                "value": "10",
                            },
                        ]
                    }
                ],
                "limit": 100,
            },
        ),
        (
            "jobtitle CONTAINS_TOKEN",
            {
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": "jobtitle",
                                "operator": "CONTAINS_TOKEN",
                                "value": "marketing",
                            }
                        ]
                    }
                ]
            },
        ),
        ("full-text query", {"query": "smith", "limit": 100}),
    ]


def search_latency(hs: HubSpotSandbox) -> list[tuple[str, float, float, int]]:
    """In-process latency of each search (first call builds any column it needs)."""
    app = SandboxApp(hs)
    out = []
    for name, body in _searches(hs):
        times = []
        total = 0
        for i in range(12):
            request = Request(
                "POST",
                "/crm/v3/objects/contacts/search",
                headers={"authorization": f"Bearer {TOKEN}"},
                body=json.dumps(body).encode(),
            )
            t = time.perf_counter()
            response = app(request)
            elapsed = (time.perf_counter() - t) * 1000
            assert response.status == 200, response.body[:200]
            total = json.loads(response.body)["total"]
            if i > 0:  # the first call may build a column for the property
                times.append(elapsed)
        out.append((name, statistics.median(times), max(times), total))
    return out


def _mix_request(rng: random.Random, ids: list[str], searches: list[dict[str, Any]]) -> Request:
    """One request of the loopback mix, built for the in-process measurement."""
    headers = {"authorization": f"Bearer {TOKEN}", "host": "127.0.0.1"}
    roll = rng.random()
    if roll < 0.5:
        query = {
            "limit": ["100"],
            "after": [rng.choice(ids)],
            "properties": ["email,lifecyclestage,hs_email_open"],
        }
        return Request("GET", "/crm/v3/objects/contacts", query=query, headers=headers)
    if roll < 0.75:
        body = json.dumps(rng.choice(searches)).encode()
        return Request("POST", "/crm/v3/objects/contacts/search", headers=headers, body=body)
    inputs = [{"id": i, "properties": {"hs_lead_status": "OPEN"}} for i in rng.sample(ids, 100)]
    body = json.dumps({"inputs": inputs}).encode()
    return Request("POST", "/crm/v3/objects/contacts/batch/update", headers=headers, body=body)


def in_process(hs: HubSpotSandbox, count: int = 1000) -> float:
    """Requests per CPU-second the sandbox itself needs for the loopback mix, without
    HTTP: on a shared machine this figure does not depend on what else runs."""
    app = SandboxApp(hs)
    table = hs.store.tables["contacts"]
    ids = [str(int(i)) for i in table.ids[: table.n]]
    searches = [body for _, body in _searches(hs)[:4]]
    rng = random.Random(11)
    batch = [_mix_request(rng, ids, searches) for _ in range(count)]
    for request in batch[:50]:  # warm-up: columns the searches use
        app(request)
    started = time.process_time()
    for request in batch[50:]:
        response = app(request)
        assert response.status in (200, 207), response.body[:200]
    return (count - 50) / (time.process_time() - started)


def _serve_child(contacts: int, ports: Any, stop: Any) -> None:
    hs, _clock, _ = seed(contacts)
    server = serve(SandboxApp(hs), port=0)
    ids = hs.store.tables["contacts"].ids[: hs.store.tables["contacts"].n]
    ports.put((server.port, [str(int(i)) for i in ids], _searches(hs)))
    stop.wait()
    server.close()


def throughput(contacts: int, seconds: float, threads: int) -> dict[str, Any]:
    """The server seeds and serves in its own process, as ``leadsync sandbox`` does
    beside a real client: the clients here do not compete for its GIL, and it does
    not pay copy-on-write faults on a store inherited through fork."""
    ctx = multiprocessing.get_context("fork")
    ports = ctx.Queue()
    done = ctx.Event()
    child = ctx.Process(target=_serve_child, args=(contacts, ports, done), daemon=True)
    child.start()
    port, ids, named_searches = ports.get(timeout=300)
    base = f"http://127.0.0.1:{port}"
    searches = [body for _, body in named_searches[:4]]
    stop = time.perf_counter() + seconds
    counts: list[dict[str, int]] = []

    def worker(n: int) -> None:
        rng = random.Random(n)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        mine = {"list": 0, "search": 0, "batch": 0, "errors": 0}
        while time.perf_counter() < stop:
            roll = rng.random()
            if roll < 0.5:
                after = rng.choice(ids)
                r = session.get(
                    f"{base}/crm/v3/objects/contacts",
                    params={
                        "limit": 100,
                        "after": after,
                        "properties": "email,lifecyclestage,hs_email_open",
                    },
                )
                kind = "list"
            elif roll < 0.75:
                r = session.post(
                    f"{base}/crm/v3/objects/contacts/search", json=rng.choice(searches)
                )
                kind = "search"
            else:
                batch = rng.sample(ids, 100)
                r = session.post(
                    f"{base}/crm/v3/objects/contacts/batch/update",
                    json={
                        "inputs": [
                            {"id": i, "properties": {"hs_lead_status": "OPEN"}} for i in batch
                        ]
                    },
                )
                kind = "batch"
            mine[kind] += 1
            if r.status_code not in (200, 207):
                mine["errors"] += 1
        counts.append(mine)
        session.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    done.set()
    child.join(10)
    total = {k: sum(c[k] for c in counts) for k in counts[0]}
    requests_done = total["list"] + total["search"] + total["batch"]
    return {
        "elapsed_s": elapsed,
        "requests": requests_done,
        "per_second": requests_done / elapsed,
        **total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    hs, _clock, seeding = seed(args.contacts)
    print(f"seeding {args.contacts:,} contacts ({int(seeding['activities']):,} activities):")
    print(
        f"  world {seeding['world_s']:.1f} s + store {seeding['store_s']:.1f} s = {seeding['seed_total_s']:.1f} s"
    )
    print(f"  peak RSS {seeding['peak_rss_mib']:.0f} MiB")
    print(f"search latency over {args.contacts:,} contacts (median / max of 11, ms):")
    for name, median, worst, total in search_latency(hs):
        print(f"  {name:36s} {median:7.1f} {worst:7.1f}   ({total:,} matches)")
    print(f"sandbox CPU for the mix, in process: {in_process(hs):.0f} requests per CPU-second")
    del hs
    gc.collect()
    result = throughput(args.contacts, args.seconds, args.threads)
    print(
        f"loopback throughput ({args.threads} clients, {result['elapsed_s']:.1f} s): "
        f"{result['per_second']:.0f} requests/s "
        f"(list {result['list']}, search {result['search']}, batch update {result['batch']}, "
        f"errors {result['errors']})"
    )
    print(f"peak RSS at the end {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
