"""The re-crossing story of ``test_sync_recross`` with real ``leadsync run`` processes:
each run is a fresh interpreter (nothing shared but the CRM and the state file), against
a sandbox served by this test process on both CRMs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sync_e2e import E2E_MODEL, SF_MODEL, HubSpotWorld, SalesforceWorld

from connectors.sandbox import ManualClock

pytestmark = pytest.mark.slow


class RealClock(ManualClock):
    """The real time, shared by the sandbox and the subprocesses."""

    def now(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> None:
        return None


@pytest.fixture(params=["hubspot", "salesforce"])
def w(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HubSpotWorld]:
    world: HubSpotWorld
    if request.param == "hubspot":
        world = HubSpotWorld(tmp_path, contacts=20, clock=RealClock(), search_lag=0.0)
        model = E2E_MODEL
    else:
        world = SalesforceWorld(tmp_path, contacts=20, clock=RealClock())
        model = SF_MODEL
    (tmp_path / "e2e.yaml").write_text(model)
    env: dict[str, str] = {}
    config: dict[str, Any] = {
        "crm": {"type": world.crm_name, world.crm_name: _secrets_from_env(world.settings(), env)},
        "models": "e2e.yaml",
        "state": "sqlite:///e2e.db",
        "writeback": {"skip_if_open_deal": "ours"},
    }
    (tmp_path / "leadsync.yaml").write_text(json.dumps(config))  # JSON is YAML
    _ENV[str(tmp_path)] = env
    yield world
    _ENV.pop(str(tmp_path), None)
    world.close()


# The secrets each world's runs need in their environment, by the world's folder.
_ENV: dict[str, dict[str, str]] = {}
SECRETS = {"access_token", "client_secret", "refresh_token", "session_id"}


def _secrets_from_env(settings: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """The settings with each secret replaced by ``${VAR}`` and put in ``env``, the way
    a configuration file must carry them."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out[key] = _secrets_from_env(value, env)
        elif key in SECRETS and isinstance(value, str):
            name = f"LS_TEST_SECRET_{len(env)}"
            env[name] = value
            out[key] = "${" + name + "}"
        else:
            out[key] = value
    return out


def _run(w: HubSpotWorld) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", "from scheduler.cli import main; main()", "run", "--json",
         "--config", str(w.tmp_path / "leadsync.yaml")],
        env={**os.environ, **_ENV[str(w.tmp_path)]}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-1000:], proc.stderr[-2000:])
    summary: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return summary


def _without_open_deal(w: HubSpotWorld) -> str:
    """A contact no rep has an open deal with: the sandbox world, drawn relative to the
    clock, gives some of its customers open Opportunities, and skip_if_open_deal would
    rightly hold the first crossing back."""
    if w.crm_name != "salesforce":
        return w.contact_ids()[2]
    busy = {
        r["ContactId"]
        for r in w.query(  # type: ignore[attr-defined]
            "SELECT ContactId FROM OpportunityContactRole WHERE Opportunity.IsClosed = false"
        )
    }
    return next(c for c in w.contact_ids() if c not in busy)


def test_re_crossing_in_separate_processes_creates_nothing_new(w: HubSpotWorld) -> None:
    _run(w)  # baseline
    _run(w)
    cid = _without_open_deal(w)
    w.set_title(cid, "zzbuyer")
    s = _run(w)
    assert (s["crossings"], s["deals"], s["tasks"]) == (1, 1, 1), s
    w.set_title(cid, "zzcool")  # below rearm_below: armed again
    _run(w)
    w.set_title(cid, "zzbuyer")
    s = _run(w)
    assert (s["deals"], s["tasks"], s["skipped_open_deal"]) == (0, 0, 1), s
    assert len(w.deals_of(cid)) == 1 and len(w.tasks_of(cid)) == 1
