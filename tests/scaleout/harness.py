"""A deployment for tests: one multi-portal HubSpot sandbox on loopback (real clock,
since workers are other processes), one tenant folder per portal, PostgreSQL schemas
and Redis keys under a name no other test uses, and the checks the tests share (the
ledger and the CRM agree: every crossing acted on once, nothing missing)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests
import sqlalchemy as sa

from connectors.sandbox import serve
from connectors.sandbox.multi import MultiPortalApp, hubspot_portals
from scheduler.scaleout.deployment import Deployment, load_deployment, schema_for
from scheduler.scaleout.tenant_state import TenantStates
from scheduler.state import StateStore
from tests.scheduler.sync_e2e import E2E_MODEL

REPO = Path(__file__).resolve().parents[2]
HOT_TITLE = "VP zzbuyer"


@dataclass
class Deploy:
    tmp_path: Path
    name: str
    broker: str
    redis_url: str
    pg_url: str
    tenants: int = 5
    contacts: int = 30
    every: str = "1h"
    shared_token: bool = False  # every tenant on portal 1 (one API budget for all)
    extra: str = ""  # more deployment keys
    portal_rate: int | None = None  # the portals' ten-second limit, if not the tier's
    portals: MultiPortalApp = field(init=False)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        count = 1 if self.shared_token else self.tenants
        self.portals = hubspot_portals(
            count,
            contacts=self.contacts,
            seed=21,
            search_lag_seconds=0,
            ten_secondly=self.portal_rate,
        )
        self.server = serve(self.portals, port=0)  # type: ignore[arg-type]
        self.url = self.server.base_url
        (self.tmp_path / "model.yaml").write_text(E2E_MODEL, encoding="utf-8")
        self.ids = [f"{self.name}-{i}" for i in range(1, self.tenants + 1)]
        root = self.tmp_path / "tenants"
        for i, tid in enumerate(self.ids):
            folder = root / tid
            folder.mkdir(parents=True)
            (folder / "token").write_text(self.token(tid), encoding="utf-8")
            (folder / "leadsync.yaml").write_text(self.tenant_yaml(), encoding="utf-8")
            del i
        self.path = self.tmp_path / "deployment.yaml"
        self.path.write_text(
            f"name: {self.name}\n"
            f"broker: {self.broker}\n"
            f"redis: {self.redis_url}\n"
            f"state: {self.pg_url}\n"
            "tenants_dir: tenants\n"
            "dispatch_every: 1s\n" + self.extra,
            encoding="utf-8",
        )
        self.redis = redis.Redis.from_url(self.redis_url)
        self.states = TenantStates(self.redis, self.name)

    def tenant_yaml(self) -> str:
        return (
            "crm:\n  type: hubspot\n  hubspot:\n"
            "    access_token: ${file:token}\n"
            f"    base_url: {self.url}\n    tier: pro\n"
            "models: [../../model.yaml]\n"
            f"schedule: {{every: {self.every}}}\n"
        )

    @property
    def deployment(self) -> Deployment:
        return load_deployment(self.path)

    def token(self, tenant: str) -> str:
        index = 0 if self.shared_token else self.ids.index(tenant)
        return self.portals.tokens[index]

    def store(self, tenant: str) -> StateStore:
        return StateStore(self.pg_url, schema=schema_for(tenant))

    # ------------------------------------------------------------- the CRM side
    def http(self, tenant: str, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token(tenant)}"}
        for _ in range(50):
            r = requests.request(method, self.url + path, json=body, headers=headers, timeout=10)
            if r.status_code != 429:
                break
            time.sleep(0.2)  # the test's own reads share the portal's window
        assert r.status_code < 300, (r.status_code, r.text)
        return r.json() if r.content else None

    def contact_ids(self, tenant: str, n: int) -> list[str]:
        page = self.http(tenant, "GET", f"/crm/v3/objects/contacts?limit={n}")
        return [r["id"] for r in page["results"]]

    def make_hot(self, tenant: str, ids: list[str]) -> None:
        for cid in ids:
            self.http(
                tenant,
                "PATCH",
                f"/crm/v3/objects/contacts/{cid}",
                {"properties": {"jobtitle": HOT_TITLE}},
            )

    def crm_actions(self, tenant: str, cid: str) -> dict[str, int]:
        out = {}
        for kind in ("deals", "tasks"):
            page = self.http(
                tenant, "GET", f"/crm/v4/objects/contacts/{cid}/associations/{kind}?limit=500"
            )
            out[kind] = len(page.get("results", []))
        return out

    def rate_limited(self) -> int:
        return int(self.portals.stats()["by_status"].get(429, 0)) + int(
            self.portals.stats()["by_status"].get("429", 0)
        )

    # ------------------------------------------------------------- processes
    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``python -m scheduler.cli_scale ARGS --deployment F`` as its own process
        group (so that killing it kills its pool too), output in a log file."""
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        command = [sys.executable, str(REPO / "tests/scaleout/run_cli.py"), *args]
        with open(self.tmp_path / f"proc-{len(self.procs)}.log", "wb") as log:
            proc = subprocess.Popen(
                [*command, "--deployment", str(self.path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=self.tmp_path,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp_path.glob("proc-*.log"))
        )

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with _quiet():
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self.server.close()
        engine = sa.create_engine(self.pg_url)
        with engine.begin() as conn:
            for tid in self.ids:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema_for(tid)}" CASCADE'))
        engine.dispose()
        keys = list(self.redis.scan_iter(f"{self.name}*"))
        if keys:
            self.redis.delete(*keys)
        self.redis.close()


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def wait_for(what: str, check: Callable[[], Any], timeout: float, logs: Callable[[], str]) -> Any:
    """Poll a subprocess's progress until ``check`` is truthy or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{logs()}")


def ledger(store: StateStore) -> list[tuple[str, str, str, str | None]]:
    """(contact, kind, status, CRM id) of every ledger row."""
    t = store.t["ledger"]
    with store.tx() as conn:
        rows = conn.execute(sa.select(t.c.contact_id, t.c.kind, t.c.status, t.c.result_id))
        return sorted((r[0], r[1], r[2], r[3]) for r in rows)
