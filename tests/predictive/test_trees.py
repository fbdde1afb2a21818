"""Gradient-boosted trees: the artifact holds them as JSON, the core evaluates them."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from scheduler.train import TrainResult, at_least_as_good
from scoring.model import ModelSet
from scoring.predictive import (
    ArtifactError,
    FeatureSpec,
    artifact_problems,
    feature_matrix,
    parse_artifact,
    predict,
    reasons_for,
)


def test_core_tree_probabilities_match_scikit_learn_on_the_holdout(
    trained_trees: TrainResult,
) -> None:
    _, boosted, platt = trained_trees.estimators
    artifact = trained_trees.artifact
    x = trained_trees.holdout.x
    assert artifact.estimator == "trees" and len(artifact.trees) == boosted.n_iter_
    assert x.shape[0] > 1000 and x.shape[1] > len(artifact.features) - 1
    ours = predict(artifact, x, calibrated=False)
    assert np.max(np.abs(ours - boosted.predict_proba(x)[:, 1])) <= 1e-9
    assert platt is not None
    sk_cal = platt.predict_proba(boosted.decision_function(x).reshape(-1, 1))[:, 1]
    assert np.max(np.abs(predict(artifact, x) - sk_cal)) <= 1e-9
    # and after a round trip through the JSON file
    again = parse_artifact(artifact.to_json(), "a.json")
    assert again == artifact
    assert np.max(np.abs(predict(again, x) - sk_cal)) <= 1e-9


def test_tree_model_beats_chance_and_is_calibrated_on_the_later_holdout(
    trained_trees: TrainResult,
) -> None:
    h = trained_trees.artifact.holdout
    assert h["auc"] > 0.75 and h["ece"] < 0.05


def test_the_trees_are_fitted_on_every_training_snapshot_once_calibrated(
    trained_trees: TrainResult,
) -> None:
    """The calibration is fitted on the latest quarter of training, on the scores of a
    model that never saw it; then the trees are fitted again on all of training (the
    latest weeks are the most like the holdout), keeping that calibration. The trees'
    starting log-odds are the positive rate of what they were fitted on."""
    t = trained_trees.artifact.training
    rate = t["positives"] / t["pairs"]
    assert trained_trees.artifact.intercept == pytest.approx(math.log(rate / (1 - rate)), abs=1e-9)
    assert t["from"] < t["calibration_from"] < t["to"]
    assert trained_trees.artifact.calibration.method == "platt"


def test_tree_artifact_is_plain_json_and_broken_trees_are_refused(
    trained_trees: TrainResult,
) -> None:
    data = json.loads(trained_trees.artifact.to_json())
    tree = data["trees"][0]
    assert set(tree) == {"feature", "threshold", "missing_left", "left", "right", "value"}
    looping = json.loads(json.dumps(data))
    looping["trees"][0]["left"][0] = 0  # a node pointing at itself would never end
    with pytest.raises(ArtifactError) as caught:
        parse_artifact(json.dumps(looping), "a.json")
    assert caught.value.problems[0].startswith("a.json: trees.0")
    beyond = json.loads(json.dumps(data))
    root = beyond["trees"][0]
    root["feature"][0] = len(data["features"])
    with pytest.raises(ArtifactError) as caught:
        parse_artifact(json.dumps(beyond), "a.json")
    assert "beyond" in caught.value.problems[0]


def test_tree_artifact_fits_its_model_and_names_unknown_fields(
    model_set: ModelSet, trained_trees: TrainResult
) -> None:
    spec, base = model_set.predictive[0], model_set.get("current")
    assert artifact_problems(trained_trees.artifact, spec, base) == []
    odd = trained_trees.artifact.model_copy(
        update={
            "features": [
                *trained_trees.artifact.features[:-1],
                trained_trees.artifact.features[-1].model_copy(
                    update={"source": "field_equals", "field": "salary", "value": "high"}
                ),
            ]
        }
    )
    assert any("'salary' is not a field" in p for p in artifact_problems(odd, spec, base))


def test_tree_reasons_are_ordered_and_name_the_meetings_of_buyers(
    model_set: ModelSet, trained_trees: TrainResult
) -> None:
    x, y = trained_trees.holdout.x, trained_trees.holdout.y
    reasons = reasons_for(trained_trees.artifact, model_set.get("current"), x)
    # buyers who booked a meeting in the window: trees share credit among correlated
    # features (the meeting rule, the meeting counts, recency), but the meetings are
    # among their positive reasons
    names = [f.name for f in trained_trees.artifact.features]
    met = x[:, names.index("meeting.events")] > 0
    ups = [
        {r.rule for r in row if r.points > 0}
        for row, label, m in zip(reasons, y, met, strict=True)
        if label == 1 and m
    ]
    assert len(ups) > 50
    assert sum(bool(u & {"meeting", "meeting_booked"}) for u in ups) > 0.9 * len(ups)
    for row in reasons[:200]:
        ups = [r.points for r in row if r.points > 0]
        downs = [r.points for r in row if r.points < 0]
        assert ups == sorted(ups, reverse=True) and downs == sorted(downs)
        assert len(ups) <= 5 and len(downs) <= 5


def test_retrain_rule_judges_tree_artifacts_on_the_same_holdout(
    trained: TrainResult, trained_trees: TrainResult
) -> None:
    holdout = trained_trees.holdout
    assert at_least_as_good(trained_trees.artifact, trained_trees.artifact, holdout)
    # a different feature list (a logistic artifact) cannot be judged here: replaced
    assert at_least_as_good(trained_trees.artifact, trained.artifact, holdout)


def _no_reasons() -> pl.DataFrame:
    """The base model's reasons frame with no rule firing: these tests read events."""
    return pl.DataFrame(
        schema={
            "contact_id": pl.String,
            "rule": pl.String,
            "raw_points": pl.Float64,
            "events": pl.UInt32,
        }
    )


