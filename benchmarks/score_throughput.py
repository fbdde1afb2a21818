"""Scoring throughput on a fixed, seeded workload (the speed targets in docs/scoring.md).

1,000,000 contacts and 10,000,000 events over 180 days (12 event types, 200 distinct
URLs, 6 forms) are built directly as polars frames; building them is not timed. The
starter model scores them with reasons. Printed: events scored per second for the
columnar result (``score_columns``) and for result objects (``score_frames``), and the
peak RSS of the process.

    python benchmarks/score_throughput.py                 # the full workload
    python benchmarks/score_throughput.py --contacts 100000 --events 1000000
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from scoring.engine import iter_results, results_from_columns, score_columns
from scoring.model import ModelSet, load_models

AS_OF = datetime(2026, 6, 30, tzinfo=UTC)
EVENT_TYPES = [
    "page_view",
    "email_open",
    "email_click",
    "email_reply",
    "form_submit",
    "meeting_booked",
    "meeting_cancelled",
    "call",
    "webinar_attended",
    "content_download",
    "unsubscribe",
    "app_event",
]
# Roughly how often each type occurs: page views and opens dominate.
TYPE_WEIGHTS = [0.40, 0.25, 0.08, 0.02, 0.05, 0.01, 0.005, 0.01, 0.02, 0.04, 0.005, 0.11]
FORMS = ["demo-request", "contact-us", "newsletter", "ebook", "webinar-signup", "trial"]
TITLES = [
    "VP of Sales",
    "CMO",
    "CEO",
    "Sales Lead",
    "Marketing Associate",
    "Senior Manager",
    "Director of Engineering",
    "Consultant",
    "Student",
    "Software Engineer",
    "",
]
DOMAINS = ["gmail.com", "yahoo.com", "acme.com", "globex.io", "initech.com", "hooli.xyz"]
STAGES = ["subscriber", "lead", "marketingqualifiedlead", "opportunity", "customer"]

FALLBACK_MODEL = """
models:
  - name: platform
    score_field: leadsync_score
    applies_to:
      - {field: lifecycle_stage, match: {in: [subscriber, lead, marketingqualifiedlead]}}
    bands: {hot: 70, warm: 40}
    rules:
      - {id: title-vp-sales, kind: fit, group: title, field: job_title, match: {contains: vp of sales}, points: 10}
      - {id: title-sales-lead, kind: fit, group: title, field: job_title, match: {contains: sales lead}, points: 10}
      - {id: title-cmo, kind: fit, group: title, field: job_title, match: {contains_any: [cmo, chief marketing]}, points: 8}
      - {id: title-ceo, kind: fit, group: title, field: job_title, match: {contains_any: [ceo, chief executive]}, points: 8}
      - {id: title-senior-manager, kind: fit, group: title, field: job_title, match: {contains: senior manager}, points: 8}
      - {id: title-director, kind: fit, group: title, field: job_title, match: {contains: director}, points: 7}
      - {id: title-consultant, kind: fit, group: title, field: job_title, match: {contains: consultant}, points: 2}
      - {id: title-marketing-associate, kind: fit, group: title, field: job_title, match: {contains: marketing associate}, points: -10}
      - {id: title-student, kind: fit, group: title, field: job_title, match: {contains: student}, points: -10}
      - {id: free-email, kind: fit, field: email, match: {free_email: true}, points: -10}
      - {id: competitor, kind: fit, field: email, match: {email_domain_in: [hooli.xyz]}, points: -25}
      - {id: pricing-page, kind: behavior, group: pages, event: page_view, match: {url: {glob: "*/pricing*"}}, points: 9, max_per_day: 1, max_points: 27, window_days: 90, half_life_days: 30}
      - {id: careers-page, kind: behavior, group: pages, event: page_view, match: {url: {glob: "*/careers*"}}, points: -5, max_points: 15, window_days: 90}
      - {id: other-page, kind: behavior, group: pages, event: page_view, points: 6, max_per_day: 3, max_points: 30, window_days: 90, half_life_days: 30}
      - {id: email-open, kind: behavior, event: email_open, points: 7, max_per_day: 1, max_points: 14, window_days: 60}
      - {id: email-click, kind: behavior, event: email_click, points: 8, max_points: 24, window_days: 90, half_life_days: 30}
      - {id: email-reply, kind: behavior, event: email_reply, points: 8, max_points: 24, window_days: 90}
      - {id: demo-request, kind: behavior, event: form_submit, match: {form: demo-request}, points: 0, immediate: true, window_days: 30}
      - {id: form-submit, kind: behavior, event: form_submit, points: 7, max_points: 21, window_days: 90}
      - {id: meeting-booked, kind: behavior, event: meeting_booked, points: 10, max_points: 20, window_days: 90}
      - {id: unsubscribe, kind: behavior, event: unsubscribe, points: -20, max_points: 20}
    decay:
      - {inactive_days: 30, points: -15}
      - {inactive_days: 60, points: -30}
      - {inactive_days: 90, points: -50}
