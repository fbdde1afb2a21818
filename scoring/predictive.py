"""Predictive scoring: a learned model over a rules model's parts and the contact's
engagement.

A predictive model (docs/predictive.md) reads what its ``base_model`` already
computes for a contact: each rule's points after its caps, each behaviour rule's event
count, and how recently and how often the contact engaged; a tree model also reads each
event type's recent counts and long-run rate and the base model's fit fields. Training
(in ``scheduler``, with scikit-learn) writes what it learned to a JSON artifact; this
module reads that artifact and turns features into a calibrated probability, shown as
0-100, with the features that pushed it up and down as reasons in the rules models' own
form.

Why JSON and not a pickle: loading a pickle runs code, and a user must be able to read
what the model weighs. Both kinds are reproduced here exactly without importing
scikit-learn: a logistic regression, whose every coefficient is a statement a user can
check ("a pricing view multiplies the odds by 1.8"), and gradient-boosted trees, stored
node by node, which rank better where signals interact.

Pure: no I/O, no clock; the artifact's text and ``as_of`` are passed in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from scoring.model import BehaviorRule, ModelSet, PredictiveSpec, ScoringModel

__all__ = [
    "ARTIFACT_FORMAT",
    "ARTIFACT_VERSION",
    "Artifact",
    "ArtifactError",
    "Calibration",
    "Feature",
    "FeatureSpec",
    "artifact_problems",
    "attach_artifacts",
    "feature_matrix",
    "feature_specs",
    "model_set",
    "parse_artifact",
    "predict",
    "reasons_for",
    "score_with_predictive",
]

ARTIFACT_FORMAT: Literal["leadsync-predictive"] = "leadsync-predictive"
ARTIFACT_VERSION: Literal[1] = 1
# A contact without any activity date (no event, no created_at) is treated as a year idle.
NO_ACTIVITY_DAYS = 365.0
# Windows of the per-event-type counts, and how far back "days since the last one" looks
# (within what the sync keeps for any model: its longest window, at least 90 days).
EVENT_WINDOWS = (7.0, 30.0, 90.0)
SINCE_CAP_DAYS = 90.0
# The long-run rate of each event type: events per 30 days over the last year. A
# person's habits show over months, not weeks: on the sandbox's Salesforce worlds it
# raised the gain over the rules model by 0.01-0.02 (docs/predictive.md). Its span is
# cut to what is known (the contact's creation, the kept history's start), at least
# ``RATE_UNIT_DAYS``, so that a short history is not read as a quiet person.
RATE_WINDOW_DAYS = 365.0
RATE_UNIT_DAYS = 30.0
# Reasons shown per side, as Dynamics 365 shows its top five positive and negative factors.
TOP_REASONS = 5

Source = Literal[
    "points",
    "events",
    "days_since_activity",
    "events_total",
    "score",
    "event_count",
    "days_since_event",
    "event_rate",
    "field_equals",
    "field_number",
]
# The sources read from the events of one type within ``days`` before the instant.
_EVENT_SOURCES = ("event_count", "days_since_event", "event_rate")
Estimator = Literal["logistic", "trees"]
Transform = Literal["identity", "log1p"]

_CONFIG = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
_US_PER_DAY = 86_400_000_000


class FeatureSpec(BaseModel):
    """What a feature reads, before training gives it a scale and a weight."""

    model_config = _CONFIG

    name: str
    source: Source
    rule: str | None = None
    transform: Transform = "identity"
    # event_count / days_since_event / event_rate: the event type and how many days back
    # it looks
    event: str | None = None
    days: float | None = Field(default=None, gt=0)
    # field_equals / field_number: the contact field (and the value it equals)
    field: str | None = None
    value: str | None = None

    @property
    def group(self) -> str:
        """The reason this feature belongs to: its rule, event type or field."""
        return self.rule or self.event or self.field or self.name


class Feature(FeatureSpec):
    """A feature as trained: ``x' = (transform(x) - mean) / scale``, weighted by ``coef``
    (a tree model reads ``transform(x)`` itself; ``mean`` is its training average)."""

    mean: float
    scale: float = Field(gt=0)
    coef: float = 0.0


class Tree(BaseModel):
    """One regression tree of a gradient-boosted model, as parallel node arrays.

    Node ``i`` is a leaf when ``feature[i] == -1`` and then adds ``value[i]`` to the
    log-odds; otherwise a row goes to ``left[i]`` when its transformed feature is at
    most ``threshold[i]`` (or missing and ``missing_left[i]``), else to ``right[i]``.
    Children come after their parent, so every walk ends.
    """

    model_config = _CONFIG

    feature: list[int] = Field(min_length=1)
    threshold: list[float]
    missing_left: list[bool]
    left: list[int]
    right: list[int]
    value: list[float]

    @model_validator(mode="after")
    def _consistent(self) -> Tree:
        n = len(self.feature)
        arrays = (self.threshold, self.missing_left, self.left, self.right, self.value)
        if any(len(a) != n for a in arrays):
            raise ValueError(f"every node array must have {n} entries (one per node)")
        for i, f in enumerate(self.feature):
            if f >= 0 and not (i < self.left[i] < n and i < self.right[i] < n):
                raise ValueError(f"node {i}: children must be later nodes of this tree")
        return self


class Calibration(BaseModel):
    """Platt scaling of the regression's log-odds ``z``: ``p = 1 / (1 + exp(-(a·z + b)))``,
    fitted on a later period than the regression itself; ``none`` keeps ``a=1, b=0``."""

    model_config = _CONFIG

    method: Literal["none", "platt"] = "none"
    a: float = 1.0
    b: float = 0.0


class Artifact(BaseModel):
    """The trained model file: versioned, human-readable, checkable against its model."""

    model_config = _CONFIG

    format: Literal["leadsync-predictive"]
    version: Literal[1]
    model: str
    base_model: str
    base_model_hash: str
    # logistic: ``z = intercept + Σ coef · x'``; trees: ``z = intercept + Σ tree(x)``
    estimator: Estimator = "logistic"
    intercept: float
    features: list[Feature] = Field(min_length=1)
    trees: list[Tree] = Field(default_factory=list)
    calibration: Calibration = Field(default_factory=Calibration)
    training: dict[str, Any] = Field(default_factory=dict)
    holdout: dict[str, Any] = Field(default_factory=dict)
    _arrays: list[tuple[np.ndarray[Any, Any], ...]] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _trees_fit_features(self) -> Artifact:
        if self.estimator == "trees" and not self.trees:
            raise ValueError("trees: a tree model needs at least one tree")
        if self.estimator == "logistic" and self.trees:
            raise ValueError("trees: only an estimator 'trees' artifact holds trees")
        width = len(self.features)
        for k, tree in enumerate(self.trees):
            if max(tree.feature) >= width:
                raise ValueError(f"trees.{k}: a node reads a feature beyond the {width} listed")
        return self

    @property
    def history_days(self) -> float:
        """Days of events before an instant that its event features read: what the sync
        must keep beside the base model's own history."""
        return max(
            (f.days or 0.0 for f in self.features if f.event is not None),
            default=0.0,
        )

    def tree_arrays(self) -> list[tuple[np.ndarray[Any, Any], ...]]:
        """The trees as numpy arrays, built once per artifact."""
        if self._arrays is None:
            self._arrays = [
                (
                    np.asarray(t.feature, dtype=np.int64),
                    np.asarray(t.threshold, dtype=np.float64),
                    np.asarray(t.missing_left, dtype=bool),
                    np.asarray(t.left, dtype=np.int64),
                    np.asarray(t.right, dtype=np.int64),
                    np.asarray(t.value, dtype=np.float64),
                )
                for t in self.trees
            ]
        return self._arrays

    def __eq__(self, other: object) -> bool:
        """Equal when the files would be: the cached tree arrays do not count."""
        if not isinstance(other, Artifact):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"


