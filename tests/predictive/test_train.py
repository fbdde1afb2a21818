"""Training: the time split, the too-little-data refusal, the retrain rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from predictive_world import OPTIONS, world

from scheduler.train import (
    TooLittleData,
    TrainOptions,
    TrainResult,
    at_least_as_good,
    plan,
    train,
)
from scoring.model import ModelSet


def test_split_is_by_time_and_no_training_label_reaches_the_holdout() -> None:
    end = datetime(2026, 1, 1, tzinfo=UTC)
    options = TrainOptions()
    training, holdout = plan(end, options)
    assert training and holdout
    assert max(training) + options.horizon <= min(holdout)
    assert max(holdout) + options.horizon <= end
    assert training == sorted(training)


def test_training_and_holdout_pairs_are_earlier_and_later(trained: TrainResult) -> None:
    t = trained.artifact.training
    h = trained.artifact.holdout
    assert t["to"] < h["from"]
    horizon = timedelta(days=t["horizon_days"])
    last_train = datetime.fromisoformat(t["to"])
    assert last_train + horizon <= datetime.fromisoformat(h["from"])


def test_refusal_says_what_is_missing(model_set: ModelSet) -> None:
    small = world("before", contacts=150)
    with pytest.raises(TooLittleData) as caught:
        train(small, model_set.predictive[0], model_set.get("current"), OPTIONS)
    text = str(caught.value)
    assert "converting contacts (needs 40" in text and "more)" in text


def test_enough_data_at_exactly_the_minimum_trains(
    model_set: ModelSet, trained: TrainResult, history: object
) -> None:
    converting = trained.artifact.training["converting_contacts"]
    at_minimum = replace(OPTIONS, min_conversions=converting)
    train(history, model_set.predictive[0], model_set.get("current"), at_minimum)  # type: ignore[arg-type]
    with pytest.raises(TooLittleData):
        over = replace(OPTIONS, min_conversions=converting + 1)
        train(history, model_set.predictive[0], model_set.get("current"), over)  # type: ignore[arg-type]


def test_retrain_replaces_only_when_at_least_as_good(trained: TrainResult) -> None:
    new = trained.artifact
    holdout = trained.holdout
    assert at_least_as_good(new, None, holdout)
    assert at_least_as_good(new, new, holdout)  # equal is good enough
    # the same model blind to the meeting rule ranks worse: it never replaces the better one
    worse = new.model_copy(
        update={
            "features": [
                f.model_copy(update={"coef": 0.0 if f.rule == "meeting" else f.coef})
                for f in new.features
            ]
        }
    )
    assert not at_least_as_good(worse, new, holdout)
    assert at_least_as_good(new, worse, holdout)
    assert np.isfinite(holdout.x).all()


def test_reliability_curve_holds_the_calibration_error_bins(trained: TrainResult) -> None:
    h = trained.artifact.holdout
    for curve, ece in (("reliability", "ece"), ("rules_reliability", "rules_ece")):
        bins = h[curve]
        assert sum(b["count"] for b in bins) == h["pairs"]
        gap = sum(b["count"] * abs(b["predicted"] - b["observed"]) for b in bins) / h["pairs"]
        assert gap == pytest.approx(h[ece], abs=1e-12)
    # the same bins as scikit-learn's calibration_curve(strategy="quantile")
    from sklearn.calibration import calibration_curve

    from scoring.predictive import predict

    p = predict(trained.artifact, trained.holdout.x)
    observed, predicted = calibration_curve(trained.holdout.y, p, n_bins=10, strategy="quantile")
    assert [b["observed"] for b in h["reliability"]] == pytest.approx(list(observed), abs=1e-12)
    assert [b["predicted"] for b in h["reliability"]] == pytest.approx(list(predicted), abs=1e-12)


def test_retrain_is_due_every_period_after_the_artifacts_history(trained: TrainResult) -> None:
    from scheduler.train import retrain_due

    end = datetime.fromisoformat(trained.artifact.training["data_end"])
    every = timedelta(days=10)
    assert retrain_due(None, end, every)
    assert not retrain_due(trained.artifact, end + every - timedelta(seconds=1), every)
    assert retrain_due(trained.artifact, end + every, every)


def test_training_starts_where_the_kept_history_covers_the_base_model(
    model_set: ModelSet, history: object
) -> None:
    from scheduler.train import first_usable

    base = model_set.get("current")
    assert first_usable(history, base) is None  # type: ignore[arg-type]  # an export: all of it
    kept = datetime(2024, 12, 1, tzinfo=UTC)
    pruned = replace(history, kept_since=kept)  # type: ignore[type-var]
    start = first_usable(pruned, base)
    assert start is not None and start >= kept + timedelta(days=base.history_days or 0)
    end = datetime(2026, 1, 1, tzinfo=UTC)
    training, holdout = plan(end, TrainOptions(), first_usable=start)
    assert training and min(training) >= start
    unclipped, same_holdout = plan(end, TrainOptions())
    assert min(unclipped) < start and same_holdout == holdout


_UNSUBSCRIBE_MODEL = """
models:
  - name: quiet
    score_field: leadsync_score
    bands: {hot: 50, warm: 25}
    rules:
      - {id: meeting, kind: behavior, event: meeting_booked, points: 30, window_days: 45}
      - {id: unsubscribe, kind: behavior, event: unsubscribe, points: -30, window_days: 365}
    decay:
      - {inactive_days: 40, points: -10}
