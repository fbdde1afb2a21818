"""One tenant's run as a worker performs it, called in this process: the tenant's
schema, its status in Redis, credential back-off, a dropped overlapping run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.scaleout.worker import run_tenant
from tests.scaleout.harness import Deploy, ledger

PIPELINE = "default"  # the config's pipeline name: the run lock's name


@pytest.fixture
def deploy(tmp_path: Path, unique: str, redis_url: str, pg_url: str) -> Iterator[Deploy]:
    d = Deploy(tmp_path, unique, redis_url, redis_url, pg_url, tenants=2)
    try:
        yield d
    finally:
        d.close()


def test_a_run_fills_the_tenants_schema_and_records_its_status(deploy: Deploy) -> None:
    a, _b = deploy.ids
    out = run_tenant(deploy.deployment, a, states=deploy.states, due_at=None)
    assert (out.state, out.exit_code) == ("ok", 0), out.error
    rec = deploy.states.get(a)
    assert rec.fields["state"] == "ok" and rec.fields["bucket"].startswith("hubspot:")
    from scheduler.scaleout.deployment import tenants
    from scheduler.scaleout.worker import open_tenant_store

    store_a = deploy.store(a)
    store_b = open_tenant_store(deploy.deployment, tenants(deploy.deployment)[1])
    try:
        assert store_a.count_contacts() > deploy.contacts // 2  # (the world merges a few)
        assert store_b.count_contacts() == 0  # b never ran: a's rows are not b's
    finally:
        store_a.close()
        store_b.close()


def test_crossings_are_acted_on_once_per_tenant(deploy: Deploy) -> None:
    a, b = deploy.ids
    for t in (a, b):
        assert run_tenant(deploy.deployment, t, states=deploy.states).state == "ok"
    hot = deploy.contact_ids(a, 3)
    deploy.make_hot(a, hot)
    assert run_tenant(deploy.deployment, a, states=deploy.states).state == "ok"
    assert run_tenant(deploy.deployment, b, states=deploy.states).state == "ok"
    store_a, store_b = deploy.store(a), deploy.store(b)
    try:
        rows = ledger(store_a)
        assert {r[0] for r in rows} == set(hot)
        assert all(r[2] == "done" for r in rows)
        assert ledger(store_b) == []
    finally:
        store_a.close()
        store_b.close()
    for cid in hot:
        assert deploy.crm_actions(a, cid) == {"deals": 1, "tasks": 1}


def test_refused_credentials_back_off_doubling(deploy: Deploy) -> None:
    a, _ = deploy.ids
    (deploy.tmp_path / "tenants" / a / "token").write_text("revoked-token", encoding="utf-8")
    clock = iter([1000.0 + i for i in range(100)]).__next__
    first = run_tenant(deploy.deployment, a, states=deploy.states, clock=clock)
    assert first.state == "auth"
    assert "revoked-token" not in (first.error or "")
    until1 = deploy.states.get(a).number("backoff_until")
    second = run_tenant(deploy.deployment, a, states=deploy.states, clock=clock)
    until2 = deploy.states.get(a).number("backoff_until")
    assert second.state == "auth"
    assert until1 is not None and until2 is not None
    assert until1 - 1000 == pytest.approx(3600, abs=5)  # one interval (every: 1h)
    assert until2 - 1000 == pytest.approx(7200, abs=10)  # then two


def test_a_run_that_finds_the_lock_taken_is_dropped(deploy: Deploy) -> None:
    from scheduler.scaleout.deployment import tenants
    from scheduler.scaleout.worker import open_tenant_store

    a, _ = deploy.ids
    tenant = next(t for t in tenants(deploy.deployment) if t.id == a)
    holder = open_tenant_store(deploy.deployment, tenant)
    try:
        holder.acquire(PIPELINE, ttl=60)  # a run of a in progress elsewhere
        out = run_tenant(deploy.deployment, a, states=deploy.states)
    finally:
        holder.close()
    assert out.state == "locked"
    assert "state" not in deploy.states.get(a).fields  # no run recorded: it was dropped
    store = deploy.store(a)
    try:
        assert store.count_contacts() == 0
    finally:
        store.close()
