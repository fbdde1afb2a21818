"""Harnesses that run the connector conformance suite against the HubSpot and
Salesforce sandboxes: a real loopback server (TLS for Salesforce), the real
connector through the registry, one manual clock for all of them.

Faults are played by a front on the sandbox's flavour that fails the next create of
a deal or task once. The sandbox's own ``/__sandbox/faults`` control draws faults at
a rate, which cannot aim at one request; the front needs no change to the sandbox.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from connectors import registry
from connectors.base import Connector, RuntimeContext
from connectors.sandbox import HubSpotSandbox, ManualClock, Request, Response, SandboxApp, serve
from connectors.sandbox.control import leadsync_salesforce_fields
from connectors.testing import Fault, Harness, ObjectKind

HS_TOKEN = "sandbox-token"


class OneShotFaults:
    """A flavour front: plays one :class:`Fault` on the next request ``is_create``
    accepts, and hands everything else to the sandbox untouched."""

    def __init__(self, inner: Any, is_create: Callable[[Request], bool]) -> None:
        self.inner = inner
        self.is_create = is_create
        self.pending: Fault | None = None
        self.played: list[Fault] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def handle(self, request: Request) -> Response:
        fault = self.pending
        if fault is None or not self.is_create(request):
            return self.inner.handle(request)  # type: ignore[no-any-return]
        self.pending = None
        self.played.append(fault)
        if fault is Fault.ERROR_BEFORE_APPLY:
            return self.inner.error_response(request, 503)  # type: ignore[no-any-return]
        response: Response = self.inner.handle(request)
        assert 200 <= response.status < 300, (response.status, response.body[:300])
        if fault is Fault.ERROR_AFTER_APPLY:
            return self.inner.error_response(request, 502)  # type: ignore[no-any-return]
        response.drop = True
        return response


def _seconds_until(clock: ManualClock, at: datetime) -> float:
    gap = at.timestamp() - clock.now()
    assert gap >= 0, "seed_contacts: the stamp must not be earlier than the backend's now"
    return gap


class HubSpotHarness(Harness):
    """The HubSpot sandbox (search index lag on) behind a loopback HTTP server."""

    skips_own_writes = True
    deal_stage = "appointmentscheduled"
    deal_options = MappingProxyType({"pipeline": "default"})

    def __init__(self, contacts: int = 60) -> None:
        self.clock = ManualClock()
        self.sandbox = HubSpotSandbox(
            contacts=contacts, seed=5, clock=self.clock, search_lag_seconds=3.0
        )
        self.front = OneShotFaults(self.sandbox, _hubspot_create)
        self.app = SandboxApp(self.front, sleep=self.clock.sleep)
        self.server = serve(self.app, port=0)
        self._made = 0

    def connector(self) -> Connector:
        context = RuntimeContext(now=self.clock.datetime, sleep=self.clock.sleep)
        settings = {"access_token": HS_TOKEN, "base_url": self.server.base_url, "batch_size": 50}
        return registry.create("hubspot", settings, context=context)

    def now(self) -> datetime:
        return self.clock.datetime()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def settle(self) -> None:
        self.clock.advance(30)  # past the search index lag

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        """The sandbox in-process, as a user of the portal (not counted, no faults)."""
        request = Request.from_url(
            method,
            path,
            {"Authorization": f"Bearer {HS_TOKEN}", "Content-Type": "application/json"},
            b"" if body is None else json.dumps(body).encode(),
        )
        response = self.sandbox.handle(request)
        assert response.status < 300, (response.status, response.body[:300])
        return json.loads(response.body) if response.body else None

    def seed_contacts(self, count: int, *, at: datetime) -> Sequence[str]:
        self.clock.advance(_seconds_until(self.clock, at))
        ids: list[str] = []
        while len(ids) < count:
            n = min(100, count - len(ids))
            inputs = []
            for _ in range(n):
                self._made += 1
                email = f"conformance{self._made}@example.com"
                inputs.append({"properties": {"email": email, "jobtitle": "Buyer"}})
            reply = self._call("POST", "/crm/v3/objects/contacts/batch/create", {"inputs": inputs})
            ids += [str(r["id"]) for r in reply["results"]]
        return ids

    def action_contact(self) -> str:
        page = self._call("GET", "/crm/v3/objects/contacts?limit=1")
        return str(page["results"][0]["id"])

    def unknown_contact_id(self) -> str:
        return "999999999"

    def inject(self, fault: Fault) -> None:
        self.front.pending = fault

    def keyed(self, kind: ObjectKind, key: str) -> Sequence[str]:
        obj = {"deal": "deals", "task": "tasks"}[kind]
        found: list[str] = []
        after = ""
        while True:
            query = f"?limit=100&properties=leadsync_key{after}"
            page = self._call("GET", f"/crm/v3/objects/{obj}{query}")
            found += [
                str(r["id"])
                for r in page["results"]
                if (r.get("properties") or {}).get("leadsync_key") == key
            ]
            nxt = (page.get("paging") or {}).get("next", {}).get("after")
            if not nxt:
                return found
            after = f"&after={nxt}"

    def close(self) -> None:
        self.server.close()


def _hubspot_create(request: Request) -> bool:
    return request.method == "POST" and request.path.rstrip("/") in (
        "/crm/v3/objects/deals",
        "/crm/v3/objects/tasks",
    )


class SalesforceHarness(Harness):
    """The Salesforce sandbox behind a loopback TLS server, with the fields an
    administrator creates for leadsync (score fields, the unique key)."""

    skips_own_writes = True
    deal_stage = "Prospecting"

    def __init__(self, tmp_path: Path, contacts: int = 60) -> None:
        from connectors.sandbox import SalesforceSandbox

        self.clock = ManualClock()
        self.sandbox = SalesforceSandbox(
            contacts=contacts,
            seed=5,
            clock=self.clock,
            custom_fields=leadsync_salesforce_fields([self.score_field]),
        )
        self.front = OneShotFaults(self.sandbox, _salesforce_create)
        self.app = SandboxApp(self.front, sleep=self.clock.sleep)
        self.ca_path = tmp_path / "conformance-ca.pem"
        self.server = serve(self.app, port=0, tls=True, ca_out=self.ca_path)
        self._made = 0

    def connector(self) -> Connector:
        context = RuntimeContext(now=self.clock.datetime, sleep=self.clock.sleep)
        settings = {
            "login_url": self.server.base_url,
            "instance_url": self.server.base_url,
            "ca_bundle": str(self.ca_path),
            "refresh_token": {
                "client_id": "sandbox-client",
                "client_secret": "sandbox-secret",
                "refresh_token": "sandbox-refresh",
            },
        }
        return registry.create("salesforce", settings, context=context)

    def now(self) -> datetime:
        return self.clock.datetime()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def settle(self) -> None:
        self.clock.advance(2)  # SystemModstamp has whole seconds: leave the seeded one

    def _query(self, soql: str) -> list[dict[str, Any]]:
        return list(self.sandbox.store.query(soql, all_rows=False)["records"])

    def seed_contacts(self, count: int, *, at: datetime) -> Sequence[str]:
        self.clock.advance(_seconds_until(self.clock, at))
        account = self._query("SELECT AccountId FROM Contact WHERE AccountId != null LIMIT 1")
        ids = []
        for _ in range(count):
            self._made += 1
            body = {"LastName": f"Conformance {self._made}",
                    "Email": f"conformance{self._made}@example.com",
                    "AccountId": account[0]["AccountId"]}  # fmt: skip
            ids.append(self.sandbox.store.create("Contact", body))
        return ids

    def action_contact(self) -> str:
        rows = self._query("SELECT Id FROM Contact WHERE AccountId != null ORDER BY Id LIMIT 1")
        return str(rows[0]["Id"])

    def unknown_contact_id(self) -> str:
        return "003000000000042AAA"

    def inject(self, fault: Fault) -> None:
        self.front.pending = fault

    def keyed(self, kind: ObjectKind, key: str) -> Sequence[str]:
        obj = {"deal": "Opportunity", "task": "Task"}[kind]
        safe = key.replace("\\", "\\\\").replace("'", "\\'")
        return [str(r["Id"]) for r in self._query(f"SELECT Id FROM {obj} WHERE leadsync_key__c = '{safe}'")]  # fmt: skip

    def close(self) -> None:
        self.server.close()


def _salesforce_create(request: Request) -> bool:
    """The connector's keyed create: an upsert by the external id, one record."""
    path = request.path.rstrip("/")
    return request.method == "PATCH" and any(
        f"/composite/sobjects/{obj}/" in path for obj in ("Opportunity", "Task")
    )


def play_each_fault(harness: HubSpotHarness | SalesforceHarness, fault: Fault) -> None:
    """Check the front: the fault is spent on the connector's create, not elsewhere,
    so that the suite's fault tests test what they say."""
    from datetime import date

    from connectors.base import ConnectorError, DealSpec

    connector = harness.connector()
    try:
        harness.inject(fault)
        spec = DealSpec("front-check", harness.action_contact(), "Front check", None,
                        harness.deal_stage, date(2030, 1, 31),
                        crm_options=harness.deal_options)  # fmt: skip
        with contextlib.suppress(ConnectorError):
            connector.create_deal(spec)
        assert harness.front.played == [fault] and harness.front.pending is None
        if fault is not Fault.ERROR_BEFORE_APPLY:
            assert harness.app.stats()["by_status"].get("dropped", 0) == (
                fault is Fault.DROP_ANSWER
            )
    finally:
        connector.close()
