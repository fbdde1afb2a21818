"""Helpers of the serve tests: the real service on uvicorn (thread, ephemeral port), a
manual clock, signed requests. (Named apart from ``conftest`` so that imports of it
never pick another folder's conftest.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from connectors.runtime import Redactor
from scheduler.serve.app import Service
from scheduler.serve.inbox import Inbox
from scheduler.serve.metrics import Metrics
from scheduler.serve.runner import RunningService, start_in_thread
from scheduler.serve.settings import ServeConfig
from scheduler.serve.signatures import event_signature, hubspot_signature
from scheduler.serve.worker import Drainer, RecordingProcessor

T0 = datetime(2026, 3, 2, 10, 1, tzinfo=UTC)
HS_SECRET = "hs-client-secret-9f8e7d"
SF_TOKEN = "sf-path-token-0123456789abcdef"
SF_ORG = "00D5g000004XyzAEAS"
EV_SECRET = "event-secret-abcdef0123456789"
PUBLIC = "https://leads.example.com"


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.t = start

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


def serve_config(**over: Any) -> ServeConfig:
    data: dict[str, Any] = {
        "public_url": PUBLIC,
        "max_body": 64 * 1024,
        "hubspot": {"client_secret": HS_SECRET},
        "salesforce": {"organization_id": SF_ORG, "path_token": SF_TOKEN},
        "events": {"secret": EV_SECRET, "keep_unknown": "2d"},
    }
    data.update(over)
    return ServeConfig.model_validate(data)


@dataclass
class Live:
    """A running service with its inbox, clock and a client."""

    running: RunningService
    clock: Clock
    inbox: Inbox
    processor: RecordingProcessor
    drainer: Drainer
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.running.url

    def close(self) -> None:
        """Stop the server (and its drainer) and wait for its threads to end."""
        self.client.close()
        self.running.stop()

    def hubspot(
        self,
        events: list[dict[str, Any]] | bytes,
        *,
        secret: str = HS_SECRET,
        stamp: datetime | None = None,
        query: str = "",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = events if isinstance(events, bytes) else json.dumps(events).encode()
        path = "/webhooks/hubspot" + (f"?{query}" if query else "")
        ts = str(int((stamp or self.clock()).timestamp() * 1000))
        sig = hubspot_signature(secret, "POST", PUBLIC + path, body, ts)
        sent = {
            "X-HubSpot-Signature-v3": sig,
            "X-HubSpot-Request-Timestamp": ts,
            "Content-Type": "application/json",
        }
        sent.update(headers or {})
        return self.client.post(self.url + path, content=body, headers=sent)

    def events(
        self,
        body: bytes | list[dict[str, Any]],
        *,
        secret: str = EV_SECRET,
        stamp: datetime | None = None,
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        ts = str(int((stamp or self.clock()).timestamp()))
        return self.client.post(
            self.url + "/v1/events",
            content=raw,
            headers={
                "X-Leadsync-Timestamp": ts,
                "X-Leadsync-Signature": event_signature(secret, ts, raw),
            },
        )

    def salesforce(self, body: bytes, *, token: str = SF_TOKEN) -> httpx.Response:
        return self.client.post(
            f"{self.url}/webhooks/salesforce/{token}",
            content=body,
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
        )


def hs_event(event_id: int, contact: int, *, at: datetime = T0, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "eventId": event_id,
        "subscriptionId": 12345,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": int(at.timestamp() * 1000),
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": contact,
        "changeSource": "CRM",
        "propertyName": "jobtitle",
        "propertyValue": "CTO",
    }
    item.update(extra)
    return item


def start_live(
    tmp_path: Path,
    *,
    config: ServeConfig | None = None,
    worker: bool = False,
    log_level: str = "warning",
) -> Live:
    clock = Clock()
    inbox = Inbox(f"sqlite:///{tmp_path / 'state.db'}", now=clock)
    inbox.create()
    metrics = Metrics(depth=inbox.depth)
    processor = RecordingProcessor()
    drainer = Drainer(inbox, processor, now=clock, sleep=lambda s: None, metrics=metrics)
    service = Service(
        config or serve_config(),
        inbox,
        clock,
        metrics,
        Redactor(),
        drainer=drainer if worker else None,
    )
    running = start_server(service, log_level=log_level)
    return Live(running, clock, inbox, processor, drainer, httpx.Client(timeout=10))


# --------------------------------------------------------- servers left running

#: The thread names of a server started in this process: uvicorn's and the drainer's.
SERVER_THREADS = ("leadsync-serve", "leadsync-drainer")
_started: list[RunningService] = []


def start_server(service: Service, **kw: Any) -> RunningService:
    """``start_in_thread``, remembered so that a server a test forgot can be stopped."""
    running = start_in_thread(service, **kw)
    _started[:] = [r for r in _started if r.thread.is_alive()]
    _started.append(running)
    return running


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in SERVER_THREADS and t.is_alive()]


def stop_leftovers(threads: Iterable[threading.Thread]) -> None:
    """Stop the servers these threads belong to (those started here), then wait for
    the rest a little: the next test must not inherit a running server."""
    left = set(threads)
    for running in list(_started):
        if running.thread in left:
            running.stop()
    for t in left:
        t.join(10)
