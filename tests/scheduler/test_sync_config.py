"""leadsync.yaml: valid files load, bad ones give one FILE:LINE line per problem."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from scheduler.config import ConfigError, load_config, parse_duration, redact

GOOD = """\
crm:
  type: hubspot
  hubspot: {access_token: "${HS_TOKEN}", base_url: "http://127.0.0.1:1", tier: pro}
models: models/starter.yaml
state: sqlite:///state/leadsync.db
schedule: {every: 15m}
writeback:
  min_change: 2
  band_field: leadsync_band
  max_actions_per_run: 10
  skip_if_open_deal: ours
  on_cross:
    deal: {name: "{first_name} {last_name} - {model}", stage: appointmentscheduled, pipeline: default, close_in: 30d, amount: null}
    task: {subject: "Follow up: {first_name} scored {score}", due_in: 1d, priority: high, type: call}
    owners: {strategy: round_robin, pool: [ann@example.com, "42"]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "leadsync.yaml"
    p.write_text(text)
    return p


def test_a_good_file_loads_with_env_secrets_and_relative_paths(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, GOOD), env={"HS_TOKEN": "pat-na1-SECRET-123"})
    assert cfg.crm.type == "hubspot"
    assert cfg.crm.settings()["access_token"] == "pat-na1-SECRET-123"
    assert cfg.model_paths() == [tmp_path / "models/starter.yaml"]
    assert cfg.state_url() == f"sqlite:///{(tmp_path / 'state/leadsync.db').resolve()}"
    assert cfg.schedule.every == timedelta(minutes=15)
    assert cfg.writeback.on_cross.deal is not None
    assert cfg.writeback.on_cross.deal.close_in == timedelta(days=30)
    assert cfg.writeback.on_cross.owners.pool == ["ann@example.com", "42"]
    # what came from the environment under a secret key is scrubbed from any text
    assert redact("401: token pat-na1-SECRET-123 refused") == "401: token *** refused"


def test_secrets_can_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("file-secret-abc\n")
    text = GOOD.replace('"${HS_TOKEN}"', '"${file:token.txt}"')
    cfg = load_config(_write(tmp_path, text), env={})
    assert cfg.crm.settings()["access_token"] == "file-secret-abc"
    assert "file-secret-abc" not in redact("x file-secret-abc y")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("min_change: 2", "min_change: -1"),
            ":8: writeback.min_change: Input should be greater than or equal to 0",
        ),
        (("band_field:", "band_feld:"), ":9: writeback.band_feld: unknown key"),
        (
            ("every: 15m", "every: soon"),
            ":6: schedule.every: expected a duration such as 15m, 1d or 30d",
        ),
        (("{every: 15m}", '{cron: "61 * * * *"}'), ":6: schedule.cron: bad cron expression"),
        (
            ("skip_if_open_deal: ours", "skip_if_open_deal: never"),
            ":11: writeback.skip_if_open_deal: Input should be 'any' or 'ours'",
        ),
        (("priority: high", "priority: urgent"), ":14: writeback.on_cross.task.priority:"),
        (
            ('"${HS_TOKEN}"', '"${NOT_SET_VAR}"'),
            ":3: crm.hubspot.access_token: environment variable NOT_SET_VAR is not set",
        ),
        (
            ('"${HS_TOKEN}"', "pat-na1-literal-secret"),
            ":3: crm.hubspot.access_token: secrets must not be written in the file",
        ),
        (
            ("{first_name} {last_name} - {model}", "{first_name!r} {0}"),
            ":13: writeback.on_cross.deal.name: bad template",
        ),
        (
            ("max_actions_per_run: 10", "max_actions_per_run: 10\n  max_actions_per_run: 11"),
            ":11: (yaml): found duplicate key",
        ),
    ],
)
def test_bad_files_give_one_line_with_file_line_and_path(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    path = _write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"HS_TOKEN": "t0k3n-value"})
    problems = info.value.problems
    assert len(problems) == 1, problems
    assert problems[0].startswith(str(path) + ":"), problems
    assert expected in problems[0], problems
    assert "pat-na1-literal-secret" not in str(info.value)


def test_missing_required_keys_and_yaml_syntax(tmp_path: Path) -> None:
    path = _write(tmp_path, "state: sqlite:///x.db\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert sorted(p.split(": ", 1)[1] for p in info.value.problems) == [
        "crm: Field required",
        "models: Field required",
    ]
    path.write_text("crm: {type: hubspot\nmodels: [a]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert len(info.value.problems) == 1 and "(yaml)" in info.value.problems[0]


def test_durations() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration(45) == timedelta(seconds=45)
    with pytest.raises(ValueError):
        parse_duration("-3d")
    with pytest.raises(ValueError):
        parse_duration(value=True)


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_example_configs_load(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLES / "leadsync.yaml", env={"HUBSPOT_ACCESS_TOKEN": "pat-example-1"})
    assert cfg.crm.type == "hubspot" and cfg.model_paths()[0].is_file()
    sf = tmp_path / "leadsync-salesforce.yaml"
    sf.write_text((EXAMPLES / "leadsync-salesforce.yaml").read_text())
    (tmp_path / "salesforce-jwt.key").write_text(
        "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n"
    )
    cfg = load_config(sf, env={"SF_CLIENT_ID": "3MVG-example"})
    assert cfg.crm.settings()["jwt"]["private_key"].startswith("-----BEGIN PRIVATE KEY")
    assert cfg.schedule.cron == "*/15 * * * *"
    assert cfg.writeback.on_cross.deal is not None
    assert cfg.writeback.on_cross.deal.lead_status == "Working - Contacted"
