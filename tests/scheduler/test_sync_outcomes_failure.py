"""A run whose outcome read fails still scores and acts: outcomes feed the backtest,
not the write-back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from connectors.base import AuthError, CRMResponseError, DealRecord
from scheduler.config import parse_duration


def test_a_failed_outcome_read_is_said_once_and_the_run_goes_on(h) -> None:
    def refused(since: datetime | None) -> Iterator[DealRecord]:
        raise CRMResponseError("INSUFFICIENT_ACCESS on Opportunity for token ***")

    h.crm.read_deal_outcomes = refused
    for i in range(3):
        h.crm.add(f"c{i}", points=50, owner_id="o9")
    assert h.run().exit_code == 0  # the baseline
    h.clock.advance(hours=2)  # outcomes are due again
    h.crm.touch("c1", points=85)
    s = h.run()
    assert s.exit_code == 0 and (s.crossings, s.deals, s.tasks) == (1, 1, 1)
    assert s.outcomes_error and "INSUFFICIENT_ACCESS" in s.outcomes_error


def test_refused_credentials_during_the_outcome_read_still_stop_the_run(h) -> None:
    def expired(since: datetime | None) -> Iterator[DealRecord]:
        raise AuthError("session expired")

    h.crm.add("c0", points=50, owner_id="o9")
    h.crm.read_deal_outcomes = expired
    assert h.run().exit_code == 3


@pytest.mark.parametrize("text", ["1000000000d", "999999999999w", 1e18])
def test_absurd_durations_are_refused_not_crashed_on(text: object) -> None:
    with pytest.raises(ValueError, match="longer than 36500 days"):
        parse_duration(text)