class ArtifactError(ValueError):
    """An artifact that cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def parse_artifact(text: str, source: str) -> Artifact:
    """The artifact in ``text``; ``ArtifactError`` with ``FILE: field: problem`` lines."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtifactError([f"{source}:{exc.lineno}: (file): not valid JSON: {exc.msg}"]) from None
    if not isinstance(data, dict):
        raise ArtifactError([f"{source}:1: (file): expected a JSON object"])
    if data.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError([f"{source}: format: expected {ARTIFACT_FORMAT!r}"])
    if data.get("version") != ARTIFACT_VERSION:
        raise ArtifactError(
            [
                f"{source}: version: {data.get('version')!r} is not a version this leadsync "
                f"reads (it reads {ARTIFACT_VERSION}); train again"
            ]
        )
    try:
        return Artifact.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(file)"
            lines.append(f"{source}: {where}: {error['msg']}")
        raise ArtifactError(lines) from None


def feature_specs(
    base: ScoringModel,
    *,
    event_types: Sequence[str] = (),
    field_values: Mapping[str, Sequence[str]] | None = None,
    number_fields: Sequence[str] = (),
) -> list[FeatureSpec]:
    """The features of a predictive model over ``base``: each rule's points, each
    behaviour rule's counted events, the rules score, recency and frequency of
    engagement; then, per event type in ``event_types``, its counts over the last 7, 30
    and 90 days (velocity: a buying cycle shows as a recent burst), the days since the
    last one and its rate per 30 days over the last year (habit); per fit field, one
    indicator per value in ``field_values`` and the number of each of ``number_fields``.
    Counts and days are log-transformed: the tenth visit says less than the first."""
    out: list[FeatureSpec] = []
    for rule in base.rules:
        out.append(FeatureSpec(name=f"{rule.id}.points", source="points", rule=rule.id))
        if isinstance(rule, BehaviorRule):
            out.append(
                FeatureSpec(
                    name=f"{rule.id}.events", source="events", rule=rule.id, transform="log1p"
                )
            )
    out.append(
        FeatureSpec(name="recency", source="days_since_activity", transform="log1p"),
    )
    out.append(FeatureSpec(name="frequency", source="events_total", transform="log1p"))
    if not event_types and not field_values and not number_fields:
        return out
    out.append(FeatureSpec(name="score", source="score"))
    for event in event_types:
        for days in EVENT_WINDOWS:
            out.append(
                FeatureSpec(
                    name=f"{event}.last_{days:g}d",
                    source="event_count",
                    event=event,
                    days=days,
                    transform="log1p",
                )
            )
        out.append(
            FeatureSpec(
                name=f"{event}.days_since",
                source="days_since_event",
                event=event,
                days=SINCE_CAP_DAYS,
                transform="log1p",
            )
        )
        out.append(
            FeatureSpec(
                name=f"{event}.per_{RATE_UNIT_DAYS:g}d",
                source="event_rate",
                event=event,
                days=RATE_WINDOW_DAYS,
                transform="log1p",
            )
        )
    for name, values in (field_values or {}).items():
        for value in values:
            out.append(
                FeatureSpec(name=f"{name}={value}", source="field_equals", field=name, value=value)
            )
    for name in number_fields:
        out.append(FeatureSpec(name=name, source="field_number", field=name, transform="log1p"))
    return out


