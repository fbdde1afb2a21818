"""Fixtures: a small seeded org, the official client against it through ``responses``
(no sockets) or through the loopback TLS server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
import requests
import responses
from sf_sandbox_support import PinnedSession
from simple_salesforce import Salesforce

from connectors.sandbox.framework import (
    ManualClock,
    Request,
    Response,
    RunningServer,
    SandboxApp,
    mount_responses,
    serve,
)
from connectors.sandbox.salesforce import SalesforceSandbox
from connectors.sandbox.world import World, generate_world

INSTANCE = "https://acme.my.salesforce.example"


@pytest.fixture(scope="session")
def small_world() -> World:
    return generate_world(300, seed=11)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def box(small_world: World, clock: ManualClock) -> SalesforceSandbox:
    return SalesforceSandbox(world=small_world, clock=clock)


@pytest.fixture
def app(box: SalesforceSandbox, clock: ManualClock) -> SandboxApp:
    return SandboxApp(box, sleep=clock.sleep)


@pytest.fixture
def rsps(app: SandboxApp) -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mount_responses(app, mock, INSTANCE)
        yield mock


@pytest.fixture
def sf(sf_responses: Salesforce) -> Salesforce:
    """The official client; modules that run on both transports override this."""
    return sf_responses


@pytest.fixture
def sf_responses(rsps: responses.RequestsMock) -> Salesforce:
    """The official client, talking to the sandbox through ``responses``."""
    return Salesforce(
        session_id="sandbox-session",
        instance_url=INSTANCE,
        version="59.0",
        session=requests.Session(),
    )


class _Switch:
    """Stands in for a SandboxApp so that one TLS server (and one CA) serves every
    test: shutting a server down costs half a second of the framework's poll interval."""

    flavour = SimpleNamespace(name="salesforce")

    def __init__(self) -> None:
        self.target: SandboxApp | None = None

    def __call__(self, request: Request) -> Response:
        assert self.target is not None, "no sandbox mounted on the shared TLS server"
        return self.target(request)


@pytest.fixture(scope="session")
def _shared_tls() -> Iterator[tuple[_Switch, RunningServer]]:
    switch = _Switch()
    srv = serve(switch, port=0, tls=True)  # type: ignore[arg-type]
    try:
        yield switch, srv
    finally:
        srv.close()
        if srv.ca_path is not None:
            srv.ca_path.unlink(missing_ok=True)


@pytest.fixture
def server(_shared_tls: tuple[_Switch, RunningServer], app: SandboxApp) -> Iterator[RunningServer]:
    """The loopback TLS server, serving this test's sandbox."""
    switch, srv = _shared_tls
    switch.target = app
    try:
        yield srv
    finally:
        switch.target = None


@pytest.fixture
def mount_tls(_shared_tls: tuple[_Switch, RunningServer]) -> Callable[[SandboxApp], RunningServer]:
    """Serve another sandbox (one built by the test) on the shared TLS server."""

    def mount(other: SandboxApp) -> RunningServer:
        _shared_tls[0].target = other
        return _shared_tls[1]

    return mount


@pytest.fixture
def tls_sf(server: RunningServer) -> Iterator[Salesforce]:
    session = PinnedSession(str(server.ca_path))
    try:
        yield Salesforce(
            session_id="sandbox-session",
            instance_url=server.base_url,
            version="59.0",
            session=session,
        )
    finally:
        session.close()


@pytest.fixture(params=["responses", "tls"])
def sf_both(request: pytest.FixtureRequest) -> Salesforce:
    """The official client over ``responses`` and over the loopback TLS server in turn."""
    name = "sf_responses" if request.param == "responses" else "tls_sf"
    client: Salesforce = request.getfixturevalue(name)
    return client
