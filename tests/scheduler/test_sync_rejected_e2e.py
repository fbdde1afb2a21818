"""A score field of the wrong type, on both sandboxes through the real connectors: the
run stops after one judged batch instead of refusing every record call by call."""

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


def test_a_wrong_score_field_stops_the_run_after_one_judged_batch(w: HubSpotWorld) -> None:
    s = w.run()
    assert s.exit_code == 2 and s.status == "config", s.error
    assert "max_rejected_share" in (s.error or "")
    assert s.rejected == 100 and s.scores_written == 0
    # HubSpot refuses a whole batch for one bad value, so the connector halves it
    # down to single records: ~200 calls for the judged 100, not ~2 per contact.
    assert s.api_calls < 260, s.api_calls
    rows = w.store.rejected()
    assert len(rows) == 100 and all(r["next_attempt_at"] for r in rows)
