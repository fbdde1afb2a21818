"""The backtest: how would the models have scored the past, and did it predict the deals?

Semantics are written up in docs/backtest.md, precisely enough to recompute every
figure; in short:

* Snapshots at ``start``, ``start + every``, ... up to ``end``. A snapshot whose
  horizon ends after the data is dropped and listed, never silently shortened.
* At snapshot ``t`` the eligible contacts are those created at or before ``t`` with
  no deal created at or before ``t`` and not converted (Salesforce Lead conversion)
  at or before ``t``. Each is scored with ``as_of = t`` from the events at or before
  ``t``, by the scoring engine in one batch per snapshot.
* Fields the CRM changes when a person converts (lifecycle stage, Lead Status,
  converted flags) would tell the model the answer. They are rebuilt as of ``t`` where
  the history allows (:class:`Reconstruction`); a condition or fit rule on such a
  field that cannot be rebuilt is dropped from the model and listed in
  ``left_out_fields``.
* The label of (contact, ``t``) is 1 when a deal of the contact is created in
  ``(t, t + horizon]`` and, for milestone ``won``, won at or before ``t + horizon``.
* Leads per week and days from crossing to deal replay the sync: scores evaluated
  once a day at 00:00 UTC from ``start`` to ``end``, crossings with ``rearm_below``,
  the first day a baseline (contacts already above the threshold are disarmed
  without being counted, as at go-live).

The daily replay does not score every contact every day. Between two days a
contact's score can only rise through a new event, a negative rule's event leaving
its window (or fading by a half-life), its creation, or a rebuilt field changing; in
between it never rises. So a contact is scored on each day such a thing happens and
on the day before (the lowest point since the previous such day, which decides
whether it was re-armed). ``tests/backtest`` holds this to scoring every day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import numpy as np
import polars as pl

from scoring import evaluation as ev
from scoring.engine import score_columns
from scoring.model import BehaviorRule, FitRule, ScoringModel
from scoring.vocabulary import LIFECYCLE_STAGES, STAGE_DATE_PREFIX, STAGE_DATE_SUFFIX

__all__ = [
    "BacktestOptions",
    "BacktestResult",
    "HistoryData",
    "HistorySource",
    "HubSpotStages",
    "ModelRun",
    "NoReconstruction",
    "Reconstruction",
    "SalesforceConversion",
    "labelled_snapshots",
    "run_backtest",
]

Milestone = Literal["won", "deal"]
_DAY = timedelta(days=1)
_UTC_DT = pl.Datetime("us", "UTC")
_US_PER_DAY = 86_400_000_000
# HubSpot's default lifecycle stages in their order: on equal dates the later wins.
HUBSPOT_STAGES = LIFECYCLE_STAGES
# Canonical fields a CRM changes when a person converts or buys; a current value of any
# of them tells the backtest the answer unless it is rebuilt as of the snapshot.
CHANGED_AT_CONVERSION = frozenset(
    {
        "lifecycle_stage",
        "lead_status",
        "hs_lead_status",
        "status",
        "converted",
        "is_converted",
        "converted_at",
        "kind",
    }
)


# --- history -------------------------------------------------------------------------------


class Reconstruction(Protocol):
    """Rebuilds fields the CRM changes at conversion as they were at a past instant."""

    @property
    def rebuilt(self) -> frozenset[str]:
        """Fields :meth:`as_of` sets; every other field of ``CHANGED_AT_CONVERSION``
        is unknown in the past."""
        ...

    def as_of(self, contacts: pl.DataFrame, t: datetime) -> pl.DataFrame:
        """``contacts`` (eligible at ``t``) with the rebuilt fields as of ``t``."""
        ...

    def change_times(self, contacts: pl.DataFrame) -> pl.DataFrame:
        """``(id, at)``: instants at which a rebuilt field changes (for the daily replay)."""
        ...


class NoReconstruction:
    """Nothing can be rebuilt (an export without history)."""

    rebuilt: frozenset[str] = frozenset()

    def as_of(self, contacts: pl.DataFrame, t: datetime) -> pl.DataFrame:
        return contacts

    def change_times(self, contacts: pl.DataFrame) -> pl.DataFrame:
        return pl.DataFrame(schema={"id": pl.String, "at": _UTC_DT})


class HubSpotStages:
    """``lifecycle_stage`` from HubSpot's ``hs_lifecyclestage_<stage>_date`` properties.

    HubSpot records when a contact entered each stage; the stage at ``t`` is the one
    entered last at or before ``t`` (the later stage on equal dates). Before the first
    recorded date the stage is unknown (null), which no ``in`` condition matches.
    """

    rebuilt = frozenset({"lifecycle_stage"})

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = {
            c[len(STAGE_DATE_PREFIX) : -len(STAGE_DATE_SUFFIX)]: c
            for c in columns
            if c.startswith(STAGE_DATE_PREFIX) and c.endswith(STAGE_DATE_SUFFIX)
        }

    @staticmethod
    def available(columns: Sequence[str]) -> bool:
        return any(
            c.startswith(STAGE_DATE_PREFIX) and c.endswith(STAGE_DATE_SUFFIX) for c in columns
        )

    def _rank(self, stage: str) -> int:
        return HUBSPOT_STAGES.index(stage) if stage in HUBSPOT_STAGES else len(HUBSPOT_STAGES)

    def as_of(self, contacts: pl.DataFrame, t: datetime) -> pl.DataFrame:
        stages = sorted(self.columns, key=self._rank)
        if not stages:
            return contacts.with_columns(pl.lit(None, dtype=pl.String).alias("lifecycle_stage"))
        # Each stage's entry date if it is at or before t; the latest of them is the
        # stage at t. Stages go in HubSpot's order, so that the later stage wins on equal
        # dates. (One flat chain: an expression that referred to the previous step's
        # result twice would double in size with every stage.)
        known = {
            stage: pl.when(pl.col(self.columns[stage]) <= t).then(pl.col(self.columns[stage]))
            for stage in stages
        }
        latest = "__stage_latest"
        with_latest = contacts.with_columns(pl.max_horizontal(list(known.values())).alias(latest))
        best: pl.Expr = pl.lit(None, dtype=pl.String)
        for stage in stages:
            best = (
                pl.when(known[stage].is_not_null() & (known[stage] == pl.col(latest)))
                .then(pl.lit(stage))
                .otherwise(best)
            )
        return with_latest.with_columns(best.cast(pl.String).alias("lifecycle_stage")).drop(latest)

    def change_times(self, contacts: pl.DataFrame) -> pl.DataFrame:
        parts = [
            contacts.select(pl.col("id"), pl.col(column).alias("at")).drop_nulls()
            for column in self.columns.values()
        ]
        if not parts:
            return NoReconstruction().change_times(contacts)
        return pl.concat(parts)


class SalesforceConversion:
    """A person eligible at ``t`` (no deal created and not converted by ``t``) was a
    Lead then, in marketing's hands: ``lifecycle_stage`` is ``lead`` and the converted
    flags are false. ``kind`` is ``lead`` for a Contact converted later (its Lead's
    history counts as its own). Lead Status is not rebuilt: its history is not read.
    """

    rebuilt = frozenset({"lifecycle_stage", "converted", "is_converted", "kind"})

    def as_of(self, contacts: pl.DataFrame, t: datetime) -> pl.DataFrame:
        kind: pl.Expr = pl.lit("lead")
        if "kind" in contacts.columns:
            converted_later = (
                pl.col("converted_at").is_not_null()
                if "converted_at" in contacts.columns
                else pl.lit(value=False)
            )
            kind = pl.when(converted_later).then(pl.lit("lead")).otherwise(pl.col("kind"))
        return contacts.with_columns(
            pl.lit("lead").alias("lifecycle_stage"),
            pl.lit("false").alias("converted"),
            pl.lit("false").alias("is_converted"),
            kind.alias("kind"),
        )

    def change_times(self, contacts: pl.DataFrame) -> pl.DataFrame:
        return NoReconstruction().change_times(contacts)


@dataclass(frozen=True)
class HistoryData:
    """Everything a backtest reads, as frames.

    ``contacts``: ``id``, ``created_at`` (UTC), optional ``converted_at`` (UTC), every
    field the models read in its text form, and what ``reconstruction`` needs.
    ``events``: the engine's event frame (``contact_id, type, occurred_at, id``, attributes).
    ``deals``: one row per (deal, contact): ``deal_id, contact_id, created_at,
    closed_at, outcome`` (``won``, ``lost`` or ``open``)``, amount``.
    ``data_end``: the instant up to which the history is complete (the last read).
    ``kept_since``: the oldest instant events are kept from (``None``: all of them).
    """

    contacts: pl.DataFrame
    events: pl.DataFrame
    deals: pl.DataFrame
    data_end: datetime
    source: str
    reconstruction: Reconstruction = field(default_factory=NoReconstruction)
    kept_since: datetime | None = None


class HistorySource(Protocol):
    """Where a backtest's history comes from: files, or the sync's state store."""

    def load(self, models: Sequence[ScoringModel]) -> HistoryData: ...


DEALS_SCHEMA: dict[str, Any] = {
    "deal_id": pl.String,
    "contact_id": pl.String,
    "created_at": _UTC_DT,
    "closed_at": _UTC_DT,
    "outcome": pl.String,
    "amount": pl.Float64,
}


def data_end_of(contacts: pl.DataFrame, events: pl.DataFrame, deals: pl.DataFrame) -> datetime:
    """The newest instant in a history: what an export knows of."""
    candidates: list[datetime] = []
    for frame, columns in (
        (events, ("occurred_at",)),
        (deals, ("created_at", "closed_at")),
        (contacts, ("created_at",)),
    ):
        for column in columns:
            if column in frame.columns and frame.height:
                value = frame.get_column(column).max()
                if isinstance(value, datetime):
                    candidates.append(value.astimezone(UTC))
    if not candidates:
        raise ValueError("the history is empty: no contact, event or deal carries a date")
    return max(candidates)


# --- options and results ----------------------------------------------------------------------


@dataclass(frozen=True)
class BacktestOptions:
    start: datetime | None = None
    end: datetime | None = None
    every: timedelta = timedelta(days=7)
    horizon: timedelta = timedelta(days=90)
    milestone: Milestone = "won"
    capacity: float | None = None
    resamples: int = 1000
    seed: int = 20261206
    default_span: timedelta = timedelta(weeks=26)


@dataclass
class ModelRun:
    """One model's pooled pairs, daily observations and figures."""

    name: str
    model: ScoringModel
    pairs: pl.DataFrame  # t, contact_id, score, band, label
    observations: pl.DataFrame  # contact_id, day, score
    crossings: pl.DataFrame  # contact_id, at, days_to_deal
    figures: dict[str, Any]


