"""HubSpot actions in batches against the sandbox: a few calls per hundred, exactly one
record per key through dropped answers, 5xx, 409s and 207s."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import requests
from hs_conn_env import TOKEN, Env, Rule, error_json, sandbox_env

from connectors.base import (
    ActionResult,
    CreatesInBatches,
    DealSpec,
    OwnerSpec,
    RecordFailure,
    TaskSpec,
)
from connectors.hubspot.state import HubSpotState
from connectors.sandbox import Request


def _deal(contact: str, key: str) -> DealSpec:
    return DealSpec(
        key=key,
        contact_id=contact,
        name=f"Inbound {contact}",
        owner_id=None,
        stage="appointmentscheduled",
        close_date=date(2026, 7, 31),
        amount=100.0,
    )


def _task(contact: str, key: str) -> TaskSpec:
    return TaskSpec(
        key=key,
        contact_id=contact,
        owner_id=None,
        subject=f"Call {contact}",
        body="crossed",
        due_at=datetime(2026, 7, 1, 9, 0, tzinfo=UTC),
    )


def _by_key(env: Env, obj: str) -> dict[str, list[str]]:
    """Every record of ``obj`` by its leadsync key, straight from the sandbox's store."""
    table = env.hs.store.tables[obj]
    out: dict[str, list[str]] = {}
    for slot in table.listable(archived=False):
        key = table.props(slot).get("leadsync_key")
        if key:
            out.setdefault(key, []).append(str(int(table.ids[slot])))
    return out


def _linked(env: Env, obj: str, object_id: str) -> set[str]:
    r = env.get(f"/crm/v4/objects/{obj}/{object_id}/associations/contacts")
    return {str(x["toObjectId"]) for x in r.json()["results"]}


def _calls(env: Env) -> int:
    return sum(env.stats()["by_route"].values())


def _act_on_150(
    env: Env, spec: Callable[[DealSpec | TaskSpec], DealSpec | TaskSpec] = lambda s: s
) -> tuple[Any, list[str], Sequence[Any], Sequence[Any]]:
    """A deal and a task for each of 150 contacts, calls counted from the first create."""
    connector = env.connector()
    assert isinstance(connector, CreatesInBatches)
    connector.ensure_fields([])
    contacts = sorted(env.contact_ids())[:150]
    env.app.reset_stats()
    deals = connector.create_deals([spec(_deal(c, f"d-{c}")) for c in contacts])
    tasks = connector.create_tasks([spec(_task(c, f"t-{c}")) for c in contacts])
    return connector, contacts, deals, tasks


def test_150_deals_and_tasks_cost_a_few_calls_each_linked_to_its_contact() -> None:
    with sandbox_env(200) as env:
        connector, contacts, deals, tasks = _act_on_150(env)
        # per kind and per 100: one keyed read and one batch create
        assert _calls(env) == 8, env.stats()["by_route"]
        assert all(isinstance(d, ActionResult) and d.created for d in deals)
        assert all(isinstance(t, ActionResult) and t.created for t in tasks)
        by_key = _by_key(env, "deals")
        for c, d in zip(contacts, deals, strict=True):
            assert by_key[f"d-{c}"] == [d.id]
        assert _linked(env, "deals", str(deals[0].id)) == {contacts[0]}
        assert _linked(env, "tasks", str(tasks[-1].id)) == {contacts[-1]}
        env.app.reset_stats()
        again = connector.create_deals([_deal(c, f"d-{c}") for c in contacts])
        assert [a.id for a in again] == [d.id for d in deals]
        assert not any(isinstance(a, ActionResult) and a.created for a in again)
        assert _calls(env) == 2  # the keyed reads find them all
        connector.close()


