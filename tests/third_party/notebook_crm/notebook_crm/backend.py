"""Notebook: a tiny in-memory CRM that stands in for a real one's API.

It behaves where a connector can go wrong: every change stamps the record with the
backend's clock (many records can share a stamp), deals and tasks carry an
idempotency key, a write to an unknown record is refused for that record, and a
create can fail on cue (``fail_next_create``) the ways networks fail: before the
backend applied it, or after (the answer lost, or a 5xx from a gateway).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Kind = Literal["deal", "task"]
CreateFault = Literal["drop_answer", "error_before_apply", "error_after_apply"]


class NotebookError(Exception):
    """The Notebook API refused a request or failed."""


class NotFound(NotebookError):
    """No record with that id."""


class Unavailable(NotebookError):
    """A 5xx: the request may or may not have been applied."""


class AnswerLost(NotebookError):
    """The connection dropped before the answer: the request may have been applied."""


@dataclass
class Contact:
    id: str
    fields: dict[str, object]
    stamp: datetime


@dataclass
class Notebook:
    """One account's data. ``clock`` is the backend's time (aware UTC)."""

    clock: Callable[[], datetime]
    contacts: dict[str, Contact] = field(default_factory=dict)
    records: dict[Kind, dict[str, dict[str, object]]] = field(
        default_factory=lambda: {"deal": {}, "task": {}}
    )
    calls: int = 0
    _next_fault: CreateFault | None = None
    _serial: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- what an administrator or a user does in the CRM ------------------------------

    def add_contact(self, fields: Mapping[str, object]) -> str:
        with self._lock:
            self._serial += 1
            ident = f"nb-{self._serial:06d}"
            self.contacts[ident] = Contact(ident, dict(fields), self.clock())
            return ident

    def fail_next_create(self, fault: CreateFault) -> None:
        self._next_fault = fault

    def keyed(self, kind: Kind, key: str) -> list[str]:
        return sorted(i for i, r in self.records[kind].items() if r.get("key") == key)

    # -- the API a connector calls ----------------------------------------------------

    def changed(
        self, after: tuple[datetime, str] | None, since: datetime | None, until: datetime,
        limit: int,
    ) -> list[Contact]:  # fmt: skip
        """Contacts stamped in ``[since, until)``, ordered by (stamp, id), after the
        (stamp, id) ``after``: keyset pages, so records sharing a stamp are never split
        ambiguously between pages."""
        self.calls += 1
        with self._lock:
            rows = sorted(
                (c for c in self.contacts.values()
                 if (since is None or c.stamp >= since) and c.stamp < until
                 and (after is None or (c.stamp, c.id) > after)),
                key=lambda c: (c.stamp, c.id),
            )  # fmt: skip
            return [Contact(c.id, dict(c.fields), c.stamp) for c in rows[:limit]]

    def get(self, ids: Iterable[str]) -> list[Contact]:
        self.calls += 1
        with self._lock:
            return [
                Contact(c.id, dict(c.fields), c.stamp)
                for i in ids
                if (c := self.contacts.get(i)) is not None
            ]

    def update(self, ident: str, fields: Mapping[str, object]) -> None:
        self.calls += 1
        with self._lock:
            contact = self.contacts.get(ident)
            if contact is None:
                raise NotFound(f"no contact {ident}")
            contact.fields.update(fields)
            contact.stamp = self.clock()

    def find(self, kind: Kind, key: str) -> str | None:
        self.calls += 1
        found = self.keyed(kind, key)
        return found[0] if found else None

    def create(self, kind: Kind, record: Mapping[str, object]) -> str:
        """Create a record; no uniqueness check (like most CRMs' plain create)."""
        self.calls += 1
        fault, self._next_fault = self._next_fault, None
        if fault == "error_before_apply":
            raise Unavailable("503 Service Unavailable")
        with self._lock:
            self._serial += 1
            ident = f"{kind}-{self._serial:06d}"
            self.records[kind][ident] = dict(record)
        if fault == "drop_answer":
            raise AnswerLost("connection closed before the answer")
        if fault == "error_after_apply":
            raise Unavailable("502 Bad Gateway")
        return ident


_NOTEBOOKS: dict[str, Notebook] = {}


def publish(name: str, notebook: Notebook) -> None:
    """Make ``notebook`` reachable by name, as a real CRM is by its URL."""
    _NOTEBOOKS[name] = notebook


def open_notebook(name: str) -> Notebook | None:
    return _NOTEBOOKS.get(name)
