"""One sandbox process, many portals: each token its own records and rate limits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from connectors.sandbox import ManualClock, serve
from connectors.sandbox.multi import MultiPortalApp, hubspot_portals, portal_tokens
from scheduler.cli_sandbox import SandboxOptions, SandboxStartError, check_options


@pytest.fixture
def portals() -> Iterator[tuple[MultiPortalApp, str]]:
    clock = ManualClock()
    app = hubspot_portals(3, contacts=30, clock=clock, search_lag_seconds=0.0)
    server = serve(app, port=0)  # type: ignore[arg-type]
    try:
        yield app, server.base_url
    finally:
        server.close()


def get(url: str, token: str, path: str) -> requests.Response:
    return requests.get(url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_each_token_reaches_its_own_portal(portals: tuple[MultiPortalApp, str]) -> None:
    app, url = portals
    t1, t2, _ = app.tokens
    assert app.tokens == portal_tokens(3)
    r = requests.post(
        url + "/crm/v3/objects/contacts",
        json={"properties": {"email": "only-in-one@example.com"}},
        headers={"Authorization": f"Bearer {t1}"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    new_id = r.json()["id"]
    assert get(url, t1, f"/crm/v3/objects/contacts/{new_id}").status_code == 200
    other = get(url, t2, f"/crm/v3/objects/contacts/{new_id}")
    assert other.status_code == 404 or other.json()["properties"].get("email") != (
        "only-in-one@example.com"
    )
    assert app.stats()["portals_built"] == 2


def test_an_unknown_token_is_refused(portals: tuple[MultiPortalApp, str]) -> None:
    _, url = portals
    r = get(url, "sandbox-token", "/crm/v3/objects/contacts")
    assert r.status_code == 401
    assert r.json()["category"] == "INVALID_AUTHENTICATION"


def test_rate_limits_are_counted_per_portal(portals: tuple[MultiPortalApp, str]) -> None:
    app, url = portals
    t1, t2, _ = app.tokens
    codes = [get(url, t1, "/crm/v3/objects/contacts?limit=1").status_code for _ in range(195)]
    assert codes.count(429) == 5  # pro: 190 per ten seconds on the manual clock
    assert get(url, t2, "/crm/v3/objects/contacts?limit=1").status_code == 200
    stats = requests.get(url + "/__sandbox/stats", timeout=10).json()
    assert stats["by_status"]["429"] == 5
    assert stats["portals"] == 3


def test_the_sandbox_command_serves_many_portals_and_writes_their_tokens(tmp_path: Path) -> None:
    from tests.sandbox.hubspot.test_hs_sandbox_cli import _start

    out = tmp_path / "tokens.txt"
    stop, thread, lines = _start(
        SandboxOptions(crm="hubspot", hubspot_port=0, contacts=20, portals=4, tokens_out=out)
    )
    try:
        url = re.search(r"(http://127\.0\.0\.1:\d+)", lines[0]).group(1)  # type: ignore[union-attr]
        assert "4 portals" in lines[0]
        tokens = out.read_text(encoding="utf-8").split()
        assert tokens == portal_tokens(4)
        for token in (tokens[0], tokens[3]):
            assert get(url, token, "/crm/v3/objects/contacts?limit=2").status_code == 200
        assert get(url, "sandbox-token", "/crm/v3/objects/contacts").status_code == 401
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (SandboxOptions(portals=0), "--portals: expected a positive number"),
        (SandboxOptions(crm="both", portals=3), "--portals: only the HubSpot sandbox"),
        (SandboxOptions(portals=2, tokens_out=Path("/nonexistent/x")), "--tokens-out"),
    ],
)
def test_bad_portal_options_are_named(opts: SandboxOptions, message: str) -> None:
    with pytest.raises(SandboxStartError, match=re.escape(message)):
        check_options(opts)
