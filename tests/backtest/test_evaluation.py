"""The backtest's arithmetic, held to scikit-learn where it defines the same figure."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from scoring.evaluation import (
    auc_difference,
    capacity_threshold,
    count_crossings,
    crossing_mask,
    decile_table,
    expected_calibration_error,
    group_table,
    max_f1_threshold,
    precision_recall_at,
    roc_auc,
    roc_curve,
    tie_safe_deciles,
)


def _data(seed: int, n: int = 2000, levels: int = 15) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, n).astype(float)  # many ties, as rules scores have
    labels = rng.random(n) < 0.05 + scores / (levels * 4)
    return scores, labels


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_auc_matches_sklearn_with_ties(seed: int) -> None:
    scores, labels = _data(seed)
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_auc_of_tied_scores_is_one_half_and_none_without_a_class() -> None:
    assert roc_auc([5.0] * 10, [0, 1] * 5) == 0.5
    assert roc_auc([1.0, 2.0], [1, 1]) is None
    assert roc_auc([1.0, 2.0, 3.0], [0, 0, 1]) == 1.0
    assert roc_auc([1.0, 2.0, 3.0], [1, 0, 0]) == 0.0


def test_roc_curve_ends_at_corners_and_area_is_auc() -> None:
    scores, labels = _data(4)
    fpr, tpr, thresholds = roc_curve(scores, labels)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.isinf(thresholds[0])
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(scores, labels), abs=1e-12)


def test_precision_recall_at_threshold_matches_sklearn() -> None:
    scores, labels = _data(5)
    got = precision_recall_at(scores, labels, 9.0)
    predicted = scores >= 9.0
    assert got.precision == pytest.approx(precision_score(labels, predicted))
    assert got.recall == pytest.approx(recall_score(labels, predicted))
    assert got.f1 == pytest.approx(f1_score(labels, predicted))
    assert precision_recall_at(scores, labels, 1e9).precision is None


def test_max_f1_threshold_is_the_best_of_every_threshold() -> None:
    scores, labels = _data(6)
    best = max_f1_threshold(scores, labels)
    every = {t: f1_score(labels, scores >= t) for t in np.unique(scores)}
    top = max(every.values())
    assert best.f1 == pytest.approx(top)
    assert best.threshold == max(t for t, f in every.items() if f == pytest.approx(top))


def test_bands_conversion_and_lift() -> None:
    scores = np.array([80.0, 75, 50, 45, 10, 5, 0, 0])
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    band = np.where(scores >= 70, 0, np.where(scores >= 40, 1, 2))
    hot, warm, cold = group_table(["hot", "warm", "cold"], band, scores, labels)
    assert (hot.count, hot.positives, hot.rate, hot.lift) == (2, 2, 1.0, 2.0)
    assert (warm.rate, warm.lift) == (0.5, 1.0)
    assert (cold.count, cold.rate, cold.lift, cold.min_score, cold.max_score) == (
        4,
        0.25,
        0.5,
        0.0,
        10.0,
    )


def test_deciles_keep_ties_together_and_top_decile_is_highest() -> None:
    scores = np.array([float(i // 3) for i in range(100)])
    deciles = tie_safe_deciles(scores)
    for value in np.unique(scores):
        assert len(set(deciles[scores == value])) == 1
    assert deciles[np.argmax(scores)] == 1
    assert deciles[np.argmin(scores)] == 10
    table = decile_table(scores, scores > 25)
    assert sum(row.count for row in table) == 100
    assert table[0].lift is not None and table[0].lift > 1


def test_bootstrap_difference_covers_truth_and_is_reproducible() -> None:
    rng = np.random.default_rng(7)
    contacts = np.repeat(np.arange(400), 5)
    labels = rng.random(2000) < 0.2
    strong = labels * 2.0 + rng.normal(0, 1, 2000)
    weak = labels * 0.5 + rng.normal(0, 1, 2000)
    first = auc_difference(weak, strong, labels, contacts, resamples=300, seed=3)
    again = auc_difference(weak, strong, labels, contacts, resamples=300, seed=3)
    assert first == again
    assert first.diff == pytest.approx(roc_auc(strong, labels) - roc_auc(weak, labels))
    assert first.low is not None and first.high is not None
    assert 0 < first.low < first.diff < first.high
    same = auc_difference(weak, weak, labels, contacts, resamples=100, seed=3)
    assert (same.diff, same.low, same.high) == (0.0, 0.0, 0.0)


def test_bootstrap_resamples_contacts_not_pairs() -> None:
    """Copying every snapshot of a contact ten times must not narrow the interval:
    the copies are one contact, and only contacts are resampled."""
    rng = np.random.default_rng(8)
    labels = rng.random(300) < 0.3
    a = labels + rng.normal(0, 1, 300)
    b = labels * 1.3 + rng.normal(0, 1, 300)
    once = auc_difference(a, b, labels, np.arange(300), resamples=400, seed=1)
    tenfold = auc_difference(
        np.repeat(a, 10),
        np.repeat(b, 10),
        np.repeat(labels, 10),
        np.repeat(np.arange(300), 10),
        resamples=400,
        seed=1,
    )
    assert once.low is not None and tenfold.low is not None
    assert once.high is not None and tenfold.high is not None
    assert tenfold.high - tenfold.low == pytest.approx(once.high - once.low, rel=0.25)


def test_expected_calibration_error_matches_calibration_curve() -> None:
    rng = np.random.default_rng(9)
    p = rng.beta(2, 5, 5000)
    y = rng.random(5000) < np.clip(p * 1.3, 0, 1)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    # Equal-frequency bins: each holds a tenth, so the weighted mean is the plain mean.
    expected = float(np.mean(np.abs(observed - predicted)))
    assert expected_calibration_error(p, y) == pytest.approx(expected, abs=2e-3)
    assert expected_calibration_error(y.astype(float), y) == pytest.approx(0.0)


def test_crossings_follow_rearm_rule_and_baseline() -> None:
    contact = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2])
    score = np.array([75, 50, 80, 30, 72, 90, 80, 20, 71, 10, 70], dtype=float)
    counted = np.array([1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1], dtype=bool)
    mask = crossing_mask(contact, score, counted, threshold=70, rearm_below=40)
    # contact 0: crosses at 75; 80 is not new (never fell below 40); 30 rearms; 72 crosses.
    # contact 1: 80 at the baseline disarms without acting; 20 rearms; 71 crosses.
    assert mask.tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1]
    assert count_crossings(contact, score, counted, threshold=95, rearm_below=40) == 0


def test_capacity_threshold_is_lowest_within_capacity() -> None:
    rng = np.random.default_rng(10)
    contact = np.repeat(np.arange(500), 20)
    score = rng.uniform(0, 100, 10_000)
    counted = np.ones(10_000, dtype=bool)
    best, rate = capacity_threshold(
        contact,
        score,
        counted,
        weeks=10,
        capacity=100,
        rearm_below=40,
        candidates=np.arange(40, 101),
    )
    assert best is not None and rate is not None and rate <= 100
    below = count_crossings(contact, score, counted, threshold=best - 1, rearm_below=40) / 10
    assert below > 100


def test_capacity_advice_finds_the_lowest_threshold_when_crossings_are_not_monotone() -> None:
    """A contact at 50 when the window opens and at 70 a day later crosses any threshold
    from 51 to 70 but none at or below 50 (it was above from the start): with room for
    no crossing, the advice is the lowest threshold, 40, which a bisection landing on
    65 would have skipped."""
    from scoring.evaluation import capacity_threshold, count_crossings

    contact = np.array(["a", "a"])
    scores = np.array([50.0, 70.0])
    counted = np.array([False, True])  # the first observation is the window's start
    kw = {"threshold": 65.0, "rearm_below": 40.0}
    assert count_crossings(contact, scores, counted, **kw) == 1
    best, per_week = capacity_threshold(
        contact, scores, counted, weeks=1.0, capacity=0.0, rearm_below=40.0,
        candidates=np.arange(40.0, 91.0),
    )  # fmt: skip
    assert (best, per_week) == (40.0, 0.0)
