"""Fixtures for the sandbox tests: small seeded worlds, a manual clock, real
loopback servers, and official clients pointed at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import hubspot
import pytest
import requests
import urllib3

from connectors.sandbox import (
    HubSpotSandbox,
    ManualClock,
    SandboxApp,
    World,
    generate_world,
    serve,
)
from connectors.sandbox.framework import Request, Response, RunningServer

HS_TOKEN = "sandbox-token"


@pytest.fixture(scope="session")
def hs_world() -> World:
    """Small enough to seed in milliseconds, big enough to hold every kind of record."""
    return generate_world(400, seed=3)


@pytest.fixture
def hs_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def hs_sandbox(hs_world: World, hs_clock: ManualClock) -> HubSpotSandbox:
    return HubSpotSandbox(world=hs_world, clock=hs_clock, seed=3, search_lag_seconds=3.0)


@pytest.fixture
def hs_app(hs_sandbox: HubSpotSandbox, hs_clock: ManualClock) -> SandboxApp:
    return SandboxApp(hs_sandbox, sleep=hs_clock.sleep)


class _Router:
    """Routes one long-lived loopback server to the current test's app, so each test
    gets a fresh sandbox without starting and stopping a server."""

    flavour = SimpleNamespace(name="hubspot")

    def __init__(self) -> None:
        self.current: SandboxApp | None = None

    def __call__(self, request: Request) -> Response:
        assert self.current is not None, "no sandbox app mounted"
        return self.current(request)


@pytest.fixture(scope="session")
def _hs_shared() -> Iterator[tuple[_Router, RunningServer]]:
    router = _Router()
    server = serve(router, port=0)  # type: ignore[arg-type]
    try:
        yield router, server
    finally:
        server.close()


@pytest.fixture
def hs_server(
    _hs_shared: tuple[_Router, RunningServer], hs_app: SandboxApp
) -> Iterator[RunningServer]:
    """A real loopback HTTP server answering with this test's fresh sandbox."""
    router, server = _hs_shared
    router.current = hs_app
    try:
        yield server
    finally:
        router.current = None


def make_hs_client(server: RunningServer, token: str = HS_TOKEN) -> Any:
    """The official client, with urllib3 retries off so every 429 and error reaches the test."""
    return hubspot.HubSpot(
        access_token=token,
        host=server.base_url,
        retry=urllib3.util.Retry(total=0, respect_retry_after_header=False),
    )


@pytest.fixture
def hs_client(hs_server: RunningServer) -> Any:
    return make_hs_client(hs_server)


@pytest.fixture
def hs_client_for(hs_server: RunningServer) -> Callable[[str], Any]:
    """An official client for the shared server with another token."""
    return lambda token: make_hs_client(hs_server, token)


@pytest.fixture
def hs_mount(
    _hs_shared: tuple[_Router, RunningServer], hs_server: RunningServer
) -> Callable[[SandboxApp], None]:
    """Swap the app behind ``hs_server`` (for another tier, say) within a test."""

    def mount(app: SandboxApp) -> None:
        _hs_shared[0].current = app

    return mount


@pytest.fixture
def hs_http(hs_server: RunningServer) -> Iterator[requests.Session]:
    """Plain HTTP for the legacy endpoints and the ``/__sandbox/`` control routes."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {HS_TOKEN}"
    try:
        yield session
    finally:
        session.close()
