"""Beat's dispatcher against the real Redis on an injected clock: when a tenant is
due, once per slot whichever beat asks, added and removed tenants noticed, back-off
honoured; and the status rows built from what it and the workers record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from scheduler.scaleout.dispatch import Dispatcher
from scheduler.scaleout.status import status_rows
from scheduler.scaleout.tenant_state import TenantStates

TENANT = "crm:\n  type: files\n  files: {{contacts: c.csv}}\nmodels: [m.yaml]\nschedule: {{every: {every}}}\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def setup(tmp_path: Path, name: str, redis_url: str, tenants: dict[str, str]) -> Path:
    root = tmp_path / "tenants"
    for tid, every in tenants.items():
        (root / tid).mkdir(parents=True, exist_ok=True)
        (root / tid / "leadsync.yaml").write_text(TENANT.format(every=every), encoding="utf-8")
    path = tmp_path / "deployment.yaml"
    path.write_text(
        f"name: {name}\nbroker: {redis_url}\nredis: {redis_url}\n"
        "state: postgresql+psycopg://postgres@127.0.0.1/test\ntenants_dir: tenants\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def states(redis_url: str, unique: str) -> TenantStates:
    return TenantStates(redis.Redis.from_url(redis_url), unique)


def test_new_tenants_run_at_once_then_on_their_interval(
    tmp_path: Path, unique: str, redis_url: str, states: TenantStates
) -> None:
    path = setup(tmp_path, unique, redis_url, {"a": "10m", "b": "1h"})
    clock, sent = Clock(), []
    d = Dispatcher(path, states, lambda t, due: sent.append((t, due)), clock=clock)
    assert d.tick() == ["a", "b"]
    assert d.tick() == []
    clock.now += 600
    assert d.tick() == ["a"]
    clock.now += 3000
    assert d.tick() == ["a", "b"]
    assert sent[0] == ("a", 1_000_000.0)


def test_two_beats_send_each_slot_once(
    tmp_path: Path, unique: str, redis_url: str, states: TenantStates
) -> None:
    path = setup(tmp_path, unique, redis_url, {"a": "10m"})
    clock, sent = Clock(), []
    one = Dispatcher(path, states, lambda t, due: sent.append(t), clock=clock)
    two = Dispatcher(
        path,
        TenantStates(redis.Redis.from_url(redis_url), unique),
        lambda t, due: sent.append(t),
        clock=clock,
    )
    for _ in range(3):
        one.tick()
        two.tick()
        clock.now += 600
    assert sent == ["a", "a", "a"]


def test_added_and_removed_tenants_are_noticed_without_a_restart(
    tmp_path: Path, unique: str, redis_url: str, states: TenantStates
) -> None:
    path = setup(tmp_path, unique, redis_url, {"a": "10m"})
    clock = Clock()
    d = Dispatcher(path, states, lambda t, due: None, clock=clock)
    assert d.tick() == ["a"]
    setup(tmp_path, unique, redis_url, {"b": "10m"})
    (tmp_path / "tenants" / "a" / "leadsync.yaml").unlink()
    assert d.tick() == ["b"]
    assert states.known() == {"b"}
    assert states.get("a").fields == {}


def test_a_tenant_in_back_off_waits(
    tmp_path: Path, unique: str, redis_url: str, states: TenantStates
) -> None:
    path = setup(tmp_path, unique, redis_url, {"a": "10m"})
    clock = Clock()
    d = Dispatcher(path, states, lambda t, due: None, clock=clock)
    assert d.tick() == ["a"]
    states.update("a", backoff_until=clock.now + 1800)
    clock.now += 600
    assert d.tick() == []
    clock.now += 1200
    assert d.tick() == ["a"]


def test_a_bad_tenant_file_is_reported_and_the_others_run(
    tmp_path: Path, unique: str, redis_url: str, states: TenantStates
) -> None:
    path = setup(tmp_path, unique, redis_url, {"a": "10m", "b": "10m"})
    (tmp_path / "tenants" / "b" / "leadsync.yaml").write_text("crm: [\n", encoding="utf-8")
    d = Dispatcher(path, states, lambda t, due: None, clock=Clock())
    assert d.tick() == ["a"]
    rec = states.get("b").fields
    assert rec["state"] == "config" and "leadsync.yaml:" in rec["error"]


def test_a_broken_deployment_file_keeps_the_last_good_one(
    tmp_path: Path, unique: str, redis_url: str, states: TenantStates
) -> None:
    path = setup(tmp_path, unique, redis_url, {"a": "10m"})
    clock = Clock()
    d = Dispatcher(path, states, lambda t, due: None, clock=clock)
    assert d.tick() == ["a"]
    path.write_text(path.read_text() + "state: sqlite:///x.db\n", encoding="utf-8")
    clock.now += 600
    assert d.tick() == ["a"]


def test_status_rows_show_each_tenant(
    tmp_path: Path, unique: str, redis_url: str, states: TenantStates
) -> None:
    path = setup(tmp_path, unique, redis_url, {"a": "10m", "b": "10m"})
    clock = Clock()
    Dispatcher(path, states, lambda t, due: None, clock=clock).tick()
    states.update("a", last_run_at=clock.now + 2, state="ok", lag_seconds=2.0)
    states.update("b", state="auth", error="hubspot: the private-app access token was refused")
    states.update("b", backoff_until=clock.now + 600, next_run_at=clock.now + 600)
    clock.now += 900  # a is overdue by 300 s
    rows = {r["tenant"]: r for r in status_rows(path, clock=clock)}
    assert rows["a"]["state"] == "ok" and rows["a"]["lag_seconds"] == 300.0
    assert rows["a"]["last_run_at"] == "1970-01-12T13:46:42+00:00"
    assert rows["b"]["state"].startswith("auth (retry ")
    assert "refused" in rows["b"]["error"]
    assert set(rows["a"]) == {
        "tenant",
        "last_run_at",
        "next_run_at",
        "lag_seconds",
        "state",
        "error",
        "budget",
    }


def test_the_status_command_prints_json_lines(
    tmp_path: Path, unique: str, redis_url: str, states: TenantStates
) -> None:
    from scheduler.cli_scale import _standalone

    path = setup(tmp_path, unique, redis_url, {"a": "10m"})
    result = CliRunner().invoke(
        _standalone(), ["deployment", "status", "--deployment", str(path), "--json"]
    )
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.output.splitlines()]
    assert row["tenant"] == "a" and row["state"] == "new"


def test_a_bad_deployment_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    from scheduler.cli_scale import _standalone

    path = tmp_path / "d.yaml"
    path.write_text("broker: http://x\nredis: redis://x\nstate: sqlite:///s.db\ntenants: []\n")
    for command in (["worker"], ["beat"], ["deployment", "status"]):
        result = CliRunner().invoke(_standalone(), [*command, "--deployment", str(path)])
        assert result.exit_code == 2
        assert "Traceback" not in result.output
        lines = result.output.strip().splitlines()
        assert lines[0].startswith(f"{path}:1: broker: ")
        assert any(line.startswith(f"{path}:3: state: SQLite cannot be shared") for line in lines)


def test_status_with_a_deployment_gives_the_same_rows(
    tmp_path: Path, unique: str, redis_url: str, states: TenantStates
) -> None:
    from scheduler.cli import app

    path = setup(tmp_path, unique, redis_url, {"a": "10m"})
    result = CliRunner().invoke(app, ["status", "--deployment", str(path), "--json"])
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.output.splitlines()]
    assert row["tenant"] == "a" and row["state"] == "new"
    neither = CliRunner().invoke(app, ["status"])
    assert neither.exit_code == 2
    assert "exactly one of --config or --deployment" in neither.output
