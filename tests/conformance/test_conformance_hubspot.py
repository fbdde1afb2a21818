"""The connector conformance suite against the HubSpot sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conformance_sandboxes import HubSpotHarness, play_each_fault

from connectors.testing import ConnectorSuite, Fault


class TestHubSpotConformance(ConnectorSuite):
    @pytest.fixture
    def harness(self) -> Iterator[HubSpotHarness]:
        harness = HubSpotHarness()
        try:
            yield harness
        finally:
            harness.close()


@pytest.mark.parametrize("fault", list(Fault), ids=[f.value for f in Fault])
def test_the_harness_plays_each_fault_on_the_create(fault: Fault) -> None:
    harness = HubSpotHarness()
    try:
        play_each_fault(harness, fault)
    finally:
        harness.close()
