"""100,000 contacts with half a year of engagement: seeding time and search speed."""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import pytest

from connectors.sandbox import HubSpotSandbox, ManualClock, SandboxApp, generate_world
from connectors.sandbox.framework import Request


@pytest.mark.slow
def test_100k_contacts_seed_in_time_and_search_under_50ms() -> None:
    started = time.perf_counter()
    clock = ManualClock()
    hs = HubSpotSandbox(world=generate_world(100_000, seed=7), clock=clock, search_lag_seconds=0)
    assert time.perf_counter() - started < 30
    app = SandboxApp(hs)
    now_ms = int(hs.world.now * 1000)
    email = hs.world.people[54_321].email
    bodies: list[dict[str, Any]] = [
        {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "lastmodifieddate",
                            "operator": "GTE",
                            "value": str(now_ms - 7 * 86_400_000),
                        },
                        {"propertyName": "hs_object_id", "operator": "GT", "value": "2147500000"},
                    ]
                }
            ],
            "sorts": ["hs_object_id"],
            "limit": 200,
        },
        {
            "filterGroups": [
                {"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}
            ]
        },
        {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "lifecyclestage", "operator": "EQ", "value": "customer"}
                    ]
                }
            ],
            "limit": 100,
        },
    ]
    for body in bodies:
        times = []
        for _ in range(7):
            clock.advance(1)
            request = Request(
                "POST",
                "/crm/v3/objects/contacts/search",
                headers={"authorization": "Bearer sandbox-token"},
                body=json.dumps(body).encode(),
            )
            t = time.perf_counter()
            response = app(request)
            times.append(time.perf_counter() - t)
            assert response.status == 200
        assert statistics.median(times[1:]) < 0.050, body
    found = json.loads(
        app(
            Request(
                "POST",
                "/crm/v3/objects/contacts/search",
                headers={"authorization": "Bearer sandbox-token"},
                body=json.dumps(bodies[1]).encode(),
            )
        ).body
    )
    assert found["total"] == 1
