"""Configuration errors are one line naming the key; secrets are never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import ConnectorConfigError
from connectors.salesforce.config import parse_settings

PEM = "-----BEGIN PRIVATE KEY-----\nMIIplantedsecretkeymaterial\n-----END PRIVATE KEY-----\n"


def _base(**extra: object) -> dict[str, object]:
    cfg: dict[str, object] = {
        "login_url": "https://login.example.test",
        "refresh_token": {"client_id": "cid", "client_secret": "csecret", "refresh_token": "rt-1"},
    }
    cfg.update(extra)
    return cfg


def test_defaults() -> None:
    s = parse_settings(_base())
    assert s.version == "59.0"
    assert s.objects == ("Lead", "Contact")
    assert s.key_field == "leadsync_key__c"
    assert s.score_field("lead_score") == "lead_score__c"
    assert s.quota_share == 0.25 and s.headroom == 0.9
    assert s.auth.kind == "refresh_token"


def test_score_field_override() -> None:
    s = parse_settings(_base(score_fields={"lead_score": "Score__c"}))
    assert s.score_field("lead_score") == "Score__c"
    assert s.score_field("band") == "band__c"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"version": "latest"}, "salesforce.version:"),
        ({"objects": ["Account"]}, "salesforce.objects:"),
        ({"quota_share": 2}, "salesforce.quota_share:"),
        ({"headroom": "lots"}, "salesforce.headroom:"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "salesforce.ca_bundle: no such file"),
        ({"key_field": "bad field"}, "salesforce.key_field:"),
        ({"colour": "blue"}, "salesforce.colour: unknown setting"),
        ({"login_url": "ftp://x"}, "salesforce.login_url:"),
    ],
)
def test_bad_values_name_the_key(extra: dict[str, object], needle: str) -> None:
    with pytest.raises(ConnectorConfigError) as info:
        parse_settings(_base(**extra))
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_auth_choice_errors() -> None:
    with pytest.raises(ConnectorConfigError, match=r"salesforce\.auth: one of"):
        parse_settings({"login_url": "https://x.test"})
    cfg = _base(client_credentials={"client_id": "a", "client_secret": "b"})
    with pytest.raises(ConnectorConfigError, match=r"give only one"):
        parse_settings(cfg)
    with pytest.raises(ConnectorConfigError, match=r"salesforce\.jwt\.username: missing"):
        parse_settings({"jwt": {"client_id": "c", "private_key": PEM}})
    with pytest.raises(ConnectorConfigError, match=r"instance_url: required with session_id"):
        parse_settings({"session_id": "00Dxx!secret"})


def test_jwt_key_file_and_errors_never_echo_the_key(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text(PEM)
    s = parse_settings({"jwt": {"client_id": "c", "username": "u@x", "private_key_file": str(key)}})
    assert s.auth.private_key == PEM
    assert "planted" not in repr(s)
    bad = {"jwt": {"client_id": "c", "username": "u", "private_key": "plantedsecret-not-pem"}}
    with pytest.raises(ConnectorConfigError) as info:
        parse_settings(bad)
    assert "plantedsecret" not in str(info.value)
    with pytest.raises(ConnectorConfigError, match="cannot read"):
        parse_settings(
            {"jwt": {"client_id": "c", "username": "u", "private_key_file": str(tmp_path / "no")}}
        )
