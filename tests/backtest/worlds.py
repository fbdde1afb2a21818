"""Seeded histories with a known answer, for the leakage and advice tests.

Sizes are fixed so that the null AUC's standard error (contacts resampled) is at most
a third of 0.05: with about 600 converting contacts among 4,000, it is near 0.012.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from scheduler.backtest import (
    DEALS_SCHEMA,
    HistoryData,
    HubSpotStages,
    NoReconstruction,
    SalesforceConversion,
)
from scoring.model import ModelSet, load_models

T0 = datetime(2025, 1, 1, tzinfo=UTC)
END = T0 + timedelta(days=365)
UTC_DT = pl.Datetime("us", "UTC")

Signal = Literal["before", "after", "field", "none"]

MODEL = """
models:
  - name: {name}
    score_field: leadsync_score
    applies_to:
      - {{field: lifecycle_stage, match: {{in: [subscriber, lead, customer]}}}}
    bands: {{hot: 50, warm: 25}}
    rules:
      - {{id: customer, kind: fit, field: lifecycle_stage, match: customer, points: 60}}
      - {{id: pages, kind: behavior, event: page_view, points: 4, max_points: 20, window_days: 30}}
      - {{id: meeting, kind: behavior, event: meeting_booked, points: {meeting}, max_points: 60, window_days: 45}}
      - {{id: careers, kind: behavior, event: page_view_careers, points: -10, max_points: 10, window_days: 20}}
    decay:
      - {{inactive_days: 40, points: -10}}
