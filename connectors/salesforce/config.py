"""Salesforce connector settings, checked once so that a bad file fails with one line.

Every error names the configuration key and the problem (``salesforce.jwt.username:
missing``) and never echoes a secret value back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from connectors.base import ConnectorConfigError

DEFAULT_VERSION = "59.0"
DEFAULT_LOGIN_URL = "https://login.salesforce.com"
DEFAULT_OBJECTS = ("Lead", "Contact")
DEFAULT_KEY_FIELD = "leadsync_key__c"
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)?$")
_VERSION = re.compile(r"^\d{2,3}\.0$")

AuthKind = Literal["jwt", "refresh_token", "client_credentials", "session_id"]


@dataclass(frozen=True)
class AuthSettings:
    kind: AuthKind
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    username: str = ""
    private_key: str = field(default="", repr=False)
    session_id: str = field(default="", repr=False)

    def secrets(self) -> tuple[str, ...]:
        """Every credential string that must never reach a log or a message."""
        return tuple(
            s
            for s in (self.client_secret, self.refresh_token, self.private_key, self.session_id)
            if s
        )


@dataclass(frozen=True)
class SalesforceSettings:
    auth: AuthSettings
    login_url: str = DEFAULT_LOGIN_URL
    instance_url: str | None = None
    version: str = DEFAULT_VERSION
    ca_bundle: str | None = None
    objects: tuple[str, ...] = DEFAULT_OBJECTS
    score_fields: Mapping[str, str] = field(default_factory=dict)
    key_field: str = DEFAULT_KEY_FIELD
    field_map: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    lookback_seconds: float = 300.0
    quota_share: float = 0.25
    headroom: float = 0.9
    timeout_seconds: float = 60.0
    max_attempts: int = 5

    def score_field(self, logical: str) -> str:
        return self.score_fields.get(logical, f"{logical}__c")


def _err(key: str, problem: str) -> ConnectorConfigError:
    return ConnectorConfigError(f"salesforce.{key}: {problem}")


def _str(cfg: Mapping[str, Any], key: str, prefix: str, *, required: bool = False) -> str:
    value = cfg.get(key)
    if value is None or value == "":
        if required:
            raise _err(f"{prefix}{key}", "missing")
        return ""
    if not isinstance(value, str):
        raise _err(f"{prefix}{key}", f"must be text, not {type(value).__name__}")
    return value


def _number(cfg: Mapping[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _err(key, f"must be a number, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise _err(key, f"must be between {lo:g} and {hi:g}, got {value:g}")
    return float(value)


def _url(cfg: Mapping[str, Any], key: str) -> str:
    value = _str(cfg, key, "")
    if value and not re.match(r"^https?://[^/\s]+", value):
        raise _err(key, f"must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _auth(cfg: Mapping[str, Any]) -> AuthSettings:
    given = [k for k in ("jwt", "refresh_token", "client_credentials", "session_id") if cfg.get(k)]
    if not given:
        raise _err(
            "auth", "one of jwt, refresh_token, client_credentials or session_id is required"
        )
    if len(given) > 1:
        raise _err("auth", f"give only one of {', '.join(given)}")
    kind = given[0]
    if kind == "session_id":
        return AuthSettings(
            kind="session_id", session_id=_str(cfg, "session_id", "", required=True)
        )
    sub = cfg[kind]
    if not isinstance(sub, Mapping):
        raise _err(kind, "must be a mapping")
    p = f"{kind}."
    if kind == "jwt":
        key_text = _str(sub, "private_key", p)
        key_file = _str(sub, "private_key_file", p)
        if bool(key_text) == bool(key_file):
            raise _err(
                f"{p}private_key_file", "give exactly one of private_key_file or private_key"
            )
        if key_file:
            try:
                key_text = Path(key_file).expanduser().read_text(encoding="utf-8")
            except OSError as exc:
                raise _err(
                    f"{p}private_key_file", f"cannot read {key_file}: {exc.strerror}"
                ) from None
        if "PRIVATE KEY-----" not in key_text:
            raise _err(f"{p}private_key", "is not a PEM private key")
        return AuthSettings(
            kind="jwt",
            client_id=_str(sub, "client_id", p, required=True),
            username=_str(sub, "username", p, required=True),
            private_key=key_text,
        )
    if kind == "refresh_token":
        return AuthSettings(
            kind="refresh_token",
            client_id=_str(sub, "client_id", p, required=True),
            client_secret=_str(sub, "client_secret", p),
            refresh_token=_str(sub, "refresh_token", p, required=True),
        )
    return AuthSettings(
        kind="client_credentials",
        client_id=_str(sub, "client_id", p, required=True),
        client_secret=_str(sub, "client_secret", p, required=True),
    )


def _field_name(value: Any, key: str) -> str:
    if not isinstance(value, str) or not _FIELD_NAME.match(value):
        raise _err(key, f"not a Salesforce field name: {value!r}")
    return value


def parse_settings(config: Mapping[str, Any]) -> SalesforceSettings:
    """Validate ``config`` (the ``crm`` section of leadsync's configuration)."""
    if not isinstance(config, Mapping):
        raise ConnectorConfigError("salesforce: configuration must be a mapping")
    known = {
        "type", "login_url", "instance_url", "version", "ca_bundle", "jwt", "refresh_token",
        "client_credentials", "session_id", "objects", "score_fields", "key_field", "field_map",
        "lookback_seconds", "quota_share", "headroom", "timeout_seconds", "max_attempts",
    }  # fmt: skip
    unknown = sorted(set(config) - known)
    if unknown:
        raise _err(unknown[0], "unknown setting")
    auth = _auth(config)
    login_url = _url(config, "login_url") or DEFAULT_LOGIN_URL
    instance_url = _url(config, "instance_url") or None
    if auth.kind == "session_id" and not instance_url:
        raise _err("instance_url", "required with session_id")
    version = str(config.get("version", DEFAULT_VERSION))
    if not _VERSION.match(version):
        raise _err("version", f"must look like 59.0, got {version!r}")
    ca_bundle = _str(config, "ca_bundle", "") or None
    if ca_bundle and not Path(ca_bundle).is_file():
        raise _err("ca_bundle", f"no such file: {ca_bundle}")
    objects_raw = config.get("objects", list(DEFAULT_OBJECTS))
    if (
        not isinstance(objects_raw, list | tuple)
        or not objects_raw
        or any(o not in DEFAULT_OBJECTS for o in objects_raw)
    ):
        raise _err(
            "objects", f"must be a non-empty list of Lead and/or Contact, got {objects_raw!r}"
        )
    score_fields_raw = config.get("score_fields") or {}
    if not isinstance(score_fields_raw, Mapping):
        raise _err("score_fields", "must be a mapping of logical name to field")
    score_fields = {
        str(k): _field_name(v, f"score_fields.{k}") for k, v in score_fields_raw.items()
    }
    field_map_raw = config.get("field_map") or {}
    if not isinstance(field_map_raw, Mapping):
        raise _err("field_map", "must be a mapping of object to {canonical: field}")
    field_map: dict[str, dict[str, str]] = {}
    for obj, mapping in field_map_raw.items():
        if obj not in DEFAULT_OBJECTS or not isinstance(mapping, Mapping):
            raise _err(f"field_map.{obj}", "must be Lead or Contact with a mapping of fields")
        field_map[obj] = {
            str(k): _field_name(v, f"field_map.{obj}.{k}") for k, v in mapping.items()
        }
    max_attempts = config.get("max_attempts", 5)
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise _err("max_attempts", "must be a positive integer")
    return SalesforceSettings(
        auth=auth,
        login_url=login_url,
        instance_url=instance_url,
        version=version,
        ca_bundle=ca_bundle,
        objects=tuple(objects_raw),
        score_fields=score_fields,
        key_field=_field_name(config.get("key_field", DEFAULT_KEY_FIELD), "key_field"),
        field_map=field_map,
        lookback_seconds=_number(config, "lookback_seconds", 300.0, 0, 86_400),
        quota_share=_number(config, "quota_share", 0.25, 0.0001, 1),
        headroom=_number(config, "headroom", 0.9, 0.0001, 1),
        timeout_seconds=_number(config, "timeout_seconds", 60.0, 1, 600),
        max_attempts=max_attempts,
    )
