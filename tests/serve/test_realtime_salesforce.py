"""``leadsync serve`` end to end against the Salesforce sandbox: Outbound Messages
through the real service, the real processor and connector, then the scheduled sync."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from realtime_world import RealTime, SalesforceWorld, start_realtime
from serve_soap import envelope


@pytest.fixture
def w(tmp_path: Path) -> Iterator[SalesforceWorld]:
    world = SalesforceWorld(tmp_path)
    yield world
    world.close()


@pytest.fixture
def rt(w: SalesforceWorld, tmp_path: Path, serving: list[object]) -> RealTime:
    assert w.run().exit_code == 0
    assert w.run().exit_code == 0
    service = start_realtime(w, tmp_path)
    serving.append(service)
    return service


def test_outbound_message_is_scored_and_acted_on_once(w: SalesforceWorld, rt: RealTime) -> None:
    # a Contact without an open Opportunity (skip_if_open_deal would rightly hold back)
    busy = {
        r["ContactId"]
        for r in w.query(
            "SELECT ContactId FROM OpportunityContactRole WHERE Opportunity.IsClosed = false"
        )
    }
    cid = next(c for c in w.contact_ids() if c not in busy)
    w.set_title(cid, "zzbuyer")
    body = envelope([("04l000000000001AAA", "Contact", {"Id": cid, "Title": "zzbuyer"})])
    r = rt.live.salesforce(body)
    assert r.status_code == 200 and b"<Ack>true</Ack>" in r.content
    assert rt.drain() == 1
    s = rt.processor.summaries[-1]
    assert (s.crossings, s.deals, s.tasks, s.scores_written) == (1, 1, 1, 1)
    assert float(w.contact(cid)["leadsync_score"]) >= 75
    # Salesforce retries a message it thinks failed: the same notification id.
    assert rt.live.salesforce(body).status_code == 200
    rt.drain()
    run = w.run()
    assert run.exit_code == 0, run.error
    assert (run.deals, run.tasks, run.crossings, run.scores_written) == (0, 0, 0, 0)
    # serve's score write is read back (it moved SystemModstamp) but not taken for a change
    assert run.serve_echoes == 1 and run.contacts_read == 0
    assert len(w.deals_of(cid)) == 1 and len(w.tasks_of(cid)) == 1
