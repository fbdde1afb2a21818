"""The scoring engine: models, contacts and events in; scores, bands and reasons out.

Semantics are those of docs/scoring.md (issue 2, "Semantics" and "Details"). The engine
is columnar: every rule becomes a filter, a join or a group-by over polars frames, so
that ten million events score in seconds. There is no per-event Python loop; the only
per-value Python work is ``regex`` (evaluated with Python's ``re`` on the *distinct*
values of a column, so that patterns mean what ``scoring.model`` validated) and the
rare rounding tie (see ``_round2_expr``).

Frame schema accepted by :func:`score_frames` / :func:`score_columns`:

contacts
    ``id`` (String), optional ``created_at`` (Datetime; naive means UTC), and one
    column per field the models read. Non-text columns are read through their text
    form: booleans as ``true``/``false``, numbers as polars prints them.
events
    ``contact_id`` (String or Categorical), ``type`` (String or Categorical),
    ``occurred_at`` (Datetime; naive means UTC), optional ``id`` (String), and one
    column per attribute (``url``, ``form``, ...). Row order is the last tie-breaker.

Floating-point totals are summed in an order that polars chooses, so an unrounded
total can differ from a sequential sum in the last bits; the rounded score differs only
when the total sits on a rounding boundary (``x.xx5``) within that error.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import polars as pl

from scoring.freemail import default_free_email_domains
from scoring.model import Bands, BehaviorRule, FitRule, Match, ModelSet, ScoringModel
from scoring.timeutil import parse_timestamp, to_iso

__all__ = [
    "ImmediateEvent",
    "Reason",
    "ScoreColumns",
    "ScoreResult",
    "band_for",
    "decay_rule_name",
    "results_from_columns",
    "round2",
    "score",
    "score_columns",
    "score_frames",
    "text_form",
]

Band = Literal["hot", "warm", "cold"]

_US_PER_DAY = 86_400_000_000
_NUMBER_RX = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
# The characters Python's str.strip() removes, so that "whitespace-only" means the same
# here as in plain Python code reading the same value.
_WHITESPACE = "".join(chr(i) for i in range(0x3001) if chr(i).isspace())
# Characters the Rust regex crate (which polars uses) treats as meta characters.
_RUST_META = set("\\.+*?()|[]{}^$#&-~")
_UTC_DT = pl.Datetime("us", "UTC")


# --- results ------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """One line of "why": a rule's points after its caps, or the decay removed."""

    rule: str
    kind: Literal["fit", "behavior", "decay"]
    points: float
    events: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "kind": self.kind, "points": self.points, "events": self.events}


@dataclass(frozen=True)
class ImmediateEvent:
    """The newest event of an ``immediate`` rule; write-back acts once per such event."""

    type: str
    occurred_at: datetime
    id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "occurred_at": to_iso(self.occurred_at), "id": self.id}


