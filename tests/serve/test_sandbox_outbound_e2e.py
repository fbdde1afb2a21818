"""The Salesforce sandbox sends Outbound Messages for changes not made by the API user
(here: simulated activity) to the real service, which scores those records; the
sync's own writes send none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from realtime_world import RealTime, SalesforceWorld, start_realtime
from serve_helpers import SF_ORG, SF_TOKEN

from connectors.sandbox.salesforce.outbound import OutboundMessenger


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


def test_simulated_activity_is_delivered_and_scored(w: SalesforceWorld, rt: RealTime) -> None:
    messenger = OutboundMessenger(f"{rt.live.url}/webhooks/salesforce/{SF_TOKEN}", SF_ORG, w.clock)
    w.sandbox.store.outbound = messenger
    w.set_title(w.contact_ids()[0], "zzwarm")  # the API user's change: no message
    assert messenger.pending() == 0
    active = w.sandbox.simulate_activity(4, seed=5)
    assert messenger.pending() == len(active) > 0
    (delivery,) = messenger.flush()
    assert delivery.outcome == "delivered"
    assert rt.drain() == len(active)
    s = rt.processor.summaries[-1]
    assert s.contacts_scored == len(active)
    # serve's score writes are the API user's: no message comes back
    assert messenger.pending() == 0
