"""The Singer ``tap-salesforce``, unchanged from the package index, against the
sandbox: OAuth at ``https://login.salesforce.com`` (served by the sandbox for that
name, resolved to loopback in the tap's process), discovery through describe, and a
Lead read through the REST API and through Bulk API 1.0. What it reads is counted
against what the sandbox's own store holds."""

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

PEER = Peer("tap-salesforce", "2.8.1", "tap_salesforce:main")
HOST = "login.salesforce.com"


@pytest.fixture(scope="module")
def sandbox() -> SalesforceSandbox:
    return SalesforceSandbox(world=generate_world(250, seed=17))


@pytest.fixture(scope="module")
def server(sandbox: SalesforceSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:  # fmt: skip
    PEER.ensure()
    ca = tmp_path_factory.mktemp("sf-ca") / "ca.pem"
    with serve(SandboxApp(sandbox), tls_hostnames=[HOST], ca_out=ca) as running:
        yield running


def tap(server: RunningServer, workdir: Path, api_type: str, *args: str) -> Run:
    assert server.ca_path is not None
    config = workdir / f"config-{api_type}.json"
    config.write_text(json.dumps({
        "client_id": "sandbox-client", "client_secret": "sandbox-secret",
        "refresh_token": "sandbox-refresh", "start_date": "2000-01-01T00:00:00Z",
        "api_type": api_type, "select_fields_by_default": True, "is_sandbox": False,
    }))  # fmt: skip
    run = run_peer(
        PEER,
        ["--config", str(config), *args],
        routes={HOST: ("127.0.0.1", server.port)},
        ca_path=server.ca_path,
        workdir=workdir,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return run


@pytest.fixture(scope="module")
def catalog(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    run = tap(server, tmp_path_factory.mktemp("tap-discover"), "REST", "--discover")
    assert run.messages and "streams" in run.messages[0], "discovery printed no catalog"
    return run.messages[0]


def test_discovery_lists_the_objects(catalog: dict[str, Any], sandbox: SalesforceSandbox) -> None:
    names = {s["stream"] for s in catalog["streams"]}
    assert {
        "Lead",
        "Contact",
        "Account",
        "Opportunity",
        "Task",
        "Event",
        "Campaign",
        "User",
    } <= names
    lead = next(s for s in catalog["streams"] if s["stream"] == "Lead")
    assert {"Id", "Email", "SystemModstamp"} <= set(lead["schema"]["properties"])


@pytest.mark.parametrize("api_type", ["REST", "BULK"])
def test_lead_read_counts_every_lead(
    server: RunningServer,
    catalog: dict[str, Any],
    sandbox: SalesforceSandbox,
    tmp_path: Path,
    api_type: str,
) -> None:
    lead = json.loads(json.dumps(next(s for s in catalog["streams"] if s["stream"] == "Lead")))
    for entry in lead["metadata"]:
        if entry["breadcrumb"] == []:
            entry["metadata"]["selected"] = True
    (tmp_path / "properties.json").write_text(json.dumps({"streams": [lead]}))
    run = tap(server, tmp_path, api_type, "--properties", str(tmp_path / "properties.json"))
    records = [m["record"] for m in run.messages if m.get("type") == "RECORD" and m.get("stream") == "Lead"]  # fmt: skip
    # the tap reads with queryAll: deleted Leads count too
    held = sandbox.store.query("SELECT Id FROM Lead", all_rows=True, page_size=10**9)["records"]
    assert len(records) == len(held) > 0
    assert {r["Id"] for r in records} == {r["Id"] for r in held}
