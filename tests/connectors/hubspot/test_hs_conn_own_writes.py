"""Incremental reads after our own score writes: cheap when nothing else changed,
and never blind to someone else's change (against the real loopback sandbox)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
import requests
from hs_conn_env import TOKEN, Env, Rule, read_all, sandbox_env

from connectors.base import DealSpec, FieldSpec, ReadBatch, ScoreUpdate
from connectors.hubspot import HubSpotConnector
from connectors.hubspot.own_writes import OwnWrites, fields_digest
from connectors.sandbox import Request

SCORE = {"score_fields": {"lead_score": "leadsync_score"}}
QUARTER_HOUR = 15 * 60
SEARCH = "POST /crm/v3/objects/contacts/search"


def _ids(batches: list[ReadBatch]) -> list[str]:
    return [c.id for b in batches for c in b.contacts]


def _stored(cursor: Any) -> dict[str, Any]:
    """The cursor as the state store hands it back: through JSON."""
    return json.loads(json.dumps(cursor))  # type: ignore[no-any-return]


def _edit(env: Env, contact_id: str, **properties: str) -> None:
    """Another client (a rep, a workflow) changes a contact."""
    r = requests.patch(
        f"{env.base_url}/crm/v3/objects/contacts/{contact_id}",
        json={"properties": properties},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text


@dataclass
class Baseline:
    """A full read whose every contact then got a score written."""

    cursor: Any  # the stored state after the writes (``checkpoint()``)
    ids: list[str]
    connector: HubSpotConnector


def _baseline(
    env: Env,
    *,
    before_write: float = 2.0,
    edit_before_write: str | None = None,
    unwritten: frozenset[str] = frozenset(),
) -> Baseline:
    connector = env.connector(**SCORE)
    connector.ensure_fields([FieldSpec("lead_score")])
    batches = read_all(connector, None, until=env.clock.datetime())
    ids = _ids(batches)
    if edit_before_write is not None:
        env.clock.advance(before_write / 2)
        _edit(env, edit_before_write, jobtitle="Chief Revenue Officer")
        env.clock.advance(before_write / 2)
    else:
        env.clock.advance(before_write)
    written = [cid for cid in ids if cid not in unwritten]
    result = connector.write_scores(
        [ScoreUpdate(cid, {"lead_score": 10 + i % 60}) for i, cid in enumerate(written)]
    )
    assert sorted(result.succeeded) == sorted(written) and result.failed == ()
    return Baseline(_checkpoint(connector), ids, connector)


def _checkpoint(connector: HubSpotConnector) -> dict[str, Any]:
    """What the sync stores after its writes."""
    state = connector.checkpoint()
    assert state is not None
    return _stored(state.to_json())


def _read(env: Env, cursor: Any) -> tuple[list[ReadBatch], HubSpotConnector, int]:
    """One incremental run with a fresh connector, as the next sync would; returns the
    batches, the connector and the calls the sandbox counted."""
    connector = env.connector(**SCORE)
    env.app.reset_stats()
    batches = read_all(connector, _stored(cursor), until=env.clock.datetime())
    calls = int(env.stats()["total"])
    assert connector.budget().calls == calls
    return batches, connector, calls


@contextmanager
def _requests_seen(env: Env) -> Iterator[list[Request]]:
    """Every request the sandbox receives inside the block (answered normally)."""
    seen: list[Request] = []

    def record(request: Request) -> bool:
        seen.append(request)
        return False

    rule = Rule(when=record, answer=lambda r: None, times=None)  # type: ignore[arg-type,return-value]
    env.flavour.rules.insert(0, rule)
    try:
        yield seen
    finally:
        env.flavour.rules.remove(rule)


def test_nothing_changed_after_our_writes_costs_two_calls_and_returns_nobody() -> None:
    with sandbox_env(300) as env:
        base = _baseline(env)
        assert len(base.ids) > 250
        env.clock.advance(QUARTER_HOUR)
        until = env.clock.datetime()
        batches, connector, calls = _read(env, base.cursor)
        assert _ids(batches) == [] and calls <= 2
        assert connector.fast_reads == 1
        cursor = batches[-1].cursor
        assert cursor is not None and int(cursor["since"]) == int(until.timestamp() * 1000)
        # our writes are older than the next read's look-back window: forgotten
        assert OwnWrites.unpack(cursor).stamps == {}
        again, _, calls = _read(env, cursor)
        assert _ids(again) == [] and calls <= 2


def test_a_contact_edited_by_someone_else_after_our_writes_is_the_only_one_returned() -> None:
    with sandbox_env(300) as env:
        base = _baseline(env)
        env.clock.advance(60)
        edited = base.ids[17]
        _edit(env, edited, jobtitle="VP Sales")
        env.clock.advance(QUARTER_HOUR)
        batches, connector, calls = _read(env, base.cursor)
        contacts = [c for b in batches for c in b.contacts]
        assert [c.id for c in contacts] == [edited]
        assert contacts[0].fields["job_title"] == "VP Sales"
        assert connector.echoes_skipped == len(base.ids) - 1
        # the cost is the search pages, plus engagement for that one contact only
        routes = env.stats()["by_route"]
        searches = routes[SEARCH]
        assert searches <= 1 + math.ceil(len(base.ids) / 200)
        per_form = "GET /form-integrations/v1/submissions/forms/{id}"
        assert all(n == 1 for r, n in routes.items() if r not in (per_form, SEARCH))
        assert calls == searches + len(routes) - 2 + routes[per_form]
        assert not any(r.startswith("POST /crm/v3/objects/contacts/batch") for r in routes)
        assert {e.contact_id for b in batches for e in b.events} <= {edited}


def test_a_contact_edited_between_our_read_and_our_write_is_returned() -> None:
    with sandbox_env(300) as env:
        edited = sorted(env.contact_ids())[40]
        # edited 20 s after the read, written 20 s later, once the index has the edit
        base = _baseline(env, before_write=40, edit_before_write=edited)
        read = base.connector._read
        assert read is not None and read.suspects is not None and set(read.suspects) == {edited}
        assert "own_dirty_until" in base.cursor
        env.clock.advance(QUARTER_HOUR)
        batches, connector, _calls = _read(env, base.cursor)
        contacts = [c for b in batches for c in b.contacts]
        assert [c.id for c in contacts] == [edited]
        assert contacts[0].fields["job_title"] == "Chief Revenue Officer"
        assert connector.fast_reads == 0


def test_a_lagging_index_costs_extra_reads_but_misses_nothing() -> None:
    with sandbox_env(300, search_lag_seconds=3.0) as env:
        base = _baseline(env, before_write=0)
        env.clock.advance(1)
        edited = base.ids[5]
        _edit(env, edited, jobtitle="Head of Growth")
        # at once: the index has neither our writes nor the edit
        lagging, connector, calls = _read(env, base.cursor)
        assert connector.fast_reads == 0 and calls > 2  # the count could not vouch
        assert _ids(lagging) == []  # the stale index shows only what was delivered
        env.clock.advance(QUARTER_HOUR)
        later, connector, _calls = _read(env, lagging[-1].cursor)
        assert [c.fields["job_title"] for b in later for c in b.contacts] == ["Head of Growth"]
        assert _ids(later) == [edited] and connector.echoes_skipped == len(base.ids) - 1


def test_a_new_email_event_shows_up_and_time_window_sources_read_only_since_the_cursor() -> None:
    with sandbox_env(300) as env:
        with _requests_seen(env) as seen:
            base = _baseline(env)
        full_start = [
            int(r.param("startTimestamp") or 0) for r in seen if r.path == "/email/public/v1/events"
        ]
        # a full read takes the whole events_since window (read_all: one day)
        assert full_start == [round((env.clock.now() - 2 - 86400) * 1000)]
        env.clock.advance(QUARTER_HOUR)
        since = int(base.cursor["since"])
        with _requests_seen(env) as seen:
            quiet, _, _calls = _read(env, base.cursor)
        # nothing changed: the portal-wide sources are not read at all
        assert not any("/email/" in r.path or "form-integrations" in r.path for r in seen)
        env.clock.advance(QUARTER_HOUR)
        active = env.hs.simulate_activity(1, seed=11)
        env.clock.advance(60)
        cursor = quiet[-1].cursor
        assert cursor is not None
        with _requests_seen(env) as seen:
            batches, _connector, _calls = _read(env, cursor)
        assert _ids(batches) == active
        opens = [
            e
            for b in batches
            for e in b.events
            if e.type == "email_open" and e.id.startswith("hs-mkt-email:")
        ]
        assert opens and {e.contact_id for e in opens} == set(active)
        assert max(e.occurred_at for e in opens) >= env.clock.datetime() - timedelta(seconds=61)
        starts = [
            int(r.param("startTimestamp") or 0) for r in seen if r.path == "/email/public/v1/events"
        ]
        # only since the previous read (its cursor minus the look-back)
        assert starts == [int(cursor["since"]) - 300_000]
        assert since < int(cursor["since"])


def test_deletion_after_our_writes_is_reported_and_stays_cheap() -> None:
    with sandbox_env(200) as env:
        base = _baseline(env)
        env.clock.advance(60)
        gone = base.ids[3]
        r = requests.delete(
            f"{env.base_url}/crm/v3/objects/contacts/{gone}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert r.status_code == 204
        env.clock.advance(QUARTER_HOUR)
        batches, _connector, calls = _read(env, base.cursor)
        assert _ids(batches) == [] and calls <= 2
        assert batches[-1].deletions == (gone,)


def test_a_new_contact_from_someone_else_is_returned() -> None:
    with sandbox_env(200) as env:
        base = _baseline(env)
        env.clock.advance(30)
        r = requests.post(
            f"{env.base_url}/crm/v3/objects/contacts",
            json={"properties": {"email": "new.lead@example.org", "firstname": "Nia"}},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        env.clock.advance(QUARTER_HOUR)
        batches, connector, _calls = _read(env, base.cursor)
        assert _ids(batches) == [r.json()["id"]]
        assert connector.echoes_skipped == len(base.ids)


@pytest.mark.parametrize("same_connector", [False, True])
def test_writes_before_a_read_are_remembered_but_checked(same_connector: bool) -> None:
    with sandbox_env(120) as env:
        base = _baseline(env)
        stored = _stored(base.cursor)  # the sync stores it at the end of its run
        env.clock.advance(QUARTER_HOUR)
        # a run that retries rejected records before it reads (with the connector of
        # the run before, or a new one)
        connector = base.connector if same_connector else env.connector(**SCORE)
        edited, retried = base.ids[9], base.ids[10]
        _edit(env, edited, jobtitle="Founder")
        env.clock.advance(10)
        connector.write_scores(
            [ScoreUpdate(edited, {"lead_score": 99}), ScoreUpdate(retried, {"lead_score": 98})]
        )
        env.clock.advance(10)
        batches = read_all(connector, stored, until=env.clock.datetime())
        assert connector.fast_reads == 0
        # the retried contact is an echo of our write: its digest is the one kept
        # with the earlier write; the edited one's fields differ
        assert _ids(batches) == [edited]
        own = OwnWrites.unpack(_stored(batches[-1].cursor))
        assert {edited, retried} <= set(own.stamps) and own.dirty_until is not None


def test_digest_ignores_stamps_and_our_score_property() -> None:
    props = {"email": "a@example.org", "lastmodifieddate": "2026-01-01T00:00:00Z"}
    base = fields_digest(props, ["leadsync_score"])
    assert fields_digest({**props, "leadsync_score": "40"}, ["leadsync_score"]) == base
    assert fields_digest({**props, "lastmodifieddate": "2026-02-01T00:00:00Z"}, []) == base
    assert fields_digest({**props, "email": "b@example.org"}, ["leadsync_score"]) != base


def test_own_writes_round_trip_expire_and_stay_bounded() -> None:
    own = OwnWrites()
    own.record("1", 1000, "aa", dirty=False)
    own.record("2", 1000, "bb", dirty=True)
    own.record("3", 5000, "", dirty=False)
    back = OwnWrites.unpack(_stored(own.pack()))
    assert back == own
    assert back.is_echo("1", 1000, "aa") and not back.is_echo("1", 1001, "aa")
    assert not back.is_echo("3", 5000, "")  # an unknown digest never matches
    later = back.expire(2000)
    assert set(later.stamps) == {"3"} and later.dirty_until is None
    assert back.dirty_since(1000) and not back.dirty_since(1001)


def test_an_earlier_write_changed_by_someone_else_during_a_later_run_is_returned() -> None:
    with sandbox_env(200) as env:
        base = _baseline(env)
        env.clock.advance(60)
        # run 2: nothing changed yet, one count
        second, connector, calls = _read(env, base.cursor)
        assert _ids(second) == [] and connector.fast_reads == 1 and calls <= 2
        edited, decayed = base.ids[7], base.ids[8]
        env.clock.advance(8)
        _edit(env, edited, jobtitle="Procurement")  # after run 2's read
        env.clock.advance(10)
        # run 2 then writes another contact's decayed score, later than that edit
        connector.write_scores([ScoreUpdate(decayed, {"lead_score": 3})])
        env.clock.advance(QUARTER_HOUR)
        third, connector, _calls = _read(env, _checkpoint(connector))
        assert _ids(third) == [edited] and connector.fast_reads == 0
        assert connector.echoes_skipped == len(base.ids) - 1


def test_writes_between_batches_of_a_read_are_remembered_too() -> None:
    with sandbox_env(300) as env:
        # changed shortly before the read (some in its last batches), never written
        recent = set(env.hs.simulate_activity(12, seed=3))
        env.clock.advance(30)
        connector = env.connector(batch_size=100, **SCORE)
        connector.ensure_fields([FieldSpec("lead_score")])
        written: list[str] = []
        for batch in connector.read_changes(
            None, until=env.clock.datetime(), events_since=env.clock.datetime() - timedelta(1)
        ):
            env.clock.advance(1)
            ids = [c.id for c in batch.contacts if c.id not in recent]
            connector.write_scores([ScoreUpdate(cid, {"lead_score": 50}) for cid in ids])
            written += ids
        cursor = _checkpoint(connector)
        assert len(written) > 250
        assert set(OwnWrites.unpack(cursor).stamps) == set(written)
        assert cursor["boundary_checked"] is True
        env.clock.advance(QUARTER_HOUR)
        batches, connector, calls = _read(env, cursor)
        assert _ids(batches) == [] and calls <= 2


def test_a_merge_that_balances_the_count_during_a_later_run_is_returned() -> None:
    with sandbox_env(200) as env:
        base = _baseline(env)
        env.clock.advance(60)
        second, connector, _calls = _read(env, base.cursor)
        assert _ids(second) == [] and connector.fast_reads == 1
        headers = {"Authorization": f"Bearer {TOKEN}"}
        env.clock.advance(5)
        # after run 2's read: a new contact, merged at once with one of ours; the
        # merged record replaces both, so the count of changed contacts is unchanged
        r = requests.post(
            f"{env.base_url}/crm/v3/objects/contacts",
            json={"properties": {"email": "walk.in@example.org"}},
            headers=headers,
            timeout=10,
        )
        assert r.status_code == 201, r.text
        r = requests.post(
            f"{env.base_url}/crm/v3/objects/contacts/merge",
            json={"primaryObjectId": base.ids[20], "objectIdToMerge": r.json()["id"]},
            headers=headers,
            timeout=10,
        )
        assert r.status_code == 200, r.text
        merged_into = str(r.json()["id"])
        env.clock.advance(10)
        connector.write_scores([ScoreUpdate(base.ids[21], {"lead_score": 4})])  # later
        env.clock.advance(QUARTER_HOUR)
        third, connector, _calls = _read(env, _checkpoint(connector))
        assert _ids(third) == [merged_into] and connector.fast_reads == 0


def test_recent_changes_we_did_not_write_keep_the_shortcut_once_checked() -> None:
    with sandbox_env(200) as env:
        # changed shortly before the full read, then not written (say, out of scope)
        recent = frozenset(env.hs.simulate_activity(3, seed=5))
        env.clock.advance(30)
        base = _baseline(env, unwritten=recent)
        assert base.cursor["boundary_checked"] is True
        env.clock.advance(QUARTER_HOUR)
        batches, connector, calls = _read(env, base.cursor)
        assert _ids(batches) == [] and calls <= 2 and connector.fast_reads == 1


def test_a_recent_change_edited_again_before_our_writes_is_returned() -> None:
    with sandbox_env(200) as env:
        recent = frozenset(env.hs.simulate_activity(3, seed=5))
        env.clock.advance(30)
        edited = sorted(recent)[0]
        base = _baseline(env, before_write=40, edit_before_write=edited, unwritten=recent)
        env.clock.advance(QUARTER_HOUR)
        batches, connector, _calls = _read(env, base.cursor)
        assert _ids(batches) == [edited] and connector.fast_reads == 0


def test_without_writes_the_previous_reads_deliveries_are_not_vouched_for() -> None:
    with sandbox_env(200) as env:
        base = _baseline(env)
        env.clock.advance(60)
        changed = env.hs.simulate_activity(2, seed=9)
        env.clock.advance(30)
        # run 2 delivers the two, writes nothing: no check ran after its read
        second, _connector, _calls = _read(env, base.cursor)
        assert sorted(_ids(second)) == sorted(changed)
        cursor = second[-1].cursor
        assert cursor is not None and "boundary_checked" not in cursor
        env.clock.advance(60)
        third, connector, _calls = _read(env, cursor)
        assert _ids(third) == [] and connector.fast_reads == 0


def test_a_change_during_a_read_with_writes_between_batches_is_returned() -> None:
    with sandbox_env(300, search_lag_seconds=3.0) as env:
        connector = env.connector(batch_size=100, **SCORE)
        connector.ensure_fields([FieldSpec("lead_score")])
        first: list[str] = []
        for batch in connector.read_changes(
            None, until=env.clock.datetime(), events_since=env.clock.datetime() - timedelta(1)
        ):
            env.clock.advance(5)
            ids = [c.id for c in batch.contacts]
            connector.write_scores([ScoreUpdate(cid, {"lead_score": 50}) for cid in ids])
            if not first:
                first = ids
                env.clock.advance(5)
                # someone changes a contact we read and wrote, while the read goes on
                _edit(env, first[3], jobtitle="Head of Ops")
        cursor = _checkpoint(connector)
        assert int(cursor["own_dirty_until"]) > 0
        env.clock.advance(QUARTER_HOUR)
        batches, connector, _calls = _read(env, cursor)
        assert _ids(batches) == [first[3]] and connector.fast_reads == 0


def test_a_change_in_the_same_millisecond_as_our_write_is_returned() -> None:
    with sandbox_env(150) as env:
        base = _baseline(env)
        edited = base.ids[-1]  # written in the last batch: among the newest stamps
        _edit(env, edited, jobtitle="Same Instant")  # the clock has not moved
        env.clock.advance(QUARTER_HOUR)
        batches, connector, _calls = _read(env, base.cursor)
        assert _ids(batches) == [edited] and connector.fast_reads == 0


def test_the_state_a_read_yields_never_changes_and_checkpoint_adds_our_writes() -> None:
    with sandbox_env(120) as env:
        connector = env.connector(**SCORE)
        connector.ensure_fields([FieldSpec("lead_score")])
        batches = read_all(connector, None, until=env.clock.datetime())
        yielded = batches[-1].state
        assert yielded is not None
        before = json.dumps(yielded.to_json(), sort_keys=True)
        env.clock.advance(2)
        ids = _ids(batches)[:5]
        connector.write_scores([ScoreUpdate(cid, {"lead_score": 7}) for cid in ids])
        # the value the read handed out is as it was
        assert json.dumps(yielded.to_json(), sort_keys=True) == before
        assert OwnWrites.unpack(yielded.to_json()).stamps == {}
        after = connector.checkpoint()
        assert after is not None and after is not yielded
        assert set(OwnWrites.unpack(after.to_json()).stamps) == set(ids)
        # a round trip through JSON gives the same state back
        assert connector.load_state(_stored(after.to_json())) == after


def test_a_connector_that_never_completed_a_read_has_no_checkpoint() -> None:
    with sandbox_env(20) as env:
        connector = env.connector(**SCORE)
        assert connector.checkpoint() is None


def _deals(contact_ids: list[str], *, first_attempt: bool = False) -> list[DealSpec]:
    return [
        DealSpec(
            key=f"deal-{cid}",
            contact_id=cid,
            name=f"Hot lead {cid}",
            owner_id=None,
            stage="appointmentscheduled",
            close_date=date(2027, 1, 31),
            first_attempt=first_attempt,
        )
        for cid in contact_ids
    ]


def test_contacts_our_deals_were_linked_to_are_not_taken_for_changes() -> None:
    """A deal associated with a contact moves the contact's stamp (its deal count is
    recalculated) after our score write: the checkpoint reads the new stamps, so the
    next run is still one count; a contact someone else edits is still delivered."""
    from connectors.base import ActionResult

    with sandbox_env(300) as env:
        base = _baseline(env)
        env.clock.advance(1)  # the act step, after the score writes
        linked = sorted(base.ids)[:5]
        made = base.connector.create_deals(_deals(linked))
        assert all(isinstance(m, ActionResult) and m.created for m in made)
        env.app.reset_stats()
        cursor = _checkpoint(base.connector)
        assert env.stats()["by_route"] == {"POST /crm/v3/objects/contacts/batch/read": 1}
        env.clock.advance(QUARTER_HOUR)
        batches, connector, calls = _read(env, cursor)
        assert _ids(batches) == [] and connector.fast_reads == 1 and calls <= 2

        _edit(env, linked[0], jobtitle="Chief Revenue Officer")
        env.clock.advance(QUARTER_HOUR)
        again, _, _ = _read(env, batches[-1].cursor)
        assert _ids(again) == [linked[0]]


def test_a_score_write_after_the_deals_carries_their_contacts_new_stamps() -> None:
    """The sync acts before it writes the scores of the contacts it acted on: those
    writes answer with the stamps the deals moved, so the checkpoint reads none."""
    with sandbox_env(300) as env:
        base = _baseline(env)
        env.clock.advance(1)
        linked = sorted(base.ids)[:5]
        base.connector.create_deals(_deals(linked, first_attempt=True))
        env.clock.advance(1)
        written = linked[:3]  # two of them get no new score in this run
        base.connector.write_scores([ScoreUpdate(cid, {"lead_score": 95}) for cid in written])
        with _requests_seen(env) as seen:
            cursor = _checkpoint(base.connector)
        # only the two contacts whose stamps no answer carried are read
        assert [r.path for r in seen] == ["/crm/v3/objects/contacts/batch/read"]
        assert sorted(i["id"] for i in json.loads(seen[0].body)["inputs"]) == linked[3:]
        env.clock.advance(QUARTER_HOUR)
        batches, connector, calls = _read(env, cursor)
        assert _ids(batches) == [] and connector.fast_reads == 1 and calls <= 2


def test_our_owner_writes_are_remembered_with_the_new_owner() -> None:
    """The owner is one of the fields a read hashes: the digest remembered for our
    owner write is the one the next read computes, so those contacts are not re-read."""
    from connectors.base import OwnerSpec

    with sandbox_env(300) as env:
        base = _baseline(env)
        env.clock.advance(1)
        owner = base.connector.list_owners()[0].id
        assigned = sorted(base.ids)[-4:]
        out = base.connector.set_owners(
            [OwnerSpec(key=f"own-{cid}", contact_id=cid, owner_id=owner) for cid in assigned]
        )
        assert len(out) == len(assigned)
        cursor = _checkpoint(base.connector)
        env.clock.advance(QUARTER_HOUR)
        batches, connector, calls = _read(env, cursor)
        assert _ids(batches) == [] and connector.fast_reads == 1 and calls <= 2
