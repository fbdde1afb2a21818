"""A history with a known signal (converting contacts book meetings before their deal),
and a model file with a predictive model over the backtest tests' rules model."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backtest"))

from worlds import MODEL, world, write_project

from scheduler.train import TrainOptions

__all__ = ["MODEL_FILE", "OPTIONS", "TREE_OPTIONS", "world", "write_project"]

PREDICTIVE = """  - name: learned
    kind: predictive
    score_field: leadsync_learned
    base_model: current
    artifact: learned.json
    bands: {hot: 60, warm: 30}
"""
MODEL_FILE = MODEL.format(name="current", meeting=30) + PREDICTIVE
# The logistic model: its weights are what the reason and retrain tests reason about.
OPTIONS = TrainOptions(span=timedelta(weeks=20), holdout=timedelta(weeks=6), estimator="logistic")
TREE_OPTIONS = TrainOptions(
    span=timedelta(weeks=20), holdout=timedelta(weeks=6), estimator="trees", trees=60
)
