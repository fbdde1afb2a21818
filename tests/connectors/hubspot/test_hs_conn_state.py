"""The HubSpot state's stored form is the one earlier releases wrote (they keep
loading), and every API request waits on the host's shared budget."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hs_conn_env import TOKEN, read_all, sandbox_env

from connectors.base import ConnectorConfigError, RuntimeContext
from connectors.hubspot import HubSpotConnector
from connectors.hubspot.state import HubSpotState


def test_a_cursor_stored_by_an_earlier_release_keeps_working() -> None:
    with sandbox_env(60) as env:
        first = read_all(env.connector(), None, until=env.clock.datetime())
        state = first[-1].state
        assert isinstance(state, HubSpotState)
        # as earlier releases stored it: "since" as an epoch-ms string
        legacy: dict[str, Any] = json.loads(json.dumps(state.to_json()))
        legacy["since"] = str(legacy["since"])
        connector = env.connector()
        assert connector.load_state(legacy) == state
        env.clock.advance(600)
        changed = set(env.hs.simulate_activity(2, seed=3))
        env.clock.advance(60)
        again = read_all(connector, connector.load_state(legacy), until=env.clock.datetime())
        assert {c.id for b in again for c in b.contacts} == changed


@pytest.mark.parametrize("stored", [{"version": 9, "since": 1}, {"version": 1}])
def test_a_state_it_cannot_read_is_one_config_error(stored: dict[str, Any]) -> None:
    with sandbox_env(5) as env, pytest.raises(ConnectorConfigError, match="full sync"):
        env.connector().load_state(stored)


class _Budget:
    """Grants a call, then makes the next wait once, and so on."""

    def __init__(self) -> None:
        self.granted: list[str] = []
        self.waits = 0

    def reserve(self, bucket: str) -> float:
        if len(self.granted) > self.waits:
            self.waits += 1
            return 1.5
        self.granted.append(bucket)
        return 0.0


def test_every_api_request_waits_on_the_shared_budget_through_the_injected_sleep() -> None:
    with sandbox_env(250) as env:
        budget = _Budget()
        context = RuntimeContext(now=env.clock.datetime, sleep=env.sleep, limiter=budget)
        connector = HubSpotConnector.from_config(
            {"access_token": TOKEN, "base_url": env.base_url}, context=context
        )
        env.app.reset_stats()
        read_all(connector, None, until=env.clock.datetime())
        calls = int(env.stats()["total"])
        assert calls > 1 and len(budget.granted) == calls
        assert budget.waits >= calls - 1 and env.sleeps.count(1.5) == budget.waits
        (bucket,) = set(budget.granted)
        assert bucket == connector.bucket and bucket.startswith("hubspot:")
        assert TOKEN not in bucket and len(bucket) == len("hubspot:") + 16
