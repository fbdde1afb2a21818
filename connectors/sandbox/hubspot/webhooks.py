"""The HubSpot sandbox's webhook deliveries: contact events to a subscribed target URL,
batched, signed (v3) and retried the way HubSpot does.

What HubSpot does, and so what this does:

- a POST carries a JSON array of events (at most 100 here), each with ``eventId``,
  ``subscriptionId``, ``portalId``, ``appId``, ``occurredAt`` (ms),
  ``subscriptionType``, ``attemptNumber``, ``objectId``, ``changeSource``, and
  ``propertyName``/``propertyValue`` for property changes;
- ``X-HubSpot-Signature-v3`` is the base64 HMAC-SHA256, keyed with the app's client
  secret, of method + URI (with HubSpot's listed escapes decoded) + body + the
  ``X-HubSpot-Request-Timestamp`` (ms); each attempt is signed afresh;
- a failed delivery (no answer, a timeout, a 5xx, a 429) is retried at most 10 times,
  spread over 24 hours with randomised delays; a 429's ``Retry-After`` is honoured;
  400, 401, 403, 404 and 405 are never retried.

The clock and the transport are injected: tests move a manual clock instead of
waiting a day, and the sandbox passes its own clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import random
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Attempt", "Clock", "Post", "WebhookSender", "sign_v3"]

MAX_BATCH = 100
# Ten retries whose nominal delays add up to just under 24 hours (randomised down by
# up to a quarter, so never later than that).
RETRY_DELAYS = (60, 300, 900, 1800, 3600, 7200, 10800, 14400, 21600, 25200)
NOT_RETRIED = frozenset({400, 401, 403, 404, 405})
TIMEOUT = 5.0  # seconds HubSpot waits for an answer

_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
_ESCAPES = re.compile("|".join(_DECODED), re.IGNORECASE)


class Clock(Protocol):
    def now(self) -> float: ...


# (url, body, headers) -> (status, headers), or None when no answer came.
Post = Callable[[str, bytes, Mapping[str, str]], tuple[int, Mapping[str, str]] | None]


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """HubSpot's v3 signature (the URI as HubSpot signs it: listed escapes decoded)."""
    signed_uri = _ESCAPES.sub(lambda m: _DECODED[m.group(0).upper()], uri)
    message = method.encode() + signed_uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def requests_post(
    url: str, body: bytes, headers: Mapping[str, str]
) -> tuple[int, Mapping[str, str]] | None:
    """The default transport: ``requests`` with HubSpot's timeout."""
    import requests

    try:
        answer = requests.post(url, data=body, headers=dict(headers), timeout=TIMEOUT)
    except requests.RequestException:
        return None
    return answer.status_code, dict(answer.headers)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt, for the sandbox's log and for tests."""

    at: float
    events: int
    attempt: int  # 0 for the first delivery, 1..10 for retries
    status: int | None  # None: no answer
    outcome: str  # delivered | retry | dropped


@dataclass
class _Batch:
    events: list[dict[str, Any]]
    attempt: int = 0
    due: float = 0.0


@dataclass
class WebhookSender:
    """Queues contact events and delivers them to ``target_url``."""

    target_url: str
    client_secret: str
    clock: Clock
    portal_id: int = 62515
    app_id: int = 54321
    subscription_id: int = 12345
    post: Post = requests_post
    # The properties with a ``contact.propertyChange`` subscription (HubSpot has no
    # wildcard); None: every property, which only a test wants.
    subscribed: frozenset[str] | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    attempts: list[Attempt] = field(default_factory=list)
    _queue: list[_Batch] = field(default_factory=list)
    _new: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ----------------------------------------------------------------- events
    def _event(self, subscription: str, object_id: int | str, **extra: Any) -> None:
        event = {
            "eventId": next(self._ids),
            "subscriptionId": self.subscription_id,
            "portalId": self.portal_id,
            "appId": self.app_id,
            "occurredAt": int(self.clock.now() * 1000),
            "subscriptionType": subscription,
            "attemptNumber": 0,
            "objectId": int(object_id),
            "changeSource": "CRM",
            **extra,
        }
        with self._lock:
            self._new.append(event)

    def contact_created(self, contact_id: int | str) -> None:
        self._event("contact.creation", contact_id, changeFlag="NEW")

    def property_changed(self, contact_id: int | str, name: str, value: str | None) -> None:
        """Queue a change of a subscribed property (others send nothing, as in HubSpot)."""
        if self.subscribed is not None and name not in self.subscribed:
            return
        self._event("contact.propertyChange", contact_id, propertyName=name, propertyValue=value)

    def contact_deleted(self, contact_id: int | str) -> None:
        self._event("contact.deletion", contact_id, changeFlag="DELETED")

    def contacts_merged(self, primary_id: int | str, merged_ids: Sequence[int | str]) -> None:
        self._event(
            "contact.merge",
            primary_id,
            primaryObjectId=int(primary_id),
            mergedObjectIds=[int(m) for m in merged_ids],
        )

    # ------------------------------------------------------------- deliveries
    def pending(self) -> int:
        """Events not delivered yet (new or waiting for a retry)."""
        with self._lock:
            return len(self._new) + sum(len(b.events) for b in self._queue)

    def flush(self) -> list[Attempt]:
        """Deliver new events (in batches of 100) and the retries that are due."""
        now = self.clock.now()
        with self._lock:
            fresh = self._new
            self._new = []
            for start in range(0, len(fresh), MAX_BATCH):
                self._queue.append(_Batch(fresh[start : start + MAX_BATCH], due=now))
            due = [b for b in self._queue if b.due <= now]
            self._queue = [b for b in self._queue if b.due > now]
        done: list[Attempt] = []
        for batch in due:
            done.append(self._deliver(batch))
        return done

    def next_due(self) -> float | None:
        """When the next retry is due (None: nothing waits)."""
        with self._lock:
            return min((b.due for b in self._queue), default=None)

    def _deliver(self, batch: _Batch) -> Attempt:
        now = self.clock.now()
        for event in batch.events:
            event["attemptNumber"] = batch.attempt
        body = json.dumps(batch.events, separators=(",", ":")).encode()
        stamp = str(int(now * 1000))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "HubSpot Connect 2.0 (sandbox; WebhooksExecutorDaemon)",
            "X-HubSpot-Signature-v3": sign_v3(
                self.client_secret, "POST", self.target_url, body, stamp
            ),
            "X-HubSpot-Request-Timestamp": stamp,
            "X-HubSpot-Timeout-Millis": str(int(TIMEOUT * 1000)),
        }
        answer = self.post(self.target_url, body, headers)
        status = answer[0] if answer is not None else None
        tried = batch.attempt
        if status is not None and 200 <= status < 300:
            outcome = "delivered"
        elif status in NOT_RETRIED or tried >= len(RETRY_DELAYS):
            outcome = "dropped"
        else:
            outcome = "retry"
            delay = RETRY_DELAYS[tried] * self.rng.uniform(0.75, 1.0)
            if status == 429 and answer is not None:
                delay = max(delay, _retry_after(answer[1]))
            batch.attempt = tried + 1
            batch.due = now + delay
            with self._lock:
                self._queue.append(batch)
        attempt = Attempt(now, len(batch.events), tried, status, outcome)
        self.attempts.append(attempt)
        return attempt

    def run(self, stop: threading.Event, *, every: float = 1.0) -> None:
        """Deliver until ``stop`` is set (the sandbox's background thread)."""
        while not stop.is_set():
            self.flush()
            stop.wait(every)


def _retry_after(headers: Mapping[str, str]) -> float:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return 0.0
    return 0.0
