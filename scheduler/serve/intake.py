"""What arrives, read into :class:`Incoming` records: HubSpot webhook batches,
Salesforce Outbound Messages and leadsync product events.

Every parser is all-or-nothing: a request with one unreadable item is refused whole
(400, one line naming the item and the field), so that a sender fixes and resends it
instead of losing part of it silently. Items that are readable but not about contacts
(a deal's property change, an Account message) are acknowledged and left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET
from xml.parsers import expat

from scoring.vocabulary import APP_EVENT, EVENT_TYPES, near_misses

__all__ = [
    "BadPayload",
    "Incoming",
    "OutboundMessage",
    "parse_events",
    "parse_hubspot",
    "parse_outbound",
    "parse_xml",
    "soap_ack",
    "soap_fault",
]

MAX_ITEMS = 10_000  # per request; the body limit usually bites first


class BadPayload(ValueError):
    """The request body cannot be read; the message is one line for the sender."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One accepted notification, as it goes into the inbox.

    ``key`` deduplicates redeliveries (``hubspot:<eventId>``, ``salesforce:<Id>``,
    ``events:<id>``). ``kind`` is ``created``, ``changed``, ``deleted``, ``merged``,
    ``restored`` or ``event``. A product event may name an e-mail and no contact id."""

    key: str
    source: str
    kind: str
    contact_id: str | None
    email: str | None
    occurred_at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)


def _int(item: Mapping[str, Any], name: str, where: str, *, required: bool = True) -> int | None:
    value = item.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadPayload(f"{where}: {name}: expected a whole number, got {_show(value)}")
    return value


def _str(item: Mapping[str, Any], name: str, where: str, *, required: bool = True) -> str | None:
    value = item.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadPayload(f"{where}: {name}: expected text, got {_show(value)}")
    return value


def _show(value: Any) -> str:
    text = json.dumps(value)[:40] if value is not None else "nothing"
    return text


def _from_ms(ms: int, where: str) -> datetime:
    try:
        return datetime.fromtimestamp(ms / 1000.0, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise BadPayload(f"{where}: occurredAt: {ms} is not a time in milliseconds") from None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadPayload("the body is not UTF-8") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise BadPayload(f"the body is not JSON: {str(exc)[:80]}") from None


# ------------------------------------------------------------------------- HubSpot

_HUBSPOT_KINDS = {
    "creation": "created",
    "propertyChange": "changed",
    "associationChange": "changed",
    "deletion": "deleted",
    "privacyDeletion": "deleted",
    "merge": "merged",
    "restore": "restored",
}
CONTACT_TYPE_ID = "0-1"  # HubSpot's object type id of contacts (generic subscriptions)


def parse_hubspot(body: bytes) -> list[Incoming]:
    """A webhook batch: a JSON array of events. Contact events become :class:`Incoming`
    (keyed by ``eventId``); other objects' events are acknowledged and dropped."""
    data = _json(body)
    if not isinstance(data, list):
        raise BadPayload("expected a JSON array of webhook events")
    if len(data) > MAX_ITEMS:
        raise BadPayload(f"at most {MAX_ITEMS} events a request, got {len(data)}")
    out: list[Incoming] = []
    for index, item in enumerate(data):
        where = f"event {index + 1}"
        if not isinstance(item, dict):
            raise BadPayload(f"{where}: expected an object, got {_show(item)}")
        event_id = _int(item, "eventId", where)
        subscription = _str(item, "subscriptionType", where) or ""
        object_id = _int(item, "objectId", where)
        occurred = _from_ms(_int(item, "occurredAt", where) or 0, where)
        _int(item, "portalId", where, required=False)
        prop = _str(item, "propertyName", where, required=False)
        primary = _int(item, "primaryObjectId", where, required=False)
        merged = item.get("mergedObjectIds")
        if merged is not None and (
            not isinstance(merged, list)
            or any(isinstance(m, bool) or not isinstance(m, int) for m in merged)
        ):
            raise BadPayload(f"{where}: mergedObjectIds: expected a list of whole numbers")
        obj, _, action = subscription.partition(".")
        is_contact = obj == "contact" or (
            obj == "object" and str(item.get("objectTypeId", "")) == CONTACT_TYPE_ID
        )
        kind = _HUBSPOT_KINDS.get(action)
        if not is_contact or kind is None:
            continue
        contact = primary if kind == "merged" and primary is not None else object_id
        payload: dict[str, Any] = {"subscriptionType": subscription}
        if prop is not None:
            payload["propertyName"] = prop
            payload["propertyValue"] = item.get("propertyValue")
        if merged is not None:
            payload["mergedObjectIds"] = [str(m) for m in merged]
        if "portalId" in item:
            payload["portalId"] = item["portalId"]
        out.append(
            Incoming(
                key=f"hubspot:{event_id}",
                source="hubspot",
                kind=kind,
                contact_id=str(contact),
                email=None,
                occurred_at=occurred,
                payload=payload,
            )
        )
    return out