def artifact_problems(artifact: Artifact, spec: PredictiveSpec, base: ScoringModel) -> list[str]:
    """Why ``artifact`` cannot score for ``spec`` (empty when it can)."""
    out: list[str] = []
    if artifact.model != spec.name:
        out.append(f"model: trained for {artifact.model!r}, not {spec.name!r}")
    if artifact.base_model != spec.base_model:
        out.append(f"base_model: trained on {artifact.base_model!r}, not {spec.base_model!r}")
    elif artifact.base_model_hash != base.content_hash:
        out.append(
            f"base_model_hash: the rules of {base.name!r} changed since training; train again"
        )
    rules = {rule.id: rule for rule in base.rules}
    for index, feature in enumerate(artifact.features):
        if feature.source in ("points", "events"):
            rule = rules.get(feature.rule or "")
            if rule is None:
                out.append(
                    f"features.{index}.rule: {feature.rule!r} is not a rule of {base.name!r}"
                )
            elif feature.source == "events" and not isinstance(rule, BehaviorRule):
                out.append(f"features.{index}.rule: {feature.rule!r} is not a behaviour rule")
        elif feature.source in _EVENT_SOURCES:
            if not feature.event or feature.days is None:
                out.append(f"features.{index}: {feature.source} needs an event and days")
        elif (
            feature.source in ("field_equals", "field_number")
            and feature.field not in base.fields_used
        ):
            out.append(
                f"features.{index}.field: {feature.field!r} is not a field {base.name!r} reads"
            )
    return out


