"""The Salesforce state: a frozen value, the v1 cursors of earlier releases still
load, checkpoint() adds our writes, and every API request waits on the host's
shared budget (``CallLimiter``) through the injected sleep."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sf_conn_support import Org

from connectors.base import ConnectorConfigError, RuntimeContext, ScoreUpdate
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.state import SalesforceState

WINDOW = timedelta(days=30)


def _stored(state: Any) -> dict[str, Any]:
    return json.loads(json.dumps(state.to_json()))  # type: ignore[no-any-return]


def _read(c: SalesforceConnector, org: Org, state: Any = None) -> list[Any]:
    now = org.clock.datetime()
    return list(c.read_changes(state, until=now, events_since=now - WINDOW))


def test_the_state_a_read_yields_never_changes_and_checkpoint_adds_our_writes(org: Org) -> None:
    org.add_leadsync_fields()
    c = org.connector()
    batches = _read(c, org)
    yielded = batches[-1].state
    assert isinstance(yielded, SalesforceState)
    before = json.dumps(yielded.to_json(), sort_keys=True)
    people = [x for b in batches for x in b.contacts][:4]
    c.write_scores([ScoreUpdate(p.id, {"lead_score": 42}, p.kind) for p in people])
    assert json.dumps(yielded.to_json(), sort_keys=True) == before
    assert dict(yielded.own_writes) == {}
    after = c.checkpoint()
    assert after is not None and set(after.own_writes) == {p.id for p in people}
    assert c.load_state(_stored(after)) == after
    assert _stored(after)["version"] == 2


def test_a_version_1_cursor_of_an_earlier_release_keeps_working(org: Org) -> None:
    org.add_leadsync_fields()
    c = org.connector()
    first = _read(c, org)
    people = [x for b in first for x in b.contacts]
    c.write_scores([ScoreUpdate(p.id, {"lead_score": 42}, p.kind) for p in people])
    checkpoint = c.checkpoint()
    assert checkpoint is not None
    # the format stored before typed state: "v": 1, own writes as lists
    legacy = _stored(checkpoint)
    del legacy["version"]
    legacy["v"] = 1
    assert c.load_state(legacy) == checkpoint
    org.clock.advance(600)
    active = set(org.sandbox.simulate_activity(3, seed=4))
    org.clock.advance(60)
    again = org.connector()
    second = _read(again, org, again.load_state(legacy))
    assert {x.id for b in second for x in b.contacts} == active
    assert again.echoes_skipped > 0  # the remembered writes were used


@pytest.mark.parametrize(
    "stored",
    [
        {"v": 7, "objects": {}},
        {"version": 3, "objects": {}},
        {"version": 2, "objects": {"Lead": {}}},
    ],
)
def test_a_state_it_cannot_read_is_one_config_error(org: Org, stored: dict[str, Any]) -> None:
    with pytest.raises(ConnectorConfigError, match=r"salesforce: .*(full sync|until)"):
        org.connector().load_state(stored)


def test_no_checkpoint_before_a_complete_read(org: Org) -> None:
    assert org.connector().checkpoint() is None


class _Budget:
    """A shared budget that makes every second request wait once."""

    def __init__(self) -> None:
        self.granted: list[str] = []
        self.refused = 0

    def reserve(self, bucket: str) -> float:
        if len(self.granted) % 2 == 1 and self.refused <= len(self.granted) // 2:
            self.refused += 1
            return 2.5
        self.granted.append(bucket)
        return 0.0


def test_every_api_request_waits_on_the_shared_budget_through_the_injected_sleep(
    org: Org,
) -> None:
    budget = _Budget()
    context = RuntimeContext(now=org.clock.datetime, sleep=org.sleep, limiter=budget)
    c = SalesforceConnector.from_config(org.config(), context=context)
    org.app.reset_stats()
    _read(c, org)
    calls = c.budget().calls
    assert calls > 0 and len(budget.granted) == calls  # one reservation per API request
    assert budget.refused > 0 and org.sleeps.count(2.5) == budget.refused
    (bucket,) = set(budget.granted)
    assert bucket.startswith("salesforce:") and c.bucket == bucket
    assert "sandbox" not in bucket.split(":", 1)[1]  # an org id, never a credential
