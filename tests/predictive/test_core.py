"""The pure core: the model file's predictive kind, the artifact, probabilities, reasons."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from predictive_world import MODEL_FILE

from scheduler.train import TrainResult
from scoring.engine import score_columns
from scoring.model import ModelFileError, ModelSet, load_models
from scoring.predictive import (
    ArtifactError,
    artifact_problems,
    attach_artifacts,
    parse_artifact,
    predict,
    reasons_for,
)


def test_model_file_accepts_predictive_kind_beside_rules_models(model_set: ModelSet) -> None:
    assert [m.name for m in model_set.models] == ["current"]
    (spec,) = model_set.predictive
    assert (spec.base_model, spec.artifact, spec.threshold, spec.rearm_below) == (
        "current",
        "learned.json",
        60.0,
        30.0,
    )


def test_unknown_base_model_is_one_line_with_file_and_line() -> None:
    text = MODEL_FILE.replace("base_model: current", "base_model: nope")
    with pytest.raises(ModelFileError) as caught:
        load_models(text, "m.yaml")
    (line,) = caught.value.problems
    assert line.startswith("m.yaml:") and "models[1].base_model" in line and "'nope'" in line


def test_bad_field_of_a_predictive_model_names_its_line() -> None:
    text = MODEL_FILE.replace("artifact: learned.json", "artifact: learned.json\n    colour: red")
    with pytest.raises(ModelFileError) as caught:
        load_models(text, "m.yaml")
    assert any("models[1].colour" in p for p in caught.value.problems)


def test_predictive_and_rules_models_share_one_namespace_of_score_fields() -> None:
    text = MODEL_FILE.replace("score_field: leadsync_learned", "score_field: leadsync_score")
    with pytest.raises(ModelFileError) as caught:
        load_models(text, "m.yaml")
    assert any("already written" in p for p in caught.value.problems)


def test_content_hash_covers_the_definition_not_the_artifact(
    model_set: ModelSet, trained: TrainResult
) -> None:
    spec = model_set.predictive[0]
    before = spec.content_hash
    attach_artifacts(model_set, {"learned": trained.artifact})
    assert load_models(MODEL_FILE, "other.yaml").predictive[0].content_hash == before
    changed = load_models(MODEL_FILE.replace("hot: 60", "hot: 61"), "m.yaml")
    assert changed.predictive[0].content_hash != before


def test_artifact_round_trips_as_json_and_rejects_other_versions(trained: TrainResult) -> None:
    text = trained.artifact.to_json()
    assert parse_artifact(text, "a.json") == trained.artifact
    with pytest.raises(ArtifactError) as caught:
        parse_artifact(text.replace('"version": 1', '"version": 2'), "a.json")
    assert caught.value.problems[0].startswith("a.json: version:")
    with pytest.raises(ArtifactError):
        parse_artifact("\x80not json", "a.json")


def test_artifact_is_refused_when_the_base_rules_changed(
    model_set: ModelSet, trained: TrainResult
) -> None:
    spec = model_set.predictive[0]
    assert artifact_problems(trained.artifact, spec, model_set.get("current")) == []
    other = load_models(MODEL_FILE.replace("points: 30", "points: 31"), "m.yaml")
    problems = artifact_problems(trained.artifact, spec, other.get("current"))
    assert problems and problems[0].startswith("base_model_hash:")


def test_core_probabilities_match_scikit_learn_on_the_holdout(trained: TrainResult) -> None:
    scaler, regression, platt = trained.estimators
    x = trained.holdout.x
    assert x.shape[0] > 1000
    sk = regression.predict_proba(scaler.transform(x))[:, 1]
    ours = predict(trained.artifact, x, calibrated=False)
    assert np.max(np.abs(ours - sk)) <= 1e-9
    assert platt is not None
    sk_cal = platt.predict_proba(regression.decision_function(scaler.transform(x)).reshape(-1, 1))
    assert np.max(np.abs(predict(trained.artifact, x) - sk_cal[:, 1])) <= 1e-9


def test_reasons_are_top_positive_and_negative_in_score_points(
    model_set: ModelSet, trained: TrainResult
) -> None:
    x = trained.holdout.x
    y = trained.holdout.y
    reasons = reasons_for(trained.artifact, model_set.get("current"), x)
    p = predict(trained.artifact, x)
    # the converting contacts' meetings are their strongest positive reason
    top = [r[0].rule for r, label in zip(reasons, y, strict=True) if label == 1 and r]
    assert top.count("meeting") > len(top) / 2
    for row, prob in zip(reasons[:200], p[:200], strict=True):
        ups = [r.points for r in row if r.points > 0]
        downs = [r.points for r in row if r.points < 0]
        assert ups == sorted(ups, reverse=True) and downs == sorted(downs)
        assert len(ups) <= 5 and len(downs) <= 5
        assert all(r.kind in ("fit", "behavior") for r in row)
        assert all(abs(r.points) <= 100 * max(prob, 1 - prob) + 1e-9 for r in row)


def test_engine_scores_a_predictive_model_after_its_rules_models(
    model_set: ModelSet, trained: TrainResult, history: object
) -> None:
    t = datetime(2025, 9, 1, tzinfo=UTC)
    data = history
    contacts = data.contacts.head(50)  # type: ignore[attr-defined]
    events = data.events  # type: ignore[attr-defined]
    plain = score_columns(model_set, contacts, events, as_of=t)
    assert set(plain.scores.get_column("model").to_list()) == {"current"}
    both = score_columns(
        attach_artifacts(model_set, {"learned": trained.artifact}), contacts, events, as_of=t
    )
    scores = both.scores
    assert scores.height == 2 * plain.scores.height
    assert scores.get_column("model").to_list()[:2] == ["current", "learned"]
    rules_rows = scores.filter(pl.col("model") == "current")
    assert rules_rows.equals(plain.scores)
    learned = scores.filter(pl.col("model") == "learned")
    assert learned.get_column("score").is_between(0, 100).all()
    # reasons point at the row they explain
    for row, model in both.reasons.select("row", "model").iter_rows():
        assert scores.row(row)[1] == model
