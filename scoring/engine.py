"""The scoring engine: models, contacts and events in; scores, bands and reasons out.

Semantics are those written up in docs/scoring.md; ``tests/scoring/reference.py`` spells them out as plain Python and a
differential test holds this engine to it.

The engine is columnar, because per-event Python loops manage about 250,000 events/s
and a CRM export holds tens of millions. Events are joined to contact positions and
sorted once by (contact, UTC day); after that every per-contact step is a pass over
sorted runs: fit rules are evaluated on the distinct values of a field, behaviour
rules become filters on the events frame, caps per UTC day are run lengths, and
per-contact totals are ``bincount`` sums into dense arrays, added in file order. The
only per-value Python work is ``regex`` (Python's ``re`` on the *distinct* values of a
column, so that a pattern means what ``scoring.model`` validated, not what the Rust
regex crate would read) and rounding ties.

Choices the written semantics leave open, made the same way here and in the reference:

* An event type matches a rule's ``event`` exactly (case-sensitive).
* ``glob``: ``*`` is any run of characters, ``?`` one character, all else literal.
* Numbers are read through one text form (``text_form``): ``50``, ``50.0`` and
  ``"50"`` behave alike; booleans read as ``true``/``false``.
* "Belongs" includes the window, so within a group an event outside the first rule's
  window can belong to a later rule of the group (an old pricing view is still a page).
* Events without an ``id`` sort before events with one at the same instant.

Frame schema accepted by :func:`score_frames` / :func:`score_columns`:

contacts
    ``id`` (String), optional ``created_at`` (Datetime; naive means UTC), and one
    column per field the models read. Non-text columns are read through their text
    form: booleans as ``true``/``false``, numbers as polars prints them.
events
    ``contact_id`` (String or Categorical), ``type`` (String or Categorical),
    ``occurred_at`` (Datetime; naive means UTC), optional ``id`` (String), and one
    column per attribute (``url``, ``form``, ...). Row order is the last tie-breaker.

Per-rule sums are added in the order polars chooses, so an unrounded total can differ
from an event-by-event sum in the last bits; a rounded score can then differ only when
the total sits on a rounding boundary (``x.xx5``) within that error.
"""

from __future__ import annotations

import gc
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from typing import TYPE_CHECKING, Literal, NamedTuple, TypeAlias, TypedDict

import numpy as np
import numpy.typing as npt
import polars as pl

from scoring.freemail import default_free_email_domains
from scoring.model import (
    Bands,
    BehaviorRule,
    FitRule,
    Match,
    ModelSet,
    OperatorValue,
    ScoringModel,
)
from scoring.timeutil import parse_timestamp, to_iso

if TYPE_CHECKING:
    from polars._typing import PolarsDataType
    from polars.expr.whenthen import ChainedThen, Then

__all__ = [
    "ImmediateEvent",
    "Reason",
    "ScoreColumns",
    "ScoreResult",
    "band_for",
    "decay_rule_name",
    "iter_results",
    "results_from_columns",
    "round2",
    "score",
    "score_columns",
    "score_frames",
    "text_form",
]

Band = Literal["hot", "warm", "cold"]
ReasonKind = Literal["fit", "behavior", "decay"]

# Per-contact columns as numpy arrays: scope flags, points, epoch microseconds.
Flags: TypeAlias = npt.NDArray[np.bool_]
Points: TypeAlias = npt.NDArray[np.float64]
Micros: TypeAlias = npt.NDArray[np.int64]
Positions: TypeAlias = npt.NDArray[np.intp]


class ReasonDict(TypedDict):
    """A reason in the JSON line of ``leadsync score``."""

    rule: str
    kind: ReasonKind
    points: float
    events: int | None


class ImmediateEventDict(TypedDict):
    """An immediate event in the JSON line of ``leadsync score``."""

    type: str
    occurred_at: str
    id: str | None


class ScoreResultDict(TypedDict):
    """The JSON line of ``leadsync score``: what scripts reading that output rely on."""

    contact_id: str
    model: str
    score: float
    band: Band
    immediate: bool
    immediate_event: ImmediateEventDict | None
    last_activity_at: str | None
    reasons: list[ReasonDict]


_US_PER_DAY = 86_400_000_000
_NUMBER_RX = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
# The characters Python's str.strip() removes, so that "whitespace-only" means the same
# here as in plain Python code reading the same value.
_WHITESPACE = "".join(chr(i) for i in range(0x3001) if chr(i).isspace())
# Characters the Rust regex crate (which polars uses) treats as meta characters.
_RUST_META = set("\\.+*?()|[]{}^$#&-~")
_UTC_DT = pl.Datetime("us", "UTC")


# --- results ------------------------------------------------------------------------


class Reason(NamedTuple):
    """One line of "why": a rule's points after its caps, or the decay removed.

    A named tuple rather than a dataclass: a million-contact batch carries millions of
    reasons, and a tuple is built several times faster than a frozen dataclass.
    """

    rule: str
    kind: ReasonKind
    points: float
    events: int | None = None

    def to_dict(self) -> ReasonDict:
        return {"rule": self.rule, "kind": self.kind, "points": self.points, "events": self.events}


