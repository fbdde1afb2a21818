"""A HubSpot sandbox on a real loopback server, a manual clock, and helpers to script
failures: what the connector tests share (imported, not a conftest, so that test
basenames stay unique across the repository)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests

from connectors.base import ReadBatch, RuntimeContext
from connectors.hubspot import HubSpotConnector
from connectors.sandbox import HubSpotSandbox, ManualClock, Request, Response, SandboxApp, serve

TOKEN = "pat-na1-5ecret-70ken-0001"
OAUTH = {
    "client_id": "sandbox-client",
    "client_secret": "sh-secret-0042",
    "refresh_token": "rt-secret-0042",
}


@dataclass
class Rule:
    """Answer requests matching ``when`` with ``answer`` (``times`` times, or forever)."""

    when: Callable[[Request], bool]
    answer: Callable[[Request], Response]
    times: int | None = 1


class Scripted:
    """A flavour wrapper that answers scripted failures before the real sandbox."""

    def __init__(self, inner: HubSpotSandbox) -> None:
        self.inner = inner
        self.rules: list[Rule] = []
        self.hits: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def handle(self, request: Request) -> Response:
        for rule in self.rules:
            if rule.times != 0 and rule.when(request):
                if rule.times is not None:
                    rule.times -= 1
                self.hits.append(f"{request.method} {request.path}")
                return rule.answer(request)
        return self.inner.handle(request)


@dataclass
class Env:
    clock: ManualClock
    hs: HubSpotSandbox
    flavour: Scripted
    app: SandboxApp
    base_url: str
    sleeps: list[float] = field(default_factory=list)
    on_sleep: Callable[[float], None] | None = None

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.sleep(seconds)
        if self.on_sleep is not None:
            self.on_sleep(seconds)

    def context(self) -> RuntimeContext:
        return RuntimeContext(now=self.clock.datetime, sleep=self.sleep)

    def connector(self, **config: Any) -> HubSpotConnector:
        settings: dict[str, Any] = {"access_token": TOKEN, "base_url": self.base_url}
        if "oauth" in config:
            settings.pop("access_token")
        settings.update(config)
        return HubSpotConnector.from_config(settings, context=self.context())

    def faults(self, **faults: Any) -> None:
        r = requests.post(f"{self.base_url}/__sandbox/faults", json=faults, timeout=10)
        r.raise_for_status()

    def stats(self) -> dict[str, Any]:
        return self.app.stats()

    def get(self, path: str, **params: Any) -> requests.Response:
        """A verification call outside the connector (counts against the sandbox limits)."""
        return requests.get(
            self.base_url + path,
            params=params,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )

    def contact_ids(self) -> set[str]:
        table = self.hs.store.tables["contacts"]
        return {str(int(table.ids[s])) for s in table.listable(archived=False)}


@contextmanager
def sandbox_env(
    contacts: int = 300, *, tier: str = "pro", seed: int = 7, **kw: Any
) -> Iterator[Env]:
    clock = ManualClock()
    kw.setdefault("client_secret", OAUTH["client_secret"])
    kw.setdefault("refresh_token", OAUTH["refresh_token"])
    hs = HubSpotSandbox(contacts=contacts, seed=seed, tier=tier, tokens=(TOKEN,), clock=clock, **kw)
    flavour = Scripted(hs)
    env_holder: list[Env] = []
    app = SandboxApp(flavour, sleep=lambda s: env_holder[0].sleep(s))  # type: ignore[arg-type]
    server = serve(app, port=0)
    env = Env(clock, hs, flavour, app, server.base_url)
    env_holder.append(env)
    try:
        yield env
    finally:
        server.close()


def read_all(
    connector: HubSpotConnector,
    cursor: Any,
    *,
    until: datetime,
    events_days: float = 1.0,
) -> list[ReadBatch]:
    return list(
        connector.read_changes(
            cursor, until=until, events_since=until - timedelta(days=events_days)
        )
    )


def error_json(status: int, message: str, **extra: Any) -> Callable[[Request], Response]:
    def answer(_request: Request) -> Response:
        body = {"status": "error", "message": message, "correlationId": "c0ffee", **extra}
        return Response.json(status, body)

    return answer