"""


def test_a_rule_whose_events_the_history_never_holds_does_not_hold_training_back(
    history: object,
) -> None:
    """Salesforce keeps an unsubscribe as a flag, never as an event: the starter model's
    year-long unsubscribe window reads nothing there and must not cost a year of
    training snapshots. Once the history holds such an event, its window counts."""
    import polars as pl

    from scheduler.train import first_usable, history_needed
    from scoring.model import load_models
    from scoring.predictive import EVENT_WINDOWS

    base = load_models(_UNSUBSCRIBE_MODEL, "quiet.yaml").get("quiet")
    assert base.history_days == 365 + 40
    kept = datetime(2024, 12, 1, tzinfo=UTC)
    pruned = replace(history, kept_since=kept)  # type: ignore[type-var]
    events = pruned.events.filter(pl.col("occurred_at") >= kept)
    pruned = replace(pruned, events=events)
    assert "unsubscribe" not in set(events.get_column("type").to_list())
    start = events.get_column("occurred_at").min()
    # the per-event-type features read 90 days; the meeting rule 45; decay 40 more
    assert history_needed(base, events) == max(EVENT_WINDOWS) + 40
    assert first_usable(pruned, base) == start + timedelta(days=max(EVENT_WINDOWS) + 40)

    one = events.head(1).with_columns(pl.lit("unsubscribe").alias("type"))
    with_unsubscribe = replace(pruned, events=pl.concat([events, one]))
    assert history_needed(base, with_unsubscribe.events) == 365 + 40
    assert first_usable(with_unsubscribe, base) == start + timedelta(days=365 + 40)


def test_holdout_gives_the_auc_gain_with_an_interval_over_contacts(
    trained: TrainResult,
) -> None:
    """The gain over the rules model, and how sure it is: contacts are resampled with
    all their snapshots, so more snapshots of the same people add no false certainty."""
    from scheduler.train import judge

    h = trained.artifact.holdout
    assert h["auc_gain"] == pytest.approx(h["auc"] - h["rules_auc"], abs=1e-12)
    low, high = h["auc_gain_ci95"]
    assert low < h["auc_gain"] < high
    assert high - low < 0.5

    # Every pair five times over, as five snapshots of the same people would be: the
    # same contacts drawn, the same interval. Pairs resampled one by one would narrow it.
    holdout = trained.holdout
    repeated = replace(
        holdout,
        t=np.tile(holdout.t, 5),
        contact_id=np.tile(holdout.contact_id, 5),
        x=np.tile(holdout.x, (5, 1)),
        y=np.tile(holdout.y, 5),
        base_score=np.tile(holdout.base_score, 5),
    )
    again = judge(trained.artifact, repeated)
    assert again["auc_gain"] == pytest.approx(h["auc_gain"], abs=1e-12)
    assert again["auc_gain_ci95"] == pytest.approx([low, high], abs=1e-12)


def test_rates_at_an_early_snapshot_count_over_the_kept_history_only(
    model_set: ModelSet, history: object
) -> None:
    """Two months into the kept history, a person who engaged every week has a weekly
    rate, not a twelfth of one: a year's window over two months of events would teach
    the model that early snapshots are quiet."""
    import polars as pl

    from scheduler.train import build_training_set
    from scoring.predictive import FeatureSpec

    base = model_set.get("current")
    kept = datetime(2025, 6, 1, tzinfo=UTC)  # half the contacts are older
    pruned = replace(history, kept_since=kept)  # type: ignore[type-var]
    pruned = replace(pruned, events=pruned.events.filter(pl.col("occurred_at") >= kept))
    first = pruned.events.get_column("occurred_at").min()
    t = kept + timedelta(days=60)
    rate = FeatureSpec(name="page_view.per_30d", source="event_rate", event="page_view", days=365)
    count = FeatureSpec(name="page_view.last_60d", source="event_count", event="page_view", days=60)
    built = build_training_set(pruned, base, [t], OPTIONS, [rate, count])
    assert built.x.shape[0] > 100 and built.x[:, 1].sum() > 0
    created = dict(pruned.contacts.select(pl.col("id").cast(pl.String), "created_at").iter_rows())
    older = 0
    for cid, (r, n) in zip(built.contact_id, built.x, strict=True):
        older += created[cid] < first and n > 0
        known = min((t - first).total_seconds(), (t - created[cid]).total_seconds()) / 86400
        assert r == pytest.approx(30 * n / max(known, 30))
    assert older > 50