def test_dropped_answers_never_duplicate_and_nothing_is_missing() -> None:
    with sandbox_env(60, search_lag_seconds=30.0) as env:
        connector = env.connector()
        connector.ensure_fields([])
        contacts = sorted(env.contact_ids())[:40]
        env.faults(commit_then_drop=0.5)
        deals = connector.create_deals([_deal(c, f"d-{c}") for c in contacts])
        tasks = connector.create_tasks([_task(c, f"t-{c}") for c in contacts])
        env.faults()
        done = [o for o in [*deals, *tasks] if isinstance(o, ActionResult)]
        # what the connector could not confirm is reported per input, never lost
        failed = [o for o in [*deals, *tasks] if isinstance(o, RecordFailure)]
        assert len(done) + len(failed) == 80
        retry_d = connector.create_deals([_deal(c, f"d-{c}") for c in contacts])
        retry_t = connector.create_tasks([_task(c, f"t-{c}") for c in contacts])
        assert all(isinstance(o, ActionResult) for o in [*retry_d, *retry_t])
        deal_keys, task_keys = _by_key(env, "deals"), _by_key(env, "tasks")
        for c in contacts:
            assert len(deal_keys[f"d-{c}"]) == 1 and len(task_keys[f"t-{c}"]) == 1
        for o in done:
            assert o.id in (deal_keys.get(o.key, []) + task_keys.get(o.key, []))
        assert env.stats()["by_status"].get("dropped", 0) >= 1
        connector.close()


def test_5xx_on_a_batch_create_is_settled_by_a_keyed_read() -> None:
    with sandbox_env(30) as env:
        connector = env.connector()
        connector.ensure_fields([])
        contacts = sorted(env.contact_ids())[:10]
        env.flavour.rules.append(
            Rule(
                lambda r: r.path.endswith("/deals/batch/create"),
                error_json(502, "Bad gateway"),
            )
        )
        out = connector.create_deals([_deal(c, f"d-{c}") for c in contacts])
        assert all(isinstance(o, ActionResult) and o.created for o in out)
        assert all(len(v) == 1 for v in _by_key(env, "deals").values())
        assert len(_by_key(env, "deals")) == 10
        connector.close()


def test_207_refuses_one_input_by_its_trace_id_and_creates_the_rest() -> None:
    with sandbox_env(30) as env:
        connector = env.connector()
        connector.ensure_fields([])
        contacts = sorted(env.contact_ids())[:5]
        specs = [_deal(c, f"d-{c}") for c in contacts]
        specs[2] = _deal("999999999", "d-ghost")  # no such contact: its association fails
        out = connector.create_deals(specs)
        assert isinstance(out[2], RecordFailure) and out[2].id == "d-ghost"
        assert "association" in out[2].reason.lower()
        assert [isinstance(o, ActionResult) for o in out] == [True, True, False, True, True]
        assert "d-ghost" not in _by_key(env, "deals")
        connector.close()


def test_409_on_an_existing_key_splits_the_batch_and_keeps_one_record() -> None:
    with sandbox_env(30) as env:
        connector = env.connector()
        connector.ensure_fields([])
        contacts = sorted(env.contact_ids())[:6]
        first = connector.create_deals([_deal(contacts[3], f"d-{contacts[3]}")])
        assert isinstance(first[0], ActionResult)
        # the keyed read misses it (as if created between the read and the create)
        hidden = {"done": False}

        def first_read(request: Request) -> bool:
            if hidden["done"] or not request.path.endswith("/deals/batch/read"):
                return False
            hidden["done"] = True
            return True

        def empty(request: Request) -> object:
            from connectors.sandbox import Response

            return Response.json(200, {"status": "COMPLETE", "results": []})

        env.flavour.rules.append(Rule(first_read, empty))  # type: ignore[arg-type]
        out = connector.create_deals([_deal(c, f"d-{c}") for c in contacts])
        assert all(isinstance(o, ActionResult) for o in out)
        assert out[3].id == first[0].id and not out[3].created  # type: ignore[union-attr]
        assert all(len(v) == 1 for v in _by_key(env, "deals").values())
        assert len(_by_key(env, "deals")) == 6
        connector.close()


