"""Product events through ``POST /v1/events`` against the HubSpot sandbox: stored and
scored like the connector's events; an e-mail no contact has yet waits and is matched
once a run has brought the contact in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from realtime_world import HubSpotWorld, RealTime, start_realtime


@pytest.fixture
def w(tmp_path: Path) -> Iterator[HubSpotWorld]:
    world = HubSpotWorld(tmp_path)
    yield world
    world.close()


@pytest.fixture
def rt(w: HubSpotWorld, tmp_path: Path, serving: list[object]) -> RealTime:
    assert w.run().exit_code == 0
    assert w.run().exit_code == 0
    service = start_realtime(w, tmp_path)
    serving.append(service)
    return service


def _demo_request(rt: RealTime, event_id: str, **who: str) -> dict[str, Any]:
    return {
        "id": event_id,
        **who,
        "type": "form_submit",
        "name": "Demo requested in the app",
        "occurred_at": rt.live.clock().isoformat(),
        "attributes": {"form": "demo request"},
    }


def test_a_product_event_for_a_known_email_is_scored_and_acted_on(
    w: HubSpotWorld, rt: RealTime
) -> None:
    cid = w.contact_ids()[7]
    stored, _ = w.store.get_contact(cid)
    assert stored is not None
    email = str(stored.fields["email"])
    r = rt.live.events([_demo_request(rt, "ev-1", email=email.upper())])
    assert r.status_code == 202, r.text
    assert rt.drain() == 1
    s = rt.processor.summaries[-1]
    assert s.immediate == 1 and s.deals == 1 and s.tasks == 1
    _, events = w.store.get_contact(cid)
    assert any(e["id"] == "app:ev-1" and e["type"] == "form_submit" for e in events)
    # the same event again (a client retry) is a duplicate; the next run acts no more
    assert rt.live.events([_demo_request(rt, "ev-1", email=email)]).json()["duplicates"] == 1
    assert rt.drain() == 0
    run = w.run()
    assert run.deals == run.tasks == run.immediate == 0
    assert len(w.deals_of(cid)) == 1


def test_an_unknown_email_waits_until_a_run_brings_the_contact_in(
    w: HubSpotWorld, rt: RealTime
) -> None:
    email = "new.person@example.org"
    assert rt.live.events([_demo_request(rt, "ev-9", email=email)]).status_code == 202
    assert rt.drain() == 1
    assert rt.processor.summaries[-1].contacts_scored == 0
    assert rt.live.inbox.counts().get("waiting") == 1
    created = w._req(
        "POST",
        "/crm/v3/objects/contacts",
        {"properties": {"email": email, "firstname": "New", "lastname": "Person"}},
    )
    cid = str(created["id"])
    assert w.run().exit_code == 0  # the scheduled run brings the contact in
    rt.live.clock.advance(hours=1, seconds=1)  # the inbox looks again
    assert rt.drain() == 1
    s = rt.processor.summaries[-1]
    assert s.contacts_scored == 1 and s.immediate == 1 and s.deals == 1
    assert rt.live.inbox.counts().get("waiting", 0) == 0
    assert len(w.deals_of(cid)) == 1
