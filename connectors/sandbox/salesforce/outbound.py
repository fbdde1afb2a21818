"""The Salesforce sandbox's Outbound Messages: SOAP notifications of Lead and Contact
changes, sent to an endpoint URL the way Salesforce sends them.

What Salesforce does, and so what this does:

- one SOAP 1.1 message holds at most 100 notifications, each with its own ``Id`` (kept
  across retries: receivers dedupe on it) and an ``sObject`` with the fields chosen;
- only an answer carrying ``<Ack>true</Ack>`` counts as delivered; anything else (no
  answer, an error, a fault) is retried with an exponential back-off of at most two
  hours between attempts, and a message still undelivered after 24 hours is dropped;
- there is no signature: the receiver checks the organization id (and, here, the
  secret token in the URL path).

The clock and the transport are injected, as in the HubSpot webhook sender.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from xml.sax.saxutils import escape, quoteattr

__all__ = ["Clock", "Delivery", "OutboundMessenger", "envelope"]

MAX_NOTIFICATIONS = 100
FIRST_RETRY = 15.0  # seconds; doubles each time
MAX_RETRY_GAP = 2 * 3600.0
GIVE_UP_AFTER = 24 * 3600.0
TIMEOUT = 60.0  # seconds Salesforce waits for the acknowledgement
ENTERPRISE_NS = "urn:sobject.enterprise.soap.sforce.com"


class Clock(Protocol):
    def now(self) -> float: ...


# (url, body, headers) -> (status, body), or None when no answer came.
Post = Callable[[str, bytes, Mapping[str, str]], tuple[int, bytes] | None]


def requests_post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes] | None:
    """The default transport: ``requests`` with Salesforce's timeout."""
    import requests

    try:
        answer = requests.post(url, data=body, headers=dict(headers), timeout=TIMEOUT)
    except requests.RequestException:
        return None
    return answer.status_code, answer.content


def envelope(
    organization_id: str,
    action_id: str,
    notifications: list[tuple[str, str, Mapping[str, str]]],
    *,
    instance_url: str = "https://sandbox.my.salesforce.com",
) -> bytes:
    """A SOAP Outbound Message; ``notifications``: (notification id, sObject type, fields)."""
    notes = "".join(
        f"<Notification><Id>{escape(nid)}</Id>"
        f'<sObject xsi:type={quoteattr("sf:" + kind)} xmlns:sf="{ENTERPRISE_NS}">'
        + "".join(f"<sf:{name}>{escape(value)}</sf:{name}>" for name, value in fields.items())
        + "</sObject></Notification>"
        for nid, kind, fields in notifications
    )
    org = escape(organization_id)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body>"
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org}</OrganizationId>"
        f"<ActionId>{escape(action_id)}</ActionId>"
        '<SessionId xsi:nil="true"/>'
        f"<EnterpriseUrl>{escape(instance_url)}/services/Soap/c/59.0/{org}</EnterpriseUrl>"
        f"<PartnerUrl>{escape(instance_url)}/services/Soap/u/59.0/{org}</PartnerUrl>"
        f"{notes}</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


@dataclass(frozen=True, slots=True)
class Delivery:
    at: float
    notifications: int
    attempt: int
    status: int | None
    outcome: str  # delivered | retry | dropped


@dataclass
class _Message:
    notifications: list[tuple[str, str, Mapping[str, str]]]
    first: float
    attempt: int = 0
    due: float = 0.0


@dataclass
class OutboundMessenger:
    """Queues Lead/Contact changes and delivers them to ``url``."""

    url: str
    organization_id: str
    clock: Clock
    action_id: str = "04k5g000000SandAAA"
    post: Post = requests_post
    deliveries: list[Delivery] = field(default_factory=list)
    _new: list[tuple[str, str, Mapping[str, str]]] = field(default_factory=list)
    _queue: list[_Message] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record_changed(self, sobject: str, fields: Mapping[str, str]) -> str:
        """Queue a notification for a Lead or Contact (``fields`` must hold ``Id``);
        returns the notification id."""
        if sobject not in ("Lead", "Contact"):
            raise ValueError(f"Outbound Messages here cover Lead and Contact, not {sobject}")
        if not fields.get("Id"):
            raise ValueError("the record's fields must include its Id")
        note_id = f"04l5g{next(self._ids):010d}AAA"
        with self._lock:
            self._new.append((note_id, sobject, dict(fields)))
        return note_id

    def pending(self) -> int:
        with self._lock:
            return len(self._new) + sum(len(m.notifications) for m in self._queue)

    def next_due(self) -> float | None:
        with self._lock:
            return min((m.due for m in self._queue), default=None)

    def flush(self) -> list[Delivery]:
        """Send new notifications (100 a message) and the retries that are due."""
        now = self.clock.now()
        with self._lock:
            fresh = self._new
            self._new = []
            for start in range(0, len(fresh), MAX_NOTIFICATIONS):
                chunk = fresh[start : start + MAX_NOTIFICATIONS]
                self._queue.append(_Message(chunk, first=now, due=now))
            due = [m for m in self._queue if m.due <= now]
            self._queue = [m for m in self._queue if m.due > now]
        return [self._deliver(message) for message in due]

    def _deliver(self, message: _Message) -> Delivery:
        now = self.clock.now()
        body = envelope(self.organization_id, self.action_id, message.notifications)
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
        answer = self.post(self.url, body, headers)
        status = answer[0] if answer is not None else None
        tried = message.attempt
        if answer is not None and status == 200 and b"<Ack>true</Ack>" in answer[1]:
            outcome = "delivered"
        else:
            gap = min(FIRST_RETRY * 2.0**tried, MAX_RETRY_GAP)
            if now + gap - message.first > GIVE_UP_AFTER:
                outcome = "dropped"
            else:
                outcome = "retry"
                message.attempt = tried + 1
                message.due = now + gap
                with self._lock:
                    self._queue.append(message)
        delivery = Delivery(now, len(message.notifications), tried, status, outcome)
        self.deliveries.append(delivery)
        return delivery

    def run(self, stop: threading.Event, *, every: float = 1.0) -> None:
        """Deliver until ``stop`` is set (the sandbox's background thread)."""
        while not stop.is_set():
            self.flush()
            stop.wait(every)