@dataclass(frozen=True, slots=True)
class ImmediateEvent:
    """The newest event of an ``immediate`` rule; write-back acts once per such event."""

    type: str
    occurred_at: datetime
    id: str | None

    def to_dict(self) -> ImmediateEventDict:
        return {"type": self.type, "occurred_at": to_iso(self.occurred_at), "id": self.id}


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """One contact scored by one model.

    ``score`` and each reason's ``points`` are rounded half away from zero to two
    decimals (the unrounded values are in ``ScoreColumns``); ``band`` comes from the
    rounded score.
    """

    contact_id: str
    model: str
    score: float
    band: Band
    immediate: bool
    immediate_event: ImmediateEvent | None
    last_activity_at: datetime | None
    reasons: tuple[Reason, ...]

    def to_dict(self) -> ScoreResultDict:
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


def text_form(value: object) -> str | None:
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


def _number(value: object) -> float | None:
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


def _listed(arg: OperatorValue) -> Sequence[object]:
    """The list of a list operator (``in``, ``contains_any``, ``email_domain_in``): the
    model's validation only lets lists through for them."""
    assert isinstance(arg, list)
    return arg


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


def _match_exprs(text: pl.Series, matches: Sequence[Match], free: frozenset[str]) -> list[pl.Expr]:
    """Expressions over column ``v`` (the text form of ``text``), one per match."""
    v = pl.col("v")
    present = v.is_not_null()
    lower = v.str.to_lowercase()
    stripped = v.str.strip_chars(_WHITESPACE)
    num = pl.when(stripped.str.contains(_NUMBER_RX)).then(stripped.cast(pl.Float64, strict=False))
    domain = v.str.extract(r"@([^@]*)$", 1).str.to_lowercase()
    distinct: list[str] | None = None

    def equal(expected: object) -> pl.Expr:
        expected_num = _number(expected)
        expected_text = (text_form(expected) or "").lower()
        as_text = lower == expected_text
        if expected_num is None:
            return as_text
        return pl.when(num.is_not_null()).then(num == expected_num).otherwise(as_text)

    out: list[pl.Expr] = []
    for match in matches:
        conditions: list[pl.Expr] = []
        for name, arg in match.operators():
            cond: pl.Expr
            if name == "exists":
                is_there = present & (stripped.str.len_chars() > 0)
                conditions.append(is_there.fill_null(value=False) == bool(arg))
                continue
            if name == "equals":
                cond = equal(arg)
            elif name == "in":
                cond = pl.any_horizontal([equal(item) for item in _listed(arg)])
            elif name == "contains":
                cond = lower.str.contains(str(arg).lower(), literal=True)
            elif name == "contains_any":
                needles = [lower.str.contains(str(a).lower(), literal=True) for a in _listed(arg)]
                cond = pl.any_horizontal(needles)
            elif name == "glob":
                cond = lower.str.contains(_glob_regex(str(arg)))
            elif name == "regex":
                # Python's re, on distinct values: the pattern means what the model
                # file's validation compiled, not what the Rust regex crate would read.
                rx = re.compile(str(arg))
                if distinct is None:
                    distinct = text.drop_nulls().unique().to_list()
                hits = [x for x in distinct if rx.search(x) is not None]
                cond = v.is_in(pl.Series(hits, dtype=pl.String).implode())
            elif name in ("gt", "gte", "lt", "lte"):
                assert not isinstance(arg, list)  # the model holds a number here
                limit = float(arg)
                cond = {
                    "gt": num > limit,
                    "gte": num >= limit,
                    "lt": num < limit,
                    "lte": num <= limit,
                }[name]
            elif name == "email_domain_in":
                wanted = pl.Series([str(d).lower() for d in _listed(arg)], dtype=pl.String)
                cond = domain.is_in(wanted.implode())
            elif name == "free_email":
                known = domain.is_in(pl.Series(sorted(free), dtype=pl.String).implode())
                cond = domain.is_not_null() & (known if arg else ~known)
            else:  # pragma: no cover - the model rejects unknown operators
                raise ValueError(f"unknown match operator {name!r}")
            conditions.append((present & cond).fill_null(value=False))
        out.append(pl.all_horizontal(conditions) if conditions else pl.lit(value=True))
    return out


def _match_direct(
    text: pl.Series, matches: Sequence[Match], free: frozenset[str]
) -> list[pl.Series]:
    exprs = _match_exprs(text, matches, free)
    named = [e.alias(f"m{i}") for i, e in enumerate(exprs)]
    # Lazy, so that lower-casing and domain extraction shared by several rules run once.
    frame = pl.DataFrame({"v": text}).lazy().select(named).collect()
    return [frame.get_column(f"m{i}") for i in range(len(matches))]


def _match_many(s: pl.Series, matches: Sequence[Match], free: frozenset[str]) -> list[pl.Series]:
    """Where each value satisfies each match (all of its operators); null is missing.

    Columns with few distinct values (job titles, stages) are matched on the distinct
    values and looked up, which is much cheaper than string work on every row.
    """
    text = _as_text(s)
    if not matches:
        return []
    if len(text) > 4096 and text.head(4096).n_unique() < 1024:
        # A sample with many repeats: job titles, stages, countries (not e-mails).
        distinct = text.unique()
        if len(distinct) * 4 < len(text):
            lookups = [_lookup(distinct, hits) for hits in _match_direct(distinct, matches, free)]
            frame = pl.DataFrame({"v": text}).select(
                [e.alias(f"m{i}") for i, e in enumerate(lookups)]
            )
            return [frame.get_column(f"m{i}") for i in range(len(matches))]
    return _match_direct(text, matches, free)


