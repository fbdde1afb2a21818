"""The pure half of a processor: what to read, delete, merge, and which events match."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from serve_helpers import T0

from scheduler.serve.inbox import InboxItem
from scheduler.serve.plan import plan


def _item(n: int, kind: str, contact: str | None, **payload: Any) -> InboxItem:
    return InboxItem(
        id=n,
        key=f"k{n}",
        source="events" if kind == "event" else "hubspot",
        kind=kind,
        contact_id=contact,
        email=payload.pop("email", None),
        occurred_at=T0 + timedelta(seconds=n),
        received_at=T0,
        payload=payload,
    )


def test_each_contact_is_read_once_and_gone_ones_not_at_all() -> None:
    looked_up: list[Sequence[str]] = []

    def lookup(emails: Sequence[str]) -> dict[str, str]:
        looked_up.append(emails)
        return {"known@example.com": "7"}

    items = [
        _item(1, "changed", "1"),
        _item(2, "created", "2"),
        _item(3, "changed", "1"),
        _item(4, "deleted", "3"),
        _item(5, "changed", "3"),
        _item(6, "merged", "4", mergedObjectIds=["5"]),
        _item(7, "changed", "5"),
        _item(8, "event", "2", id="e8", type="app_event", name="Signed Up", attributes={"a": 1}),
        _item(9, "event", None, email="known@example.com", id="e9", type="form_submit"),
        _item(10, "event", None, email="new@example.com", id="e10", type="app_event"),
    ]
    got = plan(items, contact_for_email=lookup)
    assert got.read == ("1", "2", "4", "7")
    assert got.deleted == ("3",)
    assert got.merged == (("5", "4"),)
    assert got.unmatched == frozenset({10})
    assert looked_up == [["known@example.com", "new@example.com"]]
    first, second = got.events
    assert (first.id, first.contact_id, first.type) == ("app:e8", "2", "app_event")
    assert first.attributes == {"a": 1, "name": "Signed Up"}
    assert (second.id, second.contact_id, second.type) == ("app:e9", "7", "form_submit")
    assert second.occurred_at == T0 + timedelta(seconds=9)


def test_no_lookup_without_unmatched_emails() -> None:
    def lookup(emails: Sequence[str]) -> dict[str, str]:
        raise AssertionError("not needed")

    assert plan([_item(1, "changed", "1")], contact_for_email=lookup).read == ("1",)


def test_a_restore_after_a_deletion_reads_the_contact() -> None:
    items = [_item(1, "deleted", "3"), _item(2, "restored", "3")]
    got = plan(items, contact_for_email=lambda emails: {})
    assert (got.read, got.deleted) == (("3",), ())
