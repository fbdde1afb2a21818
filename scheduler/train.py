"""Training a predictive model from the stored outcomes (docs/predictive.md).

The training set is the backtest's: snapshots every ``every``, the contacts eligible at
each (``labelled_snapshots``), their features computed by the base rules model as of the
snapshot (fields rebuilt, events cut at ``t``), labelled by a deal within the horizon.
The split is by time, never random: the holdout is the latest snapshots, and training
uses only snapshots whose horizon ends before the holdout starts, so no training label
looks at a deal the holdout is judged on.

scikit-learn is imported only here, inside the functions that fit: it is the optional
extra ``leadsync[predictive]``; scoring with a trained artifact never needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from scheduler.backtest import (
    CHANGED_AT_CONVERSION,
    HistoryData,
    Milestone,
    labelled_snapshots,
    usable_model,
)
from scoring import evaluation as ev
from scoring.engine import score_columns
from scoring.model import PredictiveSpec, ScoringModel
from scoring.predictive import (
    ARTIFACT_FORMAT,
    ARTIFACT_VERSION,
    EVENT_WINDOWS,
    SINCE_CAP_DAYS,
    Artifact,
    Calibration,
    Estimator,
    Feature,
    FeatureSpec,
    Tree,
    feature_matrix,
    feature_specs,
    predict,
)

__all__ = [
    "MIN_CONVERSIONS",
    "MIN_NON_CONVERSIONS",
    "TooLittleData",
    "TrainOptions",
    "TrainResult",
    "TrainingSet",
    "at_least_as_good",
    "beside_rules",
    "build_training_set",
    "first_usable",
    "history_needed",
    "judge_retrain",
    "old_holdout_for",
    "reliability_curve",
    "retrain_due",
    "train",
]

# Dynamics 365's documented floor for its predictive lead scoring (40 qualified and 40
# disqualified leads). With fewer, a regression over a dozen features fits noise: its
# coefficients flip sign from one retrain to the next and its reasons mean nothing.
MIN_CONVERSIONS = 40
MIN_NON_CONVERSIONS = 40
# Feature choice for tree models: event types rarer than this say nothing reliable, and
# a text field's values beyond the most frequent few are too rare to learn from.
MIN_EVENTS_PER_TYPE = 50
MAX_FIELD_VALUES = 30
_DAY = timedelta(days=1)


class TooLittleData(ValueError):
    """Training refused: the window holds too few conversions or non-conversions."""


@dataclass(frozen=True)
class TrainOptions:
    every: timedelta = timedelta(days=7)
    horizon: timedelta = timedelta(days=90)
    milestone: Milestone = "won"
    span: timedelta = timedelta(weeks=52)  # training window before the holdout
    holdout: timedelta = timedelta(weeks=8)  # the latest snapshots, judged, never trained on
    # the latest share of training snapshots fits the calibration (on the scores of a
    # model fitted on the rest), before trees are fitted on all of training
    calibration_share: float = 0.25
    regularisation: float = 1.0  # scikit-learn's C
    # logistic: a regression over the base model's parts; trees: gradient-boosted trees
    # over those and the per-event-type and per-field features (docs/predictive.md)
    estimator: Estimator = "trees"
    trees: int = 200  # boosting iterations
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 200
    min_conversions: int = MIN_CONVERSIONS
    min_non_conversions: int = MIN_NON_CONVERSIONS


@dataclass
class TrainingSet:
    """One row per (contact, snapshot) pair the base model scores."""

    t: np.ndarray[Any, Any]  # snapshot instants (datetime64[us])
    contact_id: np.ndarray[Any, Any]
    x: np.ndarray[Any, Any]  # transformed features
    y: np.ndarray[Any, Any]  # labels 0/1
    base_score: np.ndarray[Any, Any]  # the rules model's score, for comparison
    features: list[FeatureSpec]


@dataclass
class TrainResult:
    artifact: Artifact
    holdout: TrainingSet
    train_pairs: int
    # (scaler, regression, platt or None): scikit-learn's own objects, for the test
    # that the artifact reproduces them; never saved.
    estimators: tuple[Any, Any, Any] = (None, None, None)


def _midnight(t: datetime) -> datetime:
    t = t.astimezone(UTC)
    return datetime(t.year, t.month, t.day, tzinfo=UTC)


def plan(
    data_end: datetime,
    options: TrainOptions,
    *,
    first_usable: datetime | None = None,
) -> tuple[list[datetime], list[datetime]]:
    """``(training snapshots, holdout snapshots)``: holdout the latest snapshots whose
    horizon the data covers; training earlier ones whose horizon ends by the holdout,
    none before ``first_usable`` (the first instant whose features the kept history can
    compute in full)."""
    last = _midnight(data_end - options.horizon)
    holdout_start = last - options.holdout
    holdout: list[datetime] = []
    t = holdout_start
    while t <= last:
        holdout.append(t)
        t += options.every
    train_end = holdout_start - options.horizon
    first = train_end - options.span
    if first_usable is not None:
        first = max(first, first_usable)
    training: list[datetime] = []
    t = train_end
    while t >= first:
        training.append(t)
        t -= options.every
    return sorted(training), holdout


def first_usable(data: HistoryData, base: ScoringModel) -> datetime | None:
    """The first snapshot whose features the kept history can compute in full: the sync
    keeps events from ``kept_since`` on (or from its first kept event, when later) and
    the features read :func:`history_needed` back. An earlier snapshot would teach the
    model that nobody engaged, only because nothing older was kept. An export (no
    ``kept_since``) is taken as the whole history."""
    start = history_start(data)
    needed = history_needed(base, data.events)
    if start is None or needed is None:
        return None
    return start + timedelta(days=needed)


def history_start(data: HistoryData) -> datetime | None:
    """When the kept events begin: ``kept_since``, or the first kept event when later;
    None for an export (taken as the whole history)."""
    if data.kept_since is None:
        return None
    start = data.kept_since
    if data.events.height:
        earliest = data.events.get_column("occurred_at").min()
        if isinstance(earliest, datetime) and earliest > start:
            start = earliest
    return start


def history_needed(base: ScoringModel, events: pl.DataFrame) -> float | None:
    """Days of events the features at one snapshot read: the base model's
    ``history_days`` over the rules whose event type the history holds at all (at least
    the per-event-type windows), or None for all of it.

    A rule whose events the CRM never records reads nothing however long its window:
    Salesforce keeps an unsubscribe as a flag on the person, never as an event, so the
    starter model's year-long unsubscribe window would otherwise discard a year of a
    Salesforce history that every feature can use."""
    present = (
        set(events.get_column("type").unique().to_list()) if "type" in events.columns else set()
    )
    windows: list[float] = [max(EVENT_WINDOWS), SINCE_CAP_DAYS]
    for rule in base.behavior_rules:
        if rule.event not in present:
            continue
        if rule.window_days is None:
            return None
        windows.append(rule.window_days)
    longest_step = max((step.inactive_days for step in base.decay), default=0.0)
    return max(windows) + longest_step


def choose_features(
    data: HistoryData, base: ScoringModel, until: datetime, estimator: Estimator
) -> list[FeatureSpec]:
    """The features of a model trained on history before ``until``. A logistic model
    reads the base model's parts only (each weight a statement about a rule); trees also
    read every event type seen at least ``MIN_EVENTS_PER_TYPE`` times, and the base
    model's fit fields: numbers as numbers, text fields by their values shared by at
    least one contact in a hundred (at most ``MAX_FIELD_VALUES`` per field)."""
    if estimator == "logistic":
        return feature_specs(base)
    model, _ = usable_model(base, CHANGED_AT_CONVERSION - data.reconstruction.rebuilt)
    events = data.events.filter(pl.col("occurred_at") < until)
    counts = events.group_by("type").len().filter(pl.col("len") >= MIN_EVENTS_PER_TYPE)
    event_types = sorted(str(t) for t in counts.get_column("type").to_list())
    field_values: dict[str, list[str]] = {}
    number_fields: list[str] = []
    contacts = data.contacts.filter(pl.col("created_at") < until)
    for name in sorted({r.field for r in model.fit_rules}):
        if name not in contacts.columns or contacts.height == 0:
            continue
        text = (
            contacts.get_column(name).cast(pl.String).str.strip_chars().str.to_lowercase()
        ).drop_nulls()
        text = text.filter(text != "")
        if text.len() == 0:
            continue
        if text.cast(pl.Float64, strict=False).null_count() <= 0.1 * text.len():
            number_fields.append(name)
            continue
        frequent = (
            text.value_counts(sort=True)
            .filter(pl.col("count") >= max(0.01 * contacts.height, 1))
            .head(MAX_FIELD_VALUES)
        )
        if frequent.height:
            field_values[name] = sorted(str(v) for v in frequent.get_column(name).to_list())
    return feature_specs(
        base, event_types=event_types, field_values=field_values, number_fields=number_fields
    )


def build_training_set(
    data: HistoryData,
    base: ScoringModel,
    snapshots: Sequence[datetime],
    options: TrainOptions,
    specs: Sequence[FeatureSpec] | None = None,
) -> TrainingSet:
    """Features and labels at each snapshot, with the backtest's eligibility and labels:
    fields as of the snapshot, events up to it, labels from the horizon after it."""
    specs = list(specs) if specs is not None else feature_specs(base)
    model, _ = usable_model(base, CHANGED_AT_CONVERSION - data.reconstruction.rebuilt)
    pairs = labelled_snapshots(
        data, snapshots, horizon=options.horizon, milestone=options.milestone
    )
    ts: list[np.ndarray[Any, Any]] = []
    ids: list[np.ndarray[Any, Any]] = []
    xs: list[np.ndarray[Any, Any]] = []
    ys: list[np.ndarray[Any, Any]] = []
    bases: list[np.ndarray[Any, Any]] = []
    kept_from = history_start(data)
    for t in snapshots:
        at_t = pairs.filter(pl.col("t") == t)
        if at_t.height == 0:
            continue
        contacts = data.contacts.filter(pl.col("id").is_in(at_t.get_column("contact_id").implode()))
        contacts = data.reconstruction.as_of(contacts, t)
        columns = score_columns([model], contacts, data.events, as_of=t)
        scores = columns.scores.join(
            at_t.select("contact_id", "label"), on="contact_id", how="inner"
        )
        x = feature_matrix(
            scores,
            columns.reasons,
            specs,
            t,
            contacts=contacts,
            events=data.events,
            history_start=kept_from,
        )
        ts.append(np.full(scores.height, np.datetime64(t.replace(tzinfo=None), "us")))
        ids.append(scores.get_column("contact_id").to_numpy())
        xs.append(x)
        ys.append(scores.get_column("label").to_numpy().astype(np.int64))
        bases.append(scores.get_column("score").to_numpy().astype(np.float64))
    width = len(specs)
    return TrainingSet(
        t=np.concatenate(ts) if ts else np.array([], dtype="datetime64[us]"),
        contact_id=np.concatenate(ids) if ids else np.array([], dtype=object),
        x=np.vstack(xs) if xs else np.zeros((0, width)),
        y=np.concatenate(ys) if ys else np.zeros(0, dtype=np.int64),
        base_score=np.concatenate(bases) if bases else np.zeros(0),
        features=specs,
    )


def _subset(s: TrainingSet, mask: np.ndarray[Any, Any]) -> TrainingSet:
    return TrainingSet(
        s.t[mask], s.contact_id[mask], s.x[mask], s.y[mask], s.base_score[mask], s.features
    )


def _check_enough(s: TrainingSet, options: TrainOptions, window: str) -> None:
    """Conversions and non-conversions are counted as contacts, not pairs: one contact
    seen at ten snapshots is one example of a buyer, not ten."""
    converted = set(s.contact_id[s.y == 1].tolist())
    others = set(s.contact_id.tolist()) - converted
    missing = []
    if len(converted) < options.min_conversions:
        missing.append(
            f"{len(converted)} converting contacts (needs {options.min_conversions}, "
            f"{options.min_conversions - len(converted)} more)"
        )
    if len(others) < options.min_non_conversions:
        missing.append(
            f"{len(others)} non-converting contacts (needs {options.min_non_conversions}, "
            f"{options.min_non_conversions - len(others)} more)"
        )
    if missing:
        raise TooLittleData(
            f"too little data to train: the training window {window} holds "
            + " and ".join(missing)
            + "; the rules model keeps scoring"
        )


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def train(
    data: HistoryData,
    spec: PredictiveSpec,
    base: ScoringModel,
    options: TrainOptions | None = None,
) -> TrainResult:
    """Fit, calibrate and judge on the later holdout; raises ``TooLittleData``."""
    options = options or TrainOptions()
    training_times, holdout_times = plan(
        data.data_end, options, first_usable=first_usable(data, base)
    )
    window = (
        f"({_iso(training_times[0])} to {_iso(training_times[-1])})"
        if training_times
        else "(empty: the history is shorter than the horizon and the holdout)"
    )
    specs = (
        choose_features(data, base, training_times[-1] + options.every, options.estimator)
        if training_times
        else feature_specs(base)
    )
    full = build_training_set(data, base, training_times, options, specs)
    _check_enough(full, options, window)
    holdout = build_training_set(data, base, holdout_times, options, specs)

    # Later training snapshots fit the calibration, on the scores of a model fitted on
    # the earlier ones.
    cut_index = int(len(training_times) * (1 - options.calibration_share))
    cut = np.datetime64(training_times[cut_index].replace(tzinfo=None), "us")
    fit = _subset(full, full.t < cut)
    cal = _subset(full, full.t >= cut)
    if len(set(fit.y.tolist())) < 2:
        fit, cal = full, _subset(full, full.t < full.t.min())
    fit_model = _fit_trees if options.estimator == "trees" else _fit_logistic
    fitted = fit_model(fit, options)
    calibration = Calibration()
    platt: Any = None
    if cal.x.shape[0] and len(set(cal.y.tolist())) == 2:
        z = fitted.decision(cal.x).reshape(-1, 1)
        platt = _platt(z, cal.y)
        calibration = Calibration(
            method="platt", a=float(platt.coef_[0, 0]), b=float(platt.intercept_[0])
        )
        if options.estimator == "trees":
            # The calibration had to see scores of snapshots the model did not learn
            # from; the trees then learn from all of training, the latest weeks (the
            # most like what they will score) included, with the same settings. Their
            # log-odds keep their scale, so the calibration carries over: the
            # holdout's calibration error tells (docs/predictive.md, "Training"). A
            # regression keeps its fit: refitted, it gained nothing measurable.
            fitted = fit_model(full, options)
    features = fitted.features
    intercept = fitted.intercept
    artifact = Artifact(
        format=ARTIFACT_FORMAT,
        version=ARTIFACT_VERSION,
        model=spec.name,
        base_model=base.name,
        base_model_hash=base.content_hash,
        estimator=options.estimator,
        intercept=intercept,
        features=features,
        trees=fitted.trees,
        calibration=calibration,
        training={
            "from": _iso(training_times[0]),
            "to": _iso(training_times[-1]),
            "every_days": options.every / _DAY,
            "horizon_days": options.horizon / _DAY,
            "milestone": options.milestone,
            "pairs": int(full.y.size),
            "positives": int(full.y.sum()),
            "converting_contacts": len(set(full.contact_id[full.y == 1].tolist())),
            "calibration_from": _iso(training_times[cut_index]),
            "data_end": _iso(data.data_end),
        },
    )
    judged = judge(artifact, holdout)
    artifact = artifact.model_copy(
        update={
            "holdout": {
                "from": _iso(holdout_times[0]) if holdout_times else None,
                "to": _iso(holdout_times[-1]) if holdout_times else None,
                **judged,
            }
        }
    )
    return TrainResult(
        artifact=artifact,
        holdout=holdout,
        train_pairs=int(full.y.size),
        estimators=(fitted.scaler, fitted.model, platt),
    )


@dataclass
class _Fitted:
    """A fitted model as the artifact holds it, and scikit-learn's own objects."""

    features: list[Feature]
    intercept: float
    trees: list[Tree]
    scaler: Any
    model: Any

    def decision(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """scikit-learn's log-odds of the fitted model (for the calibration)."""
        z: np.ndarray[Any, Any] = (
            self.model.decision_function(self.scaler.transform(x))
            if self.scaler is not None
            else self.model.decision_function(x)
        )
        return z


def _fit_logistic(fit: TrainingSet, options: TrainOptions) -> _Fitted:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(fit.x)
    regression = LogisticRegression(C=options.regularisation, max_iter=5000)
    regression.fit(scaler.transform(fit.x), fit.y)
    features = [
        Feature(
            **spec_.model_dump(),
            mean=float(scaler.mean_[j]),
            scale=float(scaler.scale_[j]),
            coef=float(regression.coef_[0, j]),
        )
        for j, spec_ in enumerate(fit.features)
    ]
    return _Fitted(features, float(regression.intercept_[0]), [], scaler, regression)


def _fit_trees(fit: TrainingSet, options: TrainOptions) -> _Fitted:
    """Gradient-boosted trees (scikit-learn's ``HistGradientBoostingClassifier``), with
    a fixed number of iterations and no random validation split: the only split is by
    time. Its trees are copied node by node into the artifact; the model compares the
    raw (transformed, unscaled) features with each node's threshold, as the core does."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(
        max_iter=options.trees,
        learning_rate=options.learning_rate,
        max_leaf_nodes=options.max_leaf_nodes,
        min_samples_leaf=options.min_samples_leaf,
        early_stopping=False,
        random_state=0,
    ).fit(fit.x, fit.y)
    trees = [_tree(predictors[0].nodes) for predictors in model._predictors]
    mean = fit.x.mean(axis=0) if fit.x.shape[0] else np.zeros(fit.x.shape[1])
    std = fit.x.std(axis=0) if fit.x.shape[0] else np.ones(fit.x.shape[1])
    features = [
        Feature(
            **spec_.model_dump(),
            mean=float(mean[j]),
            scale=float(std[j]) if std[j] > 0 else 1.0,
        )
        for j, spec_ in enumerate(fit.features)
    ]
    baseline = float(np.asarray(model._baseline_prediction).ravel()[0])
    return _Fitted(features, baseline, trees, None, model)


def _tree(nodes: np.ndarray[Any, Any]) -> Tree:
    """One of scikit-learn's tree predictors (a structured node array) as a ``Tree``."""
    leaf = nodes["is_leaf"].astype(bool)
    if nodes["is_categorical"].any():  # pragma: no cover - no categorical features
        raise ValueError("categorical splits are not supported")
    return Tree(
        feature=[-1 if leaf[i] else int(f) for i, f in enumerate(nodes["feature_idx"])],
        threshold=[0.0 if leaf[i] else float(v) for i, v in enumerate(nodes["num_threshold"])],
        missing_left=[bool(v) for v in nodes["missing_go_to_left"]],
        left=[0 if leaf[i] else int(v) for i, v in enumerate(nodes["left"])],
        right=[0 if leaf[i] else int(v) for i, v in enumerate(nodes["right"])],
        value=[float(v) if leaf[i] else 0.0 for i, v in enumerate(nodes["value"])],
    )


def _platt(z: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> Any:
    """Platt scaling: a one-feature logistic regression of the labels on ``z``."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1e6, max_iter=5000).fit(z, y)


def judge(artifact: Artifact, holdout: TrainingSet) -> dict[str, Any]:
    """AUC and expected calibration error of the artifact and of the rules model on the
    same holdout pairs. The rules score is read as a probability the way a user would
    read "72 of 100"; a rules score is not calibrated, which is what this shows."""
    p = predict(artifact, holdout.x) if holdout.x.shape[0] else np.zeros(0)
    rules = np.clip(holdout.base_score / 100.0, 0.0, 1.0)
    return {
        "pairs": int(holdout.y.size),
        "positives": int(holdout.y.sum()),
        "auc": ev.roc_auc(p, holdout.y),
        **_gain(holdout.base_score, p, holdout.y, holdout.contact_id),
        "ece": ev.expected_calibration_error(p, holdout.y) if p.size else None,
        "rules_auc": ev.roc_auc(holdout.base_score, holdout.y),
        "rules_ece": ev.expected_calibration_error(rules, holdout.y) if p.size else None,
        "reliability": reliability_curve(p, holdout.y),
        "rules_reliability": reliability_curve(rules, holdout.y),
    }


def _gain(
    rules: np.ndarray[Any, Any],
    predictive: np.ndarray[Any, Any],
    labels: np.ndarray[Any, Any],
    contacts: np.ndarray[Any, Any],
) -> dict[str, Any]:
    """``auc_gain``, the predictive model's AUC minus the rules model's on the same
    pairs, and ``auc_gain_ci95``, its 95 % interval as the backtest's comparison
    resamples: contacts, each with all its snapshots. One contact's weekly snapshots
    are not independent examples; resampling pairs would make the interval look
    narrower than the evidence is."""
    if labels.size == 0:
        return {"auc_gain": None, "auc_gain_ci95": None}
    gain = ev.auc_difference(rules, predictive, labels, [str(c) for c in contacts])
    return {
        "auc_gain": gain.diff,
        "auc_gain_ci95": None if gain.low is None else [gain.low, gain.high],
    }


def reliability_curve(
    probabilities: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], bins: int = 10
) -> list[dict[str, float | int]]:
    """The bins of the expected calibration error (equal-frequency, as scikit-learn's
    ``calibration_curve(strategy="quantile")``): per non-empty bin, its size, the mean
    predicted probability and the observed rate. A calibrated model's points lie on the
    diagonal."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if p.size == 0:
        return []
    edges = np.percentile(p, np.linspace(0.0, 100.0, bins + 1))
    which = np.searchsorted(edges[1:-1], p, side="left")
    out: list[dict[str, float | int]] = []
    for b in range(bins):
        mask = which == b
        count = int(mask.sum())
        if count:
            out.append(
                {
                    "count": count,
                    "predicted": float(p[mask].mean()),
                    "observed": float(y[mask].mean()),
                }
            )
    return out


def at_least_as_good(
    new: Artifact,
    old: Artifact | None,
    holdout: TrainingSet,
    old_holdout: TrainingSet | None = None,
) -> bool:
    """The retrain rule: a new artifact replaces the old only when its AUC on the latest
    holdout is at least the old one's on the same pairs. ``old_holdout`` holds the same
    pairs with the old artifact's features when its features differ (another estimator,
    other event types); without it such an old artifact is replaced, as is one that
    cannot be judged."""
    return judge_retrain(new, old, holdout, old_holdout)[0]


def judge_retrain(
    new: Artifact,
    old: Artifact | None,
    holdout: TrainingSet,
    old_holdout: TrainingSet | None = None,
) -> tuple[bool, str]:
    """``(replace, why)`` for the retrain rule of :func:`at_least_as_good`."""
    if old is None:
        return True, "no usable artifact yet"
    if [f.name for f in old.features] != [f.name for f in new.features]:
        if old_holdout is None or old_holdout.y.size != holdout.y.size:
            return True, "the old artifact reads other features and cannot be judged"
        old_set = old_holdout
    else:
        old_set = holdout
    if holdout.x.shape[0] == 0:
        return True, "the latest holdout is empty"
    old_auc = ev.roc_auc(predict(old, old_set.x), old_set.y)
    new_auc = ev.roc_auc(predict(new, holdout.x), holdout.y)
    if old_auc is None:
        return True, "the old artifact cannot be judged on the latest holdout"
    if new_auc is not None and new_auc >= old_auc:
        return True, f"AUC {new_auc:.3f} >= {old_auc:.3f} of the old artifact on the latest holdout"
    shown = "n/a" if new_auc is None else f"{new_auc:.3f}"
    return False, f"AUC {shown} < {old_auc:.3f} of the old artifact on the latest holdout"


def old_holdout_for(
    data: HistoryData,
    base: ScoringModel,
    old: Artifact | None,
    new: TrainResult,
    options: TrainOptions,
) -> TrainingSet | None:
    """The latest holdout's pairs with ``old``'s own features, when they differ from the
    new artifact's: both models are judged on the same (contact, snapshot) pairs."""
    if old is None or [f.name for f in old.features] == [f.name for f in new.artifact.features]:
        return None
    times = sorted({t.item().replace(tzinfo=UTC) for t in new.holdout.t})
    return build_training_set(data, base, times, options, old.features)


def retrain_due(artifact: Artifact | None, now: datetime, every: timedelta) -> bool:
    """``schedule.retrain_every``: a model is retrained when it has no usable artifact, or
    when its artifact's history ended ``every`` or more before ``now`` (the history ends
    at the read that preceded training, so this is the artifact's age)."""
    if artifact is None:
        return True
    end = artifact.training.get("data_end")
    if not isinstance(end, str):
        return True
    trained = datetime.fromisoformat(end.replace("Z", "+00:00"))
    return now - trained >= every


def beside_rules(
    data: HistoryData,
    spec: PredictiveSpec,
    base: ScoringModel,
    artifact: Artifact,
    snapshots: Sequence[datetime],
    *,
    horizon: timedelta,
    milestone: Milestone,
) -> dict[str, Any]:
    """A predictive model beside its rules model on a backtest's snapshots, on the same
    (contact, snapshot) pairs: AUC, top-decile lift, calibration error, the reliability
    curve and the threshold advice of each.

    Only snapshots after the artifact's training labels (its last training snapshot
    plus the horizon) are judged: earlier ones taught the model, and judging on them
    would flatter it."""
    trained_to = datetime.fromisoformat(str(artifact.training.get("to", "")).replace("Z", "+00:00"))
    seen = trained_to + timedelta(days=float(artifact.training.get("horizon_days", 0.0)))
    later = [t for t in snapshots if t > seen]
    options = TrainOptions(horizon=horizon, milestone=milestone)
    pairs = build_training_set(data, base, later, options, artifact.features)
    p = predict(artifact, pairs.x) if pairs.x.shape[0] else np.zeros(0)
    weeks = max(len(later), 1) * (
        (later[1] - later[0]) / timedelta(weeks=1) if len(later) > 1 else 1.0
    )
    rows = []
    for name, scores, threshold, probabilities in (
        (spec.name, 100.0 * p, spec.threshold, p),
        (base.name, pairs.base_score, base.threshold, np.clip(pairs.base_score / 100, 0, 1)),
    ):
        at = ev.precision_recall_at(scores, pairs.y, threshold)
        best = ev.max_f1_threshold(scores, pairs.y)
        rows.append(
            {
                "model": name,
                "auc": ev.roc_auc(scores, pairs.y) if scores.size else None,
                "lift": _top_decile_lift(scores, pairs.y),
                "ece": ev.expected_calibration_error(probabilities, pairs.y)
                if scores.size
                else None,
                "reliability": reliability_curve(probabilities, pairs.y),
                "threshold": threshold,
                "precision": at.precision,
                "recall": at.recall,
                "leads_per_week": float(np.count_nonzero(scores >= threshold)) / weeks,
                "advised_threshold": best.threshold,
                "advised_precision": best.precision,
                "advised_recall": best.recall,
            }
        )
    return {
        "model": spec.name,
        "base_model": base.name,
        "trained_to": _iso(trained_to),
        "snapshots": len(later),
        "from": _iso(later[0]) if later else None,
        "to": _iso(later[-1]) if later else None,
        "pairs": int(pairs.y.size),
        "positives": int(pairs.y.sum()),
        **_gain(pairs.base_score, p, pairs.y, pairs.contact_id),
        "models": rows,
    }


def _top_decile_lift(scores: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]) -> float | None:
    """Conversion among the top tenth of scores over the conversion of all."""
    if scores.size == 0 or not labels.any():
        return None
    top = np.argsort(-scores, kind="stable")[: max(1, scores.size // 10)]
    return float(labels[top].mean() / labels.mean())
