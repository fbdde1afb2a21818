"""The ``alerts:`` section: one ``FILE:LINE: path: problem`` line per problem, and
secrets only from ``${VAR}`` or ``${file:}``, masked wherever text is shown."""

from __future__ import annotations

import pytest

from scheduler.alerts.config import load_alerts
from scheduler.config import ConfigError, redact

GOOD = """\
crm: {type: hubspot}
models: [m.yaml]
alerts:
  - type: slack
    url: ${SLACK_URL}
    on: [crossing, immediate, digest]
    max_per_minute: 5
    daily_summary: {at: "08:30", timezone: Europe/Paris}
  - type: teams
    url: ${file:teams.url}
  - type: email
    smtp: {host: smtp.acme.test, username: bot, password: "${SMTP_PASSWORD}"}
    from: leadsync@acme.test
    to: owner
"""


def _write(tmp_path, text, **files):
    for name, content in files.items():
        (tmp_path / name.replace("_", ".")).write_text(content)
    path = tmp_path / "leadsync.yaml"
    path.write_text(text)
    return path


def _problems(path, env):
    with pytest.raises(ConfigError) as info:
        load_alerts(path, env=env)
    return info.value.problems


def test_a_good_section_and_its_secrets_are_masked(tmp_path) -> None:
    path = _write(tmp_path, GOOD, teams_url="https://prod.logic.azure.test/wf?sig=TEAMSSIG123\n")
    env = {
        "SLACK_URL": "https://hooks.slack.test/services/T1/B1/SLACKSECRET9",
        "SMTP_PASSWORD": "pw-ABCDEFG",
    }
    config = load_alerts(path, env=env)
    slack, teams, mail = config.destinations
    assert (slack.id, teams.id, mail.id) == ("slack", "teams", "email")
    assert slack.daily_summary is not None and slack.daily_summary.at == "08:30"
    assert teams.url.endswith("sig=TEAMSSIG123")
    assert mail.to == "owner" and mail.smtp.port == 587
    text = f"posting to {slack.url} and {teams.url} with {mail.smtp.password}"
    assert "SLACKSECRET9" not in redact(text)
    assert "TEAMSSIG123" not in redact(text)
    assert "pw-ABCDEFG" not in redact(text)
    assert "SLACKSECRET9" not in repr(config) and "TEAMSSIG123" not in repr(config)


def test_a_url_written_in_the_file_is_refused_with_its_line(tmp_path) -> None:
    text = GOOD.replace("${SLACK_URL}", "https://hooks.slack.test/services/T1/B1/LITERAL")
    path = _write(tmp_path, text, teams_url="https://t.test/x\n")
    problems = _problems(path, {"SMTP_PASSWORD": "x" * 8})
    assert problems == [
        f"{path}:5: alerts[0].url: secrets must not be written in the file; use ${{ENV_VAR}} or ${{file:PATH}}"
    ]
    assert "LITERAL" not in "\n".join(problems)


def test_unset_variable_said_once(tmp_path) -> None:
    path = _write(tmp_path, GOOD, teams_url="https://t.test/x\n")
    assert _problems(path, {"SMTP_PASSWORD": "x" * 8}) == [
        f"{path}:5: alerts[0].url: environment variable SLACK_URL is not set"
    ]


def test_each_mistake_on_its_own_line(tmp_path) -> None:
    text = """\
crm: {type: hubspot}
alerts:
  - type: slack
    url: ${SLACK_URL}
    on: [crossing, weekly]
    max_per_minut: 5
  - type: teams
    url: ${TEAMS_URL}
    daily_summary: {at: "8h30", timezone: Mars/Olympus}
  - type: email
    smtp: {host: smtp.acme.test}
    from: not-an-address
    to: [ok@acme.test]
  - type: pager
  - type: slack
    url: ${SLACK_URL}
"""
    path = _write(tmp_path, text)
    env = {"SLACK_URL": "https://h.test/a", "TEAMS_URL": "https://h.test/b"}
    problems = _problems(path, env)
    assert problems == [
        f"{path}:5: alerts[0].on[1]: Input should be 'crossing', 'immediate' or 'digest'",
        f"{path}:6: alerts[0].max_per_minut: unknown key 'max_per_minut' (did you mean 'max_per_minute'?)",
        f"{path}:9: alerts[1].daily_summary.at: String should match pattern '^([01]\\d|2[0-3]):[0-5]\\d$'",
        f"{path}:9: alerts[1].daily_summary.timezone: unknown time zone 'Mars/Olympus' (an IANA name such as Europe/Paris)",
        f"{path}:12: alerts[2].from: 'not-an-address' is not an e-mail address",
        f"{path}:14: alerts[3]: Input tag 'pager' found using 'type' does not match any of the expected tags: 'slack', 'teams', 'email'",
    ]


def test_two_destinations_with_one_name(tmp_path) -> None:
    text = """\
alerts:
  - type: slack
    url: ${A}
  - type: slack
    url: ${B}
"""
    path = _write(tmp_path, text)
    assert _problems(path, {"A": "https://h.test/a", "B": "https://h.test/b"}) == [
        f"{path}:4: alerts[1].name: a second destination named 'slack' (the first is alerts.0); give each its own name"
    ]


def test_summary_needs_digest_and_http_only_on_loopback(tmp_path) -> None:
    text = """\
alerts:
  - type: slack
    url: ${A}
    daily_summary: {at: "08:30"}
"""
    path = _write(tmp_path, text)
    assert _problems(path, {"A": "http://hooks.test/a"}) == [
        f"{path}:3: alerts[0].url: must be an https:// URL (http:// only for a local test server)",
    ]
    assert _problems(path, {"A": "https://hooks.test/a"}) == [
        f"{path}:2: alerts[0]: daily_summary needs 'digest' in 'on'",
    ]
