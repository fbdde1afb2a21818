"""Auth (configured tokens, OAuth refresh, expiry) and rate limits per tier."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hubspot.crm.contacts import ApiException
from hubspot.crm.contacts.exceptions import UnauthorizedException
from hubspot.oauth import TokenResponseIF

from connectors.sandbox import HubSpotSandbox, ManualClock, SandboxApp, World
from connectors.sandbox.framework import RunningServer


def test_unknown_token_is_401_invalid_authentication(hs_client_for: Any) -> None:
    client = hs_client_for("wrong-token")
    with pytest.raises(UnauthorizedException) as err:
        client.crm.contacts.basic_api.get_page(limit=1)
    body = json.loads(err.value.body)
    assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
    assert "wrong-token" not in err.value.body


def test_oauth_refresh_issues_a_token_that_expires_after_30_minutes(
    hs_client_for: Any, hs_clock: ManualClock
) -> None:
    anon = hs_client_for("")
    issued = anon.oauth.tokens_api.create(
        grant_type="refresh_token",
        client_id="sandbox-client",
        client_secret="sandbox-secret",
        refresh_token="sandbox-refresh",
    )
    assert isinstance(issued, TokenResponseIF)
    assert issued.expires_in == 1800 and issued.token_type == "bearer"
    client = hs_client_for(issued.access_token)
    assert client.crm.contacts.basic_api.get_page(limit=1).results
    hs_clock.advance(1799)
    assert client.crm.contacts.basic_api.get_page(limit=1).results
    hs_clock.advance(1)
    with pytest.raises(UnauthorizedException) as expired:
        client.crm.contacts.basic_api.get_page(limit=1)
    body = json.loads(expired.value.body)
    # an expired token has its own category, apart from unknown credentials
    assert body["category"] == "EXPIRED_AUTHENTICATION"
    assert body["message"] == "The OAuth token used to make this call expired 0 second(s) ago."
    assert issued.access_token not in expired.value.body
    hs_clock.advance(2 * 3600)
    with pytest.raises(UnauthorizedException) as expired:
        client.crm.contacts.basic_api.get_page(limit=1)
    assert "expired 2 hour(s) ago" in json.loads(expired.value.body)["message"]
    with pytest.raises(Exception) as err:
        anon.oauth.tokens_api.create(
            grant_type="refresh_token",
            client_id="sandbox-client",
            client_secret="sandbox-secret",
            refresh_token="not-the-refresh-token",
        )
    assert err.value.status == 400  # type: ignore[attr-defined]
    refused = json.loads(err.value.body)  # type: ignore[attr-defined]
    assert refused["status"] == "BAD_REFRESH_TOKEN"
    assert refused["message"] == "missing or invalid refresh token"
    assert "not-the-refresh-token" not in err.value.body  # type: ignore[attr-defined]


def test_oauth_tokens_count_as_a_public_app_without_daily_headers(
    hs_server: RunningServer, hs_http: Any
) -> None:
    form = {
        "grant_type": "refresh_token",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "refresh_token": "sandbox-refresh",
    }
    token = hs_http.post(f"{hs_server.base_url}/oauth/v1/token", data=form).json()["access_token"]
    r = hs_http.get(
        f"{hs_server.base_url}/crm/v3/objects/contacts",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.headers["X-HubSpot-RateLimit-Max"] == "110"
    assert "X-HubSpot-RateLimit-Daily" not in r.headers
    private = hs_http.get(f"{hs_server.base_url}/crm/v3/objects/contacts")
    assert private.headers["X-HubSpot-RateLimit-Max"] == "190"
    assert private.headers["X-HubSpot-RateLimit-Daily"] == "650000"


def test_expire_token_after_fault(hs_server: RunningServer, hs_http: Any, hs_client: Any) -> None:
    r = hs_http.post(f"{hs_server.base_url}/__sandbox/faults", json={"expire_token_after": 2})
    assert r.status_code == 200
    hs_client.crm.contacts.basic_api.get_page(limit=1)
    hs_client.crm.contacts.basic_api.get_page(limit=1)
    with pytest.raises(UnauthorizedException):
        hs_client.crm.contacts.basic_api.get_page(limit=1)


def _sandbox(world: World, clock: ManualClock, tier: str) -> HubSpotSandbox:
    return HubSpotSandbox(world=world, clock=clock, tier=tier, seed=3)


@pytest.mark.parametrize(
    ("tier", "allowance"), [("free", 100), ("starter", 100), ("pro", 190), ("enterprise", 190)]
)
def test_ten_second_window_per_tier(
    hs_world: World, hs_clock: ManualClock, tier: str, allowance: int, hs_mount: Any, hs_client: Any
) -> None:
    hs_mount(SandboxApp(_sandbox(hs_world, hs_clock, tier), sleep=hs_clock.sleep))
    api = hs_client.crm.contacts.basic_api
    for i in range(allowance):
        api.get_page(limit=1)
        if i == 0:
            hs_clock.advance(4)  # the window rolls: the first call leaves it 10 s later
    with pytest.raises(ApiException) as err:
        api.get_page(limit=1)
    assert err.value.status == 429
    body = json.loads(err.value.body)
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["errorType"] == "RATE_LIMIT" and body["status"] == "error"
    assert body["message"] == "You have reached your ten secondly limit."
    hs_clock.advance(6)  # the first call is now 10 s old: one slot frees
    page = api.get_page(limit=1)
    assert page.results
    with pytest.raises(ApiException):
        api.get_page(limit=1)


def test_rate_limit_headers_count_down(hs_http: Any, hs_server: RunningServer) -> None:
    first = hs_http.get(f"{hs_server.base_url}/crm/v3/objects/contacts")
    second = hs_http.get(f"{hs_server.base_url}/crm/v3/objects/contacts")
    for r in (first, second):
        assert r.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert r.headers["X-HubSpot-RateLimit-Secondly"] == "19"
        assert r.headers["X-HubSpot-Correlation-Id"]
    assert int(first.headers["X-HubSpot-RateLimit-Remaining"]) - 1 == int(
        second.headers["X-HubSpot-RateLimit-Remaining"]
    )
    assert int(first.headers["X-HubSpot-RateLimit-Daily-Remaining"]) - 1 == int(
        second.headers["X-HubSpot-RateLimit-Daily-Remaining"]
    )


def test_daily_quota(hs_sandbox: HubSpotSandbox, hs_client: Any, hs_clock: ManualClock) -> None:
    hs_sandbox.limits.daily = 3  # the real allowance is 650,000: shrink it to reach the wall
    api = hs_client.crm.contacts.basic_api
    for _ in range(3):
        api.get_page(limit=1)
    with pytest.raises(ApiException) as err:
        api.get_page(limit=1)
    assert err.value.status == 429
    body = json.loads(err.value.body)
    assert body["policyName"] == "DAILY" and body["message"] == "You have reached your daily limit."
    hs_clock.advance(12 * 3600)  # 00:00 UTC: a new day
    assert api.get_page(limit=1).results


def test_search_has_its_own_limit_and_no_rate_headers(
    hs_client: Any, hs_http: Any, hs_server: RunningServer, hs_clock: ManualClock
) -> None:
    url = f"{hs_server.base_url}/crm/v3/objects/contacts/search"
    answers = [hs_http.post(url, json={"limit": 1}) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert not any(k.lower().startswith("x-hubspot-ratelimit") for k in answers[0].headers)
    assert answers[5].json()["message"] == "You have reached your secondly limit."
    # the ten-second allowance is untouched by searches
    assert (
        hs_http.get(f"{hs_server.base_url}/crm/v3/objects/contacts").headers[
            "X-HubSpot-RateLimit-Remaining"
        ]
        == "189"
    )
    hs_clock.advance(1)
    assert hs_http.post(url, json={"limit": 1}).status_code == 200


def test_retry_after_is_sent_only_sometimes_and_the_same_way_per_seed(
    hs_world: World, hs_clock: ManualClock
) -> None:
    def pattern() -> list[bool]:
        clock = ManualClock(hs_clock.now())
        hs = HubSpotSandbox(world=hs_world, clock=clock, seed=3)
        app = SandboxApp(hs)
        from connectors.sandbox.framework import Request

        out = []
        for _ in range(40):
            r = app(
                Request(
                    "POST",
                    "/crm/v3/objects/contacts/search",
                    headers={"authorization": "Bearer sandbox-token"},
                    body=b"{}",
                )
            )
            if r.status == 429:
                out.append("Retry-After" in r.headers)
        return out

    first = pattern()
    assert len(first) == 35
    assert any(first) and not all(first)
    assert pattern() == first


def test_rate_limit_storm_fault(hs_http: Any, hs_server: RunningServer, hs_client: Any) -> None:
    hs_http.post(f"{hs_server.base_url}/__sandbox/faults", json={"rate_limit_storm": True})
    with pytest.raises(ApiException) as err:
        hs_client.crm.contacts.basic_api.get_page(limit=1)
    assert err.value.status == 429
    assert json.loads(err.value.body)["policyName"] == "TEN_SECONDLY_ROLLING"
    hs_http.post(f"{hs_server.base_url}/__sandbox/faults", json={})
    assert hs_client.crm.contacts.basic_api.get_page(limit=1).results


def test_web_analytics_events_need_enterprise(
    hs_world: World, hs_clock: ManualClock, hs_mount: Any, hs_client: Any
) -> None:
    with pytest.raises(Exception) as err:
        hs_client.events.events_api.get_page(object_type="contact", limit=5)
    assert err.value.status == 403  # type: ignore[attr-defined]
    assert json.loads(err.value.body)["category"] == "MISSING_SCOPES"  # type: ignore[attr-defined]
    hs = _sandbox(hs_world, hs_clock, "enterprise")
    hs_mount(SandboxApp(hs))
    table = hs.store.tables["contacts"]
    slot = next(
        s for s in range(table.n) if int(table.props(s).get("hs_analytics_num_page_views", 0)) > 3
    )
    contact_id = str(int(table.ids[slot]))
    page = hs_client.events.events_api.get_page(
        object_type="contact", object_id=int(contact_id), event_type="e_visited_page", limit=1000
    )
    assert page.results and {e.object_id for e in page.results} == {contact_id}
    views = hs_client.crm.contacts.basic_api.get_by_id(
        contact_id, properties=["hs_analytics_num_page_views"]
    ).properties["hs_analytics_num_page_views"]
    assert len(page.results) == int(views or 0)


def test_unknown_tier_is_a_clear_error(hs_world: World) -> None:
    with pytest.raises(ValueError, match="tier: expected one of"):
        HubSpotSandbox(world=hs_world, tier="platinum")
