"""``SharesOwnWrites``: the score writes one connector made after reads by id
(``leadsync serve``) are taken by another's change read (the scheduled run) as its
own: their echoes are skipped before any engagement is read; a contact someone
changed after the write is still delivered."""

from __future__ import annotations

from datetime import timedelta

from hs_conn_env import read_all, sandbox_env

from connectors.base import FieldSpec, ScoreUpdate, SharesOwnWrites


def test_writes_after_reads_by_id_are_skipped_by_another_connectors_read() -> None:
    with sandbox_env(60) as env:
        run = env.connector(email_events=False, form_submissions=False)
        serve = env.connector(email_events=False, form_submissions=False)
        assert isinstance(run, SharesOwnWrites) and isinstance(serve, SharesOwnWrites)
        run.ensure_fields([FieldSpec("lead_score")])
        full = read_all(run, None, until=env.clock.datetime(), events_days=30)
        state = run.checkpoint()
        wanted = [c.id for b in full for c in b.contacts][:2]
        ids = [
            c.id
            for c in serve.read_contacts(
                wanted, events_since=env.clock.datetime() - timedelta(days=1)
            ).contacts
        ]
        assert ids
        env.clock.advance(1)
        assert not serve.write_scores([ScoreUpdate(i, {"lead_score": 77.0}) for i in ids]).failed
        shared = serve.own_writes()
        assert run.with_own_writes(None, shared) is None  # a full read skips nothing
        env.clock.advance(10)
        env.app.reset_stats()
        later = run.with_own_writes(state, shared)
        batches = read_all(run, later, until=env.clock.datetime(), events_days=30)
        assert [c.id for b in batches for c in b.contacts] == []
        routes = env.stats()["by_route"]
        assert not any("associations" in r for r in routes)  # no engagement read


def test_unreadable_shared_writes_leave_the_state_as_it_was() -> None:
    with sandbox_env(20) as env:
        run = env.connector(email_events=False, form_submissions=False)
        read_all(run, None, until=env.clock.datetime(), events_days=30)
        state = run.checkpoint()
        assert run.with_own_writes(state, {"own": {"x": "y:z"}}) == state
