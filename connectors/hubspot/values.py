"""HubSpot property values → canonical values, at the edge, once.

HubSpot sends every property as a string (``"17"``, ``"false"``, ``"25-50"``,
``"2019-12-07T16:50:06.678Z"``); the scoring core wants numbers as numbers and
aware UTC datetimes. Nothing downstream re-parses. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from connectors.base import ConnectorConfigError, EventRecord
from scoring import vocabulary as v

Kind = Literal["text", "number", "datetime", "bool"]


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """One CRM property read into one canonical field."""

    prop: str
    field: str
    kind: Kind = "text"


DEFAULT_FIELDS: tuple[FieldMapping, ...] = (
    FieldMapping("email", v.EMAIL),
    FieldMapping("firstname", v.FIRST_NAME),
    FieldMapping("lastname", v.LAST_NAME),
    FieldMapping("jobtitle", v.JOB_TITLE),
    FieldMapping("company", v.COMPANY),
    FieldMapping("numemployees", v.COMPANY_SIZE, "number"),
    FieldMapping("industry", v.INDUSTRY),
    FieldMapping("country", v.COUNTRY),
    FieldMapping("lifecyclestage", v.LIFECYCLE_STAGE),
    FieldMapping("hubspot_owner_id", v.OWNER_ID),
    FieldMapping("createdate", v.CREATED_AT, "datetime"),
    # When the contact entered each lifecycle stage: read with the contact (no extra
    # call), so that a backtest rebuilds the stage as of each snapshot.
    *(FieldMapping(name, name, "datetime") for name in sorted(v.STAGE_DATE_FIELDS)),
)

# Read with every contact: merges and the cheap behavioural summaries.
SYSTEM_PROPERTIES: tuple[str, ...] = (
    "lastmodifieddate",
    "hs_object_id",
    "hs_merged_object_ids",
    "hs_additional_emails",  # a merged-away contact's address: its e-mail events follow it
)
ANALYTICS_PROPERTIES: tuple[str, ...] = (
    "hs_analytics_num_page_views",
    "hs_analytics_num_visits",
    "hs_analytics_last_visit_timestamp",
    "num_conversion_events",
    "recent_conversion_event_name",
    "recent_conversion_date",
    "hs_email_open",
    "hs_email_click",
    "hs_email_last_open_date",
    "hs_email_last_click_date",
    "hs_email_replied",
    "hs_email_last_reply_date",
)

_KINDS = ("text", "number", "datetime", "bool")
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:-\s*\d+(?:\.\d+)?|\+)\s*$")
_NUMBER = re.compile(r"^\s*-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?\s*$")
_EPOCH_MS = re.compile(r"^\d{11,14}$")


def field_mappings(
    property_map: Mapping[str, object] | None, *, source: str = "property_map"
) -> tuple[FieldMapping, ...]:
    """The default mapping plus the configured extras (``prop: field`` or
    ``prop: {field: ..., type: number|datetime|bool|text}``); extras win."""
    extra: dict[str, FieldMapping] = {}
    for prop, spec in (property_map or {}).items():
        problem = mapping_problem(prop, spec)
        if problem is not None:
            where, message = problem
            raise ConnectorConfigError(".".join((source, *where)) + f": {message}")
        if isinstance(spec, str):
            extra[str(prop)] = FieldMapping(str(prop), spec)
        elif isinstance(spec, Mapping):
            kind = spec.get("type", "text")
            extra[str(prop)] = FieldMapping(
                str(prop), str(spec["field"]), cast(Kind, kind) if kind in _KINDS else "text"
            )
    targets = {m.field for m in extra.values()}
    base = [m for m in DEFAULT_FIELDS if m.prop not in extra and m.field not in targets]
    return (*base, *extra.values())


def mapping_problem(prop: object, spec: object) -> tuple[tuple[str, ...], str] | None:
    """What is wrong with one ``property_map`` entry, as (key path, message), if any."""
    if isinstance(spec, str) and spec:
        return None
    if isinstance(spec, Mapping) and isinstance(spec.get("field"), str) and spec["field"]:
        unknown = sorted(set(map(str, spec)) - {"field", "type"})
        if unknown:
            return (str(prop), unknown[0]), "unknown key (use field and type)"
        kind = spec.get("type", "text")
        if kind not in _KINDS:
            return (str(prop), "type"), f"{kind!r} is not one of {', '.join(_KINDS)}"
        return None
    return (str(prop),), "expected a canonical field name or {field, type}"


def to_number(value: Any) -> int | float | None:
    """``"17"`` → 17, ``"2.5"`` → 2.5, ``"25-50"`` → 25, ``"1000+"`` → 1000, ``""`` → None.

    A range keeps its lower bound: it is the only figure the CRM actually asserts.
    Text that is not a number is missing, not zero.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    text = str(value).strip()
    if not text:
        return None
    match = _RANGE.match(text)
    if match:
        text = match.group(1)
    elif not _NUMBER.match(text):
        return None
    number = float(text.replace(",", ""))
    return int(number) if number.is_integer() and abs(number) < 2**63 else number


