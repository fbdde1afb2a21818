"""Alerts through the real ``Sync`` and ``leadsync.yaml``, once ``scheduler/config.py``
and ``scheduler/sync.py`` make the calls docs/alerts.md, "Inside a run", describes.
Skipped until they do (the alerts package is merged before that wiring)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scheduler"))

from sync_fakes import T0, FakeCRM, fake_score, models

from scheduler.alerts.catcher import Reply
from scheduler.config import ConfigError, SyncConfig, load_config
from scheduler.state import StateStore
from scheduler.sync import RunOptions, Sync

pytestmark = pytest.mark.skipif(
    "alerts" not in SyncConfig.model_fields, reason="alerts not wired into SyncConfig yet"
)


def _config(tmp_path: Path, alerts_yaml: str, env: dict[str, str]) -> Any:
    (tmp_path / "leadsync.yaml").write_text(
        "crm: {type: fake}\nmodels: [unused.yaml]\n"
        f"state: sqlite:///{tmp_path / 'state.db'}\n" + alerts_yaml
    )
    return load_config(tmp_path / "leadsync.yaml", env=env)


def test_leadsync_yaml_alerts_problems_are_file_lines(tmp_path) -> None:
    with pytest.raises(ConfigError) as info:
        _config(tmp_path, "alerts:\n  - type: slack\n    url: https://hooks.test/literal\n", {})
    assert info.value.problems == [
        f"{tmp_path / 'leadsync.yaml'}:6: alerts[0].url: secrets must not be written in the "
        "file; use ${ENV_VAR} or ${file:PATH}"
    ]


def test_a_run_alerts_once_and_resumes_around_an_owed_alert(tmp_path, catcher) -> None:
    config = _config(
        tmp_path, "alerts:\n  - {type: slack, url: '${SLACK_URL}'}\n", {"SLACK_URL": catcher.url()}
    )
    store = StateStore(config.state_url())
    store.migrate()
    crm = FakeCRM()

    def run() -> Any:
        sync = Sync(
            config, crm, store, models(), scorer=fake_score, now=lambda: T0, heartbeat=False
        )
        return sync.run(RunOptions())

    try:
        crm.add("c1", points=50, owner_id="o1")
        run()
        crm.touch("c1", points=90)
        catcher.default = Reply(503, "down")
        s = run()
        assert s.exit_code == 0 and s.deals == 1 and s.alerts["failed"] == 1
        catcher.default = Reply(200)
        s = run()  # the owed alert is not a CRM action to resume; delivery sends it
        assert s.exit_code == 0 and s.alerts["sent"] == 1 and s.actions_failed == 0
        run()
        assert [b["text"] for b in catcher.bodies()][-1].startswith("Fc1 Lc1: main score 90")
        assert len([e for e in store.ledger_for("c1") if e.kind == "alert"]) == 1
        assert len(crm.deals) == 1
    finally:
        store.close()
