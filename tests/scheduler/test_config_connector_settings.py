"""leadsync.yaml: the crm.<type> section is checked with the connector's settings model,
with the same FILE:LINE and did-you-mean lines as the rest of the file; templates may
only name fields the sync can fill; owner ids may be numbers; relative paths in the
connector's settings start at the configuration file's folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors import registry
from scheduler.cli import app
from scheduler.cli_sync import make_connector
from scheduler.config import ConfigError, load_config

HUBSPOT = """\
crm:
  type: hubspot
  hubspot:
    access_token: ${HS_TOKEN}
    tier: pro
models: model.yaml
writeback:
  on_cross:
    deal: {name: "{first_name} {last_name} - {model}", stage: appointmentscheduled}
    task: {subject: "Follow up: {first_name} scored {score}"}
    owners: {pool: [ann@example.com, 12345]}
"""

SALESFORCE = """\
crm:
  type: salesforce
  salesforce:
    instance_url: https://example.my.salesforce.com
    session_id: ${SF_SESSION}
    ca_bundle: certs/ca.pem
models: model.yaml
"""

ENV = {"HS_TOKEN": "pat-na1-planted-token", "SF_SESSION": "00Dplanted!session"}


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "leadsync.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=ENV if env is None else env)
    for line in info.value.problems:
        assert "planted" not in line
    return info.value.problems


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("    tier: pro", "    teir: pro"),
            ":5: crm.hubspot.teir: unknown key 'teir' (did you mean 'tier'?)",
        ),
        (
            ("    tier: pro", "    tier: platinum"),
            ":5: crm.hubspot.tier: 'platinum' is not one of enterprise, free, pro",
        ),
        (("type: hubspot", "type: hubspt"), ":2: crm.type: unknown connector 'hubspt' (did"),
        (
            ("tier: pro", "tier: pro\n    web_analytics: yes please"),
            ":6: crm.hubspot.web_analytics",
        ),
        (("  hubspot:\n", "  hubspot:\n    oauth: {client_id: a}\n"), ":4: crm.hubspot.oauth"),
    ],
)
def test_connector_settings_are_checked_with_file_and_line(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    problems = _load(tmp_path, HUBSPOT.replace(*edit))
    assert len(problems) >= 1
    assert problems[0].startswith(str(tmp_path / "leadsync.yaml") + ":"), problems
    assert expected in problems[0], problems


def test_an_empty_token_is_refused_with_its_line(tmp_path: Path) -> None:
    problems = _load(tmp_path, HUBSPOT, env={"HS_TOKEN": ""})
    assert len(problems) == 1, problems
    assert ":4: crm.hubspot.access_token: must not be empty" in problems[0]


def test_a_missing_salesforce_credential_names_its_nested_key(tmp_path: Path) -> None:
    text = SALESFORCE.replace(
        "    session_id: ${SF_SESSION}\n",
        '    jwt: {client_id: abc, private_key: "${SF_SESSION}"}\n',
    )
    problems = _load(tmp_path, text.replace("    ca_bundle: certs/ca.pem\n", ""))
    assert any(":5: crm.salesforce.jwt.username: Field required" in p for p in problems), problems


def test_check_config_stops_at_settings_problems_before_any_call(tmp_path: Path) -> None:
    (tmp_path / "leadsync.yaml").write_text(HUBSPOT.replace("tier: pro", "teir: pro"))
    result = CliRunner().invoke(
        app, ["check", "--config", str(tmp_path / "leadsync.yaml")], env=ENV
    )
    assert result.exit_code == 2
    assert "configuration is valid" not in result.output
    assert "missing:" not in result.output
    assert f"{tmp_path / 'leadsync.yaml'}:5: crm.hubspot.teir:" in result.output


def test_numeric_owner_ids_are_ids(tmp_path: Path) -> None:
    (tmp_path / "leadsync.yaml").write_text(HUBSPOT)
    config = load_config(tmp_path / "leadsync.yaml", env=ENV)
    assert config.writeback.on_cross.owners.pool == ["ann@example.com", "12345"]


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Path]:
    """Run from another folder than the configuration's, as a scheduler does."""
    other = tmp_path / "cwd"
    other.mkdir()
    before = Path.cwd()
    os.chdir(other)
    try:
        yield other
    finally:
        os.chdir(before)


def test_a_relative_ca_bundle_resolves_from_the_config_folder(
    tmp_path: Path, elsewhere: Path
) -> None:
    folder = tmp_path / "conf"
    (folder / "certs").mkdir(parents=True)
    (folder / "certs" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    path = folder / "leadsync.yaml"
    path.write_text(SALESFORCE)
    config = load_config(path, env=ENV)
    assert config.crm.settings()["ca_bundle"] == str(folder / "certs" / "ca.pem")
    connector = make_connector(config)
    try:
        assert connector.settings.ca_bundle == str(folder / "certs" / "ca.pem")  # type: ignore[attr-defined]
    finally:
        connector.close()


def test_a_relative_ca_bundle_that_is_not_there_names_the_line(
    tmp_path: Path, elsewhere: Path
) -> None:
    problems = _load(tmp_path, SALESFORCE)
    assert len(problems) == 1, problems
    assert ":6: crm.salesforce.ca_bundle: no such file" in problems[0]
    assert str(tmp_path / "certs" / "ca.pem") in problems[0]


def test_built_in_connectors_expose_their_settings_model() -> None:
    for name in ("hubspot", "salesforce"):
        model = registry.settings_model(name)
        assert model is not None and "score_fields" in model.model_fields
    assert registry.settings_model("files") is None  # checks its own settings


# ----------------------------------------------------------------------------- templates


def test_an_unknown_placeholder_is_refused_with_its_line_and_the_known_names(
    tmp_path: Path,
) -> None:
    problems = _load(
        tmp_path, HUBSPOT.replace('"{first_name} {last_name}', '"{frist_name} {last_name}')
    )
    assert len(problems) == 1, problems
    line = problems[0]
    assert ":9: writeback.on_cross.deal.name: unknown placeholder {frist_name}" in line
    assert "(did you mean 'first_name'?)" in line
    for known in ("first_name", "job_title", "model", "score", "band", "contact_id"):
        assert known in line


def test_a_field_mapped_by_the_connector_may_be_named(tmp_path: Path) -> None:
    text = HUBSPOT.replace(
        "    tier: pro\n", "    tier: pro\n    property_map: {hs_region: region}\n"
    )
    text = text.replace("scored {score}", "scored {score} in {region}")
    (tmp_path / "leadsync.yaml").write_text(text)
    config = load_config(tmp_path / "leadsync.yaml", env=ENV)
    assert config.template_fields() == {"first_name", "last_name", "region"}
    # without the mapping the same name is a typo to report
    problems = _load(tmp_path, text.replace("    property_map: {hs_region: region}\n", ""))
    assert "unknown placeholder {region}" in problems[0]


def test_a_configuration_built_in_code_gets_the_same_checks(tmp_path: Path) -> None:
    from scheduler.config import config_from_mapping

    good = {"crm": {"type": "hubspot", "hubspot": {"access_token": "x" * 8}}, "models": ["m"]}
    assert config_from_mapping(good, base_dir=tmp_path).crm.type == "hubspot"
    bad = {"crm": {"type": "hubspot", "hubspot": {"access_token": "x" * 8, "teir": "pro"}}}
    with pytest.raises(ConfigError) as info:
        config_from_mapping({**bad, "models": ["m"]}, base_dir=tmp_path)
    assert info.value.problems == [
        "<config>:1: crm.hubspot.teir: unknown key 'teir' (did you mean 'tier'?)"
    ]
