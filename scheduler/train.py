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
    Artifact,
    Calibration,
    Feature,
    FeatureSpec,
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
    "build_training_set",
    "reliability_curve",
    "retrain_due",
    "train",
]

# Dynamics 365's documented floor for its predictive lead scoring (40 qualified and 40
# disqualified leads). With fewer, a regression over a dozen features fits noise: its
# coefficients flip sign from one retrain to the next and its reasons mean nothing.
MIN_CONVERSIONS = 40
MIN_NON_CONVERSIONS = 40
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
    calibration_share: float = 0.25  # the latest share of training snapshots fits calibration
    regularisation: float = 1.0  # scikit-learn's C
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


def plan(data_end: datetime, options: TrainOptions) -> tuple[list[datetime], list[datetime]]:
    """``(training snapshots, holdout snapshots)``: holdout the latest snapshots whose
    horizon the data covers; training earlier ones whose horizon ends by the holdout."""
    last = _midnight(data_end - options.horizon)
    holdout_start = last - options.holdout
    holdout: list[datetime] = []
    t = holdout_start
    while t <= last:
        holdout.append(t)
        t += options.every
    train_end = holdout_start - options.horizon
    first = train_end - options.span
    training: list[datetime] = []
    t = train_end
    while t >= first:
        training.append(t)
        t -= options.every
    return sorted(training), holdout


def build_training_set(
    data: HistoryData,
    base: ScoringModel,
    snapshots: Sequence[datetime],
    options: TrainOptions,
) -> TrainingSet:
    """Features and labels at each snapshot, with the backtest's eligibility and labels."""
    specs = feature_specs(base)
    model, _ = usable_model(base, CHANGED_AT_CONVERSION - data.reconstruction.rebuilt)
    pairs = labelled_snapshots(
        data, snapshots, horizon=options.horizon, milestone=options.milestone
    )
    ts: list[np.ndarray[Any, Any]] = []
    ids: list[np.ndarray[Any, Any]] = []
    xs: list[np.ndarray[Any, Any]] = []
    ys: list[np.ndarray[Any, Any]] = []
    bases: list[np.ndarray[Any, Any]] = []
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
        x = feature_matrix(scores, columns.reasons, specs, t)
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
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    options = options or TrainOptions()
    training_times, holdout_times = plan(data.data_end, options)
    window = (
        f"({_iso(training_times[0])} to {_iso(training_times[-1])})"
        if training_times
        else "(empty: the history is shorter than the horizon and the holdout)"
    )
    full = build_training_set(data, base, training_times, options)
    _check_enough(full, options, window)
    holdout = build_training_set(data, base, holdout_times, options)

    # Later training snapshots fit the calibration, earlier ones the regression.
    cut_index = int(len(training_times) * (1 - options.calibration_share))
    cut = np.datetime64(training_times[cut_index].replace(tzinfo=None), "us")
    fit = _subset(full, full.t < cut)
    cal = _subset(full, full.t >= cut)
    if len(set(fit.y.tolist())) < 2:
        fit, cal = full, _subset(full, full.t < full.t.min())
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
        for j, spec_ in enumerate(full.features)
    ]
    calibration = Calibration()
    platt: Any = None
    if cal.x.shape[0] and len(set(cal.y.tolist())) == 2:
        z = regression.decision_function(scaler.transform(cal.x)).reshape(-1, 1)
        platt = LogisticRegression(C=1e6, max_iter=5000).fit(z, cal.y)
        calibration = Calibration(
            method="platt", a=float(platt.coef_[0, 0]), b=float(platt.intercept_[0])
        )
    artifact = Artifact(
        format=ARTIFACT_FORMAT,
        version=ARTIFACT_VERSION,
        model=spec.name,
        base_model=base.name,
        base_model_hash=base.content_hash,
        intercept=float(regression.intercept_[0]),
        features=features,
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
        estimators=(scaler, regression, platt),
    )


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
        "ece": ev.expected_calibration_error(p, holdout.y) if p.size else None,
        "rules_auc": ev.roc_auc(holdout.base_score, holdout.y),
        "rules_ece": ev.expected_calibration_error(rules, holdout.y) if p.size else None,
        "reliability": reliability_curve(p, holdout.y),
        "rules_reliability": reliability_curve(rules, holdout.y),
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


def at_least_as_good(new: Artifact, old: Artifact | None, holdout: TrainingSet) -> bool:
    """The retrain rule: a new artifact replaces the old only when its AUC on the latest
    holdout is at least the old one's on the same pairs (an old artifact that no longer
    fits the model, or cannot be judged, is always replaced)."""
    if old is None or [f.name for f in old.features] != [f.name for f in new.features]:
        return True
    if holdout.x.shape[0] == 0:
        return True
    old_auc = ev.roc_auc(predict(old, holdout.x), holdout.y)
    new_auc = ev.roc_auc(predict(new, holdout.x), holdout.y)
    if old_auc is None:
        return True
    return new_auc is not None and new_auc >= old_auc


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
