"""``leadsync serve`` as processes against the HubSpot sandbox: killed right after the
2xx, then killed again between the CRM call and its ledger outcome, the batch is acted
on exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_serve_process
from realtime_world import HubSpotWorld
from serve_helpers import HS_SECRET, PUBLIC, hs_event
from test_serve_process import Proc, _until

from scheduler.serve.inbox import TABLE

pytestmark = pytest.mark.slow
procs = test_serve_process.procs  # the fixture that kills what a test started


@pytest.fixture
def w(tmp_path: Path) -> Iterator[HubSpotWorld]:
    world = HubSpotWorld(tmp_path)
    yield world
    world.close()


def _config(w: HubSpotWorld, tmp_path: Path) -> Path:
    (tmp_path / "e2e.yaml").write_text(w.model_text)
    path = tmp_path / "leadsync.yaml"
    path.write_text(
        "crm: {type: hubspot, hubspot: {access_token: '${HS_TOKEN}', "
        f"base_url: '{w.url}', tier: pro}}}}\n"
        "models: e2e.yaml\n"
        "state: sqlite:///e2e.db\n"
        "serve:\n"
        f"  public_url: {PUBLIC}\n"
        "  hubspot: {client_secret: '${HS_SECRET}'}\n"
        "  worker: {idle: 0.05s}\n"
    )
    return path


def _counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT status, count(*) FROM {TABLE} GROUP BY status").fetchall()
    return {str(s): int(n) for s, n in rows}


def test_killed_after_the_answer_and_after_the_crm_call_acts_once(
    w: HubSpotWorld, tmp_path: Path, procs: list[Proc], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert w.run().exit_code == 0 and w.run().exit_code == 0
    config = _config(w, tmp_path)
    monkeypatch.setenv("HS_TOKEN", "sandbox-token")
    assert os.environ["HS_TOKEN"]
    cid = w.contact_ids()[5]
    if not w.contact(cid).get("hubspot_owner_id"):
        w.set_owner(cid, w.owners()[0])
    w.set_title(cid, "zzbuyer")
    db = tmp_path / "e2e.db"

    first = Proc(config, "--no-worker")
    procs.append(first)
    answer = first.post_hubspot([hs_event(1, int(cid), propertyValue="zzbuyer")])
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(10)
    assert answer.status_code == 200 and _counts(db) == {"pending": 1}

    # The worker creates the deal, then dies before recording it in the ledger.
    monkeypatch.setenv("LEADSYNC_CRASH_AT", "after_crm_write")
    second = Proc(config)
    procs.append(second)
    assert second.popen.wait(30) == -signal.SIGKILL
    assert len(w.deals_of(cid)) == 1 and w.tasks_of(cid) == []
    with sqlite3.connect(db) as conn:  # the claim's lease runs out (no real waiting)
        conn.execute(f"UPDATE {TABLE} SET due_at = 0 WHERE status = 'pending'")
    monkeypatch.delenv("LEADSYNC_CRASH_AT")

    third = Proc(config)
    procs.append(third)
    try:
        _until(lambda: _counts(db) == {"done": 1}, timeout=30)
    except AssertionError:
        third.popen.kill()
        raise AssertionError(f"{_counts(db)}: {third.popen.stderr.read()[-3000:]}") from None
    _until(lambda: len(w.tasks_of(cid)) == 1, timeout=30)
    assert len(w.deals_of(cid)) == 1 and len(w.tasks_of(cid)) == 1
    # HubSpot redelivers: a duplicate, no further action.
    assert third.post_hubspot([hs_event(1, int(cid))]).json()["duplicates"] == 1
    third.popen.send_signal(signal.SIGTERM)
    third.popen.wait(20)
    run = w.run()
    assert run.deals == run.tasks == run.crossings == 0
    assert len(w.deals_of(cid)) == 1 and len(w.tasks_of(cid)) == 1
    assert HS_SECRET not in (third.popen.stderr.read() if third.popen.stderr else "")
