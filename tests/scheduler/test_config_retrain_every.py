"""``schedule.retrain_every``: read from the configuration and handed to the schedule."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from scheduler.config import ConfigError, SyncConfig, load_config

HEAD = """\
crm:
  type: hubspot
  hubspot: {access_token: "${HS_TOKEN}", base_url: "http://127.0.0.1:1"}
models: model.yaml
state: sqlite:///s.db
"""


def _load(tmp_path: Path, schedule: str) -> SyncConfig:
    path = tmp_path / "leadsync.yaml"
    path.write_text(HEAD + schedule)
    return load_config(path, env={"HS_TOKEN": "pat-na1-x"})


def test_retrain_every_is_a_duration(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "schedule: {every: 15m, retrain_every: 10d}\n")
    assert cfg.schedule.retrain_every == timedelta(days=10)


def test_without_it_nothing_is_retrained(tmp_path: Path) -> None:
    assert _load(tmp_path, "schedule: {every: 15m}\n").schedule.retrain_every is None


def test_a_bad_interval_is_one_line_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "schedule: {every: 15m, retrain_every: soon}\n")
    text = str(info.value)
    assert "leadsync.yaml:" in text and "retrain_every" in text and len(text.splitlines()) == 1
