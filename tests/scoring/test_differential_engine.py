"""The engine against the plain reference implementation on generated models and data."""

from __future__ import annotations

import pytest
from compare import assert_same, run_engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import score_reference
from strategies import AS_OF_CHOICES, contacts, events, models

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


def _check(data: st.DataObject, n_contacts: int, n_events: int) -> None:
    as_of = data.draw(st.sampled_from(AS_OF_CHOICES))
    n_models = data.draw(st.integers(1, 2))
    model_list = [data.draw(models(name=f"m{i}")) for i in range(n_models)]
    people = data.draw(contacts(n_contacts))
    happenings = data.draw(events(n_events, n_contacts, as_of))
    columns, results = run_engine(model_list, people, happenings, as_of)
    expected = score_reference(model_list, people, happenings, as_of=as_of)
    assert_same(columns, results, expected)


@settings(max_examples=8, deadline=None, suppress_health_check=_SUPPRESS, derandomize=True)
@given(st.data())
def test_engine_matches_reference_quick(data: st.DataObject) -> None:
    _check(data, n_contacts=30, n_events=300)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=_SUPPRESS)
@given(st.data())
def test_engine_matches_reference_many(data: st.DataObject) -> None:
    _check(data, n_contacts=40, n_events=500)