def to_datetime(value: Any) -> datetime | None:
    """ISO 8601 (``Z`` or offset) or epoch milliseconds → aware UTC; ``""`` → None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if not text:
        return None
    if _EPOCH_MS.match(text):
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    return None


def to_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


_CONVERT = {"text": to_text, "number": to_number, "datetime": to_datetime, "bool": to_bool}


def convert(value: Any, kind: Kind) -> Any:
    return _CONVERT[kind](value)


def canonical_fields(
    properties: Mapping[str, Any], mappings: Iterable[FieldMapping]
) -> dict[str, Any]:
    """Canonical fields of one contact; missing and empty values are left out."""
    out: dict[str, Any] = {}
    for m in mappings:
        value = convert(properties.get(m.prop), m.kind)
        if value is not None:
            out[m.field] = value
    return out


def merged_ids(properties: Mapping[str, Any], survivor: str) -> tuple[str, ...]:
    """``hs_merged_object_ids`` is ``"12;34"``: the ids merged into this contact."""
    raw = to_text(properties.get("hs_merged_object_ids"))
    if not raw:
        return ()
    ids = (part.strip() for part in re.split(r"[;,]", raw))
    return tuple(dict.fromkeys(i for i in ids if i and i != survivor))


def to_epoch_ms(moment: datetime) -> str:
    """Search filters take epoch-millisecond strings."""
    return str(round(moment.timestamp() * 1000))


def summary_events(
    contact_id: str,
    properties: Mapping[str, Any],
    *,
    since: datetime,
    page_views: bool = True,
    email: bool = False,
    forms: bool = False,
) -> list[EventRecord]:
    """Cheap events from the contact's own analytics properties (no extra call).

    Each summary property pair (a count and a last-time) becomes at most one event at
    the last time, with the count as an attribute. Its id is
    ``hs-summary:{contact}:{type}:{epoch ms}``: the same last visit read twice gives the
    same id (de-duplicated downstream), a newer visit gives a new one. These events
    say "at least one, the latest at T": they are a fallback for when the detailed
    sources (web analytics, marketing e-mail events, form submissions) are off.
    """
    specs: list[tuple[str, str, str | None, str | None]] = []
    if page_views:
        specs.append(
            (
                v.PAGE_VIEW,
                "hs_analytics_last_visit_timestamp",
                "hs_analytics_num_page_views",
                None,
            )
        )
    if email:
        specs.append((v.EMAIL_OPEN, "hs_email_last_open_date", "hs_email_open", None))
        specs.append((v.EMAIL_CLICK, "hs_email_last_click_date", "hs_email_click", None))
        specs.append((v.EMAIL_REPLY, "hs_email_last_reply_date", "hs_email_replied", None))
    if forms:
        specs.append(
            (
                v.FORM_SUBMIT,
                "recent_conversion_date",
                "num_conversion_events",
                "recent_conversion_event_name",
            )
        )
    events: list[EventRecord] = []
    for type_, when_prop, count_prop, name_prop in specs:
        when = to_datetime(properties.get(when_prop))
        if when is None or when < since:
            continue
        attributes: dict[str, Any] = {"summary": True}
        count = to_number(properties.get(count_prop)) if count_prop else None
        if count is not None:
            attributes["total"] = count
        if name_prop:
            name = to_text(properties.get(name_prop))
            if name:
                attributes["form"] = name
        events.append(
            EventRecord(
                id=f"hs-summary:{contact_id}:{type_}:{to_epoch_ms(when)}",
                contact_id=contact_id,
                type=type_,
                occurred_at=when,
                attributes=attributes,
            )
        )
    return events