"""


def build_frames(
    n_contacts: int, n_events: int, seed: int = 20260630
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The seeded workload, as a reader would hand it over (text ids, UTC times).

    Built in chunks so that generating it does not set the process's peak RSS.
    Low-cardinality event columns (type, url, form) are categorical, as a columnar
    reader would load them.
    """
    rng = np.random.default_rng(seed)
    chunk = 1_000_000
    contact_parts = []
    created_from = int((AS_OF - timedelta(days=400)).timestamp() * 1_000_000)
    for low in range(0, n_contacts, chunk):
        size = min(chunk, n_contacts - low)
        part = pl.DataFrame(
            {
                "i": np.arange(low, low + size, dtype=np.int64),
                "t": rng.integers(0, len(TITLES), size).astype(np.uint32),
                "d": rng.integers(0, len(DOMAINS), size).astype(np.uint32),
                "s": rng.integers(0, len(STAGES), size).astype(np.uint32),
                "c": created_from + rng.integers(0, 400 * 86_400_000_000, size),
            }
        ).select(
            pl.format("c{}", pl.col("i")).alias("id"),
            pl.col("c").cast(pl.Datetime("us", "UTC")).alias("created_at"),
            _pick("t", TITLES).alias("job_title"),
            pl.format("user{}@{}", pl.col("i"), _pick("d", DOMAINS)).alias("email"),
            _pick("s", STAGES).alias("lifecycle_stage"),
        )
        contact_parts.append(part)
    contacts = pl.concat(contact_parts)
    del contact_parts

    urls = [
        f"https://www.example.com/{section}/{n}"
        for section in ("blog", "docs", "product", "pricing", "careers")
        for n in range(40)
    ]
    weights = np.array(TYPE_WEIGHTS) / sum(TYPE_WEIGHTS)
    start_us = int((AS_OF - timedelta(days=180)).timestamp() * 1_000_000)
    event_parts = []
    for low in range(0, n_events, chunk):
        size = min(chunk, n_events - low)
        part = pl.DataFrame(
            {
                "o": rng.integers(0, n_contacts, size),
                "k": rng.choice(len(EVENT_TYPES), size, p=weights).astype(np.uint32),
                "w": start_us + rng.integers(0, 180 * 86_400_000_000, size),
                "u": rng.integers(0, len(urls), size).astype(np.uint32),
                "f": rng.integers(0, len(FORMS), size).astype(np.uint32),
            }
        ).select(
            pl.format("c{}", pl.col("o")).alias("contact_id"),
            _pick("k", EVENT_TYPES, pl.Categorical).alias("type"),
            pl.col("w").cast(pl.Datetime("us", "UTC")).alias("occurred_at"),
            pl.when(pl.col("k") == EVENT_TYPES.index("page_view"))
            .then(_pick("u", urls, pl.Categorical))
            .alias("url"),
            pl.when(pl.col("k") == EVENT_TYPES.index("form_submit"))
            .then(_pick("f", FORMS, pl.Categorical))
            .alias("form"),
        )
        event_parts.append(part)
    events = pl.concat(event_parts)
    del event_parts
    return contacts, events


def _pick(column: str, values: list[str], dtype: type[pl.DataType] = pl.String) -> pl.Expr:
    return pl.col(column).replace_strict(list(range(len(values))), values, return_dtype=dtype)


def load_model() -> tuple[ModelSet, str]:
    starter = (
        Path(__file__).resolve().parent.parent / "scoring" / "data" / "models" / "starter.yaml"
    )
    if starter.exists():
        return load_models(starter.read_text(encoding="utf-8"), str(starter)), str(starter)
    return load_models(FALLBACK_MODEL, "benchmarks/score_throughput.py"), "built-in copy"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--no-objects", action="store_true", help="time the columnar result only")
    args = parser.parse_args(argv)

    models, source = load_model()
    t0 = time.perf_counter()
    contacts, events = build_frames(args.contacts, args.events)
    gc.collect()
    built = time.perf_counter() - t0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"model: {source}; workload: {args.contacts:,} contacts, {args.events:,} events "
        f"(built in {built:.1f} s, not timed; peak RSS so far {rss_before:,.0f} MiB)"
    )

    # CPU seconds next to wall seconds: the machine is shared, and CPU time says how
    # much work was done whatever else ran at the same time.
    t1, c1 = time.perf_counter(), time.process_time()
    columns = score_columns(models, contacts, events, as_of=AS_OF)
    t2, c2 = time.perf_counter(), time.process_time()
    columnar = t2 - t1
    print(
        f"score_columns: {columnar:.2f} s wall, {c2 - c1:.2f} s CPU; "
        f"{args.events / columnar:,.0f} events/s "
        f"({columns.scores.height:,} scores, {columns.reasons.height:,} reasons)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS after score_columns: {peak:,.0f} MiB")
    if args.no_objects:
        return 0

    # Result objects streamed a chunk at a time (what a writer of JSON lines needs).
    streamed = 0
    for _ in iter_results(columns):
        streamed += 1
    t3, c3 = time.perf_counter(), time.process_time()
    total = (t2 - t1) + (t3 - t2)
    print(
        f"score_columns + iter_results (objects streamed): {total:.2f} s wall, "
        f"{(c2 - c1) + (c3 - c2):.2f} s CPU; {args.events / total:,.0f} events/s "
        f"({t3 - t2:.2f} s building {streamed:,} results)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS after streaming objects: {peak:,.0f} MiB")

    # score_frames: every result object held in one list.
    t4, c4 = time.perf_counter(), time.process_time()
    results = results_from_columns(columns)
    t5, c5 = time.perf_counter(), time.process_time()
    total = (t2 - t1) + (t5 - t4)
    print(
        f"score_frames (list of ScoreResult): {total:.2f} s wall, "
        f"{(c2 - c1) + (c5 - c4):.2f} s CPU; {args.events / total:,.0f} events/s "
        f"({t5 - t4:.2f} s building {len(results):,} results)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS with the list: {peak:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
