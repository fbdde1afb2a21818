"""HubSpot change reads against the sandbox's real loopback server."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hs_conn_env import Env, read_all, sandbox_env

from connectors.base import ContactRecord, Merge, ReadBatch


def _ids(batches: list[ReadBatch]) -> list[str]:
    return [c.id for b in batches for c in b.contacts]


def _only_last_has_cursor(batches: list[ReadBatch]) -> None:
    assert batches and batches[-1].cursor is not None
    assert all(b.cursor is None for b in batches[:-1])


def test_full_read_delivers_every_live_contact_once_normalised() -> None:
    with sandbox_env(300) as env:
        connector = env.connector(batch_size=120)
        until = env.clock.datetime()
        batches = read_all(connector, None, until=until, events_days=90)
        ids = _ids(batches)
        assert len(ids) == len(set(ids)) and set(ids) == env.contact_ids()
        _only_last_has_cursor(batches)
        assert len(batches) == math.ceil(len(ids) / 120)
        contact: ContactRecord = batches[0].contacts[0]
        assert isinstance(contact.fields["company_size"], int)
        created = contact.fields["created_at"]
        assert isinstance(created, datetime) and created.tzinfo is not None
        assert all(
            v != "" for c in (b.contacts for b in batches) for x in c for v in x.fields.values()
        )
        # the list endpoint at its largest page: one call per 100 contacts
        routes = env.stats()["by_route"]
        assert routes["GET /crm/v3/objects/contacts"] == math.ceil(len(ids) / 100)
        events = [e for b in batches for e in b.events]
        assert len({e.id for e in events}) == len(events)
        types = Counter(e.type for e in events)
        assert types["email_open"] and types["call"] and types["form_submit"] and types["page_view"]
        assert all(e.occurred_at >= until - timedelta(days=90) for e in events)
        # the seeded duplicates come back as merges onto their survivors
        merges = [m for b in batches for m in b.merges]
        assert merges and all(isinstance(m, Merge) for m in merges)
        assert {m.into_id for m in merges} <= set(ids)
        assert not {m.merged_id for m in merges} & set(ids)
        # the merged-away contacts' e-mail events follow them to their survivors
        start = str(int((until - timedelta(days=90)).timestamp() * 1000))

        def sandbox_events(address: str) -> int:
            answer = env.get(
                "/email/public/v1/events", recipient=address, startTimestamp=start, limit=1000
            ).json()
            return len(answer["events"])

        from_merged = 0
        for survivor in {m.into_id for m in merges}:
            props = env.get(
                f"/crm/v3/objects/contacts/{survivor}", properties="email,hs_additional_emails"
            ).json()["properties"]
            extra = sum(sandbox_events(a) for a in props["hs_additional_emails"].split(";"))
            expected = sandbox_events(props["email"]) + extra
            got = [
                e for e in events if e.contact_id == survivor and e.id.startswith("hs-mkt-email:")
            ]
            assert len(got) == expected
            from_merged += extra
        assert from_merged > 0
        assert env.stats()["by_status"].get("429") is None
        connector.close()


def test_full_read_events_are_stable_across_reads() -> None:
    with sandbox_env(120) as env:
        connector = env.connector()
        until = env.clock.datetime()
        first = {
            e.id: e
            for b in read_all(connector, None, until=until, events_days=60)
            for e in b.events
        }
        second = {
            e.id: e
            for b in read_all(connector, None, until=until, events_days=60)
            for e in b.events
        }
        assert first == second


def _incremental(env: Env, changed_at_once: int, spread: int) -> tuple[set[str], int]:
    """``changed_at_once`` contacts changed at one instant, then ``spread`` more in
    small groups one second apart; returns the changed ids and how many still share
    the first instant."""
    env.clock.advance(3600)
    shared = set(env.hs.simulate_activity(changed_at_once, seed=1))
    later: set[str] = set()
    seed = 100
    while len(later) < spread:
        env.clock.advance(1)
        later |= set(env.hs.simulate_activity(min(500, spread - len(later)), seed=seed))
        seed += 1
    env.clock.advance(60)  # past the search index lag
    return shared | later, len(shared - later)


def _check_incremental(env: Env, changed: set[str]) -> None:
    connector = env.connector(email_events=False, form_submissions=False)
    start = env.clock.datetime() - timedelta(minutes=90)  # before any change
    cursor = {"version": 1, "since": str(int(start.timestamp() * 1000)), "boundary": {}}
    until = env.clock.datetime()
    env.app.reset_stats()
    batches = read_all(connector, cursor, until=until, events_days=0.01)
    ids = _ids(batches)
    assert len(ids) == len(set(ids)), "a contact was delivered twice"
    assert set(ids) == changed, "a changed contact was missed"
    _only_last_has_cursor(batches)
    new_cursor = batches[-1].cursor
    assert new_cursor is not None and int(new_cursor["since"]) == int(until.timestamp() * 1000)
    searches = env.stats()["by_route"]["POST /crm/v3/objects/contacts/search"]
    assert searches <= math.ceil(len(changed) / 200) + 1
    assert env.stats()["by_status"].get("429") is None
    # the next run re-reads the look-back window but delivers nothing twice
    again = read_all(connector, new_cursor, until=env.clock.datetime(), events_days=0.01)
    assert _ids(again) == []
    connector.close()


def test_incremental_crosses_the_10k_cap_with_one_shared_timestamp() -> None:
    with sandbox_env(10_800) as env:
        changed, sharing = _incremental(env, 10_500, 200)
        assert sharing > 10_000
        _check_incremental(env, changed)


@pytest.mark.slow
def test_incremental_25k_changed_12k_sharing_one_timestamp() -> None:
    with sandbox_env(25_600) as env:
        changed, sharing = _incremental(env, 30_000, 12_900)  # all, then 12,900 again later
        assert len(changed) >= 25_000 and sharing >= 12_000
        _check_incremental(env, changed)


@pytest.mark.slow
def test_full_read_of_25k_contacts() -> None:
    with sandbox_env(25_600) as env:
        connector = env.connector()
        batches = read_all(connector, None, until=env.clock.datetime(), events_days=0.01)
        ids = _ids(batches)
        assert len(ids) == len(set(ids)) == len(env.contact_ids()) >= 25_000
        connector.close()


def test_cursor_never_passes_until_and_late_index_is_caught_by_look_back() -> None:
    with sandbox_env(200, search_lag_seconds=3.0) as env:
        connector = env.connector()
        cursor = {"version": 1, "since": str(int(env.clock.now() * 1000)), "boundary": {}}
        env.clock.advance(100)
        lagged = set(env.hs.simulate_activity(20, seed=3))
        until = env.clock.datetime()  # the index has not caught up with those writes yet
        first = read_all(connector, cursor, until=until)
        assert set(_ids(first)) == set()
        assert first[-1].cursor is not None
        assert int(first[-1].cursor["since"]) == int(until.timestamp() * 1000)
        env.clock.advance(5)
        after_until = set(env.hs.simulate_activity(5, seed=4))  # after this run's start
        env.clock.advance(30)
        second = read_all(connector, first[-1].cursor, until=env.clock.datetime())
        assert set(_ids(second)) == lagged | after_until
        connector.close()


def test_merge_and_archive_between_runs() -> None:
    with sandbox_env(200) as env:
        connector = env.connector()
        cursor = {"version": 1, "since": str(int(env.clock.now() * 1000)), "boundary": {}}
        env.clock.advance(60)
        ids = sorted(env.contact_ids())
        survivor, merged, archived = ids[10], ids[11], ids[12]
        headers = {"Authorization": "Bearer " + connector.transport._token}  # type: ignore[operator]
        import requests

        r = requests.post(
            env.base_url + "/crm/v3/objects/contacts/merge",
            json={"primaryObjectId": survivor, "objectIdToMerge": merged},
            headers=headers,
            timeout=10,
        )
        assert r.status_code == 200
        # HubSpot (since 2024) merges two contacts into a new record with a new id
        merged_into = str(r.json()["id"])
        assert merged_into not in (survivor, merged)
        r = requests.delete(
            env.base_url + f"/crm/v3/objects/contacts/{archived}", headers=headers, timeout=10
        )
        assert r.status_code == 204
        env.clock.advance(30)
        batches = read_all(connector, cursor, until=env.clock.datetime())
        merges = [m for b in batches for m in b.merges]
        assert Merge(merged, merged_into) in merges and Merge(survivor, merged_into) in merges
        assert merged_into in _ids(batches)
        assert not {survivor, merged} & set(_ids(batches))
        assert archived in batches[-1].deletions
        # writes to a merged-away id land on the merged record
        result = connector.write_scores(
            [
                __import__("connectors.base", fromlist=["ScoreUpdate"]).ScoreUpdate(
                    merged, {"hs_lead_status": "OPEN"}
                )
            ]
        )
        assert result.succeeded == (merged,)
        connector.close()


def test_events_since_filters_and_fallback_when_forms_are_off() -> None:
    with sandbox_env(150) as env:
        connector = env.connector(form_submissions=False, email_events=False)
        until = env.clock.datetime()
        batches = read_all(connector, None, until=until, events_days=30)
        events = [e for b in batches for e in b.events]
        routes = env.stats()["by_route"]
        assert not any("form-integrations" in r or "/email/" in r for r in routes)
        summary = [e for e in events if e.id.startswith("hs-summary:")]
        assert {e.type for e in summary} >= {"page_view", "email_open"}
        assert all(e.occurred_at >= until - timedelta(days=30) for e in events)
        connector.close()


def test_enterprise_web_analytics_when_enabled() -> None:
    with sandbox_env(40, tier="enterprise") as env:
        connector = env.connector(tier="enterprise", web_analytics=True)
        batches = read_all(connector, None, until=env.clock.datetime(), events_days=60)
        web = [e for b in batches for e in b.events if e.id.startswith("hs-web:")]
        assert web and {e.type for e in web} <= {"page_view", "e_submitted_form"}
        assert not any(
            e.id.startswith("hs-summary:") and e.type == "page_view"
            for b in batches
            for e in b.events
        )
        connector.close()


def test_unreadable_cursor_is_a_config_error() -> None:
    from connectors.base import ConnectorConfigError

    with sandbox_env(20) as env:
        connector = env.connector()
        with pytest.raises(ConnectorConfigError, match="cursor"):
            list(
                connector.read_changes(
                    {"since": "x"}, until=datetime.now(UTC), events_since=datetime.now(UTC)
                )
            )
        connector.close()
