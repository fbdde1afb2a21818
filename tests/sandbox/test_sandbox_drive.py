"""A sandbox a user can drive: leadsync's Salesforce fields at start, activity on a
timer, and the sandbox-only routes that add a custom field or simulate activity."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors import registry
from connectors.base import FieldSpec, RuntimeContext
from connectors.sandbox import HubSpotSandbox, ManualClock, Request, SandboxApp, generate_world
from scheduler.cli_sandbox import (
    SandboxOptions,
    SandboxStartError,
    check_options,
    parse_every,
    run_sandbox,
)

pytest.importorskip("connectors.sandbox.salesforce")

from connectors.sandbox import SalesforceSandbox

T0 = datetime(2026, 6, 30, 12, tzinfo=UTC)


def _post(app: SandboxApp, path: str, payload: Any) -> tuple[int, Any]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    response = app(Request.from_url("POST", f"http://sandbox{path}", body=body))
    return response.status, json.loads(response.body or b"null")


def _start(
    opts: SandboxOptions, clock: ManualClock, wait: Callable[[float], bool] | None = None
) -> tuple[threading.Event, threading.Thread, list[str]]:
    stop = threading.Event()
    ready = threading.Event()
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if "Ctrl-C" in line:
            ready.set()

    thread = threading.Thread(
        target=run_sandbox,
        args=(opts,),
        kwargs={"stop": stop, "echo": echo, "clock": clock, "wait": wait},
    )
    thread.start()
    assert ready.wait(30), "the sandbox did not start"
    return stop, thread, lines


def _sf_connector(base_url: str, ca: Path, clock: ManualClock) -> Any:
    settings = {
        "session_id": "sandbox-session",
        "instance_url": base_url,
        "ca_bundle": str(ca),
    }
    context = RuntimeContext(now=clock.datetime, sleep=clock.sleep)
    return registry.create("salesforce", settings, context=context)


@pytest.mark.parametrize("with_fields", [True, False])
def test_leadsync_fields_start_the_org_ready_for_the_connector(
    tmp_path: Path, with_fields: bool
) -> None:
    """With --leadsync-fields the connector finds every field it needs; without, it
    still creates none itself and says what an admin must create."""
    clock = ManualClock(T0)
    ca = tmp_path / "ca.pem"
    opts = SandboxOptions(
        crm="salesforce", salesforce_port=0, contacts=30, ca_out=ca, leadsync_fields=with_fields
    )
    stop, thread, lines = _start(opts, clock)
    try:
        url = re.search(r"(https://127\.0\.0\.1:\d+)", "\n".join(lines)).group(1)  # type: ignore[union-attr]
        connector = _sf_connector(url, ca, clock)
        try:
            check = connector.ensure_fields(
                [
                    FieldSpec("leadsync_score", "number", "leadsync score"),
                    FieldSpec("leadsync_services_score", "number", "services score"),
                ]
            )
        finally:
            connector.close()
        if with_fields:
            assert check.missing == ()
            assert "Lead.leadsync_score__c" in check.present
            assert "Task.leadsync_key__c" in check.present
            assert any("leadsync fields:" in line for line in lines)
        else:
            assert "Lead.leadsync_score__c" in check.missing
            assert any("External ID" in i for i in check.instructions)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def test_activity_on_a_timer_moves_contacts_without_sleeping() -> None:
    """--simulate-every 30s --simulate-count 5: each tick gives people new activity at
    the sandbox's time; the timer is injected, so the test takes no wall time."""
    clock = ManualClock(T0)
    ticks: list[float] = []
    stop_holder: list[threading.Event] = []

    def wait(seconds: float) -> bool:
        if len(ticks) == 3:
            stop_holder[0].set()
            return True
        ticks.append(seconds)
        clock.advance(seconds)
        return False

    opts = SandboxOptions(
        crm="both",
        hubspot_port=0,
        salesforce_port=0,
        contacts=80,
        simulate_every="30s",
        simulate_count=5,
    )
    stop = threading.Event()
    stop_holder.append(stop)
    lines: list[str] = []
    thread = threading.Thread(
        target=run_sandbox,
        args=(opts,),
        kwargs={"stop": stop, "echo": lines.append, "clock": clock, "wait": wait},
    )
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert ticks == [30.0, 30.0, 30.0]
    assert any("every 30s" in line for line in lines)
    simulated = [line for line in lines if line.startswith("Simulated activity #")]
    assert len(simulated) == 3
    assert all(re.search(r": 5 people active", line) for line in simulated)


