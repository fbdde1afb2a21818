"""Test support: the Salesforce sandbox behind TLS or ``responses``, and connectors on it.

(A uniquely named module rather than ``conftest`` so that ``from ... import`` cannot
pick up another directory's conftest; ``conftest.py`` re-exports the fixtures.)

Time is a ``ManualClock`` shared by the sandbox and the connector; the connector's
sleeper advances that clock and records each wait, so no test ever sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import responses

from connectors.base import RuntimeContext
from connectors.salesforce import SalesforceConnector
from connectors.sandbox.framework import ManualClock, SandboxApp, mount_responses, serve
from connectors.sandbox.salesforce import SalesforceSandbox

RESPONSES_URL = "https://sf.sandbox.test"
SCORE_FIELDS = (("lead_score__c", "double"), ("lead_band__c", "string"))


@dataclass
class Org:
    """A running sandbox and what a test needs to build connectors against it."""

    sandbox: SalesforceSandbox
    app: SandboxApp
    clock: ManualClock
    base_url: str
    ca_path: str | None = None
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    def context(self) -> RuntimeContext:
        return RuntimeContext(now=self.clock.datetime, sleep=self.sleep)

    def config(self, auth: str = "jwt", **extra: Any) -> dict[str, Any]:
        cfg: dict[str, Any] = {"login_url": self.base_url, "instance_url": self.base_url}
        if self.ca_path:
            cfg["ca_bundle"] = self.ca_path
        if auth == "jwt":
            cfg["jwt"] = {
                "client_id": "sandbox-client",
                "username": "sandbox@example.com",
                "private_key": self.sandbox.jwt_private_key_pem.decode(),
            }
        elif auth == "refresh_token":
            cfg["refresh_token"] = {
                "client_id": "sandbox-client",
                "client_secret": "sandbox-secret",
                "refresh_token": "sandbox-refresh",
            }
        elif auth == "session_id":
            cfg["session_id"] = "sandbox-session"
        cfg.update(extra)
        return cfg

    def connector(self, auth: str = "jwt", **extra: Any) -> SalesforceConnector:
        return SalesforceConnector.from_config(self.config(auth, **extra), context=self.context())

    def add_leadsync_fields(self) -> None:
        for obj in ("Lead", "Contact"):
            for name, type_ in SCORE_FIELDS:
                self.sandbox.add_custom_field(obj, name, type_)
        for obj in ("Opportunity", "Task"):
            self.sandbox.add_custom_field(
                obj, "leadsync_key__c", "string", external_id=True, unique=True
            )


def make_sandbox(clock: ManualClock, contacts: int = 300, **kw: Any) -> SalesforceSandbox:
    return SalesforceSandbox(contacts=contacts, clock=clock, **kw)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def tls_org(clock: ManualClock) -> Iterator[Org]:
    """A small sandbox behind the real loopback TLS server."""
    sandbox = make_sandbox(clock)
    app = SandboxApp(sandbox, sleep=clock.sleep)
    with serve(app, tls=True) as srv:
        yield Org(sandbox, app, clock, srv.base_url, str(srv.ca_path))


def responses_org(
    clock: ManualClock,
    contacts: int = 300,
    *,
    wrap: Callable[[SandboxApp], Any] | None = None,
    **kw: Any,
) -> Iterator[Org]:
    """``wrap`` may put a front on the app (to inject a fault the sandbox lacks)."""
    sandbox = make_sandbox(clock, contacts, instance_url=RESPONSES_URL, **kw)
    app = SandboxApp(sandbox, sleep=clock.sleep)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount_responses(wrap(app) if wrap else app, rsps, RESPONSES_URL)
        yield Org(sandbox, app, clock, RESPONSES_URL)


@pytest.fixture
def org(clock: ManualClock) -> Iterator[Org]:
    """A small sandbox reached through ``responses`` (no sockets)."""
    yield from responses_org(clock)
