"""The connector conformance suite against the Salesforce sandbox (over TLS)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conformance_sandboxes import SalesforceHarness, play_each_fault

from connectors.testing import ConnectorSuite, Fault


class TestSalesforceConformance(ConnectorSuite):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[SalesforceHarness]:
        harness = SalesforceHarness(tmp_path)
        try:
            yield harness
        finally:
            harness.close()


@pytest.mark.parametrize("fault", list(Fault), ids=[f.value for f in Fault])
def test_the_harness_plays_each_fault_on_the_create(fault: Fault, tmp_path: Path) -> None:
    harness = SalesforceHarness(tmp_path)
    try:
        play_each_fault(harness, fault)
    finally:
        harness.close()