def test_simulate_route_gives_new_people_activity_on_both_flavours() -> None:
    world = generate_world(120, seed=4)
    clock = ManualClock(world.now + 3600)
    for flavour in (
        HubSpotSandbox(world=world, clock=clock, search_lag_seconds=0),
        SalesforceSandbox(world=world, clock=clock),
    ):
        app = SandboxApp(flavour)
        status, first = _post(app, "/__sandbox/simulate", {"count": 6})
        assert status == 200 and first["count"] == len(first["active"]) == 6
        status, second = _post(app, "/__sandbox/simulate", {"count": 6})
        assert status == 200 and second["seed"] != first["seed"]
        # an explicit seed repeats a round, on either flavour
        again = SandboxApp(type(flavour)(world=world, clock=clock))
        assert (
            _post(again, "/__sandbox/simulate", {"count": 6, "seed": first["seed"]})[1]["active"]
            == first["active"]
        )
        for bad, message in (
            ({"count": -1}, "count: expected a non-negative integer"),
            ({"count": "many"}, "count: expected"),
            ({"people": 3}, "unknown key(s): people"),
            ([1, 2], "expected a JSON object"),
            (b"{not json", "body is not JSON"),
        ):
            status, body = _post(app, "/__sandbox/simulate", bad)
            assert status == 400 and message in body["error"], bad


def test_fields_route_adds_a_salesforce_field_as_an_admin_would() -> None:
    clock = ManualClock(T0)
    sf = SalesforceSandbox(world=generate_world(30, seed=2), clock=clock)
    app = SandboxApp(sf)
    field = {"object": "Lead", "name": "leadsync_score__c", "type": "double"}
    status, body = _post(app, "/__sandbox/fields", field)
    assert status == 201 and body["name"] == "leadsync_score__c"
    status, body = _post(
        app,
        "/__sandbox/fields",
        {"object": "Task", "name": "leadsync_key__c", "type": "string", "externalId": True,
         "unique": True},
    )  # fmt: skip
    assert status == 201
    token = sf.issue_session()
    described = app(
        Request.from_url(
            "GET",
            "http://sandbox/services/data/v59.0/sobjects/Task/describe",
            headers={"Authorization": f"Bearer {token}"},
        )
    )
    key = next(f for f in json.loads(described.body)["fields"] if f["name"] == "leadsync_key__c")
    assert key["externalId"] and key["unique"]
    assert _post(app, "/__sandbox/fields", field)[0] == 409
    for bad, status_wanted in (
        ({"object": "Nope", "name": "x__c"}, 404),
        ({"object": "Lead", "name": "no_suffix"}, 400),
        ({"object": "Lead", "name": "y__c", "type": "hologram"}, 400),
        ({"name": "z__c"}, 400),
        ({"object": "Lead", "name": "w__c", "colour": "red"}, 400),
    ):
        assert _post(app, "/__sandbox/fields", bad)[0] == status_wanted, bad


def test_fields_route_adds_a_hubspot_property() -> None:
    clock = ManualClock(T0)
    hs = HubSpotSandbox(world=generate_world(30, seed=2), clock=clock, search_lag_seconds=0)
    app = SandboxApp(hs)
    status, body = _post(
        app, "/__sandbox/fields", {"object": "contacts", "name": "fit_tier", "type": "string"}
    )
    assert status == 201 and body["name"] == "fit_tier" and body["fieldType"] == "text"
    got = app(
        Request.from_url(
            "GET",
            "http://sandbox/crm/v3/properties/contacts/fit_tier",
            headers={"Authorization": "Bearer sandbox-token"},
        )
    )
    assert got.status == 200 and json.loads(got.body)["type"] == "string"
    assert _post(app, "/__sandbox/fields", {"object": "contacts", "name": "fit_tier"})[0] == 409
    assert _post(app, "/__sandbox/fields", {"object": "widgets", "name": "x"})[0] == 404


def test_sandbox_routes_answer_over_http_too(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    stop, thread, lines = _start(
        SandboxOptions(crm="hubspot", hubspot_port=0, contacts=40, days=200), clock
    )
    try:
        url = re.search(r"(http://127\.0\.0\.1:\d+)", lines[0]).group(1)  # type: ignore[union-attr]
        assert any("/__sandbox/simulate" in line for line in lines)
        r = requests.post(f"{url}/__sandbox/simulate", json={"count": 3}, timeout=10)
        assert r.status_code == 200 and r.json()["count"] == 3
    finally:
        stop.set()
        thread.join(10)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("45", 45.0)]
)
def test_simulate_every_reads_durations(text: str, seconds: float) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["0s", "soon", "-5m", "", "0.5s", "infs"])
def test_simulate_every_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(SandboxStartError, match=r"--simulate-every: expected a duration"):
        check_options(SandboxOptions(simulate_every=text))


def test_negative_simulate_count_is_named() -> None:
    with pytest.raises(SandboxStartError, match="--simulate-count"):
        check_options(SandboxOptions(simulate_count=-1))
