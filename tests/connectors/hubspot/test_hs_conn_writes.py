"""HubSpot writes against the sandbox: scores, fields, deals, tasks, owners."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest
from hs_conn_env import Env, sandbox_env

from connectors.base import (
    ConnectorConfigError,
    DealSpec,
    FieldSpec,
    ScoreUpdate,
    TaskSpec,
)


def _contacts(env: Env, n: int) -> list[str]:
    return sorted(env.contact_ids())[:n]


def _prop(env: Env, object_type: str, object_id: str, name: str) -> str | None:
    r = env.get(f"/crm/v3/objects/{object_type}/{object_id}", properties=name)
    assert r.status_code == 200, r.text
    return r.json()["properties"].get(name)


def test_ensure_fields_creates_once_then_reports_present() -> None:
    with sandbox_env(20) as env:
        connector = env.connector(score_fields={"fit_score": "leadsync_fit"})
        specs = [FieldSpec("fit_score"), FieldSpec("lead_band", type="text")]
        first = connector.ensure_fields(specs)
        assert set(first.created) == {
            "leadsync_fit",
            "lead_band",
            "deals.leadsync_key",
            "tasks.leadsync_key",
        }
        assert first.missing == ()
        second = connector.ensure_fields(specs)
        assert second.created == () and set(second.present) == set(first.created)
        r = env.get("/crm/v3/properties/contacts/leadsync_fit")
        assert r.json()["type"] == "number" and r.json()["fieldType"] == "number"
        assert env.get("/crm/v3/properties/deals/leadsync_key").json()["hasUniqueValue"] is True
        bad = connector.ensure_fields([FieldSpec("Bad-Name")])
        assert bad.missing == ("Bad-Name",) and "lowercase" in bad.instructions[0]
        connector.close()


def test_write_scores_batches_of_100_and_only_the_contacts_passed() -> None:
    with sandbox_env(400) as env:
        connector = env.connector()
        connector.ensure_fields([FieldSpec("lead_score")])
        ids = _contacts(env, 250)
        env.app.reset_stats()
        result = connector.write_scores(
            [ScoreUpdate(cid, {"lead_score": 40.0 + i % 7}) for i, cid in enumerate(ids)]
        )
        assert sorted(result.succeeded) == sorted(ids) and result.failed == ()
        assert env.stats()["by_route"]["POST /crm/v3/objects/contacts/batch/update"] == math.ceil(
            250 / 100
        )
        assert _prop(env, "contacts", ids[1], "lead_score") == "41"
        untouched = sorted(env.contact_ids())[300]
        assert _prop(env, "contacts", untouched, "lead_score") in (None, "")
        connector.close()


def test_207_partial_failure_keeps_successes_and_reports_each_failure() -> None:
    with sandbox_env(50) as env:
        connector = env.connector()
        connector.ensure_fields([FieldSpec("lead_score")])
        good = _contacts(env, 3)
        result = connector.write_scores(
            [
                ScoreUpdate(good[0], {"lead_score": 10}),
                ScoreUpdate("999999999", {"lead_score": 5}),
                ScoreUpdate(good[1], {"lead_score": 20}),
                ScoreUpdate("888888888", {"lead_score": 5}),
            ]
        )
        assert set(result.succeeded) == {good[0], good[1]}
        assert {f.id for f in result.failed} == {"999999999", "888888888"}
        assert all("OBJECT_NOT_FOUND" in f.reason for f in result.failed)
        assert _prop(env, "contacts", good[1], "lead_score") == "20"
        connector.close()


def test_one_bad_value_is_isolated_and_missing_property_is_a_config_error() -> None:
    with sandbox_env(50) as env:
        connector = env.connector()
        connector.ensure_fields([FieldSpec("lead_score")])
        ids = _contacts(env, 8)
        updates = [ScoreUpdate(cid, {"lead_score": 5}) for cid in ids]
        updates[5] = ScoreUpdate(ids[5], {"lead_score": "lots"})
        result = connector.write_scores(updates)
        assert [f.id for f in result.failed] == [ids[5]]
        assert "not a valid number" in result.failed[0].reason
        assert len(result.succeeded) == 7
        with pytest.raises(ConnectorConfigError, match="ensure_fields"):
            connector.write_scores([ScoreUpdate(ids[0], {"never_created": 1})])
        connector.close()


def _deal(contact: str, key: str = "deal-key-1") -> DealSpec:
    return DealSpec(
        key=key,
        contact_id=contact,
        name="Inbound: hot lead",
        owner_id=None,
        stage="appointmentscheduled",
        crm_options={"pipeline": "default"},
        close_date=date(2026, 7, 31),
        amount=1200.0,
    )


def _task(contact: str, key: str = "task-key-1") -> TaskSpec:
    from datetime import UTC, datetime

    return TaskSpec(
        key=key,
        contact_id=contact,
        owner_id=None,
        subject="Call the hot lead",
        body="Score crossed the threshold",
        due_at=datetime(2026, 7, 1, 9, 0, tzinfo=UTC),
    )


def _deals_with_key(env: Env, contact: str, key: str) -> list[str]:
    import requests

    r = requests.post(
        env.base_url + "/crm/v4/associations/contacts/deals/batch/read",
        json={"inputs": [{"id": contact}]},
        headers={"Authorization": "Bearer " + _token()},
        timeout=10,
    )
    ids = [str(t["toObjectId"]) for res in r.json().get("results", []) for t in res["to"]]
    return [d for d in ids if _prop(env, "deals", d, "leadsync_key") == key]


def _tasks_with_key(env: Env, contact: str, key: str) -> list[str]:
    import requests

    r = requests.post(
        env.base_url + "/crm/v4/associations/contacts/tasks/batch/read",
        json={"inputs": [{"id": contact}]},
        headers={"Authorization": "Bearer " + _token()},
        timeout=10,
    )
    ids = [str(t["toObjectId"]) for res in r.json().get("results", []) for t in res["to"]]
    return [t for t in ids if _prop(env, "tasks", t, "leadsync_key") == key]


def _token() -> str:
    from hs_conn_env import TOKEN

    return TOKEN


def test_deal_and_task_are_created_once_with_associations_and_translations() -> None:
    with sandbox_env(30) as env:
        connector = env.connector()
        contact = _contacts(env, 1)[0]
        first = connector.create_deal(_deal(contact))
        again = connector.create_deal(_deal(contact))
        assert first.created and not again.created and first.id == again.id
        assert _deals_with_key(env, contact, "deal-key-1") == [first.id]
        assert _prop(env, "deals", first.id, "amount") == "1200"
        task = connector.create_task(_task(contact))
        task_again = connector.create_task(_task(contact))
        assert task.created and not task_again.created and task.id == task_again.id
        assert _prop(env, "tasks", task.id, "hs_task_priority") == "HIGH"
        assert _prop(env, "tasks", task.id, "hs_task_type") == "CALL"
        assert _prop(env, "tasks", task.id, "hs_timestamp").startswith("2026-07-01T09:00")
        open_deals = connector.open_deals([contact])
        assert [d.key for d in open_deals[contact]] == ["deal-key-1"]
        assert open_deals[contact][0].is_open and open_deals[contact][0].amount == 1200.0
        connector.close()


def test_commit_then_drop_with_search_lag_still_creates_exactly_one() -> None:
    with sandbox_env(30, search_lag_seconds=30.0) as env:
        connector = env.connector()
        connector.ensure_fields([])
        contacts = _contacts(env, 5)
        env.faults(commit_then_drop=1.0)  # every write is applied, its answer lost
        deals = [connector.create_deal(_deal(c, f"deal-{c}")) for c in contacts]
        tasks = [connector.create_task(_task(c, f"task-{c}")) for c in contacts]
        # a retry of the whole action (the sync crashed and re-ran) changes nothing
        deals_again = [connector.create_deal(_deal(c, f"deal-{c}")) for c in contacts]
        tasks_again = [connector.create_task(_task(c, f"task-{c}")) for c in contacts]
        env.faults()
        assert all(d.created and d.id for d in deals) and all(t.created and t.id for t in tasks)
        assert not any(d.created for d in deals_again) and not any(t.created for t in tasks_again)
        for c, d, t in zip(contacts, deals, tasks, strict=True):
            assert _deals_with_key(env, c, f"deal-{c}") == [d.id]
            assert _tasks_with_key(env, c, f"task-{c}") == [t.id]
        assert env.stats()["by_status"].get("dropped", 0) >= 10
        assert "POST /crm/v3/objects/deals/search" not in env.stats()["by_route"]
        connector.close()


def test_owners_set_owner_and_deal_outcomes() -> None:
    with sandbox_env(300) as env:
        connector = env.connector()
        owners = connector.list_owners()
        assert owners and all(o.id and o.active for o in owners)
        assert {o.kind for o in owners} <= {"person", "queue"}
        person = next(o for o in owners if o.kind == "person")
        contact = _contacts(env, 1)[0]
        connector.set_owner(contact, person.id)
        assert _prop(env, "contacts", contact, "hubspot_owner_id") == person.id
        outcomes = list(connector.read_deal_outcomes(None, include_open=False))
        assert outcomes and all(not d.is_open and d.is_won in (True, False) for d in outcomes)
        assert all(d.contact_id for d in outcomes)
        assert any(d.is_won for d in outcomes) and any(d.is_won is False for d in outcomes)
        since = env.clock.datetime() + timedelta(days=1)
        assert list(connector.read_deal_outcomes(since)) == []
        connector.close()


def test_deal_outcomes_tell_won_and_lost_without_the_pipelines_read() -> None:
    """``hs_is_closed`` and ``hs_is_closed_won`` come with each deal: reading outcomes
    costs no pipelines read."""
    with sandbox_env(300) as env:
        connector = env.connector()
        outcomes = list(connector.read_deal_outcomes(None))
        assert any(d.is_won for d in outcomes) and any(d.is_won is False for d in outcomes)
        assert any(d.is_open and d.is_won is None for d in outcomes)
        assert "GET /crm/v3/pipelines/deals" not in env.stats()["by_route"]
        connector.close()
