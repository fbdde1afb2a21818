"""``leadsync train``, ``score`` and ``check`` with a predictive model, from exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from predictive_world import MODEL_FILE, world, write_project
from typer.testing import CliRunner

from scheduler.cli import app
from scoring.predictive import parse_artifact


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train")
    return write_project(world("before", contacts=1500), root, {"model.yaml": MODEL_FILE})


def test_train_writes_a_json_artifact_and_score_uses_it(project: Path) -> None:
    code, out, err = _run("train", "--config", str(project), "--model", "learned")
    assert code == 0, err
    artifact = project.parent / "learned.json"
    parsed = parse_artifact(artifact.read_text(), str(artifact))
    assert parsed.base_model == "current" and parsed.holdout["pairs"] > 0
    assert "AUC" in out and f"artifact: {artifact}" in out
    gain, low, high = parsed.holdout["auc_gain"], *parsed.holdout["auc_gain_ci95"]
    assert (
        f"AUC gain over the rules model {gain:+.3f}, 95% interval {low:+.3f} to {high:+.3f}" in out
    )

    code, out, err = _run(
        "score",
        "--model",
        str(project.parent / "model.yaml"),
        "--contacts",
        str(project.parent / "contacts.csv"),
        "--events",
        str(project.parent / "events.jsonl"),
        "--as-of",
        "2025-12-01T00:00:00Z",
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    learned = [r for r in rows if r["model"] == "learned"]
    assert len(learned) == len([r for r in rows if r["model"] == "current"]) > 0
    assert all(0 <= r["score"] <= 100 for r in learned)
    assert any(r["reasons"] for r in learned)
    assert {k for r in learned for reason in r["reasons"] for k in reason} == {
        "rule",
        "kind",
        "points",
        "events",
    }

    code, out, err = _run("check", "--model", str(project.parent / "model.yaml"))
    assert code == 0, err
    assert "2 models (current, learned)" in out


def test_check_fails_on_an_artifact_that_no_longer_fits(project: Path, tmp_path: Path) -> None:
    _run("train", "--config", str(project), "--model", "learned")
    (tmp_path / "model.yaml").write_text(MODEL_FILE.replace("points: 4,", "points: 5,"))
    (tmp_path / "learned.json").write_text((project.parent / "learned.json").read_text())
    code, _, err = _run("check", "--model", str(tmp_path / "model.yaml"))
    assert code == 2
    assert "base_model_hash" in err and "Traceback" not in err


def test_score_without_artifact_keeps_the_rules_model_scoring(
    project: Path, tmp_path: Path
) -> None:
    (tmp_path / "model.yaml").write_text(MODEL_FILE)
    code, out, err = _run(
        "score",
        "--model",
        str(tmp_path / "model.yaml"),
        "--contacts",
        str(project.parent / "contacts.csv"),
        "--events",
        str(project.parent / "events.jsonl"),
        "--as-of",
        "2025-12-01T00:00:00Z",
    )
    assert code == 0, err
    assert {json.loads(line)["model"] for line in out.splitlines()} == {"current"}
    assert "warning:" in err and "no artifact yet" in err


def test_train_refuses_with_too_little_data_and_writes_nothing(tmp_path: Path) -> None:
    config = write_project(world("before", contacts=120), tmp_path, {"model.yaml": MODEL_FILE})
    code, _, err = _run("train", "--config", str(config), "--model", "learned")
    assert code == 1
    assert "too little data" in err and "needs 40" in err and "rules model keeps scoring" in err
    assert not (tmp_path / "learned.json").exists()


def test_train_names_the_predictive_models_when_the_name_is_wrong(project: Path) -> None:
    code, _, err = _run("train", "--config", str(project), "--model", "nope")
    assert code == 2
    assert "no predictive model named 'nope' (predictive models: learned)" in err


def test_train_estimator_option_writes_that_kind_and_refuses_others(project: Path) -> None:
    code, _, err = _run(
        "train", "--config", str(project), "--model", "learned", "--estimator", "logistic"
    )
    assert code == 0, err
    artifact = project.parent / "learned.json"
    parsed = parse_artifact(artifact.read_text(), str(artifact))
    assert parsed.estimator == "logistic" and parsed.trees == []
    # trees (the default) replace it only when at least as good on the same pairs
    code, out, err = _run("train", "--config", str(project), "--model", "learned")
    assert code == 0, err
    parsed = parse_artifact(artifact.read_text(), str(artifact))
    assert (parsed.estimator == "trees") != ("kept" in out)
    code, _, err = _run(
        "train", "--config", str(project), "--model", "learned", "--estimator", "forest"
    )
    assert code == 2 and "--estimator: expected trees or logistic" in err
    assert "Traceback" not in err