def model_set(
    rules: Sequence[ScoringModel],
    specs: Sequence[PredictiveSpec],
    artifacts: Mapping[str, Artifact],
) -> ModelSet:
    """Rules models and predictive models (with their artifacts) as one ``ModelSet``, for
    callers holding models from several files (the sync)."""
    out = ModelSet.model_construct(models=list(rules))
    out._predictive = list(specs)
    return attach_artifacts(out, artifacts)


def attach_artifacts(models: ModelSet, artifacts: Mapping[str, Artifact]) -> ModelSet:
    """A copy of ``models`` whose predictive models score with these artifacts; a model
    without one (missing, refused) is left out and its base model scores as before."""
    out = models.model_copy()
    known = {spec.name for spec in models.predictive}
    out._artifacts = {name: a for name, a in artifacts.items() if name in known}
    return out


# --- features and probabilities ---------------------------------------------------------


def _transform(values: np.ndarray[Any, Any], how: Transform) -> np.ndarray[Any, Any]:
    return np.log1p(np.maximum(values, 0.0)) if how == "log1p" else values


def feature_matrix(
    scores: pl.DataFrame,
    reasons: pl.DataFrame,
    specs: Sequence[FeatureSpec],
    as_of: datetime,
    *,
    contacts: pl.DataFrame | None = None,
    events: pl.DataFrame | None = None,
    history_start: datetime | None = None,
) -> np.ndarray[Any, Any]:
    """Transformed features, one row per row of ``scores``.

    ``scores``: ``contact_id, score, last_activity_at`` of the base model; ``reasons``:
    ``contact_id, rule, raw_points, events`` of the same model (the engine's frames);
    ``contacts`` (``id``, fields and ``created_at``, as of ``as_of``) and ``events``
    (the engine's frame) for the per-event-type and per-field features. Only events at
    or before ``as_of`` are read. ``history_start``: when the events kept begin, if
    later than a year before ``as_of`` (training on an early snapshot); a rate counts
    over the span the history covers.
    """
    n = scores.height
    ids = scores.select(pl.col("contact_id")).with_row_index("_r")
    joined = reasons.join(ids, on="contact_id", how="inner")
    rows = joined.get_column("_r").to_numpy().astype(np.int64)
    rule_of = joined.get_column("rule").to_numpy()
    points = joined.get_column("raw_points").to_numpy().astype(np.float64)
    counted = joined.get_column("events").fill_null(0).to_numpy().astype(np.float64)
    last = scores.get_column("last_activity_at")
    as_of_us = _epoch_us(as_of)
    last_us = last.dt.epoch("us").to_numpy()
    days = np.where(
        last.is_null().to_numpy(),
        NO_ACTIVITY_DAYS,
        (as_of_us - np.nan_to_num(last_us.astype(np.float64))) / _US_PER_DAY,
    )
    total = np.bincount(rows, weights=counted, minlength=n).astype(np.float64)
    recent = _recent_events(specs, ids, events, as_of, as_of_us)
    fields = _fields(specs, ids, contacts)
    kept_days = (
        (as_of_us - _epoch_us(history_start)) / _US_PER_DAY
        if history_start is not None
        else math.inf
    )
    known = np.minimum(_known_days(specs, ids, contacts, as_of_us), kept_days)
    x = np.zeros((n, len(specs)), dtype=np.float64)
    for j, spec in enumerate(specs):
        column: np.ndarray[Any, Any]
        if spec.source == "points":
            mask = rule_of == spec.rule
            column = np.bincount(rows[mask], weights=points[mask], minlength=n)
        elif spec.source == "events":
            mask = rule_of == spec.rule
            column = np.bincount(rows[mask], weights=counted[mask], minlength=n)
        elif spec.source == "days_since_activity":
            column = np.maximum(days, 0.0)
        elif spec.source == "events_total":
            column = total
        elif spec.source == "score":
            column = scores.get_column("score").to_numpy().astype(np.float64)
        elif spec.source in _EVENT_SOURCES:
            e_rows, e_age = recent.get(spec.event or "", (np.zeros(0, np.int64), np.zeros(0)))
            window = float(spec.days or 0.0)
            inside = e_age < window
            if spec.source == "event_count":
                column = np.bincount(e_rows[inside], minlength=n).astype(np.float64)
            elif spec.source == "event_rate":
                kept = inside & (e_age <= kept_days)  # the first kept event counts
                count = np.bincount(e_rows[kept], minlength=n).astype(np.float64)
                span = np.clip(known, RATE_UNIT_DAYS, max(window, RATE_UNIT_DAYS))
                column = RATE_UNIT_DAYS * count / span
            else:
                column = np.full(n, window)
                np.minimum.at(column, e_rows[inside], e_age[inside])
        elif spec.source == "field_equals":
            text = fields.get(spec.field or "")
            column = (
                np.zeros(n)
                if text is None
                else (text == (spec.value or "").lower()).astype(np.float64)
            )
        else:
            text = fields.get(spec.field or "")
            column = np.zeros(n) if text is None else _numbers(text)
        x[:, j] = _transform(column.astype(np.float64), spec.transform)
    return x


