"""Alerts from real runs against the sandbox CRMs, through the real connectors: the
owner and the record link come from the CRM, the alert goes to a local catcher."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scheduler"))

from alert_helpers import alerts
from sync_e2e import HubSpotWorld, SalesforceWorld
from wired_sync import WiredSync

from scheduler.alerts.hook import AlertsHook
from scheduler.sync import RunOptions
from scoring.model import load_models


def _run(w: HubSpotWorld, url: str) -> WiredSync:
    w.clock.advance(10)  # past the search index lag of what the test just changed
    models = list(load_models(w.model_text, "e2e.yaml").models)
    sync = WiredSync(
        w.config(), w.connector, w.store, models, now=w.clock.datetime, heartbeat=False
    )
    sync.alerts = AlertsHook(
        alerts({"type": "slack", "url": url}),
        connector=w.connector,
        sleep=w.clock.sleep,
        heartbeat=False,
    )
    summary = sync.run(RunOptions())
    assert summary.exit_code == 0, summary.error
    return sync


def _names(catcher: Any) -> list[str]:
    return [b["text"] for b in catcher.bodies()]


def test_hubspot_crossing_alerts_once_with_the_owner(tmp_path, catcher) -> None:
    w = HubSpotWorld(tmp_path)
    try:
        _run(w, catcher.url())
        _run(w, catcher.url())
        cid = next(c for c in w.contact_ids() if w.contact(c).get("hubspot_owner_id"))
        w.set_title(cid, "zzbuyer")
        sync = _run(w, catcher.url())
        assert sync.report.sent == 1
        [body] = catcher.bodies()
        props = w.contact(cid)
        assert body["text"].startswith(f"{props['firstname']} {props['lastname']}: main score")
        owner = next(
            f["text"] for f in body["blocks"][1]["fields"] if f["text"].startswith("*Owner*")
        )
        assert owner != "*Owner*\nno owner"
        # The portal id comes from one account-info read: the button opens the record.
        from connectors.sandbox.hubspot.legacy import PORTAL_ID

        [actions] = [b for b in body["blocks"] if b["type"] == "actions"]
        url = actions["elements"][0]["url"]
        assert url == f"https://app.hubspot.com/contacts/{PORTAL_ID}/record/0-1/{cid}"
        _run(w, catcher.url())
        assert len(catcher.requests) == 1
    finally:
        w.close()


def test_salesforce_lead_alert_links_to_the_lightning_record(tmp_path, catcher) -> None:
    w = SalesforceWorld(tmp_path)
    try:
        _run(w, catcher.url())
        _run(w, catcher.url())
        lid = next(i for i in w.lead_ids() if w.contact(i)["status"] != "Working - Contacted")
        w.set_title(lid, "zzbuyer")
        sync = _run(w, catcher.url())
        assert sync.report.sent == 1
        [body] = catcher.bodies()
        button = body["blocks"][-1]["elements"][0]
        assert button["url"] == f"{w.url}/lightning/r/Lead/{lid}/view"
    finally:
        w.close()
