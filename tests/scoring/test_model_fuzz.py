"""Whatever a model file holds, loading gives a ModelSet or a ModelFileError: never a
traceback, and every problem is one ``FILE:LINE: path: message`` line."""

from __future__ import annotations

import json
import os
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_texts import PLATFORM_MODEL

from scoring.model import ModelFileError, ModelSet, load_models

# Mutations start from a model that uses every rule option.
VALID = PLATFORM_MODEL

PROBLEM_LINE = re.compile(r"^fuzz\.yaml:\d+: \S[^\n]*: [^\n]+$")

KEYS = [
    "models", "name", "score_field", "applies_to", "scale", "bands", "threshold",
    "rearm_below", "rules", "decay", "free_email_domains", "id", "kind", "group", "field",
    "match", "points", "event", "max_per_day", "max_points", "window_days",
    "half_life_days", "immediate", "hot", "warm", "min", "max", "inactive_days",
    "equals", "in", "contains", "contains_any", "glob", "regex", "gt", "gte", "lt", "lte",
    "exists", "email_domain_in", "free_email", "fit", "behavior", "url", "x",
]  # fmt: skip

SETTINGS = settings(
    # LEADSYNC_FUZZ_EXAMPLES=5000 for a deeper run before a release.
    max_examples=int(os.environ.get("LEADSYNC_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(text: str) -> None:
    try:
        result = load_models(text, "fuzz.yaml")
    except ModelFileError as err:
        assert err.problems, "an error must say what is wrong"
        for problem in err.problems:
            assert PROBLEM_LINE.match(problem), problem
        return
    assert isinstance(result, ModelSet)
    for model in result.models:
        assert len(model.content_hash) == 64


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(KEYS),
    st.text(max_size=8),
    st.sampled_from(["(", "[a-", "*/pricing*", "NO", "2026-01-01", "fit", "behavior"]),
)


def structures() -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.sampled_from(KEYS), inner, max_size=6),
        ),
        max_leaves=30,
    )


@SETTINGS
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    check(text)


@SETTINGS
@given(structures())
def test_random_structures_as_json(value: Any) -> None:
    # JSON is YAML 1.2, so this exercises validation rather than the YAML parser.
    check(json.dumps({"models": value}, allow_nan=True))
    check(json.dumps(value, allow_nan=True))


def rule_like() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": st.sampled_from(["a", "b", "B c"]),
            "kind": st.sampled_from(["fit", "behavior", "x"]),
        },
        optional={
            "field": scalars,
            "event": scalars,
            "points": scalars,
            "match": structures(),
            "group": scalars,
            "max_per_day": scalars,
            "max_points": scalars,
            "window_days": scalars,
            "immediate": scalars,
        },
    )


@SETTINGS
@given(
    st.lists(rule_like(), min_size=0, max_size=4),
    st.lists(st.fixed_dictionaries({"inactive_days": scalars, "points": scalars}), max_size=3),
    st.fixed_dictionaries({"hot": scalars, "warm": scalars}),
)
def test_model_shaped_structures(
    rules: list[dict[str, Any]], decay: list[dict[str, Any]], bands: dict[str, Any]
) -> None:
    model = {"name": "m", "score_field": "s", "bands": bands, "rules": rules, "decay": decay}
    check(json.dumps({"models": [model, model]}, allow_nan=True))


@SETTINGS
@given(st.data())
def test_mutated_valid_file(data: st.DataObject) -> None:
    lines = VALID.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        index = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "duplicate", "replace", "insert", "indent"]))
        if action == "drop" and len(lines) > 1:
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "replace":
            line = lines[index]
            if ":" in line:
                head = line.split(":", 1)[0]
                value = data.draw(scalars)
                lines[index] = f"{head}: {json.dumps(value, allow_nan=True)}\n"
        elif action == "insert":
            text = lines[index]
            at = data.draw(st.integers(min_value=0, max_value=len(text)))
            junk = data.draw(
                st.sampled_from(["{", "}", "[", "'", '"', "&a ", "*a ", "- ", ": ", "\t", "#"])
            )
            lines[index] = text[:at] + junk + text[at:]
        elif action == "indent":
            lines[index] = "  " + lines[index]
    check("".join(lines))