@dataclass(frozen=True)
class ScoreResult:
    contact_id: str
    model: str
    score: float
    band: Band
    immediate: bool
    immediate_event: ImmediateEvent | None
    last_activity_at: datetime | None
    reasons: tuple[Reason, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON line of ``leadsync score``."""
        return {
            "contact_id": self.contact_id,
            "model": self.model,
            "score": self.score,
            "band": self.band,
            "immediate": self.immediate,
            "immediate_event": (
                None if self.immediate_event is None else self.immediate_event.to_dict()
            ),
            "last_activity_at": (
                None if self.last_activity_at is None else to_iso(self.last_activity_at)
            ),
            "reasons": [r.to_dict() for r in self.reasons],
        }


def round2(x: float) -> float:
    """Half away from zero on the decimal value: ``12.345`` -> ``12.35``, ``-0.125`` -> ``-0.13``.

    The decimal value is the shortest repr, which is what a user reading the unrounded
    number would see; rounding the binary value instead would turn 12.345 into 12.34.
    """
    if not math.isfinite(x):
        return x
    return float(Decimal(repr(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)) + 0.0


def band_for(score: float, bands: Bands) -> Band:
    if score >= bands.hot:
        return "hot"
    if score >= bands.warm:
        return "warm"
    return "cold"


def decay_rule_name(inactive_days: float) -> str:
    """Name under which a decay step appears in reasons, e.g. ``decay-30d``."""
    value = float(inactive_days)
    shown: int | float = int(value) if value.is_integer() else value
    return f"decay-{shown}d"


def text_form(value: Any) -> str | None:
    """The text every operator reads for a value: one rule for files, CRMs and frames."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    text = text_form(value)
    if text is None:
        return None
    stripped = text.strip(_WHITESPACE)
    if re.fullmatch(_NUMBER_RX, stripped) is None:
        return None
    return float(stripped)


# --- matching -------------------------------------------------------------------------


def _rust_escape(text: str) -> str:
    return "".join("\\" + ch if ch in _RUST_META else ch for ch in text)


def _glob_regex(pattern: str) -> str:
    parts = []
    for ch in pattern.lower():
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(_rust_escape(ch))
    return "^(?s:" + "".join(parts) + ")$"


def _as_text(s: pl.Series) -> pl.Series:
    """A column's text form (see ``text_form``)."""
    dtype = s.dtype
    if dtype == pl.String:
        return s
    if dtype == pl.Null:
        return s.cast(pl.String)
    if isinstance(dtype, pl.Datetime):
        utc = _to_utc(s)
        frac = utc.dt.strftime("%.6f").str.slice(1)
        base = utc.dt.strftime("%Y-%m-%dT%H:%M:%S")
        return (
            pl.DataFrame({"b": base, "f": frac})
            .select(
                pl.when(pl.col("f") == "000000")
                .then(pl.col("b") + "Z")
                .otherwise(pl.col("b") + "." + pl.col("f") + "Z")
            )
            .to_series()
        )
    return s.cast(pl.String, strict=False)


def _to_utc(s: pl.Series) -> pl.Series:
    dtype = s.dtype
    if not isinstance(dtype, pl.Datetime):
        raise TypeError(f"{s.name}: expected a Datetime column, got {dtype}")
    if dtype.time_zone is None:
        s = s.dt.replace_time_zone("UTC")
    elif dtype.time_zone != "UTC":
        s = s.dt.convert_time_zone("UTC")
    return s.cast(_UTC_DT)


def _match_series(s: pl.Series, match: Match, free: frozenset[str]) -> pl.Series:
    """Where each value satisfies every operator of ``match``; null means missing."""
    text = _as_text(s)
    frame = pl.DataFrame({"v": text})
    v = pl.col("v")
    present = v.is_not_null()
    lower = v.str.to_lowercase()
    stripped = v.str.strip_chars(_WHITESPACE)
    num = pl.when(stripped.str.contains(_NUMBER_RX)).then(stripped.cast(pl.Float64, strict=False))
    domain = v.str.extract(r"@([^@]*)$", 1).str.to_lowercase()

    def equal(expected: Any) -> pl.Expr:
        expected_num = _number(expected)
        expected_text = (text_form(expected) or "").lower()
        as_text = lower == expected_text
        if expected_num is None:
            return as_text
        return pl.when(num.is_not_null()).then(num == expected_num).otherwise(as_text)

    conditions: list[pl.Expr] = []
    for name, arg in match.operators():
        cond: pl.Expr
        if name == "exists":
            is_there = present & (stripped.str.len_chars() > 0)
            cond = is_there.fill_null(value=False) == bool(arg)
            conditions.append(cond)
            continue
        if name == "equals":
            cond = equal(arg)
        elif name == "in":
            items = [equal(item) for item in arg]
            cond = pl.any_horizontal(items) if items else pl.lit(value=False)
        elif name == "contains":
            cond = lower.str.contains(str(arg).lower(), literal=True)
        elif name == "contains_any":
            needles = [lower.str.contains(str(a).lower(), literal=True) for a in arg]
            cond = pl.any_horizontal(needles) if needles else pl.lit(value=False)
        elif name == "glob":
            cond = lower.str.contains(_glob_regex(str(arg)))
        elif name == "regex":
            rx = re.compile(str(arg))
            values = text.drop_nulls().unique().to_list()
            hits = [x for x in values if rx.search(x) is not None]
            cond = v.is_in(pl.Series(hits, dtype=pl.String).implode())
        elif name in ("gt", "gte", "lt", "lte"):
            limit = float(arg)
            cond = {
                "gt": num > limit,
                "gte": num >= limit,
                "lt": num < limit,
                "lte": num <= limit,
            }[name]
        elif name == "email_domain_in":
            wanted = pl.Series([str(d).lower() for d in arg], dtype=pl.String)
            cond = domain.is_in(wanted.implode())
        elif name == "free_email":
            known = domain.is_in(pl.Series(sorted(free), dtype=pl.String).implode())
            cond = domain.is_not_null() & (known if arg else ~known)
        else:  # pragma: no cover - the model rejects unknown operators
            raise ValueError(f"unknown match operator {name!r}")
        conditions.append((present & cond).fill_null(value=False))
    if not conditions:
        return pl.Series("m", [True] * len(s), dtype=pl.Boolean)
    return frame.select(pl.all_horizontal(conditions).alias("m")).to_series()


def _match_column_expr(
    frame: pl.DataFrame, column: str, match: Match, free: frozenset[str]
) -> pl.Expr:
    """An expression over ``frame`` for ``match`` on ``column``, computed on distinct values.

    Event attributes have few distinct values (hundreds of URLs among millions of
    events), so matching the distinct values and looking rows up is far cheaper than
    running string operations on every row.
    """
    if column not in frame.columns:
        missing = _match_series(pl.Series([None], dtype=pl.String), match, free)[0]
        return pl.lit(bool(missing))
    distinct = frame.get_column(column).unique()
    hits = _match_series(distinct, match, free)
    chosen = distinct.filter(hits)
    null_hits = bool(chosen.null_count())
    chosen = chosen.drop_nulls()
    expr = pl.col(column).is_in(chosen.implode()).fill_null(value=False)
    if null_hits:
        expr = expr | pl.col(column).is_null()
    return expr


# --- the engine -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreColumns:
    """Scores as frames: what ``score_frames`` turns into ``ScoreResult`` objects.

    ``scores``: one row per scored contact and model, in contact order then model
    order: ``contact_id, model, raw`` (clipped, unrounded) ``, score, band, immediate,
    immediate_type, immediate_at, immediate_id, last_activity_at``.
    ``reasons``: ``contact_id, model, rule, kind, raw_points`` (unrounded) ``, points,
    events``, in the same order, rules in file order and decay last.
    """

    scores: pl.DataFrame
    reasons: pl.DataFrame


def _free_domains(model: ScoringModel) -> frozenset[str]:
    extra = {d.strip().lower().lstrip("@") for d in model.free_email_domains}
    return default_free_email_domains() | frozenset(extra)


def _as_utc_datetime(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _div_exact(numerator: pl.Expr, denominator: float) -> pl.Expr:
    """``numerator / denominator`` correctly rounded, like Python's ``/``.

    polars turns division by a literal into multiplication by its reciprocal, which is
    off by one ulp for values such as 1758 / 100; dividing by a column avoids that.
    """
    as_float = numerator.cast(pl.Float64)
    return as_float / (as_float * 0.0 + denominator)


def _round2_frame(frame: pl.DataFrame, source: str, target: str) -> pl.DataFrame:
    """Round ``source`` into ``target``; ``map_elements`` only on near-tie rows."""
    scaled = pl.col(source).abs() * 100.0
    floor = scaled.floor()
    frac = scaled - floor
    magnitude = _div_exact(pl.when(frac >= 0.5).then(floor + 1.0).otherwise(floor), 100.0)
    fast = pl.when(pl.col(source) < 0).then(-magnitude).otherwise(magnitude) + 0.0
    near = ((frac - 0.5).abs() < 1e-6) | (scaled > 1e12) | ~pl.col(source).is_finite()
    frame = frame.with_columns(fast.alias(target), near.fill_null(value=False).alias("_near"))
    if frame.get_column("_near").any():
        idx = frame.with_row_index("_r").filter(pl.col("_near"))
        fixed = [round2(v) for v in idx.get_column(source).to_list()]
        rows = idx.get_column("_r")
        values = frame.get_column(target).scatter(rows, pl.Series(fixed, dtype=pl.Float64))
        frame = frame.with_columns(values.alias(target))
    return frame.drop("_near")


def _prepare_contacts(contacts: pl.DataFrame) -> pl.DataFrame:
    if "id" not in contacts.columns:
        raise ValueError("contacts: missing column 'id'")
    frame = contacts.with_row_index("_ci")
    if frame.get_column("id").dtype != pl.String:
        frame = frame.with_columns(_as_text(frame.get_column("id")).alias("id"))
    if "created_at" in frame.columns:
        created = frame.get_column("created_at")
        if created.dtype == pl.Null:
            created = created.cast(_UTC_DT)
        frame = frame.with_columns(_to_utc(created).alias("_created"))
    else:
        frame = frame.with_columns(pl.lit(None, dtype=_UTC_DT).alias("_created"))
    return frame


def _prepare_events(
    events: pl.DataFrame, contacts: pl.DataFrame, attrs: set[str], as_of: datetime, types: set[str]
) -> pl.DataFrame:
    for column in ("contact_id", "type", "occurred_at"):
        if column not in events.columns:
            raise ValueError(f"events: missing column {column!r}")
    keep = ["contact_id", "type", "occurred_at"]
    if "id" in events.columns:
        keep.append("id")
    keep += sorted(a for a in attrs if a in events.columns and a not in keep)
    frame = events.select(keep).with_row_index("_seq")
    frame = frame.with_columns(_to_utc(frame.get_column("occurred_at")).alias("occurred_at"))
    frame = frame.filter((pl.col("occurred_at") <= as_of) & pl.col("type").is_in(sorted(types)))
    ids = contacts.select(pl.col("id").alias("contact_id"), "_ci")
    cid = frame.get_column("contact_id")
    if cid.dtype != pl.String:
        frame = frame.with_columns(cid.cast(pl.String))
    return frame.join(ids, on="contact_id", how="inner").drop("contact_id")


def score_columns(
    models: ModelSet | Sequence[ScoringModel],
    contacts: pl.DataFrame,
    events: pl.DataFrame,
    *,
    as_of: datetime,
) -> ScoreColumns:
    """Score every contact with every model that applies to it, as frames."""
    model_list = list(models.models if isinstance(models, ModelSet) else models)
    as_of = _as_utc_datetime(as_of)
    cframe = _prepare_contacts(contacts)
    attrs: set[str] = set()
    types: set[str] = set()
    for model in model_list:
        for rule in model.rules:
            if isinstance(rule, BehaviorRule):
                attrs.update(rule.match)
                types.add(rule.event)
    eframe = _prepare_events(events, cframe, attrs, as_of, types)

    score_parts: list[pl.DataFrame] = []
    reason_parts: list[pl.DataFrame] = []
    for index, model in enumerate(model_list):
        scores, reasons = _score_model(model, index, cframe, eframe, as_of)
        score_parts.append(scores)
        reason_parts.append(reasons)

    scores = pl.concat(score_parts).sort(["_ci", "_model"])
    reasons = pl.concat(reason_parts).sort(["_ci", "_model", "_order"])
    ids = cframe.select("_ci", pl.col("id").alias("contact_id"))
    names = pl.DataFrame(
        {"_model": list(range(len(model_list))), "model": [m.name for m in model_list]},
        schema={"_model": pl.UInt32, "model": pl.String},
    )
    scores = (
        scores.join(ids, on="_ci", how="left", maintain_order="left")
        .join(names, on="_model", how="left", maintain_order="left")
        .select(
            "contact_id",
            "model",
            "raw",
            "score",
            "band",
            "immediate",
            "immediate_type",
            "immediate_at",
            "immediate_id",
            "last_activity_at",
        )
    )
    reasons = (
        reasons.join(ids, on="_ci", how="left", maintain_order="left")
        .join(names, on="_model", how="left", maintain_order="left")
        .select("contact_id", "model", "rule", "kind", "raw_points", "points", "events")
    )
    return ScoreColumns(scores=scores, reasons=reasons)


def _score_model(
    model: ScoringModel,
    index: int,
    contacts: pl.DataFrame,
    events: pl.DataFrame,
    as_of: datetime,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    free = _free_domains(model)
    rules = list(model.rules)
    order_of = {rule.id: i for i, rule in enumerate(rules)}

    # 2. applies_to
    in_scope = pl.Series("s", [True] * contacts.height, dtype=pl.Boolean)
    for condition in model.applies_to:
        in_scope = in_scope & _match_series(
            _field(contacts, condition.field), condition.match, free
        )
    scoped = contacts.filter(in_scope).select("_ci", "_created")
    scope_mask = in_scope

    # 3. fit rules: first match per group, points summed in file order.
    fit_total = pl.lit(0.0)
    fit_reasons: list[pl.DataFrame] = []
    taken: dict[str, pl.Series] = {}
    fit_columns: dict[str, pl.Series] = {}
    for rule in rules:
        if not isinstance(rule, FitRule):
            continue
        hit = _match_series(_field(contacts, rule.field), rule.match, free) & scope_mask
        if rule.group is not None:
            before = taken.get(rule.group)
            if before is not None:
                hit = hit & ~before
                taken[rule.group] = before | hit
            else:
                taken[rule.group] = hit
        column = f"_fit{order_of[rule.id]}"
        fit_columns[column] = hit
        fit_total = fit_total + pl.when(pl.col(column)).then(rule.points).otherwise(0.0)
        fit_reasons.append(
            contacts.select("_ci")
            .filter(hit)
            .with_columns(
                pl.lit(order_of[rule.id], dtype=pl.UInt32).alias("_order"),
                pl.lit(rule.id).alias("rule"),
                pl.lit("fit").alias("kind"),
                pl.lit(float(rule.points)).alias("raw_points"),
                pl.lit(None, dtype=pl.UInt32).alias("events"),
            )
        )
    fit_frame = contacts.select("_ci").with_columns(
        [s.alias(name) for name, s in fit_columns.items()]
    )
    fit_frame = fit_frame.filter(scope_mask).select("_ci", fit_total.alias("fit"))

    behaviour = [r for r in rules if isinstance(r, BehaviorRule)]
    # Events of contacts this model scores.
    ev = events.join(scoped.select("_ci"), on="_ci", how="semi")

    # 4. Behaviour: which events match which rule (type and attributes).
    matched: dict[str, pl.Expr] = {}
    for rule in behaviour:
        expr = pl.col("type") == rule.event
        for key, match in rule.match.items():
            expr = expr & _match_column_expr(ev, key, match, free)
        matched[rule.id] = expr
    # Belonging adds the window; group exclusivity takes the first rule of the group.
    slots: list[list[BehaviorRule]] = []
    slot_of_group: dict[str, int] = {}
    for rule in behaviour:
        if rule.group is None:
            slots.append([rule])
        elif rule.group in slot_of_group:
            slots[slot_of_group[rule.group]].append(rule)
        else:
            slot_of_group[rule.group] = len(slots)
            slots.append([rule])

    def belongs(rule: BehaviorRule) -> pl.Expr:
        expr = matched[rule.id]
        if rule.window_days is not None:
            expr = expr & (pl.col("occurred_at") > as_of - timedelta(days=rule.window_days))
        return expr

    slot_exprs: list[pl.Expr] = []
    for number, slot in enumerate(slots):
        chain: Any = None
        for rule in slot:
            idx = order_of[rule.id]
            chain = (pl.when if chain is None else chain.when)(belongs(rule)).then(
                pl.lit(idx, dtype=pl.UInt32)
            )
        slot_exprs.append(chain.otherwise(pl.lit(None, dtype=pl.UInt32)).alias(f"_slot{number}"))

    active = [r for r in behaviour if r.points > 0 or r.immediate]
    activity: pl.Expr = pl.lit(value=False)
    for rule in active:
        activity = activity | matched[rule.id]

    ev = ev.with_columns([*slot_exprs, activity.alias("_active")])

    # 5. (part) last activity: newest matching event, windows and caps aside.
    last_event = (
        ev.filter(pl.col("_active"))
        .group_by("_ci")
        .agg(pl.col("occurred_at").max().alias("_last_event"))
    )

    # Long frame: one row per (event, rule it belongs to).
    long_parts = [
        ev.filter(pl.col(f"_slot{n}").is_not_null()).select(
            "_ci",
            "occurred_at",
            pl.col(f"_slot{n}").alias("_rule"),
            *([c for c in ("id", "_seq", "type") if c in ev.columns]),
        )
        for n in range(len(slots))
    ]
    rule_table = pl.DataFrame(
        {
            "_rule": [order_of[r.id] for r in behaviour],
            "_points": [float(r.points) for r in behaviour],
            "_half_life": [r.half_life_days for r in behaviour],
            "_max_points": [r.max_points for r in behaviour],
            "_max_per_day": [r.max_per_day for r in behaviour],
            "_immediate": [r.immediate for r in behaviour],
        },
        schema={
            "_rule": pl.UInt32,
            "_points": pl.Float64,
            "_half_life": pl.Float64,
            "_max_points": pl.Float64,
            "_max_per_day": pl.Int64,
            "_immediate": pl.Boolean,
        },
    )
    if long_parts:
        long = pl.concat(long_parts, how="vertical")
    else:
        long = (
            ev.select("_ci", "occurred_at", *[c for c in ("id", "_seq", "type") if c in ev.columns])
            .clear()
            .with_columns(pl.lit(None, dtype=pl.UInt32).alias("_rule"))
        )
    long = long.join(rule_table, on="_rule", how="left")

    # 7. immediate: newest event (by occurred_at, id, input order) of an immediate rule.
    imm = long.filter(pl.col("_immediate"))
    sort_cols = ["occurred_at"]
    if "id" in imm.columns:
        imm = imm.with_columns(pl.col("id").cast(pl.String))
        sort_cols.append("id")
    sort_cols.append("_seq")
    imm = (
        imm.sort(sort_cols, nulls_last=False)
        .group_by("_ci")
        .agg(
            pl.col("type").last().cast(pl.String).alias("immediate_type"),
            pl.col("occurred_at").last().alias("immediate_at"),
            (pl.col("id").last() if "id" in imm.columns else pl.lit(None, dtype=pl.String)).alias(
                "immediate_id"
            ),
        )
    )

    # Caps per UTC day: the first max_per_day events of each day count.
    capped = long.filter(pl.col("_max_per_day").is_not_null())
    free_rows = long.filter(pl.col("_max_per_day").is_null())
    if capped.height:
        capped = (
            capped.with_columns(pl.col("occurred_at").dt.date().alias("_day"))
            .filter(
                pl.col("occurred_at").rank("ordinal").over(["_ci", "_rule", "_day"])
                <= pl.col("_max_per_day")
            )
            .drop("_day")
        )
        counted = pl.concat([free_rows, capped], how="vertical")
    else:
        counted = free_rows

    as_of_us = int((as_of - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))
    age = _div_exact(
        pl.lit(as_of_us, dtype=pl.Int64) - pl.col("occurred_at").dt.epoch("us"), _US_PER_DAY
    )
    contribution = (
        pl.when(pl.col("_half_life").is_null())
        .then(pl.col("_points"))
        .otherwise(pl.col("_points") * pl.lit(0.5).pow(age / pl.col("_half_life")))
    )
    totals = (
        counted.group_by(["_ci", "_rule"])
        .agg(contribution.sum().alias("_sum"), pl.len().cast(pl.UInt32).alias("events"))
        .join(rule_table.select("_rule", "_points", "_max_points"), on="_rule", how="left")
        .with_columns(
            pl.when(pl.col("_max_points").is_null())
            .then(pl.col("_sum"))
            .otherwise(pl.col("_sum").clip(-pl.col("_max_points"), pl.col("_max_points")))
            .alias("_total")
        )
    )
    per_contact = totals.group_by("_ci").agg(
        pl.col("_total").filter(pl.col("_points") > 0).sum().alias("_pos"),
        pl.col("_total").filter(pl.col("_points") < 0).sum().alias("_neg"),
    )

    # 5. decay from the last activity, 6. clip, round, band.
    frame = (
        scoped.join(fit_frame, on="_ci", how="left")
        .join(per_contact, on="_ci", how="left")
        .join(last_event, on="_ci", how="left")
        .join(imm, on="_ci", how="left")
        .with_columns(
            pl.col("_pos").fill_null(0.0),
            pl.col("_neg").fill_null(0.0),
            pl.coalesce("_last_event", "_created").alias("last_activity_at"),
        )
    )
    inactive = _div_exact(
        pl.lit(as_of_us, dtype=pl.Int64) - pl.col("last_activity_at").dt.epoch("us"), _US_PER_DAY
    )
    steps = sorted(enumerate(model.decay), key=lambda p: (-p[1].inactive_days, -p[0]))
    decay_points: Any = None
    decay_step: Any = None
    for step_index, step in steps:
        reached = inactive >= step.inactive_days
        decay_points = (pl.when if decay_points is None else decay_points.when)(reached).then(
            float(step.points)
        )
        decay_step = (pl.when if decay_step is None else decay_step.when)(reached).then(
            pl.lit(step_index, dtype=pl.Int64)
        )
    points_expr = pl.lit(0.0) if decay_points is None else decay_points.otherwise(0.0)
    step_expr = pl.lit(None, dtype=pl.Int64) if decay_step is None else decay_step.otherwise(None)
    frame = frame.with_columns(
        pl.when(pl.col("last_activity_at").is_null())
        .then(0.0)
        .otherwise(points_expr)
        .alias("_decay"),
        pl.when(pl.col("last_activity_at").is_null())
        .then(None)
        .otherwise(step_expr)
        .alias("_step"),
    )
    frame = frame.with_columns(
        pl.max_horizontal(pl.lit(0.0), pl.col("_pos") + pl.col("_decay")).alias("_engaged")
    )
    frame = frame.with_columns(
        ((pl.col("fit") + pl.col("_engaged")) + pl.col("_neg"))
        .clip(float(model.scale.min), float(model.scale.max))
        .alias("raw")
    )
    frame = _round2_frame(frame, "raw", "score")
    frame = frame.with_columns(
        pl.when(pl.col("score") >= model.bands.hot)
        .then(pl.lit("hot"))
        .when(pl.col("score") >= model.bands.warm)
        .then(pl.lit("warm"))
        .otherwise(pl.lit("cold"))
        .alias("band"),
        pl.col("immediate_at").is_not_null().alias("immediate"),
        pl.lit(index, dtype=pl.UInt32).alias("_model"),
    )
    scores = frame.select(
        "_ci",
        "_model",
        "raw",
        "score",
        "band",
        "immediate",
        "immediate_type",
        "immediate_at",
        "immediate_id",
        "last_activity_at",
    )

    # 8. reasons: fit, behaviour after caps, decay actually removed.
    behaviour_reasons = totals.select(
        "_ci",
        pl.col("_rule").alias("_order"),
        pl.col("_rule")
        .replace_strict(
            [order_of[r.id] for r in behaviour], [r.id for r in behaviour], return_dtype=pl.String
        )
        .alias("rule"),
        pl.lit("behavior").alias("kind"),
        pl.col("_total").alias("raw_points"),
        "events",
    )
    decay_names = [decay_rule_name(s.inactive_days) for s in model.decay]
    decay_reasons = frame.filter(pl.col("_step").is_not_null()).select(
        "_ci",
        pl.lit(len(rules), dtype=pl.UInt32).alias("_order"),
        pl.col("_step")
        .replace_strict(list(range(len(decay_names))), decay_names, return_dtype=pl.String)
        .alias("rule"),
        pl.lit("decay").alias("kind"),
        (pl.col("_engaged") - pl.col("_pos")).alias("raw_points"),
        pl.lit(None, dtype=pl.UInt32).alias("events"),
    )
    reason_schema = {
        "_ci": pl.UInt32,
        "_order": pl.UInt32,
        "rule": pl.String,
        "kind": pl.String,
        "raw_points": pl.Float64,
        "events": pl.UInt32,
    }
    parts = [
        p.select([pl.col(c).cast(t) for c, t in reason_schema.items()])
        for p in [*fit_reasons, behaviour_reasons, decay_reasons]
    ]
    reasons = pl.concat(parts, how="vertical")
    reasons = _round2_frame(reasons, "raw_points", "points").with_columns(
        pl.lit(index, dtype=pl.UInt32).alias("_model")
    )
    return scores, reasons


def _field(contacts: pl.DataFrame, name: str) -> pl.Series:
    if name not in contacts.columns:
        return pl.Series(name, [None] * contacts.height, dtype=pl.String)
    if name == "created_at":
        return contacts.get_column(name)
    return contacts.get_column(name)


# --- objects ---------------------------------------------------------------------------


def results_from_columns(columns: ScoreColumns) -> list[ScoreResult]:
    """Turn frames into ``ScoreResult`` objects (one Python object per row: the slow part)."""
    reasons_by_row: dict[tuple[str, str], list[Reason]] = {}
    for cid, model, rule, kind, points, events in columns.reasons.select(
        "contact_id", "model", "rule", "kind", "points", "events"
    ).iter_rows():
        reasons_by_row.setdefault((cid, model), []).append(Reason(rule, kind, points, events))
    results: list[ScoreResult] = []
    for row in columns.scores.iter_rows(named=True):
        imm = None
        if row["immediate_at"] is not None:
            imm = ImmediateEvent(row["immediate_type"], row["immediate_at"], row["immediate_id"])
        results.append(
            ScoreResult(
                contact_id=row["contact_id"],
                model=row["model"],
                score=row["score"],
                band=row["band"],
                immediate=row["immediate"],
                immediate_event=imm,
                last_activity_at=row["last_activity_at"],
                reasons=tuple(reasons_by_row.get((row["contact_id"], row["model"]), ())),
            )
        )
    return results


def score_frames(
    models: ModelSet | Sequence[ScoringModel],
    contacts: pl.DataFrame,
    events: pl.DataFrame,
    *,
    as_of: datetime,
) -> list[ScoreResult]:
    """Score frames (schema in the module docstring) into result objects."""
    return results_from_columns(score_columns(models, contacts, events, as_of=as_of))


def _fields_read(model_list: list[ScoringModel]) -> tuple[set[str], set[str]]:
    contact_fields: set[str] = set()
    event_attrs: set[str] = set()
    for model in model_list:
        contact_fields.update(c.field for c in model.applies_to)
        for rule in model.rules:
            if isinstance(rule, FitRule):
                contact_fields.add(rule.field)
            else:
                event_attrs.update(rule.match)
    return contact_fields, event_attrs


def score(
    models: ModelSet | Sequence[ScoringModel],
    contacts: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    *,
    as_of: datetime,
) -> list[ScoreResult]:
    """Score records (mappings) by building frames; see ``score_frames``."""
    contacts_frame, events_frame = records_to_frames(models, contacts, events)
    return score_frames(models, contacts_frame, events_frame, as_of=as_of)


def records_to_frames(
    models: ModelSet | Sequence[ScoringModel],
    contacts: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Frames holding what the models read, values in their text form."""
    model_list = list(models.models if isinstance(models, ModelSet) else models)
    contact_fields, event_attrs = _fields_read(model_list)
    contact_fields.discard("id")
    contact_fields.discard("created_at")
    crows = list(contacts)
    columns: dict[str, list[Any]] = {"id": [], "created_at": []}
    for name in contact_fields:
        columns[name] = []
    for contact in crows:
        columns["id"].append(text_form(contact["id"]))
        created = contact.get("created_at")
        columns["created_at"].append(
            None if created is None or created == "" else parse_timestamp(created)
        )
        for name in contact_fields:
            columns[name].append(text_form(contact.get(name)))
    schema: dict[str, Any] = {name: pl.String for name in columns}
    schema["created_at"] = _UTC_DT
    contacts_frame = pl.DataFrame(columns, schema=schema)

    ecols: dict[str, list[Any]] = {"contact_id": [], "type": [], "occurred_at": [], "id": []}
    attrs = sorted(event_attrs - set(ecols))
    for name in attrs:
        ecols[name] = []
    for event in events:
        ecols["contact_id"].append(text_form(event["contact_id"]))
        ecols["type"].append(text_form(event["type"]))
        ecols["occurred_at"].append(_as_utc_datetime(event["occurred_at"]))
        ecols["id"].append(text_form(event.get("id")))
        for name in attrs:
            ecols[name].append(text_form(event.get(name)))
    eschema: dict[str, Any] = {name: pl.String for name in ecols}
    eschema["occurred_at"] = _UTC_DT
    events_frame = pl.DataFrame(ecols, schema=eschema)
    return contacts_frame, events_frame
