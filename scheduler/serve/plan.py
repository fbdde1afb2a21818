"""What a batch of inbox items asks of the CRM: the pure half of a processor.

A processor that re-scores from the CRM (through the connector's
``read_contacts(ids, events_since=...)``) needs the same bookkeeping whatever the CRM:
which contacts to read once each, which were deleted or merged away, and the product
events to add, by contact id or waiting for an e-mail to be matched. Kept free of I/O
so that it is tested on its own and shared by every processor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from connectors.base import EventRecord
from scheduler.serve.inbox import InboxItem

__all__ = ["Plan", "plan", "product_event"]


@dataclass(frozen=True, slots=True)
class Plan:
    """``read``: contact ids to read (each once, in the order first seen), deletions
    and merges excluded; ``deleted``; ``merged``: (merged-away id, surviving id);
    ``events``: product events with their contact; ``unmatched``: inbox ids of product
    events whose e-mail no contact has (they wait, see ``Processed.unmatched``)."""

    read: tuple[str, ...]
    deleted: tuple[str, ...]
    merged: tuple[tuple[str, str], ...]
    events: tuple[EventRecord, ...]
    unmatched: frozenset[int]


def product_event(item: InboxItem, contact_id: str) -> EventRecord:
    """A product event as the connectors' events look: ``app:<id>`` (apart from CRM
    event ids), its type, time and attributes (with ``name`` among them)."""
    payload = item.payload
    attributes = dict(payload.get("attributes") or {})
    if payload.get("name") is not None:
        attributes.setdefault("name", payload["name"])
    return EventRecord(
        id=f"app:{payload.get('id', item.key.removeprefix('events:'))}",
        contact_id=contact_id,
        type=str(payload.get("type") or "app_event"),
        occurred_at=item.occurred_at,
        attributes=attributes,
    )


def plan(
    items: Sequence[InboxItem],
    *,
    contact_for_email: Callable[[Sequence[str]], Mapping[str, str]],
) -> Plan:
    """The plan for one batch. ``contact_for_email`` looks e-mails up (in the state
    store's copy, or the CRM) and returns ``{email: contact id}`` for those it knows;
    it is called once, with every e-mail of the batch that came without a contact id."""
    read: dict[str, None] = {}
    deleted: dict[str, None] = {}
    merged: list[tuple[str, str]] = []
    waiting: list[InboxItem] = []
    events: list[EventRecord] = []
    for item in items:
        cid = item.contact_id
        if item.kind == "deleted" and cid:
            deleted[cid] = None
        elif item.kind == "merged" and cid:
            for gone in item.payload.get("mergedObjectIds") or ():
                merged.append((str(gone), cid))
                deleted.pop(str(gone), None)
            read[cid] = None
        elif item.kind == "restored" and cid:
            deleted.pop(cid, None)  # items come in the order things happened
            read[cid] = None
        elif item.kind == "event":
            if cid:
                events.append(product_event(item, cid))
                read[cid] = None
            else:
                waiting.append(item)
        elif cid:
            read[cid] = None
    emails = sorted({i.email for i in waiting if i.email})
    known = dict(contact_for_email(emails)) if emails else {}
    unmatched: set[int] = set()
    for item in waiting:
        cid = known.get(item.email or "")
        if cid is None:
            unmatched.add(item.id)
            continue
        events.append(product_event(item, cid))
        read[cid] = None
    gone = set(deleted) | {m for m, _ in merged}
    return Plan(
        read=tuple(c for c in read if c not in gone),
        deleted=tuple(deleted),
        merged=tuple(merged),
        events=tuple(events),
        unmatched=frozenset(unmatched),
    )