def test_event_features_read_only_events_up_to_the_snapshot() -> None:
    t = datetime(2025, 6, 1, tzinfo=UTC)
    scores = pl.DataFrame(
        {
            "contact_id": ["a", "b"],
            "score": [10.0, 0.0],
            "last_activity_at": [t - timedelta(days=2), None],
        },
        schema_overrides={"last_activity_at": pl.Datetime("us", "UTC")},
    )
    reasons = _no_reasons()
    when = [t - timedelta(days=2), t - timedelta(days=20), t + timedelta(hours=1)]
    events = pl.DataFrame(
        {"contact_id": ["a", "a", "a"], "type": ["call"] * 3, "occurred_at": when},
        schema_overrides={"occurred_at": pl.Datetime("us", "UTC")},
    )
    contacts = pl.DataFrame({"id": ["a", "b"], "job_title": [" CEO", None], "size": ["120", "x"]})
    specs = [
        FeatureSpec(name="c7", source="event_count", event="call", days=7),
        FeatureSpec(name="c30", source="event_count", event="call", days=30),
        FeatureSpec(name="since", source="days_since_event", event="call", days=90),
        FeatureSpec(name="ceo", source="field_equals", field="job_title", value="ceo"),
        FeatureSpec(name="size", source="field_number", field="size"),
        FeatureSpec(name="score", source="score"),
    ]
    x = feature_matrix(scores, reasons, specs, t, contacts=contacts, events=events)
    assert x.tolist() == [[1.0, 2.0, 2.0, 1.0, 120.0, 10.0], [0.0, 0.0, 90.0, 0.0, 0.0, 0.0]]


def test_event_rates_count_a_year_per_30_days_over_the_span_the_history_covers() -> None:
    """A long-run rate tells a steady buyer from a busy one-off week; its span is the
    year before the snapshot, cut to when the contact was created or the kept history
    starts, never under 30 days, so a short history is not read as a quiet person."""
    t = datetime(2025, 6, 1, tzinfo=UTC)
    ids = ["old", "new", "none", "baby"]
    scores = pl.DataFrame(
        {"contact_id": ids, "score": [0.0] * 4, "last_activity_at": [None] * 4},
        schema_overrides={"last_activity_at": pl.Datetime("us", "UTC")},
    )
    reasons = _no_reasons()
    days = [400, 300, 100, 10, 60, 5, 1]  # days before t
    who = ["old", "old", "old", "old", "new", "baby", "baby"]
    events = pl.DataFrame(
        {"contact_id": who, "type": ["email_click"] * len(who),
         "occurred_at": [t - timedelta(days=d) for d in days]},
        schema_overrides={"occurred_at": pl.Datetime("us", "UTC")},
    )  # fmt: skip
    contacts = pl.DataFrame(
        {"id": ids,
         "created_at": [t - timedelta(days=d) for d in (900, 90, 900, 6)]},
        schema_overrides={"created_at": pl.Datetime("us", "UTC")},
    )  # fmt: skip
    spec = FeatureSpec(
        name="email_click.per_30d", source="event_rate", event="email_click", days=365,
        transform="log1p",
    )  # fmt: skip
    rate = np.expm1(feature_matrix(scores, reasons, [spec], t, contacts=contacts, events=events))
    # old: 3 clicks in the year (the one 400 days back is outside it); new: 1 in the 90
    # days since creation; none: 0; baby: 2 in 6 days, counted over 30.
    assert rate[:, 0] == pytest.approx([30 * 3 / 365, 30 * 1 / 90, 0.0, 30 * 2 / 30])
    # The kept history starts 120 days back: the older contacts' span is 120 days.
    kept = feature_matrix(
        scores, reasons, [spec], t, contacts=contacts, events=events,
        history_start=t - timedelta(days=120),
    )  # fmt: skip
    assert np.expm1(kept)[:, 0] == pytest.approx([30 * 2 / 120, 30 * 1 / 90, 0.0, 30 * 2 / 30])
    # Without a creation date the span is the whole year.
    bare = feature_matrix(
        scores, reasons, [spec], t, contacts=contacts.drop("created_at"), events=events
    )
    assert np.expm1(bare)[:, 0] == pytest.approx([30 * 3 / 365, 30 / 365, 0.0, 30 * 2 / 365])