def _lookup(distinct: pl.Series, hits: pl.Series, column: str = "v") -> pl.Expr:
    """Rows of ``column`` whose value is one of the ``distinct`` values that matched."""
    chosen = distinct.filter(hits)
    null_hits = bool(chosen.null_count())
    expr = pl.col(column).is_in(chosen.drop_nulls().implode()).fill_null(value=False)
    if null_hits:
        expr = expr | pl.col(column).is_null()
    return expr


def _match_column_expr(
    frame: pl.DataFrame, column: str, match: Match, free: frozenset[str]
) -> pl.Expr:
    """An expression over ``frame`` for ``match`` on ``column``, computed on distinct values.

    Event attributes have few distinct values (hundreds of URLs among millions of
    events), so matching the distinct values and looking rows up is far cheaper than
    running string operations on every row.
    """
    if column not in frame.columns:
        missing = _match_direct(pl.Series([None], dtype=pl.String), [match], free)[0]
        return pl.lit(bool(missing[0]))
    distinct = frame.get_column(column).unique()
    hits = _match_direct(_as_text(distinct), [match], free)[0]
    return _lookup(distinct, hits, column)


# --- the engine -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreColumns:
    """Scores as frames: what ``score_frames`` turns into ``ScoreResult`` objects.

    ``scores``: one row per scored contact and model, in contact order then model
    order: ``contact_id, model, raw`` (clipped, unrounded) ``, score, band, immediate,
    immediate_type, immediate_at, immediate_id, last_activity_at``.
    ``reasons``: ``row`` (position of the ``scores`` row explained) ``, contact_id,
    model, rule, kind, raw_points`` (unrounded) ``, points, events``, in the same
    order, rules in file order and decay last.
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
    frame = contacts
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
    events: pl.DataFrame,
    ids: pl.DataFrame,
    attrs: set[str],
    as_of: datetime,
    types: set[str],
) -> pl.DataFrame:
    """Events of scored contacts up to ``as_of``, sorted by contact and UTC day.

    The one sort makes every later per-contact group-by a pass over sorted runs, which
    is what keeps ten million events within a few seconds.
    """
    for column in ("contact_id", "type", "occurred_at"):
        if column not in events.columns:
            raise ValueError(f"events: missing column {column!r}")
    keep = ["contact_id", "type", "occurred_at"]
    if "id" in events.columns:
        keep.append("id")
    keep += sorted(a for a in attrs if a in events.columns and a not in keep)
    as_of_day = (as_of.date() - _EPOCH.date()).days
    day = pl.col("occurred_at").dt.date().cast(pl.Int64)
    # Contact in the high 32 bits, days before as_of in the low ones: one integer sort
    # key that keeps each contact's events together, grouped by UTC day.
    key = (pl.col("_ci").cast(pl.UInt64) * (1 << 32)) + (as_of_day - pl.col("_day")).cast(pl.UInt64)
    contact_id = pl.col("contact_id")
    if events.schema["contact_id"] != pl.String:
        contact_id = contact_id.cast(pl.String)
    frame = (
        events.lazy()
        .select(keep)
        .with_row_index("_seq")
        .with_columns(_utc_expr("occurred_at", events.schema["occurred_at"]), contact_id)
        .filter((pl.col("occurred_at") <= as_of) & pl.col("type").is_in(sorted(types)))
        .join(ids.lazy(), on="contact_id", how="inner")
        .drop("contact_id")
        .with_columns(day.alias("_day"))
        .sort(key)
        .collect()
    )
    return frame.with_columns(pl.col("_ci").set_sorted())


def _utc_expr(name: str, dtype: pl.DataType) -> pl.Expr:
    """Column ``name`` as Datetime(us, UTC); naive values are UTC already."""
    if not isinstance(dtype, pl.Datetime):
        raise TypeError(f"{name}: expected a Datetime column, got {dtype}")
    column = pl.col(name)
    if dtype.time_zone is None:
        column = column.dt.replace_time_zone("UTC")
    elif dtype.time_zone != "UTC":
        column = column.dt.convert_time_zone("UTC")
    return column.cast(_UTC_DT)


def score_columns(
    models: ModelSet | Sequence[ScoringModel],
    contacts: pl.DataFrame,
    events: pl.DataFrame,
    *,
    as_of: datetime,
) -> ScoreColumns:
    """Score every contact with every model that applies to it, as frames."""
    if isinstance(models, ModelSet) and models.artifacts:  # predictive models: docs/predictive.md
        from scoring.predictive import score_with_predictive

        return score_with_predictive(models, contacts, events, as_of=as_of)  # type: ignore[no-any-return]
    model_list = list(models.models if isinstance(models, ModelSet) else models)
    as_of = _as_utc_datetime(as_of)
    cframe = _prepare_contacts(contacts)
    n = cframe.height
    scopes: list[pl.Series] = []
    for model in model_list:
        free = _free_domains(model)
        scope = pl.Series("s", np.ones(n, dtype=bool))
        for condition in model.applies_to:
            scope = scope & _match_many(_field(cframe, condition.field), [condition.match], free)[0]
        scopes.append(scope)
    attrs: set[str] = set()
    types: set[str] = set()
    for model in model_list:
        for rule in model.rules:
            if isinstance(rule, BehaviorRule):
                attrs.update(rule.match)
                types.add(rule.event)
    any_scope = pl.Series("s", np.zeros(n, dtype=bool))
    for scope in scopes:
        any_scope = any_scope | scope
    ids = cframe.select(pl.col("id").alias("contact_id")).with_row_index("_ci").filter(any_scope)
    eframe = _prepare_events(events, ids, attrs, as_of, types)

    score_parts: list[pl.DataFrame] = [_EMPTY_SCORES]
    reason_parts: list[pl.DataFrame] = [_EMPTY_REASONS]
    for index, model in enumerate(model_list):
        scores, reasons = _score_model(model, index, cframe, scopes[index], eframe, as_of)
        score_parts.append(scores)
        reason_parts.append(reasons)

    m = max(1, len(model_list))
    scores = pl.concat(score_parts)
    reasons = pl.concat(reason_parts)
    if len(model_list) > 1:
        scores = scores.sort(pl.col("_ci").cast(pl.Int64) * m + pl.col("_model"))
    width = 1 + max((len(model.rules) for model in model_list), default=0)
    reasons = reasons.sort(
        (pl.col("_ci").cast(pl.Int64) * m + pl.col("_model")) * width + pl.col("_order")
    )
    score_keys = (
        scores.get_column("_ci").cast(pl.Int64) * m + scores.get_column("_model")
    ).to_numpy()
    reason_keys = (
        reasons.get_column("_ci").cast(pl.Int64) * m + reasons.get_column("_model")
    ).to_numpy()
    reasons = reasons.with_columns(
        pl.Series("row", np.searchsorted(score_keys, reason_keys), dtype=pl.UInt32)
    )
    id_column = cframe.get_column("id")
    names = pl.Series([mo.name for mo in model_list], dtype=pl.String)
    scores = scores.select(
        id_column.gather(scores.get_column("_ci")).alias("contact_id"),
        names.gather(scores.get_column("_model")).alias("model"),
        "raw",
        "score",
        "band",
        "immediate",
        "immediate_type",
        "immediate_at",
        "immediate_id",
        "last_activity_at",
    )
    reasons = reasons.select(
        "row",
        id_column.gather(reasons.get_column("_ci")).alias("contact_id"),
        names.gather(reasons.get_column("_model")).alias("model"),
        "rule",
        "kind",
        "raw_points",
        "points",
        "events",
    )
    return ScoreColumns(scores=scores, reasons=reasons)


def _counted_rows(part: pl.DataFrame, per_day: int) -> pl.DataFrame:
    """The first ``per_day`` rows of each (contact, UTC day), ``part`` sorted by both.

    Rows of a day are contiguous but not in time order; a day with more rows than the
    cap (rare) is ranked by time. Rows tied on time are worth the same points, so
    which of them counts does not change a score.
    """
    if part.height == 0:
        return part
    ci = part.get_column("_ci").to_numpy()
    day = part.get_column("_day").to_numpy()
    new = np.ones(len(ci), dtype=bool)
    new[1:] = (ci[1:] != ci[:-1]) | (day[1:] != day[:-1])
    starts = np.flatnonzero(new)
    lengths = np.diff(np.append(starts, len(ci)))
    run_len = np.repeat(lengths, lengths)
    long_run = run_len > per_day
    if not long_run.any():
        return part
    run_id = np.repeat(np.arange(len(starts)), lengths)
    keep_short = part.filter(pl.Series(~long_run))
    crowded = part.filter(pl.Series(long_run)).with_columns(pl.Series("_run", run_id[long_run]))
    crowded = crowded.filter(pl.col("occurred_at").rank("ordinal").over("_run") <= per_day).drop(
        "_run"
    )
    # Back into (contact, day) order for the sorted group-by that follows.
    return pl.concat([keep_short, crowded]).sort(["_ci", "_day"])


@dataclass(frozen=True)
class _ModelRun:
    """What every step of scoring one model reads: the model, its contacts in scope,
    rule positions (for reason order and group slots) and the reference time."""

    model: ScoringModel
    index: int
    contacts: pl.DataFrame
    scope: pl.Series
    scope_np: Flags
    free: frozenset[str]
    order_of: Mapping[str, int]
    as_of: datetime
    as_of_us: int

    @property
    def n(self) -> int:
        return self.contacts.height


@dataclass
class _Behaviour:
    """Step 4's results: points split by sign, per-rule reasons, immediate candidates."""

    positive: Points
    negative: Points
    reasons: list[pl.DataFrame]
    immediate_parts: list[pl.DataFrame]


