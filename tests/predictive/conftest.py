"""Fixtures shared by the predictive tests (built once per session: training takes a second)."""

from __future__ import annotations

from typing import Any

import pytest
from predictive_world import MODEL_FILE, OPTIONS, TREE_OPTIONS, world

from scheduler.train import TrainResult, train
from scoring.model import ModelSet, load_models


@pytest.fixture(scope="session")
def model_set() -> ModelSet:
    return load_models(MODEL_FILE, "models.yaml")


@pytest.fixture(scope="session")
def history() -> Any:
    return world("before", contacts=2000)


@pytest.fixture(scope="session")
def trained(model_set: ModelSet, history: Any) -> TrainResult:
    return train(history, model_set.predictive[0], model_set.get("current"), OPTIONS)


@pytest.fixture(scope="session")
def trained_trees(model_set: ModelSet, history: Any) -> TrainResult:
    return train(history, model_set.predictive[0], model_set.get("current"), TREE_OPTIONS)
