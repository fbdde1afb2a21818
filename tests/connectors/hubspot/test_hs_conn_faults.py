"""HubSpot failures: rate limits, 5xx storms, expired tokens, quota, secrets."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from hs_conn_env import OAUTH, TOKEN, Rule, error_json, read_all, sandbox_env

from connectors.base import (
    AuthError,
    CRMResponseError,
    FieldSpec,
    QuotaExhausted,
    ScoreUpdate,
)
from connectors.sandbox import Request, Response


def _is_list(request: Request) -> bool:
    return request.method == "GET" and request.path.rstrip("/") == "/crm/v3/objects/contacts"


def _rate_limited(retry_after: str | None) -> Rule:
    def answer(_request: Request) -> Response:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = {
            "status": "error",
            "message": "You have reached your ten secondly limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": "c0ffee",
            "policyName": "TEN_SECONDLY_ROLLING",
        }
        return Response.json(429, body, headers)

    return Rule(_is_list, answer, times=2)


def test_429_with_retry_after_waits_that_long() -> None:
    with sandbox_env(150) as env:
        env.flavour.rules.append(_rate_limited("7"))
        connector = env.connector()
        batches = read_all(connector, None, until=env.clock.datetime())
        assert sum(len(b.contacts) for b in batches) == len(env.contact_ids())
        assert env.sleeps[:2] == [7.0, 7.0]
        assert env.stats()["by_status"]["429"] == 2
        connector.close()


def test_429_without_retry_after_backs_off_exponentially() -> None:
    with sandbox_env(150) as env:
        env.flavour.rules.append(_rate_limited(None))
        connector = env.connector()
        batches = read_all(connector, None, until=env.clock.datetime())
        assert sum(len(b.contacts) for b in batches) == len(env.contact_ids())
        first, second = env.sleeps[:2]
        assert 1.0 <= first <= 2.0 and 2.0 <= second <= 3.0
        connector.close()


def test_normal_sync_sees_no_429_at_a_low_tier() -> None:
    with sandbox_env(2500, tier="starter") as env:
        connector = env.connector(tier="starter")
        connector.ensure_fields([FieldSpec("lead_score")])
        batches = read_all(connector, None, until=env.clock.datetime(), events_days=60)
        ids = [c.id for b in batches for c in b.contacts]
        connector.write_scores([ScoreUpdate(cid, {"lead_score": 1}) for cid in ids])
        stats = env.stats()
        assert stats["total"] > 100  # more than one ten-second window's worth
        assert "429" not in stats["by_status"]
        assert connector.budget().calls == stats["total"]
        assert sum(env.sleeps) > 0  # the limiter paced the run
        connector.close()


def test_5xx_storm_gives_bounded_retries_then_clean_error() -> None:
    with sandbox_env(50) as env:
        connector = env.connector(max_attempts=4)
        env.faults(error_rate=1.0, error_status=503)
        with pytest.raises(CRMResponseError) as info:
            read_all(connector, None, until=env.clock.datetime())
        assert env.stats()["total"] == 4 and len(env.sleeps) == 3
        message = str(info.value)
        assert "\n" not in message and "503" in message and "4 attempts" in message
        assert info.value.__cause__ is None
        connector.close()


def test_plain_create_is_not_resent_blindly_on_5xx() -> None:
    with sandbox_env(30) as env:
        connector = env.connector()
        connector.ensure_fields([])
        contact = sorted(env.contact_ids())[0]
        env.flavour.rules.append(
            Rule(
                lambda r: r.method == "POST" and r.path.rstrip("/") == "/crm/v3/objects/deals",
                error_json(502, "Bad Gateway"),
                times=1,
            )
        )
        from test_hs_conn_writes import _deal, _deals_with_key

        result = connector.create_deal(_deal(contact))
        routes = env.stats()["by_route"]
        assert result.created and _deals_with_key(env, contact, "deal-key-1") == [result.id]
        assert routes["POST /crm/v3/objects/deals"] == 2  # the 502, then one create
        reads_by_key = sum(
            n for r, n in routes.items() if r.startswith("GET /crm/v3/objects/deals/")
        )
        assert reads_by_key == 2  # before the first create, and after the 502
        connector.close()


def test_token_expiry_mid_run_refreshes_and_continues() -> None:
    with sandbox_env(400) as env:
        connector = env.connector(oauth=OAUTH)
        env.faults(expire_token_after=6)
        batches = read_all(connector, None, until=env.clock.datetime(), events_days=5)
        assert sum(len(b.contacts) for b in batches) == len(env.contact_ids())
        assert env.stats()["by_status"]["401"] == 1
        assert connector.transport.token_refreshes == 2  # the first token, then one refresh
        connector.close()


def test_oauth_token_is_refreshed_before_it_expires() -> None:
    with sandbox_env(30) as env:
        connector = env.connector(oauth=OAUTH)
        connector.list_owners()
        env.clock.advance(26 * 60)  # the token has four minutes left
        connector.list_owners()
        assert connector.transport.token_refreshes == 2
        assert "401" not in env.stats()["by_status"]
        connector.close()


def test_refused_refresh_token_is_auth_error_without_secrets() -> None:
    with sandbox_env(10) as env:
        connector = env.connector(oauth={**OAUTH, "refresh_token": "rt-wrong-0099"})
        with pytest.raises(AuthError) as info:
            connector.list_owners()
        assert "rt-wrong-0099" not in str(info.value)
        assert "sh-secret-0042" not in str(info.value)
        connector.close()


def test_quota_share_stops_the_read_without_a_cursor() -> None:
    with sandbox_env(600) as env:
        # 650,000 remain on the pro tier: a share of 1e-5 allows six calls
        connector = env.connector(quota_share=0.00001)
        seen: list[object] = []
        with pytest.raises(QuotaExhausted, match="quota_share"):
            for batch in connector.read_changes(
                None,
                until=env.clock.datetime(),
                events_since=env.clock.datetime() - timedelta(days=1),
            ):
                seen.append(batch.cursor)
        assert all(c is None for c in seen)  # the cursor is not advanced
        assert env.stats()["total"] == 6
        connector.close()


def test_daily_limit_answer_stops_cleanly() -> None:
    with sandbox_env(50) as env:
        env.flavour.rules.append(
            Rule(
                _is_list,
                error_json(
                    429,
                    "You have reached your daily limit.",
                    errorType="RATE_LIMIT",
                    policyName="DAILY",
                ),
                times=None,
            )
        )
        connector = env.connector()
        with pytest.raises(QuotaExhausted):
            read_all(connector, None, until=env.clock.datetime())
        assert env.stats()["total"] == 1 and env.sleeps == []
        connector.close()


def _echo_auth(status: int) -> object:
    """An error body that echoes the caller's bearer token, as some proxies do."""

    def answer(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        body = {"status": "error", "message": f"rejected {auth} (token {auth[7:]})"}
        return Response.json(status, body)

    return answer


def test_planted_token_never_reaches_messages_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    with sandbox_env(30) as env:
        caplog.set_level(logging.DEBUG)
        env.flavour.rules.append(Rule(_is_list, _echo_auth(500), times=None))  # type: ignore[arg-type]
        connector = env.connector(max_attempts=2)
        with pytest.raises(CRMResponseError) as info:
            read_all(connector, None, until=env.clock.datetime())
        oauth_connector = env.connector(oauth=OAUTH, max_attempts=2)
        with pytest.raises(CRMResponseError) as info2:
            read_all(oauth_connector, None, until=env.clock.datetime())
        issued = oauth_connector.transport._token or ""
        assert issued.startswith("sbx-oauth-")
        env.flavour.rules.clear()
        planted = f"duplicate {TOKEN}"
        env.flavour.rules.append(
            Rule(lambda r: "batch/update" in r.path, error_json(409, planted), times=None)
        )
        connector.ensure_fields([FieldSpec("lead_score")])
        result = connector.write_scores(
            [ScoreUpdate(sorted(env.contact_ids())[0], {"lead_score": 3})]
        )
        failures = [f.reason for f in result.failed]
        texts = [str(info.value), repr(info.value), str(info2.value), caplog.text, *failures]
        assert failures and "rejected" in str(info.value) and "***" in str(info2.value)
        for text in texts:
            assert TOKEN not in text and issued not in text
        for text in [str(info2.value), caplog.text]:
            assert OAUTH["refresh_token"] not in text and OAUTH["client_secret"] not in text
        assert TOKEN not in failures[0]
        connector.close()
        oauth_connector.close()


def test_search_and_batch_update_posts_are_retried() -> None:
    with sandbox_env(120) as env:
        connector = env.connector()
        connector.ensure_fields([FieldSpec("lead_score")])
        cursor = {"version": 1, "since": str(int(env.clock.now() * 1000)), "boundary": {}}
        env.clock.advance(60)
        changed = set(env.hs.simulate_activity(30, seed=5))
        env.clock.advance(30)
        env.flavour.rules += [
            Rule(lambda r: r.path.endswith("/contacts/search"), error_json(503, "overloaded")),
            Rule(
                lambda r: r.path.endswith("/contacts/batch/update"), error_json(502, "Bad Gateway")
            ),
        ]
        batches = read_all(connector, cursor, until=env.clock.datetime())
        ids = [c.id for b in batches for c in b.contacts]
        assert set(ids) == changed
        result = connector.write_scores([ScoreUpdate(cid, {"lead_score": 7}) for cid in ids])
        assert sorted(result.succeeded) == sorted(ids)
        assert env.flavour.hits == [
            "POST /crm/v3/objects/contacts/search",
            "POST /crm/v3/objects/contacts/batch/update",
        ]
        assert len(env.sleeps) == 2
        connector.close()
