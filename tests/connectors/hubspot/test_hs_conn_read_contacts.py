"""``read_contacts``: given contacts by id with their engagement, for real-time
scoring; unknown ids are left out and change reads are not disturbed."""

from __future__ import annotations

from datetime import timedelta

from hs_conn_env import read_all, sandbox_env

from connectors.base import ReadsContacts


def test_given_contacts_come_with_their_engagement_in_a_few_calls() -> None:
    with sandbox_env(150) as env:
        connector = env.connector(email_events=False, form_submissions=False)
        assert isinstance(connector, ReadsContacts)
        until = env.clock.datetime()
        full = read_all(connector, None, until=until, events_days=30)
        events = [e for b in full for e in b.events]
        busy = sorted({e.contact_id for e in events})[:3]
        state = connector.checkpoint()
        env.app.reset_stats()
        batch = connector.read_contacts(
            [*busy, busy[0], "999999999"], events_since=until - timedelta(days=30)
        )
        assert sorted(c.id for c in batch.contacts) == busy
        got = {(e.contact_id, e.type, e.occurred_at) for e in batch.events}
        want = {(e.contact_id, e.type, e.occurred_at) for e in events if e.contact_id in busy}
        assert got == want and got  # what the change read found for them
        routes = env.stats()["by_route"]
        assert routes["POST /crm/v3/objects/contacts/batch/read"] == 1  # one batch read
        assert not any("search" in r or "/email/" in r for r in routes)  # no window reads
        assert batch.state is None and connector.checkpoint() == state
        assert connector.read_contacts([], events_since=until).contacts == ()
