"""Plain, per-contact reference implementation of the scoring semantics.

It exists only to check the production engine (``scoring.engine``): it follows the
semantics of docs/scoring.md one sentence at a time, with
ordinary Python loops, and makes no attempt to be fast. When the two disagree, this
file is the one that should read like the specification.

Values are read through one text form (``text``) so that a field holding ``50`` and
one holding ``"50"`` behave the same for every operator, as they do in the engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from scoring.freemail import default_free_email_domains
from scoring.model import BehaviorRule, FitRule, Match, ModelSet, ScoringModel
from scoring.timeutil import parse_timestamp, to_iso

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_US_PER_DAY = 86_400_000_000


# --- values -------------------------------------------------------------------------


def text(value: Any) -> str | None:
    """The text form every text operator reads; ``None`` for a missing value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return to_iso(value)
    return str(value)


def number(value: Any) -> float | None:
    """A number when the value reads as one (booleans never do), else ``None``."""
    t = text(value)
    if t is None or isinstance(value, bool):
        return None
    stripped = t.strip()
    if _NUMBER.fullmatch(stripped) is None:
        return None
    return float(stripped)


def scalar_equal(value: Any, expected: Any) -> bool:
    """Numbers when both sides read as numbers, else text ignoring case."""
    a, b = number(value), number(expected)
    if a is not None and b is not None:
        return a == b
    ta, tb = text(value), text(expected)
    assert ta is not None and tb is not None
    return ta.lower() == tb.lower()


def email_domain(value: Any) -> str | None:
    t = text(value)
    if t is None or "@" not in t:
        return None
    return t.rsplit("@", 1)[1].lower()


def glob_match(pattern: str, value: str) -> bool:
    """``*`` is any run of characters, ``?`` one character, everything else literal."""
    parts = []
    for ch in pattern.lower():
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.fullmatch("(?s)" + "".join(parts), value.lower()) is not None


def op_holds(name: str, arg: Any, value: Any, free: frozenset[str]) -> bool:
    """One operator on one value; ``value`` is ``None`` when the field is missing."""
    if name == "exists":
        present = value is not None and (text(value) or "").strip() != ""
        return present == bool(arg)
    if value is None:
        return False
    t = text(value)
    assert t is not None
    if name == "equals":
        return scalar_equal(value, arg)
    if name == "in":
        return any(scalar_equal(value, item) for item in arg)
    if name == "contains":
        return str(arg).lower() in t.lower()
    if name == "contains_any":
        return any(str(item).lower() in t.lower() for item in arg)
    if name == "glob":
        return glob_match(str(arg), t)
    if name == "regex":
        return re.search(arg, t) is not None
    if name in ("gt", "gte", "lt", "lte"):
        n = number(value)
        if n is None:
            return False
        limit = float(arg)
        return {
            "gt": n > limit,
            "gte": n >= limit,
            "lt": n < limit,
            "lte": n <= limit,
        }[name]
    if name == "email_domain_in":
        domain = email_domain(value)
        return domain is not None and domain in {str(d).lower() for d in arg}
    if name == "free_email":
        domain = email_domain(value)
        if domain is None:
            return False
        return (domain in free) == bool(arg)
    raise AssertionError(f"unknown operator {name}")


def matches(match: Match, record: Mapping[str, Any], key: str, free: frozenset[str]) -> bool:
    value = record.get(key)
    return all(op_holds(name, arg, value, free) for name, arg in match.operators())


# --- rounding and bands -------------------------------------------------------------


