"""One test per point of the scoring semantics (docs/scoring.md).

Every test runs twice: on the engine and on the plain reference implementation, so
the hand-worked numbers below pin both, and the differential test can trust the
reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from reference import round2 as reference_round2
from reference import score_reference

from scoring.engine import score
from scoring.model import ScoringModel

AS_OF = datetime(2026, 6, 30, tzinfo=UTC)


@dataclass
class Out:
    contact_id: str
    score: float
    band: str
    immediate: bool
    immediate_event: tuple[str, datetime, str | None] | None
    last_activity_at: datetime | None
    reasons: list[tuple[str, str, float, int | None]]


Runner = Callable[..., list[Out]]


def _engine(models: list[ScoringModel], contacts: Any, events: Any, as_of: datetime) -> list[Out]:
    out = []
    for r in score(models, contacts, events, as_of=as_of):
        imm = r.immediate_event
        out.append(
            Out(
                r.contact_id,
                r.score,
                r.band,
                r.immediate,
                None if imm is None else (imm.type, imm.occurred_at, imm.id),
                r.last_activity_at,
                [(x.rule, x.kind, x.points, x.events) for x in r.reasons],
            )
        )
    return out


def _reference(
    models: list[ScoringModel], contacts: Any, events: Any, as_of: datetime
) -> list[Out]:
    return [
        Out(
            r.contact_id,
            r.score,
            r.band,
            r.immediate,
            r.immediate_event,
            r.last_activity_at,
            [(x.rule, x.kind, reference_round2(x.points), x.events) for x in r.reasons],
        )
        for r in score_reference(models, contacts, events, as_of=as_of)
    ]


@pytest.fixture(params=["engine", "reference"])
def run(request: pytest.FixtureRequest) -> Runner:
    impl = _engine if request.param == "engine" else _reference

    def go(
        model: ScoringModel,
        contacts: list[dict[str, Any]],
        events: Any = (),
        as_of: datetime = AS_OF,
    ) -> list[Out]:
        return impl([model], contacts, list(events), as_of)

    return go


def model(*rules: dict[str, Any], **extra: Any) -> ScoringModel:
    data: dict[str, Any] = {
        "name": "m",
        "score_field": "s",
        "bands": {"hot": 70, "warm": 40},
        "rules": list(rules),
    }
    data.update(extra)
    return ScoringModel.model_validate(data)


def fit(
    rule_id: str, field: str, match: Any, points: float, group: str | None = None
) -> dict[str, Any]:
    rule = {"id": rule_id, "kind": "fit", "field": field, "match": match, "points": points}
    if group:
        rule["group"] = group
    return rule


def beh(rule_id: str, event: str, points: float, **extra: Any) -> dict[str, Any]:
    return {"id": rule_id, "kind": "behavior", "event": event, "points": points, **extra}


def ev(contact: str, kind: str, when: datetime, **attrs: Any) -> dict[str, Any]:
    return {"contact_id": contact, "type": kind, "occurred_at": when, **attrs}


def scores(results: list[Out]) -> dict[str, float]:
    return {r.contact_id: r.score for r in results}


DAY = timedelta(days=1)
WIDE = {"min": -1000, "max": 1000}


# --- 1. Matching --------------------------------------------------------------------


def test_engine_text_operators_ignore_case(run: Runner) -> None:
    m = model(
        fit("eq", "title", {"equals": "vp of sales"}, 1),
        fit("in", "title", {"in": ["x", "VP OF SALES"]}, 2),
        fit("contains", "title", {"contains": "OF SAL"}, 4),
        fit("any", "title", {"contains_any": ["zzz", "sales"]}, 8),
        fit("glob", "title", {"glob": "vp*SALES"}, 16),
        fit("scalar", "title", "Vp Of Sales", 32),
    )
    assert scores(run(m, [{"id": "c", "title": "VP of Sales"}])) == {"c": 63.0}


def test_engine_regex_searches_anywhere_and_respects_case(run: Runner) -> None:
    m = model(
        fit("anywhere", "title", {"regex": "Sales"}, 1),
        fit("lower", "title", {"regex": "sales"}, 2),
        fit("flag", "title", {"regex": "(?i)SALES"}, 4),
        fit("anchored", "title", {"regex": "^Sales"}, 8),
        scale=WIDE,
    )
    assert scores(run(m, [{"id": "c", "title": "VP of Sales"}])) == {"c": 5.0}


def test_engine_numeric_comparisons_read_numbers_only(run: Runner) -> None:
    m = model(fit("gt", "size", {"gt": 10}, 1), fit("lte", "size", {"lte": 50}, 2))
    contacts = [
        {"id": "int", "size": 50},
        {"id": "text", "size": "50.0"},
        {"id": "small", "size": " 7 "},
        {"id": "exp", "size": "1e3"},
        {"id": "word", "size": "abc"},
        {"id": "bool", "size": True},
        {"id": "blank", "size": ""},
        {"id": "missing"},
    ]
    assert scores(run(m, contacts)) == {
        "int": 3.0,
        "text": 3.0,
        "small": 2.0,
        "exp": 1.0,
        "word": 0.0,
        "bool": 0.0,
        "blank": 0.0,
        "missing": 0.0,
    }


def test_engine_exists_treats_null_empty_and_whitespace_as_absent(run: Runner) -> None:
    m = model(fit("yes", "phone", {"exists": True}, 1), fit("no", "phone", {"exists": False}, 2))
    contacts = [
        {"id": "set", "phone": "123"},
        {"id": "zero", "phone": 0},
        {"id": "empty", "phone": ""},
        {"id": "spaces", "phone": " \t "},
        {"id": "null", "phone": None},
        {"id": "missing"},
    ]
    assert scores(run(m, contacts)) == {
        "set": 1.0,
        "zero": 1.0,
        "empty": 2.0,
        "spaces": 2.0,
        "null": 2.0,
        "missing": 2.0,
    }


def test_engine_missing_field_matches_only_exists_false(run: Runner) -> None:
    m = model(
        fit("eq", "nowhere", {"equals": ""}, 1),
        fit("contains", "nowhere", {"contains": ""}, 2),
        fit("lt", "nowhere", {"lt": 100}, 4),
        fit("not-free", "nowhere", {"free_email": False}, 8),
        fit("glob", "nowhere", {"glob": "*"}, 16),
        fit("absent", "nowhere", {"exists": False}, 32),
    )
    assert scores(run(m, [{"id": "c"}])) == {"c": 32.0}


# --- 2. applies_to ----------------------------------------------------------------------


def test_engine_applies_to_leaves_other_contacts_out(run: Runner) -> None:
    m = model(
        fit("any", "title", {"exists": False}, 1),
        applies_to=[{"field": "stage", "match": {"in": ["lead", "subscriber"]}}],
    )
    contacts = [
        {"id": "lead", "stage": "LEAD"},
        {"id": "customer", "stage": "customer"},
        {"id": "none"},
    ]
    assert [r.contact_id for r in run(m, contacts)] == ["lead"]


# --- 3. Fit rules -----------------------------------------------------------------------


def test_engine_fit_group_takes_first_matching_rule_in_file_order(run: Runner) -> None:
    m = model(
        fit("vp", "title", {"contains": "vp of sales"}, 10, group="title"),
        fit("director", "title", {"contains": "director"}, 7, group="title"),
        fit("also-director", "title", {"contains": "director"}, 1),
    )
    [out] = run(m, [{"id": "c", "title": "Director and VP of Sales"}])
    assert out.score == 11.0
    assert out.reasons == [("vp", "fit", 10.0, None), ("also-director", "fit", 1.0, None)]


# --- 4. Behaviour rules -----------------------------------------------------------------


def test_engine_behaviour_needs_type_and_every_attribute(run: Runner) -> None:
    m = model(beh("pricing", "page_view", 5, match={"url": {"glob": "*/pricing*"}, "lang": "en"}))
    events = [
        ev("c", "page_view", AS_OF - DAY, url="https://x.com/Pricing", lang="EN"),  # counts
        ev("c", "form_submit", AS_OF - DAY, url="https://x.com/pricing", lang="en"),  # type
        ev("c", "page_view", AS_OF - DAY, url="https://x.com/pricing"),  # lang missing
        ev("c", "page_view", AS_OF - DAY, url="https://x.com/blog", lang="en"),  # url
    ]
    [out] = run(m, [{"id": "c"}], events)
    assert out.reasons == [("pricing", "behavior", 5.0, 1)]


def test_engine_events_after_as_of_are_ignored(run: Runner) -> None:
    m = model(beh("visit", "page_view", 5), beh("demo", "form_submit", 0, immediate=True))
    events = [
        ev("c", "page_view", AS_OF + timedelta(microseconds=1)),
        ev("c", "form_submit", AS_OF + DAY),
    ]
    [out] = run(m, [{"id": "c"}], events)
    assert (out.score, out.immediate, out.last_activity_at, out.reasons) == (0.0, False, None, [])


def test_engine_window_is_strictly_after_its_edge(run: Runner) -> None:
    m = model(beh("visit", "page_view", 5, window_days=7))
    edge = AS_OF - timedelta(days=7)
    events = [
        ev("on-edge", "page_view", edge),
        ev("inside", "page_view", edge + timedelta(microseconds=1)),
        ev("at-as-of", "page_view", AS_OF),
    ]
    contacts = [{"id": "on-edge"}, {"id": "inside"}, {"id": "at-as-of"}]
    assert scores(run(m, contacts, events)) == {"on-edge": 0.0, "inside": 5.0, "at-as-of": 5.0}


def test_engine_event_belongs_to_first_rule_of_its_group(run: Runner) -> None:
    m = model(
        beh("pricing", "page_view", 9, group="pages", match={"url": {"contains": "pricing"}}),
        beh("other", "page_view", 6, group="pages"),
        beh("any-view", "page_view", 1),
    )
    events = [
        ev("c", "page_view", AS_OF - DAY, url="/pricing"),
        ev("c", "page_view", AS_OF, url="/blog"),
    ]
    [out] = run(m, [{"id": "c"}], events)
    assert out.score == 17.0  # 9 + 6 + 1 + 1, not 9 + 6 + 6 + 1 + 1
    assert out.reasons == [
        ("pricing", "behavior", 9.0, 1),
        ("other", "behavior", 6.0, 1),
        ("any-view", "behavior", 2.0, 2),
    ]


def test_engine_event_outside_first_rules_window_falls_to_the_next(run: Runner) -> None:
    # "Belongs" includes the window: an old pricing view is still "any other page".
    m = model(
        beh(
            "pricing",
            "page_view",
            9,
            group="pages",
            window_days=7,
            match={"url": {"contains": "pricing"}},
        ),
        beh("other", "page_view", 6, group="pages"),
    )
    [out] = run(m, [{"id": "c"}], [ev("c", "page_view", AS_OF - 10 * DAY, url="/pricing")])
    assert out.reasons == [("other", "behavior", 6.0, 1)]


def test_engine_max_per_day_counts_per_utc_calendar_day(run: Runner) -> None:
    m = model(beh("visit", "page_view", 5, max_per_day=1))
    plus5 = timezone(timedelta(hours=5))
    events = [
        ev("c", "page_view", datetime(2026, 6, 10, 23, 59, 59, tzinfo=UTC)),  # 10 June
        ev("c", "page_view", datetime(2026, 6, 11, 0, 0, 0, tzinfo=UTC)),  # 11 June
        ev("c", "page_view", datetime(2026, 6, 11, 12, 0, tzinfo=UTC)),  # 11 June again
        ev("c", "page_view", datetime(2026, 6, 12, 3, 0, tzinfo=plus5)),  # 11 June 22:00 UTC
        ev("c", "page_view", datetime(2026, 6, 12, 0, 0)),  # naive: 12 June UTC
    ]
    [out] = run(m, [{"id": "c"}], events)
    assert out.reasons == [("visit", "behavior", 15.0, 3)]


def test_engine_max_per_day_counts_the_earliest_events_of_the_day(run: Runner) -> None:
    m = model(beh("visit", "page_view", 10, max_per_day=1, half_life_days=1))
    events = [
        ev("c", "page_view", datetime(2026, 6, 28, 18, 0, tzinfo=UTC)),
        ev("c", "page_view", datetime(2026, 6, 28, 6, 0, tzinfo=UTC)),  # earlier, listed later
    ]
    [out] = run(m, [{"id": "c"}], events)
    assert out.score == 2.97  # 10 * 0.5 ** 1.75 = 2.973; the later one would give 4.20


def test_engine_half_life_uses_exact_age_in_days(run: Runner) -> None:
    m = model(
        beh("visit", "page_view", 8, half_life_days=30),
        beh("open", "email_open", 8, half_life_days=1),
    )
    events = [
        ev("month", "page_view", AS_OF - 30 * DAY),
        ev("half-day", "email_open", AS_OF - timedelta(hours=12)),
        ev("now", "page_view", AS_OF),
    ]
    contacts = [{"id": "month"}, {"id": "half-day"}, {"id": "now"}]
    assert scores(run(m, contacts, events)) == {"month": 4.0, "half-day": 5.66, "now": 8.0}


def test_engine_max_points_clips_positive_and_negative_totals(run: Runner) -> None:
    m = model(
        fit("base", "title", {"exists": False}, 20),
        beh("visit", "page_view", 10, max_points=25),
        beh("bounce", "email_bounce", -10, max_points=15),
    )
    events = [ev("c", "page_view", AS_OF - i * DAY) for i in range(3)]
    events += [ev("c", "email_bounce", AS_OF - i * DAY) for i in range(2)]
    [out] = run(m, [{"id": "c"}], events)
    assert out.score == 30.0
    assert out.reasons == [
        ("base", "fit", 20.0, None),
        ("visit", "behavior", 25.0, 3),
        ("bounce", "behavior", -15.0, 2),
    ]


# --- 5. Decay -----------------------------------------------------------------------------

STEPS = [
    {"inactive_days": 30, "points": -15},
    {"inactive_days": 60, "points": -30},
    {"inactive_days": 90, "points": -50},
]


def test_engine_decay_counts_from_newest_engaging_event(run: Runner) -> None:
    m = model(beh("visit", "page_view", 20), beh("unsub", "unsubscribe", -5), decay=STEPS)
    events = [
        ev("c", "page_view", AS_OF - 70 * DAY),
        ev("c", "page_view", AS_OF - 45 * DAY),
        ev("c", "unsubscribe", AS_OF - DAY),  # a penalty is not activity
    ]
    [out] = run(m, [{"id": "c", "created_at": AS_OF - 400 * DAY}], events)
    assert out.last_activity_at == AS_OF - 45 * DAY
    assert out.score == 20.0  # max(0, 40 - 15) + (-5)
    assert out.reasons[-1] == ("decay-30d", "decay", -15.0, None)


def test_engine_last_activity_ignores_windows_and_caps(run: Runner) -> None:
    m = model(beh("visit", "page_view", 5, window_days=7, max_points=1), decay=STEPS)
    [out] = run(
        m, [{"id": "c", "created_at": AS_OF - 100 * DAY}], [ev("c", "page_view", AS_OF - 40 * DAY)]
    )
    assert out.last_activity_at == AS_OF - 40 * DAY
    assert out.reasons == [("decay-30d", "decay", 0.0, None)]


def test_engine_decay_from_created_at_never_takes_fit_points(run: Runner) -> None:
    m = model(fit("title", "title", {"exists": True}, 10), decay=STEPS)
    [out] = run(m, [{"id": "c", "title": "CEO", "created_at": AS_OF - 65 * DAY}])
    assert out.last_activity_at == AS_OF - 65 * DAY
    assert out.score == 10.0
    assert out.reasons == [("title", "fit", 10.0, None), ("decay-60d", "decay", 0.0, None)]


def test_engine_decay_stops_at_zero_and_keeps_penalties(run: Runner) -> None:
    m = model(
        fit("title", "title", {"exists": True}, 20),
        beh("visit", "page_view", 10),
        beh("unsub", "unsubscribe", -5),
        decay=STEPS,
    )
    events = [ev("c", "page_view", AS_OF - 95 * DAY), ev("c", "unsubscribe", AS_OF - 95 * DAY)]
    [out] = run(m, [{"id": "c", "title": "CEO"}], events)
    assert out.score == 15.0  # 20 + max(0, 10 - 50) - 5
    assert out.reasons[-1] == ("decay-90d", "decay", -10.0, None)


def test_engine_no_activity_and_no_created_at_means_no_decay(run: Runner) -> None:
    m = model(fit("title", "title", {"exists": False}, 3), decay=STEPS)
    [out] = run(m, [{"id": "c"}])
    assert (out.score, out.last_activity_at, out.reasons) == (
        3.0,
        None,
        [("title", "fit", 3.0, None)],
    )


# --- 6. Score: clip, round, band ------------------------------------------------------


def test_engine_score_is_clipped_to_the_scale(run: Runner) -> None:
    m = model(fit("big", "kind", "big", 150), fit("small", "kind", "small", -20))
    assert scores(run(m, [{"id": "big", "kind": "big"}, {"id": "small", "kind": "small"}])) == {
        "big": 100.0,
        "small": 0.0,
    }


def test_engine_rounds_half_away_from_zero_on_the_decimal_value(run: Runner) -> None:
    m = model(
        fit("a", "kind", "a", 12.345),
        fit("b", "kind", "b", -0.125),
        fit("c", "kind", "c", 69.995),
        scale={"min": -50, "max": 100},
    )
    results = run(m, [{"id": k, "kind": k} for k in "abc"])
    assert [(r.score, r.band) for r in results] == [(12.35, "cold"), (-0.13, "cold"), (70.0, "hot")]


# --- 7. Immediate ---------------------------------------------------------------------


def test_engine_immediate_names_the_newest_event(run: Runner) -> None:
    m = model(beh("demo", "form_submit", 0, immediate=True, match={"form": "demo-request"}))
    events = [
        ev("c", "form_submit", AS_OF - 5 * DAY, form="demo-request", id="old"),
        ev("c", "form_submit", AS_OF - 2 * DAY, form="demo-request", id="new"),
        ev("c", "form_submit", AS_OF - DAY, form="contact", id="other-form"),
    ]
    [out] = run(m, [{"id": "c"}], events)
    assert out.immediate
    assert out.immediate_event == ("form_submit", AS_OF - 2 * DAY, "new")
    assert out.score == 0.0


def test_engine_immediate_ties_break_on_id_then_input_order(run: Runner) -> None:
    m = model(
        beh("demo", "form_submit", 0, immediate=True),
        beh("meet", "meeting_booked", 0, immediate=True),
    )
    same = AS_OF - DAY
    by_id = [ev("a", "form_submit", same, id="b"), ev("a", "form_submit", same, id="a")]
    id_beats_none = [ev("b", "form_submit", same, id="x"), ev("b", "meeting_booked", same)]
    by_order = [ev("c", "meeting_booked", same), ev("c", "form_submit", same)]
    results = run(m, [{"id": "a"}, {"id": "b"}, {"id": "c"}], by_id + id_beats_none + by_order)
    assert [r.immediate_event for r in results] == [
        ("form_submit", same, "b"),
        ("form_submit", same, "x"),
        ("form_submit", same, None),
    ]


def test_engine_immediate_only_inside_the_rules_window(run: Runner) -> None:
    m = model(beh("demo", "form_submit", 0, immediate=True, window_days=30))
    [out] = run(m, [{"id": "c"}], [ev("c", "form_submit", AS_OF - 31 * DAY)])
    assert (out.immediate, out.immediate_event) == (False, None)


# --- 8. Reasons ---------------------------------------------------------------------------


def test_engine_reasons_follow_file_order_with_decay_last(run: Runner) -> None:
    m = model(
        beh("visit", "page_view", 4, max_per_day=1),
        fit("title", "title", {"contains": "ceo"}, 8),
        beh("open", "email_open", 1),
        decay=STEPS,
    )
    events = [ev("c", "page_view", AS_OF - 31 * DAY), ev("c", "page_view", AS_OF - 31 * DAY)]
    [out] = run(m, [{"id": "c", "title": "CEO"}], events)
    assert out.reasons == [
        ("visit", "behavior", 4.0, 1),
        ("title", "fit", 8.0, None),
        ("decay-30d", "decay", -4.0, None),
    ]


# --- Details ----------------------------------------------------------------------------


def test_engine_numbers_and_numeric_text_are_equal(run: Runner) -> None:
    m = model(fit("fifty", "size", 50, 1), fit("text", "size", {"in": ["50.0"]}, 2))
    contacts = [
        {"id": "int", "size": 50},
        {"id": "float", "size": 50.0},
        {"id": "text", "size": "50"},
        {"id": "padded", "size": " 5e1 "},
        {"id": "word", "size": "fifty"},
    ]
    assert scores(run(m, contacts)) == {
        "int": 3.0,
        "float": 3.0,
        "text": 3.0,
        "padded": 3.0,
        "word": 0.0,
    }


def test_engine_booleans_are_not_numbers(run: Runner) -> None:
    m = model(
        fit("one", "flag", 1, 1),
        fit("true", "flag", {"equals": True}, 2),
        fit("positive", "flag", {"gt": 0}, 4),
    )
    contacts = [
        {"id": "bool", "flag": True},
        {"id": "text", "flag": "TRUE"},
        {"id": "one", "flag": 1},
    ]
    assert scores(run(m, contacts)) == {"bool": 2.0, "text": 2.0, "one": 5.0}


def test_engine_every_operator_of_a_match_must_hold(run: Runner) -> None:
    m = model(fit("vp-sales", "title", {"contains": "sales", "glob": "vp*"}, 5))
    contacts = [{"id": "vp", "title": "VP of Sales"}, {"id": "head", "title": "Head of Sales"}]
    assert scores(run(m, contacts)) == {"vp": 5.0, "head": 0.0}


def test_engine_email_domain_is_after_the_last_at_lower_cased(run: Runner) -> None:
    m = model(
        fit("free", "email", {"free_email": True}, 1),
        fit("not-free", "email", {"free_email": False}, 2),
        fit("acme", "email", {"email_domain_in": ["acme.com"]}, 4),
    )
    contacts = [
        {"id": "gmail", "email": "x@y@GMAIL.com"},
        {"id": "acme", "email": "Bob@ACME.com"},
        {"id": "no-at", "email": "gmail.com"},
        {"id": "missing"},
    ]
    assert scores(run(m, contacts)) == {"gmail": 1.0, "acme": 6.0, "no-at": 0.0, "missing": 0.0}


def test_engine_model_adds_free_email_domains(run: Runner) -> None:
    rule = fit("free", "email", {"free_email": True}, 1)
    contacts = [{"id": "c", "email": "a@MyFree.io"}]
    assert scores(run(model(rule), contacts)) == {"c": 0.0}
    assert scores(run(model(rule, free_email_domains=["myfree.io"]), contacts)) == {"c": 1.0}
