"""``leadsync demo --realtime``: the real service beside the embedded sandbox; a demo
request is delivered by webhook, scored, written and acted on within seconds."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from scheduler.cli import app


def test_demo_request_is_scored_and_acted_on_within_seconds() -> None:
    out = CliRunner().invoke(app, ["demo", "--realtime", "--contacts", "120", "--json"])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output.strip().splitlines()[-1])
    assert shown["deal"] and shown["task"]
    assert shown["score_after"] > (shown["score_before"] or 0)
    assert shown["seconds"] < 10
    # one batch read, the engagement reads, the deal check, the writes and the actions
    assert 0 < shown["worker_calls"] <= 20


def test_realtime_demo_is_hubspot_only() -> None:
    out = CliRunner().invoke(app, ["demo", "--realtime", "--crm", "salesforce"])
    assert out.exit_code == 2
    assert out.output.strip() == "--realtime: the real-time demo runs on --crm hubspot"
