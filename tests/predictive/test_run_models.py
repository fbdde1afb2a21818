"""What ``leadsync run`` would score: predictive models beside rules models, through the
sync's scorer interface (the sync's own wiring is one call, see docs/predictive.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from predictive_world import MODEL_FILE

from scheduler.cli_sync import load_model_files
from scheduler.cli_train import RunModel, run_models
from scheduler.train import TrainResult

CONTACTS = [
    {"id": "a", "created_at": "2025-06-01T00:00:00Z", "lifecycle_stage": "lead"},
    {"id": "b", "created_at": "2025-06-01T00:00:00Z", "lifecycle_stage": "lead"},
]
EVENTS = [
    {"contact_id": "a", "type": "meeting_booked", "occurred_at": "2025-08-20T10:00:00Z"},
    {"contact_id": "a", "type": "page_view", "occurred_at": "2025-08-21T10:00:00Z"},
]
AS_OF = datetime(2025, 9, 1, tzinfo=UTC)


def test_run_scores_a_trained_predictive_model_beside_its_rules_model(
    tmp_path: Path, trained: TrainResult
) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(MODEL_FILE)
    (tmp_path / "learned.json").write_text(trained.artifact.to_json())
    models, scorer, warnings = run_models([path], load_model_files([path]))
    assert warnings == []
    assert [m.name for m in models] == ["current", "learned"]
    learned = models[1]
    assert isinstance(learned, RunModel)
    assert learned.fields_used == models[0].fields_used
    results = scorer(models, CONTACTS, EVENTS, as_of=AS_OF)
    by = {(r.contact_id, r.model): r for r in results}
    assert set(by) == {("a", "current"), ("a", "learned"), ("b", "current"), ("b", "learned")}
    # the contact with a meeting is more likely to convert, and the meeting says why
    assert by[("a", "learned")].score > by[("b", "learned")].score
    assert by[("a", "learned")].reasons[0].rule == "meeting"
    # the sync scores one model at a time too
    alone = scorer([learned], CONTACTS, EVENTS, as_of=AS_OF)
    assert {r.model for r in alone} == {"learned"}


def test_retrained_artifact_keeps_the_hash_the_sync_stores(
    tmp_path: Path, trained: TrainResult
) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(MODEL_FILE)
    (tmp_path / "learned.json").write_text(trained.artifact.to_json())
    first, _, _ = run_models([path], load_model_files([path]))
    retrained = trained.artifact.model_copy(update={"intercept": trained.artifact.intercept + 1})
    (tmp_path / "learned.json").write_text(retrained.to_json())
    second, _, _ = run_models([path], load_model_files([path]))
    assert first[1].artifact != second[1].artifact
    assert first[1].content_hash == second[1].content_hash


def test_run_without_artifact_scores_the_rules_model_only(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(MODEL_FILE)
    models, scorer, warnings = run_models([path], load_model_files([path]))
    assert [m.name for m in models] == ["current"]
    assert len(warnings) == 1 and "no artifact yet" in warnings[0]
    assert {r.model for r in scorer(models, CONTACTS, EVENTS, as_of=AS_OF)} == {"current"}


def test_the_sync_keeps_the_year_a_tree_artifact_reads(
    tmp_path: Path, trained: TrainResult, trained_trees: TrainResult
) -> None:
    """The per-type rates read a year of events: a sync keeping only its rules model's
    history would score them on less than they were trained on."""
    from datetime import timedelta

    from scheduler.sync import events_kept

    path = tmp_path / "model.yaml"
    path.write_text(MODEL_FILE)
    (tmp_path / "learned.json").write_text(trained_trees.artifact.to_json())
    models, _, _ = run_models([path], load_model_files([path]))
    rules, learned = models
    assert rules.history_days is not None and rules.history_days < 365
    assert learned.history_days == 365
    assert events_kept(models, timedelta(days=30)) == timedelta(days=366)
    # a regression reads the base model's parts only: its history is the base model's
    (tmp_path / "learned.json").write_text(trained.artifact.to_json())
    models, _, _ = run_models([path], load_model_files([path]))
    assert models[1].history_days == rules.history_days
