"""The backtest report with a predictive model: beside its rules model, judged only on
snapshots after its training labels, with both reliability curves (inline SVG)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scheduler.cli import app
from tests.backtest.worlds import world, write_project
from tests.predictive.predictive_world import MODEL_FILE


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("predictive-report")
    config = write_project(
        world("before", contacts=1500, seed=21), root, {"model.yaml": MODEL_FILE}
    )
    runner = CliRunner()
    trained = runner.invoke(
        app, ["train", "--config", str(config), "--model", "learned", "--horizon", "30d"]
    )
    assert trained.exit_code == 0, trained.output
    out = root / "backtest.html"
    result = runner.invoke(
        app, ["backtest", "--config", str(config), "--horizon", "30d", "--report", str(out)]
    )
    assert result.exit_code == 0, result.output
    return Path(out).read_text()


def test_report_puts_the_predictive_model_beside_its_rules_model(report: str) -> None:
    assert "Predictive model learned beside current" in report
    section = report[report.index("Predictive model learned beside current") :]
    judged = re.search(r"On the (\d+) snapshots after its training labels end", section)
    assert judged and int(judged.group(1)) > 0
    rows = re.findall(r"<tr><td>(learned|current)</td><td>([0-9.]+)</td>", section)
    assert [name for name, _ in rows] == ["learned", "current"]
    aucs = {name: float(auc) for name, auc in rows}
    assert aucs["learned"] > 0.5 and aucs["current"] > 0.5
    gain = re.search(
        r"AUC gain over the rules model: ([+-][0-9.]+) \(95% bootstrap interval "
        r"\[([+-][0-9.]+), ([+-][0-9.]+)\], resamples of contacts",
        section,
    )
    assert gain, section[:600]
    value, low, high = (float(g) for g in gain.groups())
    assert value == pytest.approx(aucs["learned"] - aucs["current"], abs=0.0015)
    assert low <= value <= high
    for words in ("top-decile lift", "calibration error", "advised (max F1)", "leads / week"):
        assert words in section


def test_report_draws_the_reliability_curves_of_both_models(report: str) -> None:
    figure = re.search(r'<figure class="chart" id="reliability-learned".*?</figure>', report, re.S)
    assert figure is not None
    lines = re.findall(r'<polyline class="series"[^>]*points="([^"]*)"', figure.group(0))
    assert len(lines) == 3  # the predictive model, the rules model, the diagonal
    # ten equal-frequency bins per model (fewer only when scores tie across a bin edge)
    assert all(5 <= len(points.split()) <= 10 for points in lines[:2])
    assert "calibrated" in figure.group(0) and "observed conversion (%)" in figure.group(0)