def _score_model(
    model: ScoringModel,
    index: int,
    contacts: pl.DataFrame,
    scope: pl.Series,
    events: pl.DataFrame,
    as_of: datetime,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One model's scores and reasons, step by step as docs/scoring.md numbers them in
    "How a score is computed" (step 1, applies_to, is ``scope``, from the caller)."""
    run = _ModelRun(
        model=model,
        index=index,
        contacts=contacts,
        scope=scope,
        scope_np=scope.to_numpy(),
        free=_free_domains(model),
        order_of={rule.id: i for i, rule in enumerate(model.rules)},
        as_of=as_of,
        as_of_us=int((as_of - _EPOCH) // timedelta(microseconds=1)),
    )
    fit, fit_reasons = _fit_points(run)
    ev, matched, belongs_first = _behaviour_events(run, events)
    last_us = _last_activity(run, ev, matched)
    behaviour = _behaviour_points(run, ev, belongs_first)
    immediate = _immediate(behaviour.immediate_parts)
    frame = _final_scores(run, fit, behaviour, last_us, immediate)
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
    reasons = _reasons(run, frame, [*fit_reasons, *behaviour.reasons])
    return scores, reasons


def _fit_points(run: _ModelRun) -> tuple[Points, list[pl.DataFrame]]:
    """Step 2, fit rules: all rules reading one field matched together; first match per
    group."""
    n = run.n
    scope_np = run.scope_np
    fit_rules = [r for r in run.model.rules if isinstance(r, FitRule)]
    # Only contacts in scope are matched: a second product line's model reads few.
    in_scope = np.flatnonzero(scope_np)
    every_contact = len(in_scope) == n
    hits: dict[str, Flags] = {}
    for field in dict.fromkeys(r.field for r in fit_rules):
        same = [r for r in fit_rules if r.field == field]
        values = _field(run.contacts, field)
        if not every_contact:
            values = values.gather(in_scope)
        found = _match_many(values, [r.match for r in same], run.free)
        for frule, matched in zip(same, found, strict=True):
            if every_contact:
                hits[frule.id] = matched.to_numpy()
            else:
                full = np.zeros(n, dtype=bool)
                full[in_scope] = matched.to_numpy()
                hits[frule.id] = full
    fit = np.zeros(n, dtype=np.float64)
    taken: dict[str, Flags] = {}
    reasons: list[pl.DataFrame] = []
    for frule in fit_rules:
        hit = hits[frule.id] & scope_np
        if frule.group is not None:
            before = taken.get(frule.group)
            if before is not None:
                hit = hit & ~before
                taken[frule.group] = before | hit
            else:
                taken[frule.group] = hit
        # Summed in file order, as a person adding up the reasons would.
        fit = fit + np.where(hit, float(frule.points), 0.0)
        where = np.flatnonzero(hit)
        reasons.append(
            _reason_frame(where, run.order_of[frule.id], frule.id, "fit", float(frule.points), None)
        )
    return fit, reasons


def _behaviour_events(
    run: _ModelRun, events: pl.DataFrame
) -> tuple[pl.DataFrame, dict[str, pl.Expr], Callable[[BehaviorRule], pl.Expr]]:
    """Step 3 (set-up): this model's contacts' events, what each behaviour rule matches,
    and which rule of its group each event belongs to (the first it matches)."""
    ev = events
    if not bool(run.scope_np.all()):
        ev = ev.filter(run.scope.gather(ev.get_column("_ci")))
    behaviour = [r for r in run.model.rules if isinstance(r, BehaviorRule)]
    matched: dict[str, pl.Expr] = {}
    for rule in behaviour:
        expr = pl.col("type") == rule.event
        for key, match in rule.match.items():
            expr = expr & _match_column_expr(ev, key, match, run.free)
        matched[rule.id] = expr

    def belongs(rule: BehaviorRule) -> pl.Expr:
        expr = matched[rule.id]
        if rule.window_days is not None:
            expr = expr & (pl.col("occurred_at") > run.as_of - timedelta(days=rule.window_days))
        return expr

    # An event belongs to the first rule of its group it belongs to. Each group with
    # more than one rule gets a small column holding that rule's position; an
    # ungrouped rule is filtered on directly (no column: ten million rows add up).
    slots: dict[str, list[BehaviorRule]] = {}
    for rule in behaviour:
        if rule.group is not None:
            slots.setdefault(rule.group, []).append(rule)
    position_type = pl.UInt16 if len(run.model.rules) < 65_535 else pl.UInt32
    slot_exprs: list[pl.Expr] = []
    for group, members in slots.items():
        chain: Then | ChainedThen | None = None
        for rule in members:
            condition = belongs(rule)
            position = pl.lit(run.order_of[rule.id], dtype=position_type)
            if chain is None:
                chain = pl.when(condition).then(position)
            else:
                chain = chain.when(condition).then(position)
        assert chain is not None  # slots only hold groups with members
        slot_exprs.append(chain.otherwise(None).alias(f"_group:{group}"))
    if slot_exprs:
        ev = ev.with_columns(slot_exprs)

    def belongs_first(rule: BehaviorRule) -> pl.Expr:
        if rule.group is None:
            return belongs(rule)
        return pl.col(f"_group:{rule.group}") == run.order_of[rule.id]

    return ev, matched, belongs_first


def _last_activity(run: _ModelRun, ev: pl.DataFrame, matched: Mapping[str, pl.Expr]) -> Micros:
    """Step 4 (first half), last activity: the newest matching event, windows and caps
    aside."""
    activity: pl.Expr = pl.lit(value=False)
    for rule in run.model.rules:
        if isinstance(rule, BehaviorRule) and (rule.points > 0 or rule.immediate):
            activity = activity | matched[rule.id]
    last_us = np.full(run.n, np.iinfo(np.int64).min, dtype=np.int64)
    active = (
        ev.lazy()
        .filter(activity)
        .group_by("_ci")
        .agg(pl.col("occurred_at").max().dt.epoch("us").alias("t"))
        .collect()
    )
    last_us[active.get_column("_ci").to_numpy()] = active.get_column("t").to_numpy()
    return last_us


def _behaviour_points(
    run: _ModelRun, ev: pl.DataFrame, belongs_first: Callable[[BehaviorRule], pl.Expr]
) -> _Behaviour:
    """Step 3, behaviour rules: each rule's events after the daily cap, decayed by age,
    summed and capped per contact; immediate rules' events kept for step 6."""
    n = run.n
    out = _Behaviour(np.zeros(n, dtype=np.float64), np.zeros(n, dtype=np.float64), [], [])
    for rule in run.model.rules:
        if not isinstance(rule, BehaviorRule):
            continue
        idx = run.order_of[rule.id]
        chosen = ev.lazy().filter(belongs_first(rule))
        if rule.immediate:
            out.immediate_parts.append(
                chosen.select(
                    "_ci",
                    "occurred_at",
                    "_seq",
                    pl.col("type").cast(pl.String),
                    (
                        pl.col("id").cast(pl.String)
                        if "id" in ev.columns
                        else pl.lit(None, dtype=pl.String)
                    ).alias("id"),
                ).collect()
            )
        # Lazy, so that only these three columns are copied out of the events frame.
        part = chosen.select("_ci", "_day", "occurred_at").collect()
        if rule.max_per_day is not None:
            part = _counted_rows(part, rule.max_per_day)
        if rule.half_life_days is None:
            # A column, not a literal: the sum of a literal is the literal itself.
            contribution: pl.Expr = pl.when(pl.col("_ci").is_not_null()).then(float(rule.points))
        else:
            age = _div_exact(
                pl.lit(run.as_of_us) - pl.col("occurred_at").dt.epoch("us"), _US_PER_DAY
            )
            contribution = float(rule.points) * _pow_half(_div_exact(age, rule.half_life_days))
        totals = (
            part.with_columns(pl.col("_ci").set_sorted())
            .group_by("_ci")
            .agg(contribution.sum().alias("total"), pl.len().alias("events"))
        )
        if rule.max_points is not None:
            cap = float(rule.max_points)
            totals = totals.with_columns(pl.col("total").clip(-cap, cap))
        who = totals.get_column("_ci").to_numpy()
        amount = totals.get_column("total").to_numpy()
        if rule.points > 0:
            out.positive = out.positive + np.bincount(who, weights=amount, minlength=n)
        elif rule.points < 0:
            out.negative = out.negative + np.bincount(who, weights=amount, minlength=n)
        out.reasons.append(
            totals.select(
                "_ci",
                pl.lit(idx, dtype=pl.UInt32).alias("_order"),
                pl.lit(rule.id).alias("rule"),
                pl.lit("behavior").alias("kind"),
                pl.col("total").alias("raw_points"),
                pl.col("events").cast(pl.UInt32),
            )
        )
    return out


def _immediate(parts: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Step 6, immediate: the newest (occurred_at, id, input order) event of an immediate
    rule."""
    if not parts:
        return pl.DataFrame(
            schema={
                "_ci": pl.UInt32,
                "immediate_type": pl.String,
                "immediate_at": _UTC_DT,
                "immediate_id": pl.String,
            }
        )
    return (
        pl.concat(parts)
        .sort(["_ci", "occurred_at", "id", "_seq"], nulls_last=False)
        .group_by("_ci", maintain_order=True)
        .agg(
            pl.col("type").last().alias("immediate_type"),
            pl.col("occurred_at").last().alias("immediate_at"),
            pl.col("id").last().alias("immediate_id"),
        )
    )


def _final_scores(
    run: _ModelRun,
    fit: Points,
    behaviour: _Behaviour,
    last_us: Micros,
    immediate: pl.DataFrame,
) -> pl.DataFrame:
    """Steps 4 and 5, decay, then clip, round and band: one row per contact in scope,
    dense by position."""
    model = run.model
    frame = pl.DataFrame(
        {
            "_ci": np.arange(run.n, dtype=np.uint32),
            "fit": fit,
            "_pos": behaviour.positive,
            "_neg": behaviour.negative,
            "_last_event": last_us,
            "_created": run.contacts.get_column("_created").dt.epoch("us"),
        }
    ).filter(run.scope)
    frame = frame.with_columns(
        pl.when(pl.col("_last_event") == np.iinfo(np.int64).min)
        .then(pl.col("_created"))
        .otherwise(pl.col("_last_event"))
        .alias("_last_us")
    )
    frame = _with_decay(frame, model, run.as_of_us)
    frame = frame.with_columns(
        pl.max_horizontal(pl.lit(0.0), pl.col("_pos") + pl.col("_decay")).alias("_engaged")
    )
    frame = frame.with_columns(
        ((pl.col("fit") + pl.col("_engaged")) + pl.col("_neg"))
        .clip(float(model.scale.min), float(model.scale.max))
        .alias("raw")
    )
    frame = _round2_frame(frame, "raw", "score")
    frame = frame.join(immediate, on="_ci", how="left", maintain_order="left")
    return frame.with_columns(
        pl.when(pl.col("score") >= model.bands.hot)
        .then(pl.lit("hot"))
        .when(pl.col("score") >= model.bands.warm)
        .then(pl.lit("warm"))
        .otherwise(pl.lit("cold"))
        .alias("band"),
        pl.col("immediate_at").is_not_null().alias("immediate"),
        pl.lit(run.index, dtype=pl.UInt32).alias("_model"),
        pl.col("_last_us").cast(_UTC_DT).alias("last_activity_at"),
    )


def _with_decay(frame: pl.DataFrame, model: ScoringModel, as_of_us: int) -> pl.DataFrame:
    """Step 4: the decay step each contact reached (the longest inactivity that applies):
    its points (``_decay``) and its position in the model (``_step``, for reasons)."""
    inactive = _div_exact(pl.lit(as_of_us) - pl.col("_last_us"), _US_PER_DAY)
    steps = sorted(enumerate(model.decay), key=lambda p: (-p[1].inactive_days, -p[0]))
    decay_points: Then | ChainedThen | None = None
    decay_step: Then | ChainedThen | None = None
    for step_index, step in steps:
        reached = inactive >= step.inactive_days
        points = float(step.points)
        position = pl.lit(step_index, dtype=pl.Int64)
        if decay_points is None:
            decay_points = pl.when(reached).then(points)
        else:
            decay_points = decay_points.when(reached).then(points)
        if decay_step is None:
            decay_step = pl.when(reached).then(position)
        else:
            decay_step = decay_step.when(reached).then(position)
    points_expr = pl.lit(0.0) if decay_points is None else decay_points.otherwise(0.0)
    step_expr = pl.lit(None, dtype=pl.Int64) if decay_step is None else decay_step.otherwise(None)
    no_last = pl.col("_last_us").is_null()
    return frame.with_columns(
        pl.when(no_last).then(0.0).otherwise(points_expr).alias("_decay"),
        pl.when(no_last).then(None).otherwise(step_expr).alias("_step"),
    )


def _reasons(run: _ModelRun, frame: pl.DataFrame, reason_parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Step 7, reasons: fit, behaviour after caps, and the decay actually removed."""
    model = run.model
    decay_names = [decay_rule_name(s.inactive_days) for s in model.decay]
    decay_rows = frame.filter(pl.col("_step").is_not_null())
    reason_parts.append(
        decay_rows.select(
            "_ci",
            pl.lit(len(model.rules), dtype=pl.UInt32).alias("_order"),
            pl.col("_step")
            .replace_strict(list(range(len(decay_names))), decay_names, return_dtype=pl.String)
            .alias("rule"),
            pl.lit("decay").alias("kind"),
            (pl.col("_engaged") - pl.col("_pos")).alias("raw_points"),
            pl.lit(None, dtype=pl.UInt32).alias("events"),
        )
    )
    parts = [p.select([pl.col(c).cast(t) for c, t in _REASON_SCHEMA.items()]) for p in reason_parts]
    reasons = pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=_REASON_SCHEMA)
    return _round2_frame(reasons, "raw_points", "points").with_columns(
        pl.lit(run.index, dtype=pl.UInt32).alias("_model")
    )


_REASON_SCHEMA: dict[str, PolarsDataType] = {
    "_ci": pl.UInt32,
    "_order": pl.UInt32,
    "rule": pl.String,
    "kind": pl.String,
    "raw_points": pl.Float64,
    "events": pl.UInt32,
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EMPTY_SCORES = pl.DataFrame(
    schema={
        "_ci": pl.UInt32,
        "_model": pl.UInt32,
        "raw": pl.Float64,
        "score": pl.Float64,
        "band": pl.String,
        "immediate": pl.Boolean,
        "immediate_type": pl.String,
        "immediate_at": _UTC_DT,
        "immediate_id": pl.String,
        "last_activity_at": _UTC_DT,
    }
)
_EMPTY_REASONS = pl.DataFrame(schema={**_REASON_SCHEMA, "points": pl.Float64, "_model": pl.UInt32})


def _pow_half(exponent: pl.Expr) -> pl.Expr:
    return pl.lit(0.5).pow(exponent)


def _reason_frame(
    where: Positions, order: int, rule: str, kind: str, points: float, events: int | None
) -> pl.DataFrame:
    return pl.DataFrame({"_ci": pl.Series(where, dtype=pl.UInt32)}).with_columns(
        pl.lit(order, dtype=pl.UInt32).alias("_order"),
        pl.lit(rule).alias("rule"),
        pl.lit(kind).alias("kind"),
        pl.lit(points).alias("raw_points"),
        pl.lit(events, dtype=pl.UInt32).alias("events"),
    )


def _field(contacts: pl.DataFrame, name: str) -> pl.Series:
    if name not in contacts.columns:
        return pl.Series(name, [], dtype=pl.String).extend_constant(None, contacts.height)
    return contacts.get_column(name)


# --- objects ---------------------------------------------------------------------------


def results_from_columns(columns: ScoreColumns) -> list[ScoreResult]:
    """Turn frames into ``ScoreResult`` objects: one Python object per row and reason.

    This is the costly part of scoring a large batch (see benchmarks/score_throughput.py);
    callers that write rows out can stream with ``iter_results`` or read the frames.
    """
    return list(iter_results(columns))


def iter_results(columns: ScoreColumns, *, chunk_rows: int = 65_536) -> Iterator[ScoreResult]:
    """``ScoreResult`` objects built a chunk at a time, so memory stays flat."""
    scores = columns.scores
    reason_rows = columns.reasons.get_column("row").to_numpy()
    for low in range(0, scores.height, chunk_rows):
        high = min(low + chunk_rows, scores.height)
        first, last = np.searchsorted(reason_rows, [low, high])
        yield from _build_results(
            scores.slice(low, high - low),
            columns.reasons.slice(int(first), int(last - first)),
            low,
        )


def _build_results(scores: pl.DataFrame, reasons: pl.DataFrame, offset: int) -> list[ScoreResult]:
    # Building millions of small containers sets off the cyclic garbage collector again
    # and again (it scans every live tuple); none of these objects form cycles, so it
    # is paused for the chunk. That makes building results several times faster.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_results_unguarded(scores, reasons, offset)
    finally:
        if was_enabled:
            gc.enable()


def _shared_strings(column: pl.Series) -> list[str]:
    """A text column with few distinct values as a list sharing one ``str`` per value.

    ``to_list`` makes a new string object per row: millions of copies of "behavior".
    """
    distinct = column.unique(maintain_order=True)
    codes = column.replace_strict(
        distinct, pl.Series(range(len(distinct)), dtype=pl.UInt32)
    ).to_list()
    names: list[str] = distinct.to_list()
    return list(map(names.__getitem__, codes))


def _build_results_unguarded(
    scores: pl.DataFrame, reasons: pl.DataFrame, offset: int
) -> list[ScoreResult]:
    every = list(
        map(
            partial(tuple.__new__, Reason),
            zip(
                _shared_strings(reasons.get_column("rule")),
                _shared_strings(reasons.get_column("kind")),
                reasons.get_column("points").to_list(),
                reasons.get_column("events").to_list(),
                strict=True,
            ),
        )
    )
    rows = reasons.get_column("row").to_numpy().astype(np.int64) - offset
    ends = np.cumsum(np.bincount(rows, minlength=scores.height)).tolist()
    imm_at = scores.get_column("immediate_at").to_list()
    imm_type = scores.get_column("immediate_type").to_list()
    imm_id = scores.get_column("immediate_id").to_list()
    results: list[ScoreResult] = []
    start = 0
    for i, (cid, model, score_, band, immediate, last) in enumerate(
        zip(
            scores.get_column("contact_id").to_list(),
            _shared_strings(scores.get_column("model")),
            scores.get_column("score").to_list(),
            _shared_strings(scores.get_column("band")),
            scores.get_column("immediate").to_list(),
            scores.get_column("last_activity_at").to_list(),
            strict=True,
        )
    ):
        end = ends[i]
        at = imm_at[i]
        results.append(
            ScoreResult(
                cid,
                model,
                score_,
                band,
                immediate,
                None if at is None else ImmediateEvent(imm_type[i], at, imm_id[i]),
                last,
                tuple(every[start:end]),
            )
        )
        start = end
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
    contacts: Iterable[Mapping[str, object]],
    events: Iterable[Mapping[str, object]],
    *,
    as_of: datetime,
) -> list[ScoreResult]:
    """Score records (mappings) by building frames; see ``score_frames``."""
    contacts_frame, events_frame = records_to_frames(models, contacts, events)
    return score_frames(models, contacts_frame, events_frame, as_of=as_of)


def records_to_frames(
    models: ModelSet | Sequence[ScoringModel],
    contacts: Iterable[Mapping[str, object]],
    events: Iterable[Mapping[str, object]],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Frames holding what the models read, values in their text form."""
    model_list = list(models.models if isinstance(models, ModelSet) else models)
    contact_fields, event_attrs = _fields_read(model_list)
    contact_fields.discard("id")
    contact_fields.discard("created_at")
    crows = list(contacts)
    columns: dict[str, list[str | datetime | None]] = {"id": [], "created_at": []}
    for name in contact_fields:
        columns[name] = []
    for contact in crows:
        contact_id = text_form(contact.get("id"))
        if contact_id is None:
            raise ValueError("contact without an id")
        columns["id"].append(contact_id)
        created = contact.get("created_at")
        columns["created_at"].append(
            None if created is None or created == "" else parse_timestamp(created)
        )
        for name in contact_fields:
            columns[name].append(text_form(contact.get(name)))
    schema: dict[str, PolarsDataType] = {name: pl.String for name in columns}
    schema["created_at"] = _UTC_DT
    contacts_frame = pl.DataFrame(columns, schema=schema)

    ecols: dict[str, list[str | datetime | None]] = {
        "contact_id": [],
        "type": [],
        "occurred_at": [],
        "id": [],
    }
    attrs = sorted(event_attrs - set(ecols))
    for name in attrs:
        ecols[name] = []
    for event in events:
        ecols["contact_id"].append(text_form(event["contact_id"]))
        ecols["type"].append(text_form(event["type"]))
        ecols["occurred_at"].append(parse_timestamp(event["occurred_at"]))
        ecols["id"].append(text_form(event.get("id")))
        for name in attrs:
            ecols[name].append(text_form(event.get(name)))
    eschema: dict[str, PolarsDataType] = {name: pl.String for name in ecols}
    eschema["occurred_at"] = _UTC_DT
    events_frame = pl.DataFrame(ecols, schema=eschema)
    return contacts_frame, events_frame