@dataclass
class BacktestResult:
    source: str
    options: BacktestOptions
    start: datetime
    end: datetime
    data_end: datetime
    snapshots: list[datetime]
    dropped: list[dict[str, str]]
    left_out: list[dict[str, Any]]
    caveats: list[str]
    runs: list[ModelRun]
    comparison: dict[str, Any] | None
    advice: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (keys documented in docs/backtest.md)."""
        o = self.options
        return {
            "source": self.source,
            "window": {
                "from": _iso(self.start),
                "to": _iso(self.end),
                "every_days": o.every / _DAY,
                "horizon_days": o.horizon / _DAY,
                "milestone": o.milestone,
                "data_end": _iso(self.data_end),
            },
            "snapshots": [_iso(t) for t in self.snapshots],
            "dropped_snapshots": self.dropped,
            "left_out_fields": self.left_out,
            "caveats": self.caveats,
            "models": {run.name: run.figures for run in self.runs},
            "comparison": self.comparison,
            "threshold_advice": self.advice,
        }


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _midnight(t: datetime) -> datetime:
    t = _utc(t)
    return datetime(t.year, t.month, t.day, tzinfo=UTC)


# --- left-out fields -----------------------------------------------------------------------


def usable_model(
    model: ScoringModel, unknown: frozenset[str]
) -> tuple[ScoringModel, list[dict[str, Any]]]:
    """The model without conditions and fit rules on fields unknown in the past."""
    dropped_conditions = [c for c in model.applies_to if c.field in unknown]
    dropped_rules = [r for r in model.rules if isinstance(r, FitRule) and r.field in unknown]
    if not dropped_conditions and not dropped_rules:
        return model, []
    notes: dict[str, dict[str, Any]] = {}
    for condition in dropped_conditions:
        note = notes.setdefault(
            condition.field,
            {"field": condition.field, "model": model.name, "applies_to": 0, "rules": []},
        )
        note["applies_to"] += 1
    for rule in dropped_rules:
        assert isinstance(rule, FitRule)
        note = notes.setdefault(
            rule.field, {"field": rule.field, "model": model.name, "applies_to": 0, "rules": []}
        )
        note["rules"].append(rule.id)
    for note in notes.values():
        note["reason"] = (
            "the CRM changes this field when a person converts and its past values are "
            "not in the history, so it was ignored"
        )
    keep_rules = [r for r in model.rules if r not in dropped_rules]
    keep_conditions = [c for c in model.applies_to if c not in dropped_conditions]
    changed = model.model_copy(update={"applies_to": keep_conditions, "rules": keep_rules})
    return changed, list(notes.values())


def _fields_read(model: ScoringModel) -> set[str]:
    out = {c.field for c in model.applies_to}
    out.update(r.field for r in model.rules if isinstance(r, FitRule))
    return out


# --- the run ---------------------------------------------------------------------------------


def plan_snapshots(
    options: BacktestOptions, data_end: datetime
) -> tuple[datetime, datetime, list[datetime], list[dict[str, str]]]:
    """``(start, end, kept, dropped)`` as docs/backtest.md defines the defaults."""
    if options.every <= timedelta(0):
        raise ValueError("--every must be positive")
    if options.horizon <= timedelta(0):
        raise ValueError("--horizon must be positive")
    end = _utc(options.end) if options.end else _midnight(data_end - options.horizon)
    start = _utc(options.start) if options.start else end - options.default_span
    if start > end:
        raise ValueError(f"--from ({_iso(start)}) is after --to ({_iso(end)})")
    kept: list[datetime] = []
    dropped: list[dict[str, str]] = []
    t = start
    while t <= end:
        if t + options.horizon > data_end:
            dropped.append(
                {
                    "at": _iso(t),
                    "reason": f"its horizon ends at {_iso(t + options.horizon)}, "
                    f"after the data ({_iso(data_end)})",
                }
            )
        else:
            kept.append(t)
        t = t + options.every
    return start, end, kept, dropped


def _eligible(contacts: pl.DataFrame, t: datetime) -> pl.Expr:
    expr = pl.col("created_at").is_null() | (pl.col("created_at") <= t)
    expr = expr & (pl.col("_first_deal").is_null() | (pl.col("_first_deal") > t))
    if "converted_at" in contacts.columns:
        expr = expr & (pl.col("converted_at").is_null() | (pl.col("converted_at") > t))
    return expr


def _prepare_contacts(data: HistoryData) -> pl.DataFrame:
    contacts = data.contacts
    if "created_at" not in contacts.columns:
        contacts = contacts.with_columns(pl.lit(None, dtype=_UTC_DT).alias("created_at"))
    first = data.deals.group_by("contact_id").agg(pl.col("created_at").min().alias("_first_deal"))
    return contacts.join(first, left_on="id", right_on="contact_id", how="left")


def _labels(
    deals: pl.DataFrame, snapshots: Sequence[datetime], horizon: timedelta, milestone: Milestone
) -> pl.DataFrame:
    """``(t, contact_id)`` of every positive label."""
    times = pl.DataFrame({"t": pl.Series(snapshots, dtype=_UTC_DT)})
    hits = deals.join(times, how="cross").filter(
        (pl.col("created_at") > pl.col("t")) & (pl.col("created_at") <= pl.col("t") + horizon)
    )
    if milestone == "won":
        hits = hits.filter(
            (pl.col("outcome") == "won") & (pl.col("closed_at") <= pl.col("t") + horizon)
        )
    return (
        hits.select("t", "contact_id")
        .unique()
        .with_columns(pl.lit(1, dtype=pl.Int8).alias("label"))
    )


def labelled_snapshots(
    data: HistoryData,
    snapshots: Sequence[datetime],
    *,
    horizon: timedelta,
    milestone: Milestone = "won",
) -> pl.DataFrame:
    """``(t, contact_id, label)`` for every contact eligible at each snapshot, before any
    model's scope: the backtest's eligibility and labels, for whoever computes their
    own features at ``t`` (a predictive model's training set, for one). Contact fields
    as of ``t`` come from ``data.reconstruction.as_of``."""
    contacts = _prepare_contacts(data)
    parts = [
        contacts.filter(_eligible(contacts, t)).select(
            pl.lit(t, dtype=_UTC_DT).alias("t"), pl.col("id").alias("contact_id")
        )
        for t in snapshots
    ]
    pairs = (
        pl.concat(parts) if parts else pl.DataFrame(schema={"t": _UTC_DT, "contact_id": pl.String})
    )
    labels = _labels(data.deals, snapshots, horizon, milestone)
    return pairs.join(labels, on=["t", "contact_id"], how="left").with_columns(
        pl.col("label").fill_null(0).cast(pl.Int8)
    )


def run_backtest(
    named_models: Sequence[tuple[str, ScoringModel]],
    data: HistoryData,
    options: BacktestOptions | None = None,
) -> BacktestResult:
    """Score every snapshot with every model and judge the scores against the deals."""
    options = options or BacktestOptions()
    start, end, snapshots, dropped = plan_snapshots(options, data.data_end)
    unknown = CHANGED_AT_CONVERSION - data.reconstruction.rebuilt
    usable: list[tuple[str, ScoringModel, ScoringModel]] = []
    left_out: list[dict[str, Any]] = []
    for name, model in named_models:
        changed, notes = usable_model(model, unknown)
        usable.append((name, model, changed))
        left_out.extend({**note, "model": name} for note in notes)
    contacts = _prepare_contacts(data)
    caveats = _caveats(data, named_models, start, snapshots, dropped)

    labels = _labels(data.deals, snapshots, options.horizon, options.milestone)
    pairs_by_model: dict[str, list[pl.DataFrame]] = {name: [] for name, _, _ in usable}
    for t in snapshots:  # one engine batch per snapshot (26 by default), not per contact
        scored = _score_at(contacts, data, [(n, m) for n, _, m in usable], t)
        for name, frame in scored.items():
            pairs_by_model[name].append(frame.with_columns(pl.lit(t, dtype=_UTC_DT).alias("t")))

    observations = _daily_observations(contacts, data, usable, start, end)
    runs: list[ModelRun] = []
    for name, original, model in usable:
        parts = pairs_by_model[name]
        pairs = (
            pl.concat(parts)
            if parts
            else pl.DataFrame(
                schema={
                    "contact_id": pl.String,
                    "score": pl.Float64,
                    "band": pl.String,
                    "t": _UTC_DT,
                }
            )
        )
        pairs = pairs.join(labels, on=["t", "contact_id"], how="left").with_columns(
            pl.col("label").fill_null(0).cast(pl.Int8)
        )
        obs = observations.get(name, _EMPTY_OBS)
        runs.append(_figures(name, original, model, pairs, obs, data.deals, start, end, options))

    comparison = _compare(runs, options) if len(runs) > 1 else None
    advice = runs[0].figures.get("threshold_advice") if runs else None
    return BacktestResult(
        source=data.source,
        options=options,
        start=start,
        end=end,
        data_end=data.data_end,
        snapshots=snapshots,
        dropped=dropped,
        left_out=left_out,
        caveats=caveats,
        runs=runs,
        comparison=comparison,
        advice=advice,
    )


_EMPTY_OBS = pl.DataFrame(schema={"contact_id": pl.String, "day": pl.Int64, "score": pl.Float64})


def _caveats(
    data: HistoryData,
    models: Sequence[tuple[str, ScoringModel]],
    start: datetime,
    snapshots: Sequence[datetime],
    dropped: Sequence[Mapping[str, str]],
) -> list[str]:
    out: list[str] = []
    if not snapshots:
        out.append("no snapshot is left: every horizon ends after the data; try an earlier --to")
    if dropped:
        out.append(f"{len(dropped)} snapshot(s) dropped: their horizon ends after the data")
    longest = 0.0
    for _, model in models:
        for rule in model.rules:
            if isinstance(rule, BehaviorRule):
                longest = max(longest, rule.window_days or 0.0)
        for step in model.decay:
            longest = max(longest, step.inactive_days)
    if data.kept_since is not None and start - timedelta(days=longest) < data.kept_since:
        out.append(
            f"the kept history starts at {_iso(data.kept_since)}, but scoring at {_iso(start)} "
            f"reads up to {longest:g} days back: early snapshots miss older events "
            "(raise state.retain_events)"
        )
    if data.deals.height == 0:
        out.append("the history holds no deals: every label is 0 and AUC cannot be computed")
    return out


def _score_at(
    contacts: pl.DataFrame,
    data: HistoryData,
    models: Sequence[tuple[str, ScoringModel]],
    t: datetime,
    only: pl.Series | None = None,
) -> dict[str, pl.DataFrame]:
    """``contact_id, score, band`` per model, for the contacts eligible at ``t``."""
    frame = contacts.filter(_eligible(contacts, t))
    if only is not None:
        frame = frame.filter(pl.col("id").is_in(only.implode()))
    frame = data.reconstruction.as_of(frame, t)
    out: dict[str, pl.DataFrame] = {}
    if frame.height == 0:
        for name, _ in models:
            out[name] = pl.DataFrame(
                schema={"contact_id": pl.String, "score": pl.Float64, "band": pl.String}
            )
        return out
    # Models keep their own names inside the engine; the run's name tells them apart.
    renamed = [m.model_copy(update={"name": f"m{i}"}) for i, (_, m) in enumerate(models)]
    columns = score_columns(renamed, frame, data.events, as_of=t)
    scores = columns.scores.select("contact_id", "model", "score", "band")
    for i, (name, _) in enumerate(models):
        out[name] = scores.filter(pl.col("model") == f"m{i}").drop("model")
    return out


def _daily_observations(
    contacts: pl.DataFrame,
    data: HistoryData,
    usable: Sequence[tuple[str, ScoringModel, ScoringModel]],
    start: datetime,
    end: datetime,
    *,
    every_day: bool = False,
) -> dict[str, pl.DataFrame]:
    """Scores on the days that can change a crossing (see the module docstring)."""
    n_days = int((end - start) / _DAY) + 1
    models = [m for _, _, m in usable]
    days = _candidate_days(contacts, data, models, start, n_days, every_day=every_day)
    by_day = days.group_by("day").agg(pl.col("contact_id")).sort("day")
    parts: dict[str, list[pl.DataFrame]] = {name: [] for name, _, _ in usable}
    named = [(name, m) for name, _, m in usable]
    for day, ids in by_day.iter_rows():  # one engine batch per day (at most 183), not per row
        t = start + day * _DAY
        for name, frame in _score_at(contacts, data, named, t, pl.Series(ids)).items():
            parts[name].append(frame.select("contact_id", pl.lit(day).alias("day"), "score"))
    return {
        name: (pl.concat(p).sort(["contact_id", "day"]) if p else _EMPTY_OBS)
        for name, p in parts.items()
    }


def _day_index(at: pl.Expr, start: datetime) -> pl.Expr:
    """The first daily instant at or after ``at``: ceil((at - start) / 1 day)."""
    us = (at - pl.lit(start, dtype=_UTC_DT)).dt.total_microseconds()
    return -((-us) // _US_PER_DAY)


def _candidate_days(
    contacts: pl.DataFrame,
    data: HistoryData,
    models: Sequence[ScoringModel],
    start: datetime,
    n_days: int,
    *,
    every_day: bool,
) -> pl.DataFrame:
    ids = contacts.select(pl.col("id").alias("contact_id"))
    if every_day:
        return ids.join(pl.DataFrame({"day": np.arange(n_days, dtype=np.int64)}), how="cross")
    types: set[str] = set()
    negative_windows: dict[str, set[float]] = {}
    fading_negative: set[str] = set()
    for model in models:
        for rule in model.rules:
            if not isinstance(rule, BehaviorRule):
                continue
            types.add(rule.event)
            if rule.points < 0 and rule.half_life_days is not None:
                fading_negative.add(rule.event)
            elif rule.points < 0 and rule.window_days is not None:
                negative_windows.setdefault(rule.event, set()).add(rule.window_days)
    events = data.events.lazy().select(
        pl.col("contact_id").cast(pl.String), pl.col("type").cast(pl.String), "occurred_at"
    )
    moments: list[pl.LazyFrame] = [
        events.filter(pl.col("type").is_in(sorted(types))).select("contact_id", "occurred_at"),
        contacts.lazy().select(
            pl.col("id").alias("contact_id"), pl.col("created_at").alias("occurred_at")
        ),
        data.reconstruction.change_times(contacts)
        .lazy()
        .select(pl.col("id").alias("contact_id"), pl.col("at").cast(_UTC_DT).alias("occurred_at")),
    ]
    for event_type, windows in negative_windows.items():
        for window in windows:
            moments.append(
                events.filter(pl.col("type") == event_type).select(
                    "contact_id",
                    (pl.col("occurred_at") + timedelta(days=window)).alias("occurred_at"),
                )
            )
    index = (
        pl.concat(moments)
        .drop_nulls()
        .select("contact_id", _day_index(pl.col("occurred_at"), start).alias("day"))
    )
    both = pl.concat([index, index.with_columns(pl.col("day") - 1)])
    baseline = ids.lazy().with_columns(pl.lit(0, dtype=pl.Int64).alias("day"))
    parts = [both.with_columns(pl.col("day").cast(pl.Int64)), baseline]
    if fading_negative:
        fading = (
            events.filter(pl.col("type").is_in(sorted(fading_negative)))
            .group_by("contact_id")
            .agg(_day_index(pl.col("occurred_at").min(), start).alias("first"))
            .join(pl.LazyFrame({"day": np.arange(n_days, dtype=np.int64)}), how="cross")
            .filter(pl.col("day") >= pl.col("first"))
            .select("contact_id", "day")
        )
        parts.append(fading)
    return (
        pl.concat(parts).filter((pl.col("day") >= 0) & (pl.col("day") < n_days)).unique().collect()
    )


def _crossings(obs: pl.DataFrame, model: ScoringModel, threshold: float) -> pl.DataFrame:
    mask = ev.crossing_mask(
        obs.get_column("contact_id").to_numpy(),
        obs.get_column("score").to_numpy(),
        obs.get_column("day").to_numpy() > 0,
        threshold=threshold,
        rearm_below=model.rearm_below,
    )
    return obs.filter(pl.Series(mask))


def _figures(
    name: str,
    original: ScoringModel,
    model: ScoringModel,
    pairs: pl.DataFrame,
    obs: pl.DataFrame,
    deals: pl.DataFrame,
    start: datetime,
    end: datetime,
    options: BacktestOptions,
) -> ModelRun:
    scores = pairs.get_column("score").to_numpy()
    labels = pairs.get_column("label").to_numpy().astype(bool)
    band_index = (
        pairs.get_column("band")
        .replace_strict({"hot": 0, "warm": 1, "cold": 2}, return_dtype=pl.Int64)
        .to_numpy()
    )
    at_threshold = ev.precision_recall_at(scores, labels, model.threshold)
    weeks = (end - start) / timedelta(weeks=1)

    crossed = _crossings(obs, model, model.threshold)
    crossings = _days_to_deal(crossed, deals, start, options.horizon)
    delays = crossings.get_column("days_to_deal").drop_nulls()
    f1 = ev.max_f1_threshold(scores, labels)
    advice: dict[str, Any] = {"f1": _pr(f1)}
    if options.capacity is not None:
        candidates = np.arange(
            np.ceil(model.rearm_below), np.floor(model.scale.max) + 1, 1.0, dtype=np.float64
        )
        best, rate = ev.capacity_threshold(
            obs.get_column("contact_id").to_numpy(),
            obs.get_column("score").to_numpy(),
            obs.get_column("day").to_numpy() > 0,
            weeks=weeks,
            capacity=options.capacity,
            rearm_below=model.rearm_below,
            candidates=candidates,
        )
        capacity: dict[str, Any] = {
            "capacity": options.capacity,
            "threshold": best,
            "precision": None,
            "recall": None,
            "crossings_per_week": rate,
        }
        if best is not None:
            at = ev.precision_recall_at(scores, labels, best)
            capacity.update(precision=at.precision, recall=at.recall)
        advice["capacity"] = capacity
    else:
        advice["capacity"] = None
    figures: dict[str, Any] = {
        "pairs": int(pairs.height),
        "contacts": int(pairs.get_column("contact_id").n_unique()),
        "positives": int(labels.sum()),
        "conversion": float(labels.mean()) if len(labels) else None,
        "auc": ev.roc_auc(scores, labels),
        "bands": [
            g.to_dict() for g in ev.group_table(["hot", "warm", "cold"], band_index, scores, labels)
        ],
        "deciles": [g.to_dict() for g in ev.decile_table(scores, labels)],
        "threshold": model.threshold,
        "rearm_below": model.rearm_below,
        "precision_at_threshold": at_threshold.precision,
        "recall_at_threshold": at_threshold.recall,
        "crossings": int(crossings.height),
        "leads_per_week": crossings.height / weeks if weeks > 0 else None,
        "crossings_with_deal": int(delays.len()),
        "median_days_to_deal": float(delays.median()) if delays.len() else None,  # type: ignore[arg-type]
        "threshold_advice": advice,
        "left_out": original is not model,
    }
    return ModelRun(name, model, pairs, obs, crossings, figures)


def _pr(value: ev.PrecisionRecall) -> dict[str, Any]:
    return {"threshold": value.threshold, "precision": value.precision, "recall": value.recall}


def _days_to_deal(
    crossed: pl.DataFrame, deals: pl.DataFrame, start: datetime, horizon: timedelta
) -> pl.DataFrame:
    """Each crossing with the days until the contact's first deal created after it
    (null when none follows within the horizon)."""
    at = crossed.select(
        "contact_id", (pl.lit(start, dtype=_UTC_DT) + pl.col("day") * _DAY).alias("at"), "score"
    ).sort("at")
    first = deals.select("contact_id", pl.col("created_at").alias("deal_at")).sort("deal_at")
    # Both sides are sorted by time above; polars cannot verify it within groups.
    joined = at.join_asof(
        first,
        left_on="at",
        right_on="deal_at",
        by="contact_id",
        strategy="forward",
        check_sortedness=False,
    )
    days = (pl.col("deal_at") - pl.col("at")).dt.total_microseconds() / _US_PER_DAY
    return joined.with_columns(
        pl.when(pl.col("deal_at") - pl.col("at") <= horizon).then(days).alias("days_to_deal")
    ).drop("deal_at")


def _compare(runs: Sequence[ModelRun], options: BacktestOptions) -> dict[str, Any]:
    """The second model against the first, on the pairs both scored."""
    first, second = runs[0], runs[1]
    both = first.pairs.select("t", "contact_id", pl.col("score").alias("a"), "label").join(
        second.pairs.select("t", "contact_id", pl.col("score").alias("b")),
        on=["t", "contact_id"],
        how="inner",
    )
    result = ev.auc_difference(
        both.get_column("a").to_numpy(),
        both.get_column("b").to_numpy(),
        both.get_column("label").to_numpy(),
        both.get_column("contact_id").to_numpy(),
        resamples=options.resamples,
        seed=options.seed,
    )
    return {
        "models": [first.name, second.name],
        "pairs": int(both.height),
        "auc": {
            first.name: ev.roc_auc(
                both.get_column("a").to_numpy(), both.get_column("label").to_numpy()
            ),
            second.name: ev.roc_auc(
                both.get_column("b").to_numpy(), both.get_column("label").to_numpy()
            ),
        },
        "auc_diff": result.diff,
        "ci95": None if result.low is None else [result.low, result.high],
        "resamples": result.resamples,
        "seed": result.seed,
    }
