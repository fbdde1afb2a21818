"""``serve:`` in leadsync.yaml: secrets only by reference, one FILE:LINE line per problem."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from scheduler.config import ConfigError, redact
from scheduler.serve.config import load_serve_config

BASE = "crm: {type: files, files: {contacts: c.csv}}\nmodels: m.yaml\n"
ENV = {
    "HS_SECRET": "hs-client-secret-123",
    "SF_TOKEN": "sf-path-token-abcdefghijkl",
    "EV_SECRET": "event-secret-0123456789",
}
GOOD = (
    "serve:\n"
    "  public_url: https://leads.example.com/\n"
    "  max_body: 512KiB\n"
    "  hubspot: {client_secret: '${HS_SECRET}'}\n"
    "  salesforce: {organization_id: 00D5g000004XyzAEAS, path_token: '${SF_TOKEN}'}\n"
    "  events: {secret: '${EV_SECRET}', keep_unknown: 7d}\n"
)


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "leadsync.yaml"
    path.write_text(text)
    return load_serve_config(path, env=ENV)


def test_a_complete_section_is_read(tmp_path: Path) -> None:
    sync, serve = _load(tmp_path, BASE + GOOD)  # type: ignore[misc]
    assert serve.public_url == "https://leads.example.com"
    assert serve.max_body == 512 * 1024
    assert serve.hubspot.client_secret.get_secret_value() == ENV["HS_SECRET"]
    assert serve.events.keep_unknown == timedelta(days=7)
    assert serve.worker.batch_size == 100
    assert sync.models == ["m.yaml"]
    # read through a reference, so scrubbed from any output
    assert redact(f"key {ENV['SF_TOKEN']}") == "key ***"


def test_defaults(tmp_path: Path) -> None:
    _, serve = _load(tmp_path, BASE + "serve: {public_url: 'https://x.example'}\n")  # type: ignore[misc]
    assert serve.max_body == 1024 * 1024
    assert serve.hubspot is None and serve.salesforce is None and serve.events is None


def test_a_secret_written_in_the_file_is_refused_with_its_line(tmp_path: Path) -> None:
    text = BASE + GOOD.replace("'${HS_SECRET}'", "plain-text-secret")
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert err.value.problems == [
        f"{tmp_path / 'leadsync.yaml'}:6: serve.hubspot.client_secret: secrets must not be "
        "written in the file; use ${ENV_VAR} or ${file:PATH}"
    ]
    assert "plain-text-secret" not in str(err.value)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("  public_url: ftp://x\n", "serve.public_url"),
        ("  public_url: https://x.example\n  max_body: 10GiB\n", "serve.max_body"),
        (
            "  public_url: https://x.example\n  salesforce: {organization_id: 001abc, "
            "path_token: '${SF_TOKEN}'}\n",
            "serve.salesforce.organization_id",
        ),
        ("  public_url: https://x.example\n  event: {}\n", "serve.event"),
    ],
)
def test_bad_values_give_one_line_each(tmp_path: Path, line: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, BASE + "serve:\n" + line)
    assert len(err.value.problems) == 1
    problem = err.value.problems[0]
    assert problem.startswith(f"{tmp_path / 'leadsync.yaml'}:")
    assert f": {needle}" in problem


def test_missing_section_and_sync_problems_are_reported_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "crm: {type: files, files: {contacts: c.csv}}\nmodelz: m.yaml\n")
    text = "\n".join(err.value.problems)
    assert "serve: missing" in text
    assert "modelz" in text
    assert "Traceback" not in text


def test_an_unset_variable_names_it(tmp_path: Path) -> None:
    path = tmp_path / "leadsync.yaml"
    path.write_text(BASE + GOOD)
    with pytest.raises(ConfigError) as err:
        load_serve_config(path, env={k: v for k, v in ENV.items() if k != "EV_SECRET"})
    assert err.value.problems == [
        f"{path}:8: serve.events.secret: environment variable EV_SECRET is not set"
    ]
