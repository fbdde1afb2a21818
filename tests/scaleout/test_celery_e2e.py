"""Real Celery workers (subprocesses) on Redis and on RabbitMQ, a real beat, the
multi-portal sandbox and PostgreSQL: runs complete, actions happen once, a killed
worker's run is completed by another, tenants never see each other's rows."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from scheduler.scaleout.celery_app import TASK, make_app
from scheduler.scaleout.status import status_rows
from scheduler.scaleout.worker import run_tenant
from tests.scaleout.harness import Deploy, ledger, wait_for

pytestmark = pytest.mark.slow
BUDGET = "50 per 10 seconds"


def _runs(deploy: Deploy, tenant: str) -> list[tuple[str, int | None]]:
    import sqlalchemy as sa

    store = deploy.store(tenant)
    try:
        t = store.t["runs"]
        with store.tx() as conn:
            try:
                rows = conn.execute(sa.select(t.c.run_id, t.c.exit_code)).all()
            except sa.exc.ProgrammingError:
                return []
        return [(r[0], r[1]) for r in rows]
    finally:
        store.close()


def _finished(deploy: Deploy, tenant: str) -> int:
    return sum(1 for _, code in _runs(deploy, tenant) if code is not None)


@pytest.fixture(params=["redis", "amqp"])
def broker(request: pytest.FixtureRequest) -> str:
    name = "redis_url" if request.param == "redis" else "amqp_url"
    return str(request.getfixturevalue(name))


def make_deploy(
    tmp_path: Path, unique: str, broker: str, redis_url: str, pg_url: str, **kw: object
) -> Deploy:
    return Deploy(tmp_path, unique, broker, redis_url, pg_url, **kw)  # type: ignore[arg-type]


def test_five_tenants_run_on_two_workers_under_one_beat_each_action_once(
    tmp_path: Path, unique: str, broker: str, redis_url: str, pg_url: str
) -> None:
    deploy = make_deploy(tmp_path, unique, broker, redis_url, pg_url, tenants=5)
    try:
        deploy.start("worker", "-c", "2", "-n", f"w1-{unique}@local")
        deploy.start("worker", "-c", "2", "-n", f"w2-{unique}@local")
        deploy.start("beat")
        deploy.start("beat")  # started by mistake: waits for the first one's lock
        wait_for(
            "every tenant's first run",
            lambda: all(_finished(deploy, t) == 1 for t in deploy.ids),
            120,
            deploy.logs,
        )
        hot = {t: deploy.contact_ids(t, 2) for t in deploy.ids}
        for t, ids in hot.items():
            deploy.make_hot(t, ids)
            deploy.states.update(t, next_run_at=0)  # due now: beat sends it on its next tick
        wait_for(
            "every tenant's second run",
            lambda: all(_finished(deploy, t) == 2 for t in deploy.ids),
            120,
            deploy.logs,
        )
        for t in deploy.ids:
            assert [code for _, code in _runs(deploy, t)] == [0, 0], deploy.logs()
            store = deploy.store(t)
            try:
                rows = ledger(store)
            finally:
                store.close()
            # this tenant's crossings and no other's: the schemas keep tenants apart
            assert {r[0] for r in rows} == set(hot[t])
            assert sorted((r[0], r[1]) for r in rows) == sorted(
                (cid, kind) for cid in hot[t] for kind in ("deal", "task")
            ) or all(r[2] == "done" for r in rows)
            assert all(r[2] == "done" for r in rows)
            for cid in hot[t]:
                assert deploy.crm_actions(t, cid) == {"deals": 1, "tasks": 1}
            assert deploy.states.get(t).fields["state"] == "ok"
        assert deploy.rate_limited() == 0
        rows = status_rows(deploy.path)
        assert [r["tenant"] for r in rows] == deploy.ids
        for row in rows:
            assert row["state"] == "ok" and row["error"] is None
            assert row["last_run_at"] and row["next_run_at"] > row["last_run_at"]
            assert row["budget"]["bucket"].startswith("hubspot:")
            assert row["budget"]["window_limit"] == 171  # 190 per 10 s with 10 % headroom
    finally:
        deploy.close()


@pytest.mark.parametrize("victim", ["pool child", "main process"])
def test_a_killed_worker_s_run_is_completed_by_another(
    tmp_path: Path, unique: str, broker: str, redis_url: str, pg_url: str, victim: str
) -> None:
    deploy = make_deploy(
        tmp_path, unique, broker, redis_url, pg_url, tenants=1, extra="longest_run: 8s\n"
    )
    (tenant,) = deploy.ids
    try:
        assert run_tenant(deploy.deployment, tenant, states=deploy.states).state == "ok"
        hot = deploy.contact_ids(tenant, 6)
        deploy.make_hot(tenant, hot)
        # every request of this portal takes a while: the run is still acting when killed
        deploy.http(tenant, "POST", "/__sandbox/faults", {"latency_ms": 150})
        first = deploy.start("worker", "-c", "1", "-n", f"w1-{unique}@local")
        app = make_app(str(deploy.path))
        wait_for("the first worker", lambda: "ready" in deploy.logs(), 60, deploy.logs)
        app.send_task(TASK, args=[tenant, time.time()], queue=deploy.name)

        def acting() -> bool:
            store = deploy.store(tenant)
            try:
                return len(ledger(store)) > 0
            finally:
                store.close()

        wait_for("the run to start acting", acting, 60, deploy.logs)
        pid = int(deploy.states.get(tenant).fields["pid"])
        assert pid != first.pid  # the run is in a pool child
        if victim == "pool child":
            os.kill(pid, signal.SIGKILL)
        else:
            os.killpg(first.pid, signal.SIGKILL)  # the main process and its pool
        deploy.start("worker", "-c", "1", "-n", f"w2-{unique}@local")
        deploy.http(tenant, "POST", "/__sandbox/faults", {})
        wait_for(
            "another worker to complete the run",
            lambda: _finished(deploy, tenant) == 2,
            90,
            deploy.logs,
        )
        # the killed run never finished; the one that did is another worker's
        assert [code for _, code in _runs(deploy, tenant)].count(None) == 1
        assert "w2-" in deploy.states.get(tenant).fields["worker"] or victim == "pool child"
        store = deploy.store(tenant)
        try:
            rows = ledger(store)
        finally:
            store.close()
        assert sorted((r[0], r[1]) for r in rows) == sorted(
            (cid, kind) for cid in hot for kind in ("deal", "task")
        ), rows
        assert all(r[2] == "done" for r in rows), rows
        for cid in hot:
            assert deploy.crm_actions(tenant, cid) == {"deals": 1, "tasks": 1}
        assert deploy.rate_limited() == 0
    finally:
        deploy.close()


def test_four_tenants_on_one_portal_and_token_share_its_budget_without_a_429(
    tmp_path: Path, unique: str, redis_url: str, pg_url: str
) -> None:
    """The API budget is per portal and app, not per tenant: four tenants configured
    on the same token, on four workers, together stay under the portal's limit."""
    deploy = make_deploy(
        tmp_path,
        unique,
        redis_url,
        redis_url,
        pg_url,
        tenants=4,
        contacts=300,
        shared_token=True,
        # a portal that allows 50 calls per ten seconds, so that four short runs press
        # against it (each connector alone paces itself at the Pro tier's 190)
        portal_rate=50,
        extra=f"budgets: {{hubspot: {{window: {BUDGET!r}, search: '4 per 1 second'}}}}\n",
    )
    try:
        for i in range(4):
            deploy.start("worker", "-c", "1", "-n", f"w{i}-{unique}@local")
        deploy.start("beat")
        wait_for(
            "every tenant's run",
            lambda: all(_finished(deploy, t) == 1 for t in deploy.ids),
            240,
            deploy.logs,
        )
        stats = deploy.portals.stats()
        assert stats["portals_built"] == 1
        assert stats["total"] > 2 * 50  # more calls than one window allows
        assert deploy.rate_limited() == 0, stats["by_status"]
        for t in deploy.ids:
            assert [code for _, code in _runs(deploy, t)] == [0]
    finally:
        deploy.close()
