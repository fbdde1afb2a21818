"""Salesforce records to canonical records, normalised at the edge.

Contacts carry company data on their Account, so their defaults read through the
relationship (``Account.Name``); Leads carry it themselves.

Salesforce has no lifecycle stage; models written for HubSpot's (the starter model
scores only ``subscriber`` to ``salesqualifiedlead``) need one, so ``lifecycle_stage``
is derived from what each read already returns (see :func:`lifecycle_stage`), unless
the configuration maps it to a field of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from connectors.base import ContactKind, ContactRecord, EventRecord
from connectors.salesforce.soql import parse_datetime
from scoring import vocabulary as v

DEFAULT_FIELD_MAP: Mapping[str, Mapping[str, str]] = {
    "Lead": {
        v.EMAIL: "Email",
        v.FIRST_NAME: "FirstName",
        v.LAST_NAME: "LastName",
        v.JOB_TITLE: "Title",
        v.COMPANY: "Company",
        v.COMPANY_SIZE: "NumberOfEmployees",
        v.INDUSTRY: "Industry",
        v.COUNTRY: "Country",
        v.LEAD_STATUS: "Status",
        v.OWNER_ID: "OwnerId",
        v.CREATED_AT: "CreatedDate",
    },
    "Contact": {
        v.EMAIL: "Email",
        v.FIRST_NAME: "FirstName",
        v.LAST_NAME: "LastName",
        v.JOB_TITLE: "Title",
        v.COMPANY: "Account.Name",
        v.COMPANY_SIZE: "Account.NumberOfEmployees",
        v.INDUSTRY: "Account.Industry",
        v.COUNTRY: "MailingCountry",
        v.OWNER_ID: "OwnerId",
        v.CREATED_AT: "CreatedDate",
    },
}

KIND: Mapping[str, ContactKind] = {"Lead": "lead", "Contact": "contact"}
# Fields read only to derive ``lifecycle_stage`` (always selected, whatever the map says).
DERIVED_FROM: Mapping[str, tuple[str, ...]] = {"Lead": ("Status",), "Contact": ("Account.Type",)}
# Lead statuses that end the lead without a conversion. Salesforce's LeadStatus has no
# "closed" flag (only IsConverted), so the standard names are read by their words.
_DEAD_STATUS = re.compile(r"(?i)^\s*closed\b|\b(un|dis)qualified\b|\bjunk\b")
_NUMBER_FIELDS = v.NUMERIC_FIELDS
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")
_RANGE = re.compile(r"^\s*(\d[\d,]*)\s*(?:-|\+|$)")


def field_map(obj: str, overrides: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    merged = dict(DEFAULT_FIELD_MAP[obj])
    merged.update(overrides.get(obj, {}))
    return merged


def get_path(record: Mapping[str, Any], path: str) -> Any:
    """``Account.Name`` on a query record (relationships come back as nested objects)."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def to_number(value: Any) -> float | int | None:
    """Numbers stay numbers; ``"25-50"`` becomes its lower bound; junk becomes missing."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text.replace(",", ""))
        except ValueError:
            m = _RANGE.match(text)
            return int(m.group(1).replace(",", "")) if m else None
        return int(number) if number.is_integer() else number
    return None


def normalise(canonical: str, value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    if canonical in _NUMBER_FIELDS:
        return to_number(value)
    if isinstance(value, str) and _DATETIME.match(value):
        return parse_datetime(value)
    return value


def lifecycle_stage(obj: str, record: Mapping[str, Any], *, converted: bool = False) -> str:
    """HubSpot's lifecycle stage for a Salesforce person, from fields the read has.

    - An unconverted Lead is a ``lead``; one whose Status closes it without a
      conversion ("Closed - Not Converted", "Unqualified") is ``other``, as is a
      converted Lead (its Contact carries on).
    - A Contact is ``customer`` when its Account's Type says so (the standard picklist's
      "Customer - Direct" and "Customer - Channel"), else ``salesqualifiedlead``: sales
      converted or created it, so it is past marketing's stages. Open Opportunities
      are not read here (that would cost a query per batch of Contacts on every
      read); the sync's ``skip_if_open_deal`` already keeps a contact with an open
      deal from getting another.
    """
    if obj == "Lead":
        if converted:
            return "other"
        status = str(record.get("Status") or "")
        return "other" if _DEAD_STATUS.search(status) else "lead"
    account_type = str(get_path(record, "Account.Type") or "")
    return "customer" if account_type.lower().startswith("customer") else "salesqualifiedlead"


def to_contact(
    obj: str,
    record: Mapping[str, Any],
    fmap: Mapping[str, str],
    *,
    converted: bool = False,
) -> ContactRecord:
    fields: dict[str, Any] = {}
    for canonical, path in fmap.items():
        value = normalise(canonical, get_path(record, path))
        if value is not None:
            fields[canonical] = value
    if v.LIFECYCLE_STAGE not in fmap:
        fields[v.LIFECYCLE_STAGE] = lifecycle_stage(obj, record, converted=converted)
    return ContactRecord(
        id=str(record["Id"]),
        fields=fields,
        updated_at=parse_datetime(record.get("SystemModstamp")),
        kind=KIND[obj],
        converted=converted,
    )


def select_fields(
    fmap: Mapping[str, str], extra: Sequence[str] = (), *, obj: str | None = None
) -> list[str]:
    """The SOQL field list: the map's fields, ``extra``, and (for ``obj``) the fields
    ``lifecycle_stage`` is derived from when the map does not name it."""
    derived = DERIVED_FROM.get(obj or "", ()) if v.LIFECYCLE_STAGE not in fmap else ()
    return list(dict.fromkeys([*fmap.values(), *extra, *derived]))


# ------------------------------------------------------------------------- engagement

# TaskSubtype (API 37+) says what kind of activity a Task records; Type is the older,
# editable picklist that many orgs still fill in instead.
_TASK_TYPES: Mapping[str, str] = {
    "call": v.CALL,
    "email": "email",
    "listemail": "email",
}


def task_event(record: Mapping[str, Any]) -> EventRecord | None:
    who = record.get("WhoId")
    occurred = parse_datetime(record.get("CompletedDateTime")) or parse_datetime(
        record.get("CreatedDate")
    )
    if not who or occurred is None:
        return None
    subtype = str(record.get("TaskSubtype") or "").lower()
    kind_text = str(record.get("Type") or "").lower()
    kind = _TASK_TYPES.get(subtype) or _TASK_TYPES.get(kind_text)
    if kind is None:
        return None  # a plain to-do is work for the rep, not a signal from the person
    if kind == "email":
        # ListEmail tasks log marketing sends; an individual Email task whose subject is
        # a reply ("Email: Re: ...", as e-mail capture logs it) is the person writing
        # back, the strong signal.
        subject = str(record.get("Subject") or "").lower()
        is_reply = subtype == "email" and ("re:" in subject.split() or subject.startswith("re:"))
        kind = v.EMAIL_REPLY if is_reply else v.EMAIL_SEND
    return EventRecord(
        id=f"sf-task-{record['Id']}",
        contact_id=str(who),
        type=kind,
        occurred_at=occurred,
        attributes={"subject": record.get("Subject")} if record.get("Subject") else {},
    )


def event_event(record: Mapping[str, Any]) -> EventRecord | None:
    """A meeting booked, or (a deleted Event, which only ``queryAll`` returns) cancelled.

    Salesforce has no "cancelled" Event: a meeting called off is deleted, from the
    calendar or by the rep. A deleted Event is a ``meeting_cancelled`` at its deletion
    (``SystemModstamp``), with an id of its own, so that the booking read before it
    stays a booking: HubSpot reports both, and a cancellation says something a
    booking alone does not."""
    who = record.get("WhoId")
    # The signal is the booking, so the Event's creation time, not the meeting's start.
    occurred = parse_datetime(record.get("CreatedDate"))
    if not who or occurred is None:
        return None
    attributes = {"subject": record.get("Subject")} if record.get("Subject") else {}
    if record.get("IsDeleted"):
        deleted = parse_datetime(record.get("SystemModstamp"))
        return EventRecord(
            id=f"sf-event-{record['Id']}-cancelled",
            contact_id=str(who),
            type=v.MEETING_CANCELLED,
            occurred_at=max(occurred, deleted) if deleted is not None else occurred,
            attributes=attributes,
        )
    return EventRecord(
        id=f"sf-event-{record['Id']}",
        contact_id=str(who),
        type=v.MEETING_BOOKED,
        occurred_at=occurred,
        attributes=attributes,
    )


def campaign_member_event(record: Mapping[str, Any]) -> EventRecord | None:
    who = record.get("ContactId") or record.get("LeadId")
    if not who:
        return None
    responded = bool(record.get("HasResponded"))
    occurred: datetime | None = parse_datetime(record.get("FirstRespondedDate")) or parse_datetime(
        record.get("CreatedDate")
    )
    if occurred is None:
        return None
    if not responded:
        return None  # sent, invited or added by a rep: not the person's action
    campaign_type = str(get_path(record, "Campaign.Type") or "").lower()
    # The sends of an e-mail campaign are logged as ListEmail Tasks; a response to
    # one is a click. Webinar responses are attendance; other campaigns are forms.
    kind = {"webinar": v.WEBINAR_ATTENDED, "email": v.EMAIL_CLICK}.get(campaign_type, v.FORM_SUBMIT)
    attrs: dict[str, Any] = {"campaign_type": get_path(record, "Campaign.Type")}
    name = get_path(record, "Campaign.Name")
    if name:
        attrs["campaign"] = name
        if kind == v.FORM_SUBMIT:
            # Web-to-Lead and form tools record a form as a campaign response; models
            # match forms on ``form`` (as HubSpot's form name), so the campaign names it.
            attrs["form"] = name
    return EventRecord(
        id=f"sf-cm-{record['Id']}", contact_id=str(who), type=kind, occurred_at=occurred,
        attributes=attrs,
    )  # fmt: skip