"""


def model(name: str = "current", meeting_points: int = 30) -> ModelSet:
    return load_models(MODEL.format(name=name, meeting=meeting_points), f"{name}.yaml")


def world(
    signal: Signal,
    *,
    crm: Literal["hubspot", "salesforce", "files"] = "hubspot",
    contacts: int = 4000,
    seed: int = 11,
    convert: float = 0.3,
) -> HistoryData:
    """``contacts`` people created over the first 300 days; a share ``convert`` gets a
    deal some time later, about two thirds of deals won. Noise events for all.

    ``before``: converting contacts book meetings in the 40 days before their deal.
    ``after``: they book them only after the deal was created.
    ``field``: their only trace is the current lifecycle stage ``customer`` (rebuilt
    from stage dates on HubSpot, from the conversion date on Salesforce, unknowable
    in a plain export).
    """
    rng = np.random.default_rng(seed)
    n = contacts
    ids = np.array([f"c{i}" for i in range(n)])
    created_us = rng.integers(0, 300 * 86_400_000_000, n)
    created = T0 + created_us.astype("timedelta64[us]").astype(object)
    converts = rng.random(n) < convert
    delay_days = rng.uniform(5, 120, n)
    deal_at = np.array(
        [c + timedelta(days=float(d)) for c, d in zip(created, delay_days, strict=True)]
    )
    converts &= deal_at < END - timedelta(days=1)
    won = converts & (rng.random(n) < 0.67)
    close_at = np.array(
        [d + timedelta(days=float(x)) for d, x in zip(deal_at, rng.uniform(1, 40, n), strict=True)]
    )
    closed = np.array([min(c, END) for c in close_at])
    deals = pl.DataFrame(
        {
            "deal_id": [f"d{i}" for i in np.flatnonzero(converts)],
            "contact_id": ids[converts],
            "created_at": pl.Series(deal_at[converts].tolist(), dtype=UTC_DT),
            "closed_at": pl.Series(
                [c if c < END else None for c in closed[converts]], dtype=UTC_DT
            ),
            "outcome": np.where(
                closed[converts] < END, np.where(won[converts], "won", "lost"), "open"
            ),
            "amount": rng.uniform(1000, 9000, int(converts.sum())),
        },
        schema=DEALS_SCHEMA,
    )

    # Noise: page views at random times after creation, for everyone.
    per = rng.poisson(12, n)
    owner = np.repeat(np.arange(n), per)
    offset = rng.uniform(0, 1, len(owner)) * ((END - T0).total_seconds() - created_us[owner] / 1e6)
    noise_at = created_us[owner] + (offset * 1e6).astype(np.int64)
    careers = rng.random(len(owner)) < 0.1
    types = np.where(careers, "page_view_careers", "page_view")
    ev_contact = [ids[owner]]
    ev_type = [types]
    ev_at = [noise_at]
    if signal in ("before", "after"):
        who = np.flatnonzero(converts)
        k = 3
        who_rep = np.repeat(who, k)
        deal_us = np.array(
            [int((d - T0).total_seconds() * 1e6) for d in deal_at[who_rep]], dtype=np.int64
        )
        spread = (rng.uniform(1, 40, len(who_rep)) * 86_400_000_000).astype(np.int64)
        at = deal_us - spread if signal == "before" else deal_us + spread
        ev_contact.append(ids[who_rep])
        ev_type.append(np.full(len(who_rep), "meeting_booked"))
        ev_at.append(at)
    all_at = np.concatenate(ev_at)
    events = pl.DataFrame(
        {
            "contact_id": np.concatenate(ev_contact),
            "type": np.concatenate(ev_type),
            "occurred_at": pl.Series(all_at, dtype=pl.Int64)
            .cast(pl.Datetime("us"))
            .dt.replace_time_zone("UTC")
            + (T0 - datetime(1970, 1, 1, tzinfo=UTC)),
        }
    ).filter(pl.col("occurred_at") <= END)
    events = events.with_columns(pl.format("e{}", pl.int_range(pl.len())).alias("id"))

    # Current lifecycle stage: customer when won (the CRM set it at conversion).
    stage = np.where(won, "customer", np.where(converts, "opportunity", "lead"))
    frame = pl.DataFrame(
        {
            "id": ids,
            "created_at": pl.Series(created.tolist(), dtype=UTC_DT),
            "lifecycle_stage": stage,
        }
    )
    reconstruction = NoReconstruction()
    if crm == "hubspot":
        lead_date = frame.get_column("created_at")
        cust = pl.Series(
            [c if w else None for c, w in zip(closed.tolist(), won, strict=True)], dtype=UTC_DT
        )
        opp = pl.Series(
            [d if c else None for d, c in zip(deal_at.tolist(), converts, strict=True)],
            dtype=UTC_DT,
        )
        frame = frame.with_columns(
            lead_date.alias("hs_lifecyclestage_lead_date"),
            opp.alias("hs_lifecyclestage_opportunity_date"),
            cust.alias("hs_lifecyclestage_customer_date"),
        )
        reconstruction = HubSpotStages(frame.columns)
    elif crm == "salesforce":
        frame = frame.with_columns(
            pl.Series(
                [d if c else None for d, c in zip(deal_at.tolist(), converts, strict=True)],
                dtype=UTC_DT,
            ).alias("converted_at"),
            pl.lit("lead").alias("kind"),
        )
        reconstruction = SalesforceConversion()
    return HistoryData(
        contacts=frame,
        events=events,
        deals=deals,
        data_end=END,
        source=crm,
        reconstruction=reconstruction,
    )


def write_project(data: HistoryData, root: Path, models: dict[str, str] | None = None) -> Path:
    """The world as exports plus a ``files`` configuration; returns the config path."""
    root.mkdir(parents=True, exist_ok=True)
    iso = "%Y-%m-%dT%H:%M:%S%.6fZ"
    contacts = data.contacts.with_columns(
        [pl.col(c).dt.strftime(iso) for c, t in data.contacts.schema.items() if t == UTC_DT]
    )
    contacts.drop("kind", strict=False).write_csv(root / "contacts.csv")
    data.events.with_columns(pl.col("occurred_at").dt.strftime(iso)).write_ndjson(
        root / "events.jsonl"
    )
    data.deals.with_columns(
        pl.col("created_at").dt.strftime(iso), pl.col("closed_at").dt.strftime(iso)
    ).write_csv(root / "outcomes.csv")
    models = models or {"model.yaml": MODEL.format(name="current", meeting=30)}
    for name, text in models.items():
        (root / name).write_text(text)
    config = root / "leadsync.yaml"
    config.write_text(
        "crm:\n  type: files\n  files:\n    contacts: contacts.csv\n    events: events.jsonl\n"
        f"    outcomes: outcomes.csv\nmodels: [{', '.join(models)}]\nstate: sqlite:///state.db\n"
        "writeback:\n  on_cross:\n    deal: null\n"
    )
    return config
