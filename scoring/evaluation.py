"""How well scores predict outcomes: the arithmetic of ``leadsync backtest``.

Pure and columnar: arrays of scores and 0/1 labels in, figures out. The definitions
are those of docs/backtest.md, written so that anyone can recompute each figure:

* ROC AUC is the Mann-Whitney statistic with ties counted as one half, so that a
  score that says nothing (every contact tied) reads 0.5, not 0 or 1.
* Deciles are tie-safe: decile ``k`` (1 = the highest scores) holds the pairs whose
  number of strictly higher-scored pairs lies in ``[(k-1)n/10, kn/10)``. Tied scores
  always share a decile, so no arbitrary ordering decides a figure.
* Lift is a group's conversion rate divided by the overall rate.
* The paired bootstrap resamples *contacts* (each with all its snapshots), because a
  contact's snapshots are not independent of each other.
* Crossings follow the sync's rule: a contact is handed over when its score reaches
  the threshold while armed, and is armed again only after it fell below
  ``rearm_below``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "BootstrapDiff",
    "GroupRate",
    "PrecisionRecall",
    "auc_difference",
    "capacity_threshold",
    "count_crossings",
    "crossing_mask",
    "decile_table",
    "expected_calibration_error",
    "group_table",
    "max_f1_threshold",
    "precision_recall_at",
    "roc_auc",
    "roc_curve",
    "threshold_sweep",
    "tie_safe_deciles",
]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class GroupRate:
    """Conversion in one band or decile."""

    name: str
    count: int
    positives: int
    rate: float | None
    lift: float | None
    min_score: float | None
    max_score: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "count": self.count,
            "positives": self.positives,
            "conversion": self.rate,
            "lift": self.lift,
            "min_score": self.min_score,
            "max_score": self.max_score,
        }


@dataclass(frozen=True, slots=True)
class PrecisionRecall:
    threshold: float | None
    precision: float | None
    recall: float | None
    f1: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


@dataclass(frozen=True, slots=True)
class BootstrapDiff:
    """``auc_b - auc_a`` and its percentile interval over contact resamples."""

    diff: float | None
    low: float | None
    high: float | None
    resamples: int
    seed: int


def _floats(values: Any) -> Floats:
    return np.asarray(values, dtype=np.float64)


def _labels(values: Any) -> Bools:
    arr = np.asarray(values)
    if arr.dtype != np.bool_:
        arr = arr != 0
    return arr.astype(np.bool_)


def _tie_groups(scores: Floats) -> tuple[Ints, int]:
    """Position of each score among the distinct scores, ascending."""
    distinct, inverse = np.unique(scores, return_inverse=True)
    return inverse.astype(np.int64).reshape(-1), len(distinct)


def _weighted_auc(groups: Ints, n_groups: int, labels: Bools, weights: Floats) -> float | None:
    pos = np.bincount(groups, weights=weights * labels, minlength=n_groups)
    neg = np.bincount(groups, weights=weights * ~labels, minlength=n_groups)
    total_pos = float(pos.sum())
    total_neg = float(neg.sum())
    if total_pos <= 0 or total_neg <= 0:
        return None
    below = np.cumsum(neg) - neg  # negatives with a strictly lower score
    wins = float(np.dot(pos, below + 0.5 * neg))
    return wins / (total_pos * total_neg)


def roc_auc(scores: Any, labels: Any) -> float | None:
    """Probability that a random positive outscores a random negative (ties: one half).

    ``None`` when either class is empty: no ranking to judge.
    """
    s = _floats(scores)
    y = _labels(labels)
    groups, n = _tie_groups(s)
    return _weighted_auc(groups, n, y, np.ones(len(s), dtype=np.float64))


def roc_curve(scores: Any, labels: Any) -> tuple[Floats, Floats, Floats]:
    """False and true positive rates at each distinct threshold, highest first.

    Starts at (0, 0) with an infinite threshold and ends at (1, 1).
    """
    s = _floats(scores)
    y = _labels(labels)
    groups, n = _tie_groups(s)
    pos = np.bincount(groups, weights=y.astype(np.float64), minlength=n)[::-1]
    neg = np.bincount(groups, weights=(~y).astype(np.float64), minlength=n)[::-1]
    tp = np.concatenate([[0.0], np.cumsum(pos)])
    fp = np.concatenate([[0.0], np.cumsum(neg)])
    thresholds = np.concatenate([[np.inf], np.unique(s)[::-1]])
    tpr = tp / tp[-1] if tp[-1] > 0 else np.zeros_like(tp)
    fpr = fp / fp[-1] if fp[-1] > 0 else np.zeros_like(fp)
    return fpr, tpr, thresholds


def precision_recall_at(scores: Any, labels: Any, threshold: float) -> PrecisionRecall:
    """Acting on ``score >= threshold``: how many acted on converted, how many
    conversions were acted on."""
    s = _floats(scores)
    y = _labels(labels)
    picked = s >= threshold
    tp = int(np.count_nonzero(picked & y))
    n_picked = int(np.count_nonzero(picked))
    n_pos = int(np.count_nonzero(y))
    precision = tp / n_picked if n_picked else None
    recall = tp / n_pos if n_pos else None
    return PrecisionRecall(threshold, precision, recall, _f1(precision, recall))


def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def threshold_sweep(scores: Any, labels: Any) -> tuple[Floats, Floats, Floats]:
    """Precision and recall of ``score >= t`` for every distinct score ``t``, ascending.

    Returns ``(thresholds, precision, recall)``.
    """
    s = _floats(scores)
    y = _labels(labels)
    groups, n = _tie_groups(s)
    pos = np.bincount(groups, weights=y.astype(np.float64), minlength=n)
    cnt = np.bincount(groups, minlength=n).astype(np.float64)
    # Counts at or above each distinct score: reverse cumulative sums.
    tp = np.cumsum(pos[::-1])[::-1].astype(np.float64)
    picked = np.cumsum(cnt[::-1])[::-1].astype(np.float64)
    total_pos = float(pos.sum())
    precision: Floats = np.divide(tp, picked, out=np.zeros_like(tp), where=picked > 0)
    recall: Floats = tp / total_pos if total_pos > 0 else np.zeros_like(tp)
    return np.unique(s), precision, recall


def max_f1_threshold(scores: Any, labels: Any) -> PrecisionRecall:
    """The distinct score that, used as threshold, maximises F1 (the highest on ties)."""
    thresholds, precision, recall = threshold_sweep(scores, labels)
    if len(thresholds) == 0 or not _labels(labels).any():
        return PrecisionRecall(None, None, None, None)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    best = int(len(f1) - 1 - np.argmax(f1[::-1]))  # last maximum: the highest threshold
    return PrecisionRecall(
        float(thresholds[best]), float(precision[best]), float(recall[best]), float(f1[best])
    )


def group_table(names: Sequence[str], group_of: Any, scores: Any, labels: Any) -> list[GroupRate]:
    """Conversion and lift per group; ``group_of[i]`` indexes ``names``."""
    g = np.asarray(group_of, dtype=np.int64)
    s = _floats(scores)
    y = _labels(labels)
    k = len(names)
    count = np.bincount(g, minlength=k)
    positives = np.bincount(g, weights=y.astype(np.float64), minlength=k)
    overall = float(y.mean()) if len(y) else 0.0
    lo = np.full(k, np.inf)
    hi = np.full(k, -np.inf)
    np.minimum.at(lo, g, s)
    np.maximum.at(hi, g, s)
    out: list[GroupRate] = []
    for i, name in enumerate(names):  # one row per group (at most ten), not per contact
        n = int(count[i])
        rate = float(positives[i]) / n if n else None
        lift = rate / overall if rate is not None and overall > 0 else None
        out.append(
            GroupRate(
                name,
                n,
                int(positives[i]),
                rate,
                lift,
                float(lo[i]) if n else None,
                float(hi[i]) if n else None,
            )
        )
    return out


def tie_safe_deciles(scores: Any) -> Ints:
    """Decile 1..10 of each score, 1 the highest; tied scores share a decile."""
    s = _floats(scores)
    n = len(s)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ordered = np.sort(s)
    higher = n - np.searchsorted(ordered, s, side="right")
    return (higher * 10 // n + 1).astype(np.int64)


def decile_table(scores: Any, labels: Any) -> list[GroupRate]:
    deciles = tie_safe_deciles(scores)
    names = [str(k) for k in range(1, 11)]
    return group_table(names, deciles - 1, scores, labels)


def auc_difference(
    scores_a: Any,
    scores_b: Any,
    labels: Any,
    contacts: Any,
    *,
    resamples: int = 1000,
    seed: int = 20261206,
) -> BootstrapDiff:
    """``AUC(b) - AUC(a)`` on the same pairs, with a 95% paired bootstrap interval.

    Each resample draws as many contacts as there are, with replacement, and takes
    every (contact, snapshot) pair of each drawn contact as often as it was drawn; both
    models are judged on that same resample. The interval is the 2.5th and 97.5th
    percentile of the differences (resamples with one class missing are skipped).
    """
    a = _floats(scores_a)
    b = _floats(scores_b)
    y = _labels(labels)
    _, contact_index = np.unique(np.asarray(contacts), return_inverse=True)
    contact_index = contact_index.reshape(-1)
    n_contacts = int(contact_index.max()) + 1 if len(contact_index) else 0
    ga, na = _tie_groups(a)
    gb, nb = _tie_groups(b)
    ones = np.ones(len(y), dtype=np.float64)
    auc_a = _weighted_auc(ga, na, y, ones)
    auc_b = _weighted_auc(gb, nb, y, ones)
    if auc_a is None or auc_b is None:
        return BootstrapDiff(None, None, None, resamples, seed)
    rng = np.random.default_rng(seed)
    diffs = np.full(resamples, np.nan)
    for r in range(resamples):  # one pass per resample, each columnar over all pairs
        drawn = np.bincount(rng.integers(0, n_contacts, n_contacts), minlength=n_contacts)
        weights = drawn[contact_index].astype(np.float64)
        ra = _weighted_auc(ga, na, y, weights)
        rb = _weighted_auc(gb, nb, y, weights)
        if ra is not None and rb is not None:
            diffs[r] = rb - ra
    kept = diffs[~np.isnan(diffs)]
    if len(kept) == 0:
        return BootstrapDiff(auc_b - auc_a, None, None, resamples, seed)
    low, high = np.percentile(kept, [2.5, 97.5])
    return BootstrapDiff(auc_b - auc_a, float(low), float(high), resamples, seed)


def expected_calibration_error(probabilities: Any, labels: Any, *, bins: int = 10) -> float | None:
    """Mean absolute gap between predicted and observed rates over equal-frequency bins,
    weighted by bin size.

    Bin edges are the quantiles of the predictions (as scikit-learn's
    ``calibration_curve(strategy="quantile")``); a prediction falls in the bin whose
    right edge is the first edge at or above it; empty bins are dropped.
    """
    p = _floats(probabilities)
    y = _labels(labels).astype(np.float64)
    if len(p) == 0:
        return None
    edges = np.percentile(p, np.linspace(0.0, 100.0, bins + 1))
    which = np.searchsorted(edges[1:-1], p, side="left")
    count = np.bincount(which, minlength=bins)
    sum_p = np.bincount(which, weights=p, minlength=bins)
    sum_y = np.bincount(which, weights=y, minlength=bins)
    nonzero = count > 0
    gap = np.abs(sum_p[nonzero] - sum_y[nonzero]) / count[nonzero]
    return float(np.sum(gap * count[nonzero]) / len(p))


# --- crossings ---------------------------------------------------------------------------


def crossing_mask(
    contact: Any, scores: Any, counted: Any, *, threshold: float, rearm_below: float
) -> Bools:
    """Which observations are crossings, evaluated as the sync acts.

    Observations are sorted by contact, then time. A contact starts armed; an
    observation at or above ``threshold`` while armed is a crossing and disarms it;
    one below ``rearm_below`` arms it again. Observations with ``counted`` false (the
    baseline at go-live) change the state but are not crossings, as a baseline run
    disarms contacts above the threshold without acting.

    Columnar: the state before an observation is the last observation of the same
    contact that was either at/above the threshold or below ``rearm_below``.
    """
    c = np.asarray(contact)
    s = _floats(scores)
    keep = np.asarray(counted, dtype=np.bool_)
    n = len(s)
    if n == 0:
        return np.zeros(0, dtype=np.bool_)
    rearm = min(rearm_below, threshold)
    above = s >= threshold
    decisive = above | (s < rearm)
    starts = np.ones(n, dtype=np.bool_)
    starts[1:] = c[1:] != c[:-1]
    start_index = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    last_decisive = np.maximum.accumulate(np.where(decisive, np.arange(n), -1))
    # The decisive observation strictly before i, within the same contact.
    previous = np.empty(n, dtype=np.int64)
    previous[0] = -1
    previous[1:] = last_decisive[:-1]
    previous = np.where(previous >= start_index, previous, -1)
    armed = (previous < 0) | ~above[np.maximum(previous, 0)]
    return above & armed & keep


def count_crossings(
    contact: Any, scores: Any, counted: Any, *, threshold: float, rearm_below: float
) -> int:
    return int(
        np.count_nonzero(
            crossing_mask(contact, scores, counted, threshold=threshold, rearm_below=rearm_below)
        )
    )


def capacity_threshold(
    contact: Any,
    scores: Any,
    counted: Any,
    *,
    weeks: float,
    capacity: float,
    rearm_below: float,
    candidates: Any,
) -> tuple[float | None, float | None]:
    """The lowest candidate threshold with at most ``capacity`` crossings per week.

    Returns ``(threshold, crossings per week)``. Every candidate is tried, lowest
    first: crossings are not monotone in the threshold (a contact already above a low
    threshold when the window opens never crosses it, yet crosses a higher one later),
    so a bisection could skip the answer. A candidate costs one vectorised count.
    """
    grid = np.unique(_floats(candidates))
    if weeks <= 0 or len(grid) == 0:
        return None, None

    def rate(t: float) -> float:
        n = count_crossings(contact, scores, counted, threshold=t, rearm_below=rearm_below)
        return n / weeks

    for candidate in grid:
        per_week = rate(float(candidate))
        if per_week <= capacity:
            return float(candidate), per_week
    return None, None
