"""A suite subclass without a harness fails with a sentence saying what to add, not
with pytest's "fixture not found"."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SOURCE = """
from connectors.testing import ConnectorSuite

class TestForgotten(ConnectorSuite):
    pass
"""


def test_a_suite_without_a_harness_says_what_to_define(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_forgotten=SOURCE)
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", "-k", "state_round")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*TestForgotten: define a `harness` fixture*"])
