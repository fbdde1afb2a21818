"""``leadsync backtest`` and ``leadsync report`` on exports: keys, errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scheduler.cli import app
from tests.backtest.worlds import MODEL, world, write_project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    models = {
        "model.yaml": MODEL.format(name="current", meeting=30),
        "candidate.yaml": MODEL.format(name="candidate", meeting=10).replace(
            "leadsync_score", "other_score"
        ),
    }
    config = write_project(world("before", contacts=600, seed=31), root, models)
    config.write_text(
        config.read_text().replace("models: [model.yaml, candidate.yaml]", "models: [model.yaml]")
    )
    return config


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_json_has_the_documented_keys(project: Path) -> None:
    code, out, err = _run(
        "backtest",
        "--config",
        str(project),
        "--model",
        str(project.parent / "model.yaml"),
        "--model",
        str(project.parent / "candidate.yaml"),
        "--capacity",
        "4",
        "--every",
        "14d",
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) >= {
        "snapshots",
        "dropped_snapshots",
        "left_out_fields",
        "models",
        "comparison",
        "threshold_advice",
    }
    assert set(doc["models"]) == {"current", "candidate"}
    for figures in doc["models"].values():
        assert set(figures) >= {
            "auc",
            "bands",
            "deciles",
            "precision_at_threshold",
            "recall_at_threshold",
            "leads_per_week",
            "median_days_to_deal",
        }
        assert [b["name"] for b in figures["bands"]] == ["hot", "warm", "cold"]
        assert len(figures["deciles"]) == 10
    assert set(doc["comparison"]) >= {"auc_diff", "ci95"}
    assert set(doc["threshold_advice"]) == {"f1", "capacity"}
    for kind in ("f1", "capacity"):
        assert set(doc["threshold_advice"][kind]) >= {"threshold", "precision", "recall"}
    # Every 14 days from --to minus 26 weeks: 14 snapshots.
    assert len(doc["snapshots"]) == 14
    assert doc["window"]["every_days"] == 14


def test_snapshots_past_the_data_are_dropped_and_listed(project: Path) -> None:
    code, out, _ = _run(
        "backtest", "--config", str(project), "--from", "2025-09-01", "--to", "2025-12-01", "--json"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["snapshots"][0] == "2025-09-01T00:00:00Z"
    assert doc["dropped_snapshots"] and all(
        "after the data" in d["reason"] for d in doc["dropped_snapshots"]
    )
    assert doc["dropped_snapshots"][-1]["at"] == "2025-12-01T00:00:00Z"  # 13 weeks on


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--milestone", "signed"], "--milestone: expected won or deal"),
        (["--every", "soon"], "--every: expected a duration"),
        (["--from", "June"], "--from: expected a date such as 2026-01-31"),
        (["--from", "2025-12-01", "--to", "2025-06-01"], "backtest: --from"),
        (["--capacity", "0"], "--capacity: expected a positive number"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(project: Path, args: list[str], message: str) -> None:
    code, _, err = _run("backtest", "--config", str(project), *args)
    assert code == 2
    assert err.startswith(message) and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_bad_outcome_rows_are_reported_and_exit_1(project: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    root.mkdir()
    for name in ("contacts.csv", "events.jsonl", "model.yaml", "leadsync.yaml"):
        (root / name).write_bytes((project.parent / name).read_bytes())
    outcomes = (project.parent / "outcomes.csv").read_text().splitlines()
    outcomes.insert(2, "c1,dx,2025-03-01,,won,")
    (root / "outcomes.csv").write_text("\n".join(outcomes) + "\n")
    code, out, err = _run("backtest", "--config", str(root / "leadsync.yaml"), "--json")
    assert code == 1
    assert json.loads(out)["models"]["current"]["auc"] is not None
    assert err.strip() == f"{root / 'outcomes.csv'}:3: closed_at: missing for a won deal"


def test_a_crm_configuration_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "model.yaml").write_text(MODEL.format(name="current", meeting=30))
    config = tmp_path / "leadsync.yaml"
    config.write_text(
        "crm:\n  type: hubspot\n  hubspot:\n    access_token: ${HS_TOKEN}\nmodels: [model.yaml]\n"
        "state: sqlite:///state.db\n"
    )
    result = CliRunner(env={"HS_TOKEN": "pat-na1-secret-value"}).invoke(
        app, ["backtest", "--config", str(config)]
    )
    assert result.exit_code == 2
    assert "the state store holds no contacts yet; run `leadsync run" in result.stderr
    assert "secret" not in result.stderr


def test_report_command_writes_a_file(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "state.html"
    code, stdout, err = _run("report", "--config", str(project), "--out", str(out))
    assert code == 0, err
    assert stdout.strip() == f"report: {out}"
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<script" not in text
    assert "Crossings and deals per week" in text
