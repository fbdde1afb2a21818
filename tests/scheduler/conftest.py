"""Fixtures for the sync's tests: a fresh SQLite state store, the fake CRM, a clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sync_fakes import T0, FakeCRM, fake_score, models

from scheduler.config import SyncConfig, config_from_mapping
from scheduler.state import StateStore
from scheduler.sync import RunOptions, RunSummary, Sync


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.t = start

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


def make_config(tmp_path: Path, **writeback: Any) -> SyncConfig:
    wb: dict[str, Any] = {"min_change": 1, "max_actions_per_run": 100}
    wb.update(writeback)
    return config_from_mapping(
        {
            "crm": {"type": "fake"},
            "models": ["unused.yaml"],
            "state": f"sqlite:///{tmp_path / 'state.db'}",
            "writeback": wb,
        },
        base_dir=tmp_path,
    )


class Harness:
    """The fake CRM, a store and a way to run the sync the way the CLI does."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.crm = FakeCRM()
        self.clock = Clock()
        self.models = models()
        self.writeback: dict[str, Any] = {}
        self.store = StateStore(
            f"sqlite:///{tmp_path / 'state.db'}", clock=lambda: self.clock().timestamp()
        )
        self.store.migrate()

    def sync(self, **kw: Any) -> Sync:
        config = make_config(self.tmp_path, **self.writeback)
        return Sync(
            config,
            self.crm,
            self.store,
            kw.pop("model_list", self.models),
            scorer=fake_score,
            now=self.clock,
            chunk_size=kw.pop("chunk_size", 7),
            heartbeat=False,
            **kw,
        )

    def run(self, **opts: Any) -> RunSummary:
        return self.sync().run(RunOptions(**opts))


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.store.close()


@pytest.fixture
def clock() -> Callable[[], datetime]:
    return Clock()
