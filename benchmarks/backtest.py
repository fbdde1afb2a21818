"""Backtest speed on a fixed, seeded workload.

100,000 contacts and 1,000,000 events over 365 days, from the generator of
``benchmarks/score_throughput.py`` (its 180 days of events stretched to 365), plus
seeded deals for 8% of the contacts and HubSpot stage dates (each contact entered its
current lifecycle stage when it was created). The starter model is backtested over
26 weekly snapshots with a 90-day horizon and threshold advice for a capacity of 50
leads a week. Building the data is not timed. Printed: wall and CPU seconds of the
backtest, the peak RSS, and the headline figures.

    python benchmarks/backtest.py
    python benchmarks/backtest.py --contacts 20000 --events 200000
    python benchmarks/backtest.py --sandbox      # also the starter model on both sandbox worlds

With ``--sandbox`` each sandbox CRM (HubSpot, Salesforce) is synced into a temporary
state store as ``leadsync demo`` does, its outcomes read, and the starter model
backtested with the defaults: printed are its AUC, the lift of the hot band and the
advised thresholds (max F1, and a capacity of 10 leads a week).
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from score_throughput import AS_OF, build_frames, load_model

from scheduler.backtest import (
    DEALS_SCHEMA,
    BacktestOptions,
    HistoryData,
    HubSpotStages,
    run_backtest,
)

_UTC = pl.Datetime("us", "UTC")


def build_history(n_contacts: int, n_events: int, seed: int = 20261206) -> HistoryData:
    contacts, events = build_frames(n_contacts, n_events)
    # The generator spreads events over 180 days; stretch them to 365.
    as_of = pl.lit(AS_OF, dtype=_UTC)
    events = events.with_columns(
        (as_of - (as_of - pl.col("occurred_at")) * (365 / 180)).cast(_UTC).alias("occurred_at")
    )
    stages = ["subscriber", "lead", "marketingqualifiedlead", "opportunity", "customer"]
    contacts = contacts.with_columns(
        [
            pl.when(pl.col("lifecycle_stage") == s)
            .then(pl.col("created_at"))
            .otherwise(None)
            .alias(f"hs_lifecyclestage_{s}_date")
            for s in stages
        ]
    )
    rng = np.random.default_rng(seed)
    chosen = np.flatnonzero(rng.random(n_contacts) < 0.08)
    created_us = contacts.get_column("created_at").dt.epoch("us").to_numpy()[chosen]
    end_us = int(AS_OF.timestamp() * 1_000_000)
    deal_us = created_us + (rng.random(len(chosen)) * (end_us - created_us)).astype(np.int64)
    close_us = deal_us + rng.integers(1, 40 * 86_400_000_000, len(chosen))
    won = rng.random(len(chosen)) < 0.6
    closed = close_us <= end_us
    ids = contacts.get_column("id").to_numpy()[chosen]
    deals = pl.DataFrame(
        {
            "deal_id": [f"d{i}" for i in range(len(chosen))],
            "contact_id": ids,
            "created_at": pl.Series(deal_us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
            "closed_at": pl.Series(np.where(closed, close_us, 0))
            .cast(pl.Datetime("us"))
            .dt.replace_time_zone("UTC"),
            "outcome": np.where(closed, np.where(won, "won", "lost"), "open"),
            "amount": rng.uniform(1_000, 50_000, len(chosen)),
        }
    ).with_columns(
        pl.when(pl.col("outcome") == "open")
        .then(None)
        .otherwise(pl.col("closed_at"))
        .alias("closed_at")
    )
    return HistoryData(
        contacts=contacts,
        events=events,
        deals=deals.cast(DEALS_SCHEMA),  # type: ignore[arg-type]
        data_end=AS_OF,
        source="benchmark",
        reconstruction=HubSpotStages(contacts.columns),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--capacity", type=float, default=50)
    parser.add_argument("--sandbox", action="store_true", help="also backtest both sandboxes")
    parser.add_argument("--sandbox-contacts", type=int, default=2000)
    args = parser.parse_args(argv)

    models, source = load_model()
    model = models.models[0]
    t0 = time.perf_counter()
    data = build_history(args.contacts, args.events)
    gc.collect()
    print(
        f"model: {model.name} of {source}; workload: {args.contacts:,} contacts, "
        f"{args.events:,} events over 365 days, {data.deals.height:,} deals "
        f"(built in {time.perf_counter() - t0:.1f} s, not timed)"
    )
    end = AS_OF.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=90)
    options = BacktestOptions(
        start=end - timedelta(weeks=25), end=end, capacity=args.capacity, resamples=0
    )
    t1, c1 = time.perf_counter(), time.process_time()
    result = run_backtest([(model.name, model)], data, options)
    t2, c2 = time.perf_counter(), time.process_time()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = result.runs[0].figures
    print(
        f"backtest: {len(result.snapshots)} snapshots, {figures['pairs']:,} contact-snapshots, "
        f"{result.runs[0].observations.height:,} daily observations: "
        f"{t2 - t1:.1f} s wall, {c2 - c1:.1f} s CPU (target: under 60 s); peak RSS {peak:,.0f} MiB"
    )
    advice = figures["threshold_advice"]
    print(
        f"AUC {figures['auc']:.3f} (random deals: about 0.5 expected); "
        f"hot lift {figures['bands'][0]['lift'] or 0:.2f}; leads/week {figures['leads_per_week']:.1f}; "
        f"max-F1 threshold {advice['f1']['threshold']}; "
        f"capacity {args.capacity:g}/week threshold {advice['capacity']['threshold']}"
    )
    if args.sandbox:
        for crm in ("hubspot", "salesforce"):
            sandbox_figures(crm, args.sandbox_contacts)
    return 0


def sandbox_figures(crm: str, contacts: int) -> None:
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from scheduler.outcomes import StoreHistory, sync_outcomes
    from tests.backtest.sandbox_world import synced_world

    with tempfile.TemporaryDirectory() as tmp, synced_world(crm, Path(tmp), contacts=contacts) as w:
        now = w.clock.datetime()
        sync_outcomes(w.store, w.connector, pipeline="default", started=now)
        data = StoreHistory(w.store, source=crm, read_at=now).load(w.models)
        model = w.models[0]
        result = run_backtest([(model.name, model)], data, BacktestOptions(capacity=10))
        f = result.runs[0].figures
        advice = f["threshold_advice"]
        left = sorted({n["field"] for n in result.left_out}) or ["none"]
        auc = "n/a" if f["auc"] is None else f"{f['auc']:.3f}"
        lift = f["bands"][0]["lift"]
        print(
            f"{crm} sandbox ({contacts:,} people): {f['pairs']:,} contact-snapshots, "
            f"{f['positives']:,} won within 90 days; AUC {auc}; hot lift "
            f"{'n/a (no hot contact)' if lift is None else f'{lift:.2f}'}; max-F1 threshold "
            f"{advice['f1']['threshold']}; capacity 10/week threshold "
            f"{advice['capacity']['threshold']}; fields left out: {', '.join(left)}"
        )


if __name__ == "__main__":
    sys.exit(main())
