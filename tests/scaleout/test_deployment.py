"""The deployment file: one clear line per problem, tenants from a list or a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.config import ConfigError
from scheduler.scaleout.deployment import load_deployment, parse_deployment, schema_for, tenants

GOOD = """\
broker: amqp://guest:guest@127.0.0.1:5672//
redis: redis://127.0.0.1:6379/0
state: postgresql+psycopg://postgres@127.0.0.1/test
tenants:
  - {id: acme, config: acme/leadsync.yaml}
  - {id: globex-eu, config: /abs/globex.yaml}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_deployment(text, source="deploy.yaml")
    return info.value.problems


def test_a_good_file_lists_its_tenants_with_their_schemas(tmp_path: Path) -> None:
    d = parse_deployment(GOOD, source="deploy.yaml", base_dir=tmp_path)
    found = tenants(d)
    assert [(t.id, t.schema) for t in found] == [("acme", "ls_acme"), ("globex-eu", "ls_globex_eu")]
    assert found[0].config_path == tmp_path / "acme/leadsync.yaml"
    assert str(found[1].config_path) == "/abs/globex.yaml"
    assert d.budgets["hubspot"].window == "190 per 10 seconds"
    assert d.longest_run.total_seconds() == 7200


def test_sqlite_is_refused_with_the_reason_on_its_line() -> None:
    text = GOOD.replace("postgresql+psycopg://postgres@127.0.0.1/test", "sqlite:///x.db")
    (line,) = problems(text)
    assert line.startswith("deploy.yaml:3: state: ")
    assert "SQLite cannot be shared" in line


def test_a_bad_tenant_id_names_its_line() -> None:
    (line,) = problems(GOOD.replace("id: acme", "id: Acme!"))
    assert line.startswith("deploy.yaml:5: tenants[0].id: ")
    assert "lower-case letters" in line


def test_two_ids_on_one_schema_are_refused() -> None:
    text = GOOD.replace("globex-eu", "acme")
    assert any("listed twice" in p for p in problems(text))
    text = GOOD.replace("id: acme", "id: globex_eu")
    assert any("shares schema ls_globex_eu" in p for p in problems(text))


def test_redis_is_required_and_the_broker_must_be_a_broker() -> None:
    text = GOOD.replace("redis: redis://127.0.0.1:6379/0\n", "").replace("amqp://", "http://")
    lines = problems(text)
    assert any(p.startswith("deploy.yaml:1: broker: ") for p in lines)
    assert "deploy.yaml:1: redis: Field required" in lines


def test_tenants_or_tenants_dir_not_both() -> None:
    lines = problems(GOOD + "tenants_dir: t\n")
    assert any("exactly one of tenants and tenants_dir" in p for p in lines)


def test_a_bad_rate_is_refused() -> None:
    (line,) = problems(GOOD + "budgets: {hubspot: {window: lots}}\n")
    assert "budgets.hubspot.window" in line and "190 per 10 seconds" in line


def test_tenants_dir_is_listed_again_on_every_call(tmp_path: Path) -> None:
    (tmp_path / "deploy.yaml").write_text(
        GOOD.split("tenants:")[0] + "tenants_dir: tenants\n", encoding="utf-8"
    )
    root = tmp_path / "tenants"
    (root / "acme").mkdir(parents=True)
    (root / "acme" / "leadsync.yaml").write_text("x", encoding="utf-8")
    d = load_deployment(tmp_path / "deploy.yaml")
    assert [t.id for t in tenants(d)] == ["acme"]
    (root / "beta").mkdir()
    (root / "beta" / "leadsync.yaml").write_text("x", encoding="utf-8")
    (root / "notes").mkdir()  # no leadsync.yaml: not a tenant
    assert [t.id for t in tenants(d)] == ["acme", "beta"]
    (root / "acme" / "leadsync.yaml").unlink()
    assert [t.id for t in tenants(d)] == ["beta"]
    (root / "Bad").mkdir()
    (root / "Bad" / "leadsync.yaml").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        tenants(d)
    assert "folder name 'Bad' is not a tenant id" in info.value.problems[0]


def test_schema_names_are_identifiers() -> None:
    assert schema_for("a-b_c9") == "ls_a_b_c9"