def test_owner_updates_in_one_batch() -> None:
    with sandbox_env(150) as env:
        connector = env.connector()
        person = next(o for o in connector.list_owners() if o.kind == "person")
        contacts = sorted(env.contact_ids())[:120]
        env.app.reset_stats()
        out = connector.set_owners(
            [OwnerSpec(f"o-{c}", c, person.id) for c in contacts]
            + [OwnerSpec("o-ghost", "999999999", person.id)]
        )
        assert _calls(env) == 2
        assert all(isinstance(o, ActionResult) and o.id == person.id for o in out[:-1])
        assert isinstance(out[-1], RecordFailure) and out[-1].id == "o-ghost"
        table = env.hs.store.tables["contacts"]
        for c in contacts[:5]:
            slot = table.slot_of(int(c))
            assert table.props(slot)["hubspot_owner_id"] == person.id
        connector.close()


def test_owner_writes_go_into_the_checkpoint_like_score_writes() -> None:
    with sandbox_env(60) as env:
        connector = env.connector()
        connector.ensure_fields([])
        now = env.clock.datetime()
        list(connector.read_changes(None, until=now, events_since=now))
        before = json.dumps(connector.checkpoint().to_json())  # type: ignore[union-attr]
        person = next(o for o in connector.list_owners() if o.kind == "person")
        contacts = sorted(env.contact_ids())[:20]
        env.clock.advance(60)
        out = connector.set_owners([OwnerSpec(f"o-{c}", c, person.id) for c in contacts])
        assert all(isinstance(o, ActionResult) for o in out)
        after = json.dumps(connector.checkpoint().to_json())  # type: ignore[union-attr]
        assert all(c not in before and c in after for c in contacts)


def test_the_key_property_costs_no_call_once_it_exists_and_is_made_when_missing() -> None:
    with sandbox_env(30) as env:
        contacts = sorted(env.contact_ids())[:10]
        first = env.connector()  # a portal without the key property yet
        out = first.create_deals([_deal(c, f"d-{c}") for c in contacts[:5]])
        assert all(isinstance(o, ActionResult) and o.created for o in out)
        assert env.get("/crm/v3/properties/deals/leadsync_key").json()["hasUniqueValue"] is True
        later = env.connector()  # the next run's connector: no property check
        env.app.reset_stats()
        out = later.create_deals([_deal(c, f"d-{c}") for c in contacts])
        assert _calls(env) == 2  # one keyed read, one batch create
        assert [isinstance(o, ActionResult) and o.created for o in out] == [False] * 5 + [True] * 5


def _fresh(spec: DealSpec | TaskSpec) -> DealSpec | TaskSpec:
    return replace(spec, first_attempt=True)


def test_actions_never_sent_are_created_without_a_keyed_read() -> None:
    with sandbox_env(200) as env:
        connector, _, deals, tasks = _act_on_150(env, _fresh)
        # per kind and per 100: one batch create, no read
        assert _calls(env) == 4, env.stats()["by_route"]
        assert all(isinstance(o, ActionResult) and o.created for o in [*deals, *tasks])
        assert all(len(v) == 1 for v in _by_key(env, "deals").values())
        connector.close()


def test_a_key_that_exists_after_all_is_found_not_duplicated() -> None:
    """``first_attempt`` is a promise of the caller's ledger; if it is wrong (a key the
    CRM holds), the unique key refuses the create and the existing record is taken."""
    with sandbox_env(30) as env:
        connector = env.connector()
        connector.ensure_fields([])
        contacts = sorted(env.contact_ids())[:10]
        first = connector.create_deals([_deal(c, f"d-{c}") for c in contacts[:4]])
        again = connector.create_deals([_fresh(_deal(c, f"d-{c}")) for c in contacts])
        assert [o.id for o in again[:4]] == [o.id for o in first]
        assert [isinstance(o, ActionResult) and o.created for o in again] == [False] * 4 + [
            True
        ] * 6
        assert all(len(v) == 1 for v in _by_key(env, "deals").values())
        connector.close()


def test_a_missing_key_property_is_made_when_a_never_sent_create_names_it() -> None:
    with sandbox_env(30) as env:
        contacts = sorted(env.contact_ids())[:10]
        connector = env.connector()  # a portal without the key property yet
        out = connector.create_tasks([_fresh(_task(c, f"t-{c}")) for c in contacts])
        assert all(isinstance(o, ActionResult) and o.created for o in out)
        assert env.get("/crm/v3/properties/tasks/leadsync_key").json()["hasUniqueValue"] is True
        assert sorted(_by_key(env, "tasks")) == sorted(f"t-{c}" for c in contacts)
        assert all(len(v) == 1 for v in _by_key(env, "tasks").values())
        connector.close()