def _recent_events(
    specs: Sequence[FeatureSpec],
    ids: pl.DataFrame,
    events: pl.DataFrame | None,
    as_of: datetime,
    as_of_us: int,
) -> dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """Per event type the features read: (row of ``scores``, age in days) of each
    event in ``(as_of - longest window, as_of]``."""
    wanted = [s for s in specs if s.source in _EVENT_SOURCES]
    if not wanted or events is None or events.height == 0:
        return {}
    types = sorted({s.event or "" for s in wanted})
    longest = max(float(s.days or 0.0) for s in wanted)
    since = as_of_us - int(longest * _US_PER_DAY)
    at = pl.col("occurred_at").dt.epoch("us")
    recent = (
        events.select(pl.col("contact_id").cast(pl.String), "type", at.alias("_us"))
        .filter(pl.col("type").is_in(types) & (pl.col("_us") <= as_of_us) & (pl.col("_us") > since))
        .join(ids, on="contact_id", how="inner")
    )
    out: dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = {}
    for (kind,), part in recent.group_by(["type"]):
        out[str(kind)] = (
            part.get_column("_r").to_numpy().astype(np.int64),
            (as_of_us - part.get_column("_us").to_numpy().astype(np.float64)) / _US_PER_DAY,
        )
    return out


def _known_days(
    specs: Sequence[FeatureSpec],
    ids: pl.DataFrame,
    contacts: pl.DataFrame | None,
    as_of_us: int,
) -> np.ndarray[Any, Any]:
    """Per row, the days before ``as_of`` since the contact was created (infinite when
    unknown)."""
    known = np.full(ids.height, np.inf)
    if not any(s.source == "event_rate" for s in specs):
        return known
    if contacts is not None and "created_at" in contacts.columns:
        created = (
            _per_row(ids, contacts, pl.col("created_at").dt.epoch("us").alias("_created"))
            .get_column("_created")
            .to_numpy()
            .astype(np.float64)
        )
        since = (as_of_us - created) / _US_PER_DAY
        known = np.where(np.isnan(since), known, np.minimum(known, since))
    return known


