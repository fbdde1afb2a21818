"""The engine's public surface: result objects, JSON lines, frames in, frames out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from scoring.engine import (
    Reason,
    band_for,
    decay_rule_name,
    iter_results,
    records_to_frames,
    results_from_columns,
    round2,
    score,
    score_columns,
    score_frames,
)
from scoring.model import Bands, ScoringModel, load_models

AS_OF = datetime(2026, 6, 30, tzinfo=UTC)
DAY = timedelta(days=1)

TWO_MODELS = """
models:
  - name: first
    score_field: s1
    bands: {hot: 10, warm: 5}
    rules:
      - {id: title, kind: fit, field: title, match: {contains: ceo}, points: 8}
      - {id: visit, kind: behavior, event: page_view, match: {url: {glob: "*/pricing*"}}, points: 3}
      - {id: demo, kind: behavior, event: form_submit, points: 0, immediate: true}
    decay:
      - {inactive_days: 30, points: -2}
  - name: second
    score_field: s2
    applies_to:
      - {field: stage, match: lead}
    bands: {hot: 50, warm: 20}
    rules:
      - {id: visit, kind: behavior, event: page_view, points: 1}
"""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12.345, 12.35),
        (-0.125, -0.13),
        (0.005, 0.01),
        (1.005, 1.01),  # binary 1.00499999..., decimal 1.005
        (2.675, 2.68),
        (-2.5, -2.5),
        (7.004999, 7.0),
        (-0.001, 0.0),
    ],
)
def test_engine_round2_is_half_away_from_zero_on_the_decimal(value: float, expected: float) -> None:
    assert round2(value) == expected
    assert str(round2(value)) != "-0.0"


def test_engine_band_for_uses_inclusive_lower_bounds() -> None:
    bands = Bands(hot=70, warm=40)
    assert [band_for(s, bands) for s in (70.0, 69.99, 40.0, 39.99)] == [
        "hot",
        "warm",
        "warm",
        "cold",
    ]


def test_engine_decay_rule_name() -> None:
    assert decay_rule_name(30.0) == "decay-30d"
    assert decay_rule_name(7.5) == "decay-7.5d"


def _data() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    contacts = [
        {"id": "c1", "title": "CEO", "stage": "lead", "created_at": AS_OF - 100 * DAY},
        {"id": "c2", "title": "Intern", "stage": "customer"},
    ]
    events = [
        {
            "contact_id": "c1",
            "type": "page_view",
            "occurred_at": AS_OF - 40 * DAY,
            "url": "/pricing",
        },
        {
            "contact_id": "c1",
            "type": "form_submit",
            "occurred_at": datetime(2026, 6, 1, 12, 0, 0, 250000, tzinfo=UTC),
            "id": "f-1",
        },
        {"contact_id": "nobody", "type": "page_view", "occurred_at": AS_OF, "url": "/pricing"},
    ]
    return contacts, events


def test_engine_to_dict_is_the_json_line_of_leadsync_score() -> None:
    models = load_models(TWO_MODELS, "two.yaml")
    contacts, events = _data()
    results = score(models, contacts, events, as_of=AS_OF)
    assert [(r.contact_id, r.model) for r in results] == [
        ("c1", "first"),
        ("c1", "second"),
        ("c2", "first"),
    ]
    line = json.loads(json.dumps(results[0].to_dict()))
    assert line == {
        "contact_id": "c1",
        "model": "first",
        "score": 11.0,  # 8 + 3; the form 28.5 days ago keeps decay away
        "band": "hot",
        "immediate": True,
        "immediate_event": {
            "type": "form_submit",
            "occurred_at": "2026-06-01T12:00:00.250000Z",
            "id": "f-1",
        },
        "last_activity_at": "2026-06-01T12:00:00.250000Z",
        "reasons": [
            {"rule": "title", "kind": "fit", "points": 8.0, "events": None},
            {"rule": "visit", "kind": "behavior", "points": 3.0, "events": 1},
            {"rule": "demo", "kind": "behavior", "points": 0.0, "events": 1},
        ],
    }
    assert results[2].to_dict()["last_activity_at"] is None
    assert results[2].reasons == ()


def test_engine_score_frames_reads_categoricals_and_naive_times() -> None:
    models = load_models(TWO_MODELS, "two.yaml")
    contacts = pl.DataFrame(
        {
            "id": ["c1", "c2"],
            "title": ["CEO", None],
            "stage": ["lead", "lead"],
            "created_at": [datetime(2026, 1, 1), None],
        }
    )
    events = pl.DataFrame(
        {
            "contact_id": ["c2", "c2", "c1"],
            "type": ["page_view", "page_view", "form_submit"],
            # naive: UTC. 29 June 23:00 is inside the day; 30 June 00:00:01 is after as_of.
            "occurred_at": [
                datetime(2026, 6, 29, 23),
                datetime(2026, 6, 30, 0, 0, 1),
                datetime(2026, 5, 1),
            ],
            "url": ["https://x.com/pricing", "https://x.com/pricing", None],
        }
    ).with_columns(pl.col("type").cast(pl.Categorical), pl.col("url").cast(pl.Categorical))
    results = score_frames(models, contacts, events, as_of=AS_OF)
    by_key = {(r.contact_id, r.model): r for r in results}
    first_c2 = by_key[("c2", "first")]
    assert first_c2.score == 3.0
    assert first_c2.last_activity_at == datetime(2026, 6, 29, 23, tzinfo=UTC)
    first_c1 = by_key[("c1", "first")]
    assert first_c1.immediate_event is not None
    assert first_c1.immediate_event.id is None
    # 60 days since the form: decay step 30 applies, but nothing was earned to take away.
    assert first_c1.reasons[-1] == Reason("decay-30d", "decay", 0.0, None)
    assert by_key[("c2", "second")].score == 1.0


def test_engine_score_columns_keep_unrounded_values_and_rows() -> None:
    model = ScoringModel.model_validate(
        {
            "name": "m",
            "score_field": "s",
            "bands": {"hot": 70, "warm": 40},
            "rules": [
                {
                    "id": "v",
                    "kind": "behavior",
                    "event": "page_view",
                    "points": 1,
                    "half_life_days": 1,
                }
            ],
        }
    )
    contacts = pl.DataFrame({"id": ["a", "b"]})
    events = pl.DataFrame(
        {"contact_id": ["b"], "type": ["page_view"], "occurred_at": [AS_OF - DAY / 3]},
        schema={
            "contact_id": pl.String,
            "type": pl.String,
            "occurred_at": pl.Datetime("us", "UTC"),
        },
    )
    columns = score_columns([model], contacts, events, as_of=AS_OF)
    assert columns.scores.get_column("contact_id").to_list() == ["a", "b"]
    raw = columns.scores.get_column("raw").to_list()[1]
    assert raw == pytest.approx(0.5 ** (1 / 3))
    assert columns.scores.get_column("score").to_list() == [0.0, 0.79]
    assert columns.reasons.select("row", "rule", "points", "events").rows() == [(1, "v", 0.79, 1)]
    assert columns.reasons.get_column("raw_points").to_list() == [raw]


def test_engine_empty_inputs_score_nothing_or_fit_only() -> None:
    models = load_models(TWO_MODELS, "two.yaml")
    assert score(models, [], [], as_of=AS_OF) == []
    [only] = score(models.models[:1], [{"id": "x", "title": "ceo"}], [], as_of=AS_OF)
    assert (only.score, only.last_activity_at) == (8.0, None)


def test_engine_missing_event_column_is_a_clear_error() -> None:
    models = load_models(TWO_MODELS, "two.yaml")
    events = pl.DataFrame({"contact_id": ["a"], "occurred_at": [AS_OF]})
    with pytest.raises(ValueError, match="events: missing column 'type'"):
        score_frames(models, pl.DataFrame({"id": ["a"]}), events, as_of=AS_OF)
    with pytest.raises(ValueError, match="contacts: missing column 'id'"):
        score_frames(models, pl.DataFrame({"name": ["a"]}), events, as_of=AS_OF)


def test_engine_iter_results_in_small_chunks_matches_the_list() -> None:
    models = load_models(TWO_MODELS, "two.yaml")
    contacts = [
        {"id": f"c{i}", "title": "CEO" if i % 3 else "x", "stage": "lead"} for i in range(25)
    ]
    events = [
        {
            "contact_id": f"c{i % 25}",
            "type": "page_view",
            "occurred_at": AS_OF - i * DAY,
            "url": "/pricing",
        }
        for i in range(60)
    ]
    frames = records_to_frames(models, contacts, events)
    columns = score_columns(models, *frames, as_of=AS_OF)
    whole = results_from_columns(columns)
    assert list(iter_results(columns, chunk_rows=7)) == whole
    assert len(whole) == 50
    assert all(r.reasons for r in whole)


def test_engine_records_need_ids_and_accept_iso_text_times() -> None:
    models = load_models(TWO_MODELS, "two.yaml")
    with pytest.raises(ValueError, match="contact without an id"):
        score(models, [{"title": "CEO"}], [], as_of=AS_OF)
    events = [{"contact_id": "a", "type": "page_view", "occurred_at": "2026-06-29T22:00:00-02:00"}]
    [_first, second] = score(models, [{"id": "a", "stage": "lead"}], events, as_of=AS_OF)
    # 22:00 at -02:00 is midnight UTC: at as_of, so it counts.
    assert (second.last_activity_at, second.score) == (AS_OF, 1.0)
