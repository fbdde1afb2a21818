"""Many fake HubSpot portals behind one server, told apart by the bearer token.

One sandbox process per portal costs about 130 MiB; a scale-out test or benchmark
with fifty tenants needs fifty portals, each with its own records, world and rate-limit
counters, exactly as fifty real portals would be. A portal is built on its first
request (a world of its own, seeded with the portal's number), so an idle portal
costs nothing. Only private-app tokens are routed; a request with a token no portal
owns gets HubSpot's 401 from the first portal.

Control routes: ``/__sandbox/...`` with a portal's token act on that portal;
``GET /__sandbox/stats`` without one adds up every portal built so far, and
``GET /__sandbox/portals`` lists the tokens.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from types import SimpleNamespace

from connectors.sandbox.framework import Clock, Request, Response, SandboxApp, Stats


class PortalsStats(Stats):
    """``GET /__sandbox/stats`` of a multi-portal server: all portals' requests."""

    portals: int
    portals_built: int


def portal_tokens(count: int, prefix: str = "sandbox-portal") -> list[str]:
    """The tokens of ``count`` portals: ``sandbox-portal-0001``, ... (the sandbox's own
    demo credentials, printed freely)."""
    return [f"{prefix}-{i:04d}" for i in range(1, count + 1)]


class MultiPortalApp:
    """A ``SandboxApp`` look-alike routing each request to its token's portal."""

    flavour = SimpleNamespace(name="hubspot")

    def __init__(self, tokens: Sequence[str], make: Callable[[int, str], SandboxApp]) -> None:
        if not tokens:
            raise ValueError("a multi-portal sandbox needs at least one portal")
        if len(set(tokens)) != len(tokens):
            raise ValueError("portal tokens must be unique")
        self.tokens = list(tokens)
        self._index = {t: i for i, t in enumerate(self.tokens)}
        self._make = make
        self._apps: dict[int, SandboxApp] = {}
        self._locks = [threading.Lock() for _ in self.tokens]

    def portal(self, token: str) -> SandboxApp:
        """The portal owning ``token`` (built now if it was never asked for)."""
        return self._app(self._index[token])

    def built(self) -> dict[str, SandboxApp]:
        return {self.tokens[i]: app for i, app in sorted(self._apps.items())}

    def _app(self, index: int) -> SandboxApp:
        app = self._apps.get(index)
        if app is not None:
            return app
        with self._locks[index]:
            app = self._apps.get(index)
            if app is None:
                app = self._make(index, self.tokens[index])
                self._apps[index] = app
        return app

    def stats(self) -> PortalsStats:
        by_route: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        for app in list(self._apps.values()):
            s = app.stats()
            by_route.update(s["by_route"])
            by_status.update(s["by_status"])
        return {
            "total": sum(by_route.values()),
            "by_route": dict(by_route),
            "by_status": dict(by_status),
            "portals": len(self.tokens),
            "portals_built": len(self._apps),
        }

    def reset_stats(self) -> None:
        for app in list(self._apps.values()):
            app.reset_stats()

    def __call__(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        index = self._index.get(token)
        if index is None and request.path.startswith("/__sandbox/"):
            route = request.path.rstrip("/")
            if route == "/__sandbox/stats" and request.method == "GET":
                return Response.json(200, self.stats())
            if route == "/__sandbox/stats" and request.method == "DELETE":
                self.reset_stats()
                return Response.empty(204)
            if route == "/__sandbox/portals" and request.method == "GET":
                return Response.json(200, {"tokens": self.tokens, "built": len(self._apps)})
            return Response.json(
                400, {"error": "give a portal's token (Authorization: Bearer ...)"}
            )
        return self._app(index or 0)(request)


def hubspot_portals(
    count: int,
    *,
    contacts: int,
    seed: int = 7,
    tier: str = "pro",
    days: int = 180,
    search_lag_seconds: float = 3.0,
    clock: Clock | None = None,
    tokens: Sequence[str] | None = None,
    ten_secondly: int | None = None,
) -> MultiPortalApp:
    """``count`` HubSpot portals, portal *i* seeded with ``seed + i``. ``ten_secondly``
    lowers the tier's ten-second limit (tests that must press against it quickly)."""
    from connectors.sandbox.hubspot.app import HubSpotSandbox

    def make(index: int, token: str) -> SandboxApp:
        sandbox = HubSpotSandbox(
            contacts=contacts,
            seed=seed + index,
            tier=tier,
            tokens=(token,),
            clock=clock,
            search_lag_seconds=search_lag_seconds,
            days=days,
        )
        if ten_secondly is not None:
            sandbox.limits.ten_secondly = ten_secondly
        return SandboxApp(sandbox, seed=seed + index)

    return MultiPortalApp(list(tokens) if tokens is not None else portal_tokens(count), make)
