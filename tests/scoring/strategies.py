"""Hypothesis strategies for scoring models, contacts and events.

Values come from small pools chosen to hit the edges the specification names: numbers
written as text, booleans next to numbers, blank and whitespace-only values, e-mails
without ``@`` or with two, mixed case, timestamps at UTC midnight, exactly on window
edges, after ``as_of``, tied within a second and with and without event ids.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from scoring.model import ScoringModel

AS_OF_CHOICES = (
    datetime(2026, 6, 30, tzinfo=UTC),
    datetime(2026, 6, 30, 12, 34, 56, 789000, tzinfo=UTC),
)

TITLES = [
    "VP of Sales",
    "vp OF sales",
    "Director",
    "Head of IT",
    "Student",
    "Marketing Associate",
    "CEO",
    "Dïrector Ümlaut",
    "",
    "   ",
    None,
]
EMAILS = [
    "a@gmail.com",
    "b@Acme.COM",
    "x@y@GMAIL.com",
    "noatsign",
    "c@",
    "d@example.org",
    "e@MyFree.io",
    "f@acme.com ",
    "",
    None,
]
SIZES: list[Any] = [
    50,
    "50",
    50.0,
    "50.0",
    " 7 ",
    "abc",
    True,
    False,
    0,
    -3.5,
    "1e3",
    "+5",
    ".5",
    "5.",
    "",
    None,
    "nan",
    "inf",
    1000,
]
STAGES: list[Any] = ["lead", "LEAD", "customer", "subscriber", "true", True, None, ""]
CONTACT_FIELDS = {"title": TITLES, "email": EMAILS, "size": SIZES, "stage": STAGES}
ALL_FIELDS = [*CONTACT_FIELDS, "nowhere"]

URLS = [
    "https://x.com/pricing",
    "https://x.com/PRICING/plans",
    "https://x.com/blog",
    "https://x.com/careers",
    "https://x.com/pricing?q=[1]",
    "/a.b",
    "",
    "  ",
    None,
]
FORMS: list[Any] = ["demo-request", "Demo-Request", "contact", None]
NUMS: list[Any] = [1, "1", 1.0, "2", "x", True, None, " 3 "]
EVENT_ATTRS = {"url": URLS, "form": FORMS, "n": NUMS}
EVENT_TYPES = ["page_view", "form_submit", "email_open", "Page_View"]

SCALARS: list[Any] = [
    "lead",
    "LEAD",
    "50",
    50,
    50.0,
    7,
    True,
    False,
    "true",
    "demo-request",
    "1",
    1,
    "x",
    "",
    "  ",
]
CONTAINS = ["pricing", "VP", "of s", "", "ïr", "@", "."]
GLOBS = ["*/pricing*", "*PRICING*", "https://x.com/?log", "*", "?", "*[1]", "/a.b", "*.com", "d*"]
REGEXES = ["pricing", "^https", "PRICING", "(?i)pricing", r"\d", "blog$", "a|b", "^$", r"\.b"]
LIMITS = [-1, 0, 1, 5, 7, 50, 49.99, 1000.0]
DOMAIN_LISTS = [["gmail.com"], ["acme.com", "example.org"], ["ACME.com"], [""]]


def _operator() -> st.SearchStrategy[tuple[str, Any]]:
    return st.one_of(
        st.tuples(st.just("equals"), st.sampled_from(SCALARS)),
        st.tuples(st.just("in"), st.lists(st.sampled_from(SCALARS), min_size=1, max_size=3)),
        st.tuples(st.just("contains"), st.sampled_from(CONTAINS)),
        st.tuples(
            st.just("contains_any"), st.lists(st.sampled_from(CONTAINS), min_size=1, max_size=3)
        ),
        st.tuples(st.just("glob"), st.sampled_from(GLOBS)),
        st.tuples(st.just("regex"), st.sampled_from(REGEXES)),
        st.tuples(st.sampled_from(["gt", "gte", "lt", "lte"]), st.sampled_from(LIMITS)),
        st.tuples(st.just("exists"), st.booleans()),
        st.tuples(
            st.just("email_domain_in"), st.sampled_from([d for d in DOMAIN_LISTS if d != [""]])
        ),
        st.tuples(st.just("free_email"), st.booleans()),
    )


def matches() -> st.SearchStrategy[Any]:
    """A match as written in a model file: a bare scalar or 1-3 operators."""
    operator_objects = st.lists(_operator(), min_size=1, max_size=3).map(dict)
    return st.one_of(st.sampled_from(SCALARS), operator_objects, operator_objects)


POINTS = [-5, -1.5, 0, 1, 2.5, 9, 10, 3.335, 40]
GROUPS = [None, None, "g1", "g2"]


@st.composite
def fit_rules(draw: st.DrawFn, index: int) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": f"fit-{index}",
        "kind": "fit",
        "field": draw(st.sampled_from(ALL_FIELDS)),
        "match": draw(matches()),
        "points": draw(st.sampled_from(POINTS)),
    }
    group = draw(st.sampled_from(GROUPS))
    if group is not None:
        rule["group"] = group
    return rule


@st.composite
def behaviour_rules(draw: st.DrawFn, index: int) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": f"beh-{index}",
        "kind": "behavior",
        "event": draw(st.sampled_from(EVENT_TYPES[:3])),
        "points": draw(st.sampled_from(POINTS)),
    }
    keys: list[str] = []
    if draw(st.sampled_from([False, True, True])):
        keys = draw(st.lists(st.sampled_from([*EVENT_ATTRS, "absent"]), max_size=2, unique=True))
    if keys:
        rule["match"] = {key: draw(matches()) for key in keys}
    optional: dict[str, Any] = {
        "group": st.sampled_from(["pages", "mail"]),
        "max_per_day": st.sampled_from([1, 2, 3]),
        "max_points": st.sampled_from([3, 10.5, 27]),
        "window_days": st.sampled_from([1, 7, 30.5, 90]),
        "half_life_days": st.sampled_from([1, 30, 7.25]),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            rule[key] = draw(strategy)
    if draw(st.sampled_from([False, False, True])):
        rule["immediate"] = True
    return rule


@st.composite
def models(draw: st.DrawFn, name: str = "m") -> ScoringModel:
    n_fit = draw(st.integers(0, 4))
    n_beh = draw(st.integers(1, 5))
    kinds = draw(st.permutations(["fit"] * n_fit + ["beh"] * n_beh))
    rules = [
        draw(fit_rules(i)) if kind == "fit" else draw(behaviour_rules(i))
        for i, kind in enumerate(kinds)
    ]
    days = sorted(draw(st.lists(st.sampled_from([1, 7, 30, 60, 90, 0.5]), max_size=3, unique=True)))
    decay = [
        {"inactive_days": d, "points": draw(st.sampled_from([-1, -15, -30, -50, 0]))} for d in days
    ]
    scale = draw(
        st.sampled_from([{"min": 0, "max": 100}, {"min": -50, "max": 50}, {"min": 0, "max": 20}])
    )
    bands = draw(
        st.sampled_from(
            [{"hot": 70, "warm": 40}, {"hot": 10, "warm": 0.5}, {"hot": 5.55, "warm": -2}]
        )
    )
    data: dict[str, Any] = {
        "name": name,
        "score_field": "score",
        "scale": scale,
        "bands": bands,
        "rearm_below": bands["warm"],
        "rules": rules,
        "decay": decay,
    }
    if draw(st.booleans()):
        data["free_email_domains"] = ["MyFree.io"]
    if draw(st.integers(0, 3)) == 0:
        data["applies_to"] = [
            {"field": draw(st.sampled_from(ALL_FIELDS)), "match": draw(matches())}
        ]
    return ScoringModel.model_validate(data)


@st.composite
def contacts(draw: st.DrawFn, count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        contact: dict[str, Any] = {"id": f"c{i}"}
        for name, pool in CONTACT_FIELDS.items():
            if draw(st.integers(0, 5)) > 0:
                contact[name] = draw(st.sampled_from(pool))
        created = draw(st.sampled_from([None, 0, 10, 45, 95, 400, -3]))
        if created is not None:
            contact["created_at"] = AS_OF_CHOICES[0] - timedelta(days=created)
        out.append(contact)
    return out


def timestamp_pool(as_of: datetime) -> list[datetime]:
    """Instants where the rules change their mind, plus ordinary ones."""
    pool = [as_of, as_of + timedelta(microseconds=1), as_of + timedelta(days=1)]
    for days in (1, 7, 30.5, 90, 0.5, 30, 60):
        edge = as_of - timedelta(days=days)
        pool += [edge, edge + timedelta(microseconds=1), edge - timedelta(microseconds=1)]
    midnight = as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    for back in (0, 1, 2, 31, 89, 91):
        day = midnight - timedelta(days=back)
        pool += [day, day - timedelta(microseconds=1), day + timedelta(seconds=1)]
    return pool


ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)), None]


@st.composite
def events(
    draw: st.DrawFn, count: int, contact_count: int, as_of: datetime
) -> list[dict[str, Any]]:
    pool = timestamp_pool(as_of)
    out = []
    for _ in range(count):
        if draw(st.booleans()):
            when = draw(st.sampled_from(pool))
        else:
            when = as_of - timedelta(seconds=draw(st.integers(-3600, 200 * 86400)))
            when += timedelta(microseconds=draw(st.sampled_from([0, 0, 1, 500_000])))
        zone = draw(st.sampled_from(ZONES))
        when = when.astimezone(UTC).replace(tzinfo=None) if zone is None else when.astimezone(zone)
        event: dict[str, Any] = {
            "contact_id": f"c{draw(st.integers(0, max(0, contact_count)))}",
            "type": draw(st.sampled_from(EVENT_TYPES)),
            "occurred_at": when,
        }
        event_id = draw(st.sampled_from([None, None, "a", "b", "B", "e1"]))
        if event_id is not None:
            event["id"] = event_id
        for name, values in EVENT_ATTRS.items():
            if draw(st.integers(0, 3)) > 0:
                event[name] = draw(st.sampled_from(values))
        out.append(event)
    # Exact duplicates of earlier events: ties on every key but input order.
    for _ in range(draw(st.integers(0, 3))):
        if out:
            out.append(dict(draw(st.sampled_from(out))))
    return out
