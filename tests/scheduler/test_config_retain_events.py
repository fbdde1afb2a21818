"""``state.retain_events``: the local copy keeps events long enough for a backtest."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from scheduler.config import ConfigError, load_config
from scheduler.sync import events_kept

HEAD = """\
crm:
  type: hubspot
  hubspot: {access_token: "${HS_TOKEN}", base_url: "http://127.0.0.1:1"}
models: model.yaml
"""


def _load(tmp_path: Path, state: str) -> object:
    path = tmp_path / "leadsync.yaml"
    path.write_text(HEAD + state)
    return load_config(path, env={"HS_TOKEN": "pat-na1-x"})


def test_a_plain_url_keeps_400_days(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "state: sqlite:///s.db\n")
    assert cfg.retain_events == timedelta(days=400)  # type: ignore[attr-defined]
    assert cfg.state == "sqlite:///s.db"  # type: ignore[attr-defined]


def test_the_mapping_form_sets_url_and_retention(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "state: {url: 'sqlite:///s.db', retain_events: 30d}\n")
    assert cfg.retain_events == timedelta(days=30)  # type: ignore[attr-defined]
    assert cfg.state_url().endswith("s.db")  # type: ignore[attr-defined]


def test_an_unknown_state_key_is_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "state: {url: 'sqlite:///s.db', retain: 30d}\n")
    assert "retain" in str(info.value) and "retain_events" in str(info.value)


def test_events_are_kept_for_the_longer_of_the_models_history_and_the_retention() -> None:
    short = SimpleNamespace(history_days=90.0)
    long = SimpleNamespace(history_days=500.0)
    assert events_kept([short], timedelta(days=400)) == timedelta(days=400)
    assert events_kept([long], timedelta(days=400)) == timedelta(days=501)
    assert events_kept([short, SimpleNamespace(history_days=None)], timedelta(days=1)) is None
