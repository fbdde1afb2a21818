"""Canonical names are declared once; ``check --model`` mentions near misses of them
(``page_veiw``, ``job_titel``) with FILE:LINE, and leaves other names alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from model_texts import one_model
from typer.testing import CliRunner

from scheduler.cli import app
from scoring import vocabulary
from scoring.model import load_models, name_warnings

MODEL = one_model(
    """\
- {id: title, kind: fit, field: job_titel, match: {contains: vp}, points: 10}
- {id: region, kind: fit, field: sales_region, match: emea, points: 5}
- {id: pages, kind: behavior, event: page_veiw, points: 1, max_points: 5}
- {id: trial, kind: behavior, event: trial_started, points: 1, max_points: 5}
"""
)


def test_edit_distance_counts_a_swap_once() -> None:
    assert vocabulary.edit_distance("page_veiw", "page_view") == 1
    assert vocabulary.edit_distance("job_titel", "job_title") == 1
    assert vocabulary.near_misses("frist_name", vocabulary.CONTACT_FIELDS) == ["first_name"]
    assert vocabulary.near_misses("first_name", vocabulary.CONTACT_FIELDS) == []
    assert vocabulary.near_misses("sales_region", vocabulary.CONTACT_FIELDS) == []


def test_near_misses_are_warned_with_file_and_line() -> None:
    warnings = name_warnings(load_models(MODEL, "m.yaml"))
    assert warnings == [
        "m.yaml:6: models[0].rules[0].field: field 'job_titel' (did you mean 'job_title'?) "
        "is not a canonical field (fine if your data has it)",
        "m.yaml:8: models[0].rules[2].event: event type 'page_veiw' (did you mean "
        "'page_view'?) is not a canonical event type (fine if your data has it)",
    ]


def test_check_model_prints_the_warnings_and_still_passes(
    model_file: Callable[[str], Path],
) -> None:
    path = model_file(MODEL)
    result = CliRunner().invoke(app, ["check", "--model", str(path)])
    assert result.exit_code == 0
    assert f"warning: {path}:6: models[0].rules[0].field: field 'job_titel'" in result.stderr
    assert "page_veiw" in result.stderr
    assert "sales_region" not in result.stderr and "trial_started" not in result.stderr


def test_connectors_use_the_canonical_names() -> None:
    from connectors.hubspot.values import DEFAULT_FIELDS
    from connectors.salesforce.mapping import DEFAULT_FIELD_MAP

    canonical = vocabulary.CONTACT_FIELDS | vocabulary.STAGE_DATE_FIELDS
    assert {m.field for m in DEFAULT_FIELDS} <= canonical
    for fields in DEFAULT_FIELD_MAP.values():
        assert set(fields) <= vocabulary.CONTACT_FIELDS