def _fields(
    specs: Sequence[FeatureSpec], ids: pl.DataFrame, contacts: pl.DataFrame | None
) -> dict[str, np.ndarray[Any, Any]]:
    """Per field the features read: its values in lower case, aligned with ``ids``."""
    names = sorted({s.field or "" for s in specs if s.source in ("field_equals", "field_number")})
    if not names or contacts is None:
        return {}
    present = [f for f in names if f in contacts.columns]
    frame = _per_row(
        ids,
        contacts,
        *[pl.col(f).cast(pl.String).str.strip_chars().str.to_lowercase() for f in present],
    )
    return {f: frame.get_column(f).fill_null("").to_numpy() for f in present}


def _per_row(ids: pl.DataFrame, contacts: pl.DataFrame, *columns: pl.Expr) -> pl.DataFrame:
    """``columns`` of ``contacts`` aligned with the rows of ``ids`` (null where the
    contact is missing; its first record where it appears twice)."""
    return ids.join(
        contacts.select(pl.col("id").cast(pl.String).alias("contact_id"), *columns).unique(
            "contact_id", keep="first"
        ),
        on="contact_id",
        how="left",
    ).sort("_r")


def _epoch_us(t: datetime) -> int:
    return int(pl.Series([t]).dt.epoch("us")[0])