ASSOCIATION_READ = "POST /crm/v4/associations/deals/contacts/batch/read"


def test_outcomes_of_our_open_deals_need_no_association_read() -> None:
    """The next outcomes read lists the deals we created: an open one's contact is the
    one we created it with; once closed, its contacts are read again."""
    with sandbox_env(50) as env:
        connector = env.connector()
        contacts = sorted(env.contact_ids())[:3]
        since = env.clock.datetime()
        env.clock.advance(5)
        made = connector.create_deals([_deal(c, f"deal-{c}") for c in contacts])
        ids = {m.id: c for m, c in zip(made, contacts, strict=True) if isinstance(m, ActionResult)}
        env.clock.advance(60)
        env.app.reset_stats()
        ours = [d for d in connector.read_deal_outcomes(since) if d.id in ids]
        assert sorted((d.id, d.contact_id, d.is_open) for d in ours) == sorted(
            (i, c, True) for i, c in ids.items()
        )
        assert ASSOCIATION_READ not in env.stats()["by_route"]

        won = next(iter(ids))
        since = env.clock.datetime()
        env.clock.advance(5)
        r = requests.patch(
            f"{env.base_url}/crm/v3/objects/deals/{won}",
            json={"properties": {"dealstage": "closedwon"}},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        env.clock.advance(60)
        env.app.reset_stats()
        closed = [d for d in connector.read_deal_outcomes(since) if d.id == won]
        assert [(d.contact_id, d.is_won) for d in closed] == [(ids[won], True)]
        assert env.stats()["by_route"].get(ASSOCIATION_READ) == 1
        connector.close()


def test_a_new_process_knows_the_contacts_of_the_deals_the_last_run_created() -> None:
    """A scheduled ``leadsync run`` is a new process each time: the deals the last
    run created come back in the state, so their first outcomes read needs no
    association read either; a state from before this memory still loads."""
    with sandbox_env(50) as env:
        first = env.connector()
        now = env.clock.datetime()
        list(first.read_changes(None, until=now, events_since=now))
        contacts = sorted(env.contact_ids())[:3]
        since = env.clock.datetime()
        env.clock.advance(5)
        made = first.create_deals([_deal(c, f"deal-{c}") for c in contacts])
        ids = {m.id: c for m, c in zip(made, contacts, strict=True) if isinstance(m, ActionResult)}
        state = first.checkpoint()
        assert state is not None
        stored = json.loads(json.dumps(state.to_json()))
        first.close()

        env.clock.advance(60)
        later = env.connector()
        assert later.load_state(stored) == HubSpotState.from_json(stored)
        env.app.reset_stats()
        ours = [d for d in later.read_deal_outcomes(since) if d.id in ids]
        assert sorted((d.id, d.contact_id) for d in ours) == sorted(ids.items())
        assert ASSOCIATION_READ not in env.stats()["by_route"]
        later.close()

        older = env.connector()  # a state stored before deals were remembered
        older.load_state({k: v for k, v in stored.items() if k != "own_deals"})
        env.app.reset_stats()
        again = [d for d in older.read_deal_outcomes(since) if d.id in ids]
        assert sorted((d.id, d.contact_id) for d in again) == sorted(ids.items())
        assert env.stats()["by_route"].get(ASSOCIATION_READ) == 1
        older.close()


def test_the_state_keeps_a_week_of_created_deals() -> None:
    day = 86_400_000
    now = 100 * day
    state = HubSpotState(
        since_ms=now,
        own_deals={
            "d-old": ("c1", now - 8 * day),
            "d-new": ("c2", now - day),
            "d-now": ("c3", now),
        },
    )
    back = HubSpotState.from_json(json.loads(json.dumps(state.to_json())))
    assert dict(back.own_deals) == {"d-new": ("c2", now - day), "d-now": ("c3", now)}
