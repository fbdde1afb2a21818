"""Airbyte's HubSpot source, unchanged from the package index, against the sandbox.

It hard-codes ``https://api.hubapi.com``: the sandbox serves HTTPS for that name
(``serve(tls_hostnames=...)``) and the peer's process resolves it to loopback. What
it reads is counted against what the sandbox's own store holds."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peer_env import Peer, Run, run_peer

from connectors.sandbox import HubSpotSandbox, SandboxApp, generate_world, serve
from connectors.sandbox.framework import RunningServer

pytestmark = pytest.mark.slow

PEER = Peer("airbyte-source-hubspot", "5.7.0", "source_hubspot.run:run")
HOST = "api.hubapi.com"


@pytest.fixture(scope="module")
def sandbox() -> HubSpotSandbox:
    return HubSpotSandbox(world=generate_world(250, seed=17), seed=17)


@pytest.fixture(scope="module")
def server(sandbox: HubSpotSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:  # fmt: skip
    PEER.ensure()  # install (or skip) before the server starts
    ca = tmp_path_factory.mktemp("hs-ca") / "ca.pem"
    with serve(SandboxApp(sandbox), tls_hostnames=[HOST], ca_out=ca) as running:
        yield running


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("airbyte-hubspot")
    (work / "config.json").write_text(json.dumps({
        "credentials": {"credentials_title": "Private App Credentials", "access_token": "sandbox-token"},
        "start_date": "2000-01-01T00:00:00Z",
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


def test_discover_lists_the_streams(catalog: dict[str, Any]) -> None:
    names = {s["name"] for s in catalog["streams"]}
    assert {"contacts", "deals", "owners", "engagements", "tickets", "line_items"} <= names


def test_read_contacts_deals_engagements_owners(
    server: RunningServer, workdir: Path, catalog: dict[str, Any], sandbox: HubSpotSandbox
) -> None:
    wanted = ("contacts", "deals", "engagements", "owners", "tickets")
    configured = {"streams": [
        {"stream": s, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}
        for s in catalog["streams"] if s["name"] in wanted
    ]}  # fmt: skip
    (workdir / "configured.json").write_text(json.dumps(configured))
    run = airbyte(server, workdir, "read", "--catalog", str(workdir / "configured.json"))
    records = [m["record"] for m in of_type(run, "RECORD")]
    ids: dict[str, set[str]] = {}
    for r in records:
        ids.setdefault(r["stream"], set()).add(str(r["data"]["id"]))
    counts = Counter(r["stream"] for r in records)

    def held(obj: str) -> set[str]:
        return {str(int(i)) for i in sandbox.store.tables[obj].listable_ids(archived=False)}

    engagements = set().union(*(held(t) for t in ("calls", "emails", "meetings", "notes", "tasks")))
    owners = {str(o.id) for o in sandbox.store.owners if not o.archived}
    assert ids["contacts"] == held("contacts") and counts["contacts"] == len(held("contacts"))
    assert ids["deals"] == held("deals") and counts["deals"] == len(held("deals"))
    assert ids["engagements"] == engagements and counts["engagements"] == len(engagements)
    assert ids["owners"] == owners
    assert counts["tickets"] == 0  # not modelled: an empty portal's answer, not an error
    errors = [m for m in of_type(run, "TRACE") if m["trace"].get("type") == "ERROR"]
    assert errors == []


def test_every_stream_reads_without_error(
    server: RunningServer, workdir: Path, catalog: dict[str, Any]
) -> None:
    """Streams of what the sandbox does not model read as an empty portal, not as
    failures: every stream of the catalog completes."""
    configured = {"streams": [
        {"stream": s, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}
        for s in catalog["streams"]
    ]}  # fmt: skip
    (workdir / "everything.json").write_text(json.dumps(configured))
    run = airbyte(server, workdir, "read", "--catalog", str(workdir / "everything.json"))
    statuses = {}
    for m in of_type(run, "TRACE"):
        if m["trace"].get("type") == "STREAM_STATUS":
            status = m["trace"]["stream_status"]
            statuses[status["stream_descriptor"]["name"]] = status["status"]
    assert statuses == {s["name"]: "COMPLETE" for s in catalog["streams"]}
    errors = [m for m in of_type(run, "TRACE") if m["trace"].get("type") == "ERROR"]
    assert errors == []