# -------------------------------------------------------------------------- events

_EVENT_KEYS = frozenset({"id", "contact_id", "email", "type", "name", "occurred_at", "attributes"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _event_items(body: bytes) -> list[Any]:
    """One JSON object, a JSON array of them, or JSON lines (one object a line)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPayload("the body is not UTF-8") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise BadPayload("the body is nested too deeply") from None
    except json.JSONDecodeError:
        data = None
        items: list[Any] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError) as exc:
                raise BadPayload(f"line {number}: not JSON: {str(exc)[:60]}") from None
        if not items:
            raise BadPayload("the body is not JSON") from None
        return items
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return data
    raise BadPayload("expected an event object, an array of them or JSON lines")


def _time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise BadPayload(f"{where}: occurred_at: expected an ISO 8601 time, got {_show(value)}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadPayload(f"{where}: occurred_at: not an ISO 8601 time: {_show(value)}") from None
    if parsed.tzinfo is None:
        raise BadPayload(f"{where}: occurred_at: give a time zone (Z or +02:00): {_show(value)}")
    return parsed.astimezone(UTC)


def parse_events(body: bytes) -> list[Incoming]:
    """Product events ``{id, contact_id | email, type, name, occurred_at, attributes}``."""
    items = _event_items(body)
    if len(items) > MAX_ITEMS:
        raise BadPayload(f"at most {MAX_ITEMS} events a request, got {len(items)}")
    if not items:
        raise BadPayload("no events in the body")
    out: list[Incoming] = []
    for index, item in enumerate(items):
        where = f"event {index + 1}"
        if not isinstance(item, dict):
            raise BadPayload(f"{where}: expected an object, got {_show(item)}")
        unknown = sorted(set(item) - _EVENT_KEYS)
        if unknown:
            raise BadPayload(
                f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_EVENT_KEYS))})"
            )
        event_id = item.get("id")
        if isinstance(event_id, int) and not isinstance(event_id, bool):
            event_id = str(event_id)
        if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 256:
            raise BadPayload(f"{where}: id: expected text of 1 to 256 characters")
        contact = item.get("contact_id")
        if isinstance(contact, int) and not isinstance(contact, bool):
            contact = str(contact)
        if contact is not None and (not isinstance(contact, str) or not contact.strip()):
            raise BadPayload(f"{where}: contact_id: expected text, got {_show(contact)}")
        email = item.get("email")
        if email is not None and (not isinstance(email, str) or not _EMAIL.match(email.strip())):
            raise BadPayload(f"{where}: email: expected an e-mail address, got {_show(email)}")
        if contact is None and email is None:
            raise BadPayload(f"{where}: give contact_id or email")
        kind = item.get("type", APP_EVENT)
        if not isinstance(kind, str) or kind not in EVENT_TYPES:
            hint = near_misses(str(kind), EVENT_TYPES) if isinstance(kind, str) else ()
            also = f" (did you mean {hint[0]}?)" if hint else ""
            raise BadPayload(
                f"{where}: type: {_show(kind)} is not an event type{also}; "
                f"known: {', '.join(sorted(EVENT_TYPES))}"
            )
        name = item.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > 200):
            raise BadPayload(f"{where}: name: expected text of at most 200 characters")
        attributes = item.get("attributes", {})
        if not isinstance(attributes, dict):
            raise BadPayload(f"{where}: attributes: expected an object")
        occurred = _time(item.get("occurred_at"), where)
        payload: dict[str, Any] = {"type": kind, "attributes": attributes, "id": event_id}
        if name is not None:
            payload["name"] = name
        out.append(
            Incoming(
                key=f"events:{event_id}",
                source="events",
                kind="event",
                contact_id=contact,
                email=email.strip().lower() if isinstance(email, str) else None,
                occurred_at=occurred,
                payload=payload,
            )
        )
    return out


# ----------------------------------------------------------------------- Salesforce

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
_CONTACT_TYPES = {"Lead": "lead", "Contact": "contact"}


class _Refused(Exception):
    pass


def parse_xml(body: bytes) -> ET.Element:
    """Parse XML with expat, refusing any DOCTYPE: no entity is ever declared, so none
    can be expanded (billion laughs) or fetched (external entities). SOAP never needs
    a DTD, which is also why the SOAP 1.1 envelope forbids one."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")

    def name(raw: str) -> str:
        return "{" + raw if "}" in raw else raw

    def start(tag: str, attrs: dict[str, str]) -> None:
        builder.start(name(tag), {name(k): v for k, v in attrs.items()})

    def refuse(*_: object) -> Any:
        raise _Refused

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: builder.end(name(tag))
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(body, True)  # noqa: FBT003  (expat's own signature: isfinal)
        root = builder.close()
    except _Refused:
        raise BadPayload("XML with a DOCTYPE or entities is not accepted") from None
    except (expat.ExpatError, AssertionError, IndexError) as exc:
        raise BadPayload(f"the body is not XML: {str(exc)[:80]}") from None
    return root


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    organization_id: str
    action_id: str
    items: tuple[Incoming, ...]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, local: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == local:
            return child
    return None


def _text(element: ET.Element, local: str) -> str:
    """The text of a child element, stripped; empty when it is absent."""
    child = _child(element, local)
    return (child.text or "").strip() if child is not None else ""


def _sf_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_outbound(body: bytes, *, received: datetime) -> OutboundMessage:
    """A SOAP Outbound Message with Lead or Contact notifications (other objects are
    acknowledged and dropped). A record's time is its ``SystemModstamp`` or
    ``LastModifiedDate`` when the message carries one, else the receipt time."""
    root = parse_xml(body)
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise BadPayload("expected a SOAP 1.1 Envelope")
    soap_body = root.find(f"{{{SOAP_ENV}}}Body")
    notifications = (
        soap_body.find(f"{{{OUTBOUND_NS}}}notifications") if soap_body is not None else None
    )
    if notifications is None:
        raise BadPayload("expected an Outbound Message (notifications) in the SOAP Body")
    org = _text(notifications, "OrganizationId")
    action = _text(notifications, "ActionId")
    if not org:
        raise BadPayload("OrganizationId: missing")
    items: list[Incoming] = []
    for index, note in enumerate(c for c in notifications if _local(c.tag) == "Notification"):
        where = f"Notification {index + 1}"
        note_id = _text(note, "Id")
        sobject = _child(note, "sObject")
        if not note_id or sobject is None:
            raise BadPayload(f"{where}: expected an Id and an sObject")
        sf_type = sobject.get(f"{{{XSI}}}type", "").rsplit(":", 1)[-1]
        fields = {_local(c.tag): (c.text or "").strip() for c in sobject if len(c) == 0}
        record_id = fields.get("Id", "")
        if sf_type not in _CONTACT_TYPES:
            continue
        if not record_id:
            raise BadPayload(f"{where}: sObject: expected an Id")
        stamp = _sf_time(fields.get("SystemModstamp")) or _sf_time(fields.get("LastModifiedDate"))
        email = fields.get("Email") or None
        items.append(
            Incoming(
                key=f"salesforce:{note_id}",
                source="salesforce",
                kind="changed",
                contact_id=record_id,
                email=email.lower() if email else None,
                occurred_at=stamp or received,
                payload={"sobject": sf_type, "kind": _CONTACT_TYPES[sf_type], "fields": fields},
            )
        )
    if len(items) > MAX_ITEMS:
        raise BadPayload(f"at most {MAX_ITEMS} notifications a message")
    return OutboundMessage(organization_id=org, action_id=action, items=tuple(items))


def soap_ack(*, ack: bool = True) -> bytes:
    """The answer Salesforce waits for; anything else makes it retry the message."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body>'
        f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>{"true" if ack else "false"}</Ack>'
        "</notificationsResponse></soapenv:Body></soapenv:Envelope>"
    ).encode()


def soap_fault(message: str) -> bytes:
    """A SOAP fault with a one-line reason (escaped)."""
    from xml.sax.saxutils import escape

    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>soapenv:Client</faultcode><faultstring>{escape(message)}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    ).encode()
