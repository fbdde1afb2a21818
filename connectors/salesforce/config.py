"""Salesforce connector settings, checked once so that a bad file fails with one line.

``SalesforceSettingsModel`` is the ``crm.salesforce`` section's schema: leadsync.yaml
is validated with it (FILE:LINE, did-you-mean), and ``parse_settings`` turns it into
the connector's :class:`SalesforceSettings`. Every error names the configuration key
and the problem (``salesforce.jwt.username: missing``) and never echoes a secret value
back (pydantic's messages do not repeat the input).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictInt,
    field_validator,
    model_validator,
)

from connectors.settings import SettingsModel, parse_settings_model
from scoring import vocabulary as v
from scoring.yaml_problems import problems

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


def _text(value: str | None) -> str:
    return value or ""


class _Auth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _blank_is_missing(cls, data: object) -> object:
        # "client_id: ${SF_CLIENT_ID}" with the variable set to nothing is missing too
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if v != ""}
        return data


class JwtAuth(_Auth):
    client_id: str
    username: str
    private_key: str | None = Field(default=None, repr=False)
    private_key_file: Path | None = None
    _key_text: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _key(self) -> JwtAuth:
        if (self.private_key is None) == (self.private_key_file is None):
            raise problems(
                (("private_key_file",), "give exactly one of private_key_file or private_key")
            )
        text = self.private_key or ""
        if self.private_key_file is not None:
            try:
                text = self.private_key_file.expanduser().read_text(encoding="utf-8")
            except OSError as exc:
                raise problems(
                    (("private_key_file",), f"cannot read {self.private_key_file}: {exc.strerror}")
                ) from None
        if "PRIVATE KEY-----" not in text:
            raise problems((("private_key",), "is not a PEM private key"))
        self._key_text = text
        return self


class RefreshTokenAuth(_Auth):
    client_id: str
    client_secret: str | None = Field(default=None, repr=False)
    refresh_token: str = Field(repr=False)


class ClientCredentialsAuth(_Auth):
    client_id: str
    client_secret: str = Field(repr=False)


def _field_name(value: str) -> str:
    if not _FIELD_NAME.match(value):
        raise ValueError(f"not a Salesforce field name: {value!r}")
    return value


FieldName = Annotated[str, AfterValidator(_field_name)]
ObjectName = Literal["Lead", "Contact"]


class SalesforceSettingsModel(SettingsModel):
    """``crm.salesforce``: one way to log in, the objects, fields and limits."""

    type: str | None = None  # tolerated: older files repeated the connector's name here
    login_url: str | None = None
    instance_url: str | None = None
    version: str = DEFAULT_VERSION
    ca_bundle: Path | None = None
    jwt: JwtAuth | None = None
    refresh_token: RefreshTokenAuth | None = None
    client_credentials: ClientCredentialsAuth | None = None
    session_id: str | None = Field(default=None, repr=False)
    objects: list[str] = Field(default_factory=lambda: list(DEFAULT_OBJECTS))
    score_fields: dict[str, FieldName] = Field(default_factory=dict)
    key_field: FieldName = DEFAULT_KEY_FIELD
    field_map: dict[ObjectName, dict[str, FieldName]] = Field(default_factory=dict)
    lookback_seconds: float = Field(default=300.0, ge=0, le=86_400)
    quota_share: float = Field(default=0.25, ge=0.0001, le=1)
    headroom: float = Field(default=0.9, ge=0.0001, le=1)
    timeout_seconds: float = Field(default=60.0, ge=1, le=600)
    max_attempts: StrictInt = Field(default=5, ge=1)

    @field_validator("login_url", "instance_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        # an unquoted 59.0 is a YAML number
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.match(value):
            raise ValueError(f"must look like 59.0, got {value!r}")
        return value

    @field_validator("ca_bundle", mode="before")
    @classmethod
    def _blank_bundle(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("ca_bundle")
    @classmethod
    def _bundle_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("objects")
    @classmethod
    def _objects(cls, value: list[str]) -> list[str]:
        if not value or any(o not in DEFAULT_OBJECTS for o in value):
            raise ValueError(f"must be a non-empty list of Lead and/or Contact, got {value!r}")
        return value

    @field_validator("session_id", mode="before")
    @classmethod
    def _blank_session(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _one_auth(self) -> SalesforceSettingsModel:
        given = [k for k in _AUTH_KINDS if getattr(self, k) is not None]
        if not given:
            raise problems(
                (
                    ("auth",),
                    "one of jwt, refresh_token, client_credentials or session_id is required",
                )
            )
        if len(given) > 1:
            raise problems((("auth",), f"give only one of {', '.join(given)}"))
        if given[0] == "session_id" and not self.instance_url:
            raise problems((("instance_url",), "required with session_id"))
        return self

    def mapped_fields(self) -> frozenset[str]:
        """The contact fields this configuration delivers: the field map of every object
        read, ``lifecycle_stage`` (derived when not mapped) and ``lead_status``."""
        from connectors.salesforce.mapping import DEFAULT_FIELD_MAP

        names: set[str] = {v.LIFECYCLE_STAGE}
        for obj in self.objects:
            names.update(DEFAULT_FIELD_MAP[obj])
        for obj_name, fields in self.field_map.items():
            if obj_name in self.objects:
                names.update(fields)
        return frozenset(names)

    def to_settings(self) -> SalesforceSettings:
        kind: AuthKind = next(k for k in _AUTH_KINDS if getattr(self, k) is not None)
        if self.jwt is not None:
            auth = AuthSettings(
                kind="jwt",
                client_id=self.jwt.client_id,
                username=self.jwt.username,
                private_key=self.jwt._key_text,
            )
        elif self.refresh_token is not None:
            auth = AuthSettings(
                kind="refresh_token",
                client_id=self.refresh_token.client_id,
                client_secret=_text(self.refresh_token.client_secret),
                refresh_token=self.refresh_token.refresh_token,
            )
        elif self.client_credentials is not None:
            auth = AuthSettings(
                kind="client_credentials",
                client_id=self.client_credentials.client_id,
                client_secret=self.client_credentials.client_secret,
            )
        else:
            auth = AuthSettings(kind=kind, session_id=_text(self.session_id))
        return SalesforceSettings(
            auth=auth,
            login_url=self.login_url or DEFAULT_LOGIN_URL,
            instance_url=self.instance_url,
            version=self.version,
            ca_bundle=None if self.ca_bundle is None else str(self.ca_bundle.expanduser()),
            objects=tuple(self.objects),
            score_fields=dict(self.score_fields),
            key_field=self.key_field,
            field_map={obj: dict(m) for obj, m in self.field_map.items()},
            lookback_seconds=self.lookback_seconds,
            quota_share=self.quota_share,
            headroom=self.headroom,
            timeout_seconds=self.timeout_seconds,
            max_attempts=self.max_attempts,
        )


_AUTH_KINDS: tuple[AuthKind, ...] = ("jwt", "refresh_token", "client_credentials", "session_id")


def parse_settings(config: Mapping[str, Any]) -> SalesforceSettings:
    """Validate ``config`` (the ``crm.salesforce`` section of leadsync's configuration)."""
    model = parse_settings_model(SalesforceSettingsModel, config, prefix="salesforce")
    return model.to_settings()
