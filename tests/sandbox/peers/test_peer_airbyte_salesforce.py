"""Airbyte's Salesforce source, unchanged from the package index, against the
sandbox: OAuth at ``https://login.salesforce.com`` (served by the sandbox for that
name, resolved to loopback in the source's process), API v62.0, discovery through
describe, and full-refresh reads through Bulk API 2.0 query jobs. What it reads is
counted against what the sandbox's own store holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peer_env import Peer, Run, run_peer

from connectors.sandbox import SandboxApp, generate_world, serve
from connectors.sandbox.framework import RunningServer
from connectors.sandbox.salesforce import SalesforceSandbox

pytestmark = pytest.mark.slow

PEER = Peer("airbyte-source-salesforce", "2.10.3", "source_salesforce.run:run")
HOST = "login.salesforce.com"
READ = ("Lead", "Contact", "Opportunity", "Task", "CampaignMember")


@pytest.fixture(scope="module")
def sandbox() -> SalesforceSandbox:
    return SalesforceSandbox(world=generate_world(250, seed=19))


@pytest.fixture(scope="module")
def app(sandbox: SalesforceSandbox) -> SandboxApp:
    return SandboxApp(sandbox)


@pytest.fixture(scope="module")
def server(app: SandboxApp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    PEER.ensure()
    ca = tmp_path_factory.mktemp("afsf-ca") / "ca.pem"
    with serve(app, tls_hostnames=[HOST], ca_out=ca) as running:
        yield running


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("airbyte-salesforce")
    (work / "config.json").write_text(json.dumps({
        "client_id": "sandbox-client", "client_secret": "sandbox-secret",
        "refresh_token": "sandbox-refresh", "start_date": "2000-01-01T00:00:00Z",
        "is_sandbox": False, "auth_type": "Client",
    }))  # fmt: skip
    return work


def airbyte(server: RunningServer, workdir: Path, *args: str) -> Run:
    assert server.ca_path is not None
    run = run_peer(
        PEER,
        [args[0], "--config", str(workdir / "config.json"), *args[1:]],
        routes={HOST: ("127.0.0.1", server.port)},
        ca_path=server.ca_path,
        workdir=workdir,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return run


def of_type(run: Run, kind: str) -> list[dict[str, Any]]:
    return [m for m in run.messages if m.get("type") == kind]


def test_check_succeeds(server: RunningServer, workdir: Path) -> None:
    status = of_type(airbyte(server, workdir, "check"), "CONNECTION_STATUS")
    assert status and status[0]["connectionStatus"]["status"] == "SUCCEEDED"


@pytest.fixture(scope="module")
def catalog(server: RunningServer, workdir: Path) -> dict[str, Any]:
    found = of_type(airbyte(server, workdir, "discover"), "CATALOG")
    assert found, "discover printed no catalog"
    catalog: dict[str, Any] = found[0]["catalog"]
    return catalog


def test_discover_lists_every_object(catalog: dict[str, Any], sandbox: SalesforceSandbox) -> None:
    names = {s["name"] for s in catalog["streams"]}
    assert set(sandbox.store.schema) <= names


def test_bulk_read_counts_every_record(
    server: RunningServer,
    workdir: Path,
    catalog: dict[str, Any],
    sandbox: SalesforceSandbox,
    app: SandboxApp,
) -> None:
    configured = {"streams": [
        {"stream": s, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}
        for s in catalog["streams"] if s["name"] in READ
    ]}  # fmt: skip
    (workdir / "configured.json").write_text(json.dumps(configured))
    app.reset_stats()
    run = airbyte(server, workdir, "read", "--catalog", str(workdir / "configured.json"))
    ids: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for m in of_type(run, "RECORD"):
        stream = m["record"]["stream"]
        ids.setdefault(stream, set()).add(m["record"]["data"]["Id"])
        counts[stream] = counts.get(stream, 0) + 1
    for sobject in READ:
        # the source's Bulk jobs run queryAll: deleted records count too
        held = sandbox.store.query(f"SELECT Id FROM {sobject}", all_rows=True, page_size=10**9)["records"]  # fmt: skip
        assert ids.get(sobject, set()) == {r["Id"] for r in held}, sobject
        assert counts.get(sobject, 0) == len(held), sobject
    routes = app.stats()["by_route"]
    assert routes.get("POST /services/data/v62.0/jobs/query", 0) >= len(
        READ
    )  # read through Bulk 2.0