def round2(x: float) -> float:
    """Half away from zero on the decimal value (``12.345`` -> ``12.35``)."""
    return float(Decimal(repr(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)) + 0.0


def band(score: float, model: ScoringModel) -> str:
    if score >= model.bands.hot:
        return "hot"
    if score >= model.bands.warm:
        return "warm"
    return "cold"


# --- scoring --------------------------------------------------------------------------


@dataclass
class RefReason:
    rule: str
    kind: str
    points: float  # unrounded
    events: int | None


@dataclass
class RefResult:
    contact_id: str
    model: str
    raw: float  # clipped to the scale, not rounded
    score: float
    band: str
    immediate: bool
    immediate_event: tuple[str, datetime, str | None] | None
    last_activity_at: datetime | None
    reasons: list[RefReason] = field(default_factory=list)


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _age_days(as_of: datetime, when: datetime) -> float:
    return ((as_of - when) // timedelta(microseconds=1)) / _US_PER_DAY


def _free_domains(model: ScoringModel) -> frozenset[str]:
    extra = {d.strip().lower().lstrip("@") for d in model.free_email_domains}
    return default_free_email_domains() | frozenset(extra)


def _event_matches(rule: BehaviorRule, event: Mapping[str, Any], free: frozenset[str]) -> bool:
    if event["type"] != rule.event:
        return False
    return all(matches(m, event, key, free) for key, m in rule.match.items())


def _in_window(rule: BehaviorRule, when: datetime, as_of: datetime) -> bool:
    if when > as_of:
        return False
    if rule.window_days is None:
        return True
    return when > as_of - timedelta(days=rule.window_days)


def score_reference(
    models: ModelSet | Sequence[ScoringModel],
    contacts: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    *,
    as_of: datetime,
) -> list[RefResult]:
    model_list = list(models.models if isinstance(models, ModelSet) else models)
    as_of = _utc(as_of)
    by_contact: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for seq, event in enumerate(events):
        by_contact.setdefault(str(event["contact_id"]), []).append((seq, event))
    results = []
    for contact in contacts:
        cid = str(contact["id"])
        own = by_contact.get(cid, [])
        for model in model_list:
            result = _score_one(model, contact, own, as_of)
            if result is not None:
                results.append(result)
    return results


def _order_key(item: tuple[int, Mapping[str, Any]]) -> tuple[datetime, int, str, int]:
    seq, event = item
    event_id = event.get("id")
    # Missing ids sort before every id.
    return (
        _utc(event["occurred_at"]),
        0 if event_id is None else 1,
        "" if event_id is None else str(event_id),
        seq,
    )


def _score_one(
    model: ScoringModel,
    contact: Mapping[str, Any],
    events: list[tuple[int, Mapping[str, Any]]],
    as_of: datetime,
) -> RefResult | None:
    free = _free_domains(model)
    # 2. applies_to
    if not all(matches(c.match, contact, c.field, free) for c in model.applies_to):
        return None

    reasons: list[RefReason] = []
    fit_total = 0.0
    # 3. fit rules; first matching rule of a group wins.
    taken_groups: set[str] = set()
    for rule in model.rules:
        if not isinstance(rule, FitRule):
            continue
        if rule.group is not None and rule.group in taken_groups:
            continue
        if matches(rule.match, contact, rule.field, free):
            if rule.group is not None:
                taken_groups.add(rule.group)
            fit_total += rule.points
            reasons.append(RefReason(rule.id, "fit", rule.points, None))

    behaviour = [r for r in model.rules if isinstance(r, BehaviorRule)]
    ordered = sorted(events, key=_order_key)

    # 4. each event belongs to the first rule of its group it belongs to.
    belongs: dict[str, list[tuple[int, Mapping[str, Any]]]] = {r.id: [] for r in behaviour}
    for item in ordered:
        _, event = item
        when = _utc(event["occurred_at"])
        groups_done: set[str] = set()
        for rule in behaviour:
            if rule.group is not None and rule.group in groups_done:
                continue
            if _in_window(rule, when, as_of) and _event_matches(rule, event, free):
                belongs[rule.id].append(item)
                if rule.group is not None:
                    groups_done.add(rule.group)

    positive = 0.0
    negative = 0.0
    behaviour_reasons: dict[str, RefReason] = {}
    for rule in behaviour:
        per_day: dict[object, int] = {}
        total = 0.0
        counted = 0
        for _, event in belongs[rule.id]:
            when = _utc(event["occurred_at"])
            day = when.date()
            per_day[day] = per_day.get(day, 0) + 1
            if rule.max_per_day is not None and per_day[day] > rule.max_per_day:
                continue
            points = rule.points
            if rule.half_life_days is not None:
                points = rule.points * 0.5 ** (_age_days(as_of, when) / rule.half_life_days)
            total += points
            counted += 1
        if rule.max_points is not None:
            total = max(-rule.max_points, min(rule.max_points, total))
        if counted:
            behaviour_reasons[rule.id] = RefReason(rule.id, "behavior", total, counted)
        if rule.points > 0:
            positive += total
        elif rule.points < 0:
            negative += total

    # 5. decay from the last activity.
    last: datetime | None = None
    for _, event in events:
        when = _utc(event["occurred_at"])
        if when > as_of:
            continue
        for rule in behaviour:
            if (rule.points > 0 or rule.immediate) and _event_matches(rule, event, free):
                if last is None or when > last:
                    last = when
                break
    if last is None:
        created = contact.get("created_at")
        if created is not None and created != "":
            last = parse_timestamp(created)
    decay_points = 0.0
    decay_step = None
    if last is not None:
        inactive = _age_days(as_of, last)
        for step in model.decay:
            if step.inactive_days <= inactive and (
                decay_step is None or step.inactive_days >= decay_step.inactive_days
            ):
                decay_step = step
        if decay_step is not None:
            decay_points = decay_step.points
    engaged = max(0.0, positive + decay_points)
    raw = fit_total + engaged + negative

    # 6. clip, round, band.
    clipped = max(model.scale.min, min(model.scale.max, raw))
    rounded = round2(clipped)

    # 7. immediate: the newest event that belongs to an immediate rule.
    newest: tuple[int, Mapping[str, Any]] | None = None
    for rule in behaviour:
        if not rule.immediate:
            continue
        for item in belongs[rule.id]:
            if newest is None or _order_key(item) > _order_key(newest):
                newest = item
    immediate_event = None
    if newest is not None:
        event = newest[1]
        event_id = event.get("id")
        immediate_event = (
            str(event["type"]),
            _utc(event["occurred_at"]),
            None if event_id is None else str(event_id),
        )

    # 8. reasons in file order, decay last.
    for rule in model.rules:
        if rule.id in behaviour_reasons:
            reasons.append(behaviour_reasons[rule.id])
    reasons.sort(key=lambda r: [x.id for x in model.rules].index(r.rule))
    if decay_step is not None:
        reasons.append(
            RefReason(decay_name(decay_step.inactive_days), "decay", engaged - positive, None)
        )

    return RefResult(
        contact_id=str(contact["id"]),
        model=model.name,
        raw=clipped,
        score=rounded,
        band=band(rounded, model),
        immediate=immediate_event is not None,
        immediate_event=immediate_event,
        last_activity_at=last,
        reasons=reasons,
    )


def decay_name(inactive_days: float) -> str:
    shown = int(inactive_days) if float(inactive_days).is_integer() else inactive_days
    return f"decay-{shown}d"


__all__ = ["RefReason", "RefResult", "band", "decay_name", "round2", "score_reference"]
