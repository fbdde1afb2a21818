"""A score field of the wrong type, on both sandboxes through the real connectors: the
run stops before writing instead of refusing every record call by call. (The guard
that stops a run whose writes are refused for one reason, for what metadata cannot
show, is tested with a fault-injecting connector in ``test_sync_rejected.py``.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_e2e import HubSpotWorld, SalesforceWorld

CONTACTS = 300


@pytest.fixture(params=["hubspot", "salesforce"])
def w(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HubSpotWorld]:
    world: HubSpotWorld
    if request.param == "hubspot":
        world = HubSpotWorld(tmp_path, contacts=CONTACTS)
        wrong = "lifecyclestage"  # an enumeration of stages: refuses numbers
    else:
        world = SalesforceWorld(tmp_path, contacts=CONTACTS)
        wrong = "Name"  # a compound field nobody can write
    plain = world.settings
    world.settings = lambda: {**plain(), "score_fields": {"leadsync_score": wrong}}  # type: ignore[method-assign]
    world.connector.close()
    world.connector = world.make_connector()
    yield world
    world.close()


def test_a_wrong_score_field_stops_the_run_before_any_write(w: HubSpotWorld) -> None:
    s = w.run()
    assert s.exit_code == 2 and s.status == "config", s.error
    wrong = "lifecyclestage" if w.crm_name == "hubspot" else "Name"
    assert wrong in (s.error or "")
    assert s.scores_written == 0 and s.rejected == 0
    # Judged from the CRM's field metadata: a handful of calls, not ~2 per contact.
    assert s.api_calls < 20, s.api_calls
    assert w.store.rejected() == []