def _numbers(text: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A field's text as numbers (0 when empty or not a number)."""
    values = pl.Series(text).cast(pl.Float64, strict=False).fill_null(0.0).fill_nan(0.0)
    out: np.ndarray[Any, Any] = values.to_numpy().astype(np.float64)
    return out


def _standardised(artifact: Artifact, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    mean = np.array([f.mean for f in artifact.features])
    scale = np.array([f.scale for f in artifact.features])
    result: np.ndarray[Any, Any] = (x - mean) / scale
    return result


def _sigmoid(z: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    # scipy's expit, written out: exact in both tails without overflow warnings
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _tree_values(tree: tuple[np.ndarray[Any, Any], ...], x: np.ndarray[Any, Any]) -> Any:
    """Each row's leaf value: all rows walk down together, one level per step."""
    feature, threshold, missing_left, left, right, value = tree
    node = np.zeros(x.shape[0], dtype=np.int64)
    rows = np.nonzero(feature[node] >= 0)[0]
    while rows.size:
        at = node[rows]
        v = x[rows, feature[at]]
        go_left = np.where(np.isnan(v), missing_left[at], v <= threshold[at])
        node[rows] = np.where(go_left, left[at], right[at])
        rows = rows[feature[node[rows]] >= 0]
    return value[node]


def log_odds(artifact: Artifact, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The model's ``z`` per row of ``x``: scikit-learn's ``decision_function`` for a
    logistic regression, the baseline plus every tree's leaf, added in the trees'
    order, for gradient-boosted trees (as ``HistGradientBoostingClassifier`` adds)."""
    if artifact.estimator == "trees":
        raw = np.zeros(x.shape[0], dtype=np.float64)
        raw += artifact.intercept
        for tree in artifact.tree_arrays():
            raw += _tree_values(tree, x)
        return raw
    coef = np.array([f.coef for f in artifact.features])
    z: np.ndarray[Any, Any] = _standardised(artifact, x) @ coef + artifact.intercept
    return z


def predict(
    artifact: Artifact, x: np.ndarray[Any, Any], *, calibrated: bool = True
) -> np.ndarray[Any, Any]:
    """Probabilities per row of ``x``; ``calibrated=False`` gives the regression's own
    (scikit-learn's ``predict_proba[:, 1]``)."""
    z = log_odds(artifact, x)
    if calibrated and artifact.calibration.method == "platt":
        z = artifact.calibration.a * z + artifact.calibration.b
    return _sigmoid(z)


@dataclass(frozen=True)
class Contribution:
    rule: str
    kind: Literal["fit", "behavior", "decay"]
    points: float
    events: int | None


def reasons_for(
    artifact: Artifact, base: ScoringModel, x: np.ndarray[Any, Any]
) -> list[list[Contribution]]:
    """Per row, the top positive and top negative contributions in score points.

    A feature's contribution is how much the 0-100 score would fall if that feature
    were at its training average, the others unchanged: with a logistic model the
    log-odds add up, the probabilities do not, so each is measured on the score itself.
    A behaviour rule's points and events are one reason, as in a rules model.
    """
    if x.shape[0] == 0:
        return []
    kinds: dict[str, Literal["fit", "behavior", "decay"]] = {r.id: r.kind for r in base.rules}
    for feature in artifact.features:
        if feature.source in ("field_equals", "field_number"):
            kinds.setdefault(feature.group, "fit")
    cal = artifact.calibration
    a, b = (cal.a, cal.b) if cal.method == "platt" else (1.0, 0.0)
    groups: dict[str, list[int]] = {}
    for j, feature in enumerate(artifact.features):
        groups.setdefault(feature.group, []).append(j)
    names = list(groups)
    effect = np.zeros((x.shape[0], len(names)))
    if artifact.estimator == "trees":
        p = _sigmoid(a * log_odds(artifact, x) + b)
        mean = np.array([f.mean for f in artifact.features])
        for k, name in enumerate(names):
            at_mean = x.copy()
            at_mean[:, groups[name]] = mean[groups[name]]
            effect[:, k] = 100.0 * (p - _sigmoid(a * log_odds(artifact, at_mean) + b))
    else:
        coef = np.array([f.coef for f in artifact.features])
        terms = _standardised(artifact, x) * coef  # log-odds each feature adds over its mean
        z = terms.sum(axis=1) + artifact.intercept
        p = _sigmoid(a * z + b)
        for k, name in enumerate(names):
            without = z - terms[:, groups[name]].sum(axis=1)
            effect[:, k] = 100.0 * (p - _sigmoid(a * without + b))
    event_cols = {
        f.rule: j for j, f in enumerate(artifact.features) if f.source == "events" and f.rule
    }
    for j, f in enumerate(artifact.features):  # an event type's reason: its 90-day count
        if f.source == "event_count" and f.event and f.days == max(EVENT_WINDOWS):
            event_cols.setdefault(f.event, j)
    total_col = next(
        (j for j, f in enumerate(artifact.features) if f.source == "events_total"), None
    )
    out: list[list[Contribution]] = []
    for i in range(x.shape[0]):
        row: list[Contribution] = []
        order = np.argsort(-effect[i], kind="stable")
        ups = [k for k in order if effect[i, k] > 0.005][:TOP_REASONS]
        downs = [k for k in order[::-1] if effect[i, k] < -0.005][:TOP_REASONS]
        for k in ups + downs:
            name = names[k]
            events: int | None = None
            if name in event_cols:
                events = round(math.expm1(x[i, event_cols[name]]))
            elif name == "frequency" and total_col is not None:
                events = round(math.expm1(x[i, total_col]))
            row.append(Contribution(name, kinds.get(name, "behavior"), float(effect[i, k]), events))
        out.append(row)
    return out


# --- the engine's hook -------------------------------------------------------------------


def score_with_predictive(
    models: ModelSet, contacts: pl.DataFrame, events: pl.DataFrame, *, as_of: datetime
) -> Any:
    """``score_columns`` for a model set with attached artifacts: the rules models as
    always, then each predictive model on the contacts its base model scored, rows in
    contact order then model order (rules models first, predictive ones after)."""
    from scoring.engine import _as_utc_datetime, _round2_frame, score_columns

    as_of = _as_utc_datetime(as_of)
    columns = score_columns(list(models.models), contacts, events, as_of=as_of)
    scores, reasons = columns.scores, columns.reasons
    n_rules = len(models.models)
    position = contacts.select(pl.col("id").cast(pl.String).alias("contact_id")).with_row_index(
        "_ci"
    )
    model_index = {m.name: i for i, m in enumerate(models.models)}
    score_parts = [
        scores.with_columns(
            pl.col("model").replace_strict(model_index, return_dtype=pl.Int64).alias("_m")
        )
    ]
    reason_parts = [
        reasons.join(
            score_parts[0].with_row_index("row").select(pl.col("row").cast(pl.UInt32), "_m"),
            on="row",
        ).with_columns(pl.int_range(pl.len()).over("row").alias("_o"))
    ]
    artifacts = models.artifacts
    for k, spec in enumerate(models.predictive):
        artifact = artifacts.get(spec.name)
        if artifact is None:
            continue
        base = models.get(spec.base_model)
        base_scores = scores.filter(pl.col("model") == base.name)
        base_reasons = reasons.filter(pl.col("model") == base.name)
        x = feature_matrix(
            base_scores, base_reasons, artifact.features, as_of, contacts=contacts, events=events
        )
        p = predict(artifact, x)
        frame = base_scores.select("contact_id", "last_activity_at").with_columns(
            pl.lit(spec.name).alias("model"),
            pl.Series("raw", 100.0 * p, dtype=pl.Float64),
            pl.lit(value=False).alias("immediate"),
            pl.lit(None, dtype=pl.String).alias("immediate_type"),
            pl.lit(None, dtype=scores.schema["immediate_at"]).alias("immediate_at"),
            pl.lit(None, dtype=pl.String).alias("immediate_id"),
            pl.lit(n_rules + k, dtype=pl.Int64).alias("_m"),
        )
        frame = _round2_frame(frame, "raw", "score")
        frame = frame.with_columns(
            pl.when(pl.col("score") >= spec.bands.hot)
            .then(pl.lit("hot"))
            .when(pl.col("score") >= spec.bands.warm)
            .then(pl.lit("warm"))
            .otherwise(pl.lit("cold"))
            .alias("band")
        )
        score_parts.append(frame.select(*scores.columns, "_m"))
        rows: list[dict[str, Any]] = []
        ids = base_scores.get_column("contact_id").to_list()
        for i, contributions in enumerate(reasons_for(artifact, base, x)):
            for o, c in enumerate(contributions):
                rows.append(
                    {
                        "contact_id": ids[i],
                        "model": spec.name,
                        "rule": c.rule,
                        "kind": c.kind,
                        "raw_points": c.points,
                        "events": c.events,
                        "_m": n_rules + k,
                        "_o": o,
                    }
                )
        part = pl.DataFrame(
            rows,
            schema={
                "contact_id": pl.String,
                "model": pl.String,
                "rule": pl.String,
                "kind": pl.String,
                "raw_points": pl.Float64,
                "events": pl.UInt32,
                "_m": pl.Int64,
                "_o": pl.Int64,
            },
        )
        reason_parts.append(_round2_frame(part, "raw_points", "points"))
    merged = (
        pl.concat(score_parts, how="diagonal_relaxed")
        .join(position, on="contact_id", how="left")
        .sort(["_ci", "_m"], maintain_order=True)
    )
    keyed = merged.select("contact_id", "_m").with_row_index("row")
    all_reasons = (
        pl.concat([r.drop("row", strict=False) for r in reason_parts], how="diagonal_relaxed")
        .join(keyed, on=["contact_id", "_m"], how="inner")
        .sort(["row", "_o"])
    )
    from scoring.engine import ScoreColumns

    return ScoreColumns(
        scores=merged.select(scores.columns),
        reasons=all_reasons.select(
            pl.col("row").cast(pl.UInt32), *[c for c in reasons.columns if c != "row"]
        ),
    )
