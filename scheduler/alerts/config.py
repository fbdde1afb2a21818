"""The ``alerts:`` section of ``leadsync.yaml``: where a rep hears of a hot lead.

Each entry is a destination — a Slack incoming webhook, a Teams Workflows webhook or
an SMTP server — with the triggers it receives. Webhook URLs carry their own
credential (anyone holding the URL can post), so they are secrets like the SMTP
password: written only as ``${VAR}`` or ``${file:PATH}``. Problems are reported as
the rest of the configuration's are, one ``FILE:LINE: alerts.N.field: problem`` line
each, through the same helpers (``scoring.yaml_problems``) and the same substitution
(``scheduler.config``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import time
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from scheduler.config import ConfigError, _Loader, register_secret
from scoring.yaml_problems import Located, model_keys, render_path, validation_problems
from scoring.yaml_problems import Path as YamlPath

Trigger = Literal["crossing", "immediate", "digest"]

_REF_ONLY = re.compile(r"^\s*\$\{[^}]+\}\s*$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_NAME = r"^[A-Za-z0-9_.-]{1,40}$"
_DEFAULT_ON: tuple[Trigger, ...] = ("crossing", "immediate")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DailySummary(_Strict):
    """Once a day, at ``at`` in ``timezone``: what was alerted in the last 24 hours."""

    at: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name such as Europe/Paris)"
            ) from None
        return value

    def local_time(self) -> time:
        hour, minute = self.at.split(":")
        return time(int(hour), int(minute))

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class _Destination(_Strict):
    # The destination's identity in the ledger's keys: renaming it (not editing its
    # URL) is what makes an alert already sent count as not sent to it.
    name: str | None = Field(default=None, pattern=_NAME)
    on: list[Trigger] = Field(default_factory=lambda: list(_DEFAULT_ON), min_length=1)
    # Alerts a minute beyond which the rest are folded into one digest (with ``digest``
    # in ``on``), or wait for the next minute (without).
    max_per_minute: int = Field(default=20, ge=1, le=600)
    daily_summary: DailySummary | None = None
    # Only these models' alerts (none: every model's).
    models: list[str] | None = None

    @model_validator(mode="after")
    def _summary_needs_digest(self) -> _Destination:
        if self.daily_summary is not None and "digest" not in self.on:
            raise ValueError("daily_summary needs 'digest' in 'on'")
        return self

    @property
    def id(self) -> str:
        return self.name or str(self.type)  # type: ignore[attr-defined]

    def wants(self, trigger: str, model: str) -> bool:
        return trigger in self.on and (self.models is None or model in self.models)

    @property
    def digest(self) -> bool:
        return "digest" in self.on


def _https_or_local(value: str) -> str:
    v = value.strip()
    if not v:
        raise ValueError("is empty")
    if not (
        v.startswith("https://") or v.startswith("http://127.") or v.startswith("http://localhost")
    ):
        # Never echo the value: it is a secret.
        raise ValueError("must be an https:// URL (http:// only for a local test server)")
    return v


class SlackDestination(_Destination):
    type: Literal["slack"]
    url: str

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _https_or_local(value)


class TeamsDestination(_Destination):
    type: Literal["teams"]
    url: str

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _https_or_local(value)


class SmtpSettings(_Strict):
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # A CA bundle to trust besides the system's (a company relay with a private CA).
    ca_file: str | None = None

    @model_validator(mode="after")
    def _pair(self) -> SmtpSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        return self


class EmailDestination(_Destination):
    type: Literal["email"]
    smtp: SmtpSettings
    from_: str = Field(alias="from")
    # Fixed addresses, or ``owner``: the contact owner's e-mail as the CRM lists it.
    to: Literal["owner"] | list[str]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("from_")
    @classmethod
    def _from(cls, value: str) -> str:
        if not _EMAIL.match(value.strip()):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value.strip()

    @field_validator("to")
    @classmethod
    def _to(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            if not value:
                raise ValueError("give at least one address, or 'owner'")
            bad = [a for a in value if not _EMAIL.match(a.strip())]
            if bad:
                raise ValueError(f"{bad[0]!r} is not an e-mail address")
            return [a.strip() for a in value]
        return value


Destination = Annotated[
    SlackDestination | TeamsDestination | EmailDestination, Field(discriminator="type")
]


class AlertsConfig(_Strict):
    destinations: tuple[SlackDestination | TeamsDestination | EmailDestination, ...] = ()

    def __repr__(self) -> str:  # never the URLs
        return f"AlertsConfig({', '.join(d.type + ':' + d.id for d in self.destinations)})"

    def by_id(self) -> dict[str, SlackDestination | TeamsDestination | EmailDestination]:
        return {d.id: d for d in self.destinations}

    def secrets(self) -> list[str]:
        """Every credential in the section, for a redactor."""
        out: list[str] = []
        for d in self.destinations:
            if isinstance(d, SlackDestination | TeamsDestination):
                out.append(d.url)
            elif d.smtp.password:
                out.append(d.smtp.password)
        return out


_LIST = TypeAdapter(list[Destination])
_KEYS = model_keys(SlackDestination, TeamsDestination, EmailDestination) | {"from"}


def _secret_paths(item: object, index: int) -> list[YamlPath]:
    """Where a destination keeps a credential: the webhook URL, the SMTP password."""
    if not isinstance(item, Mapping):
        return []
    out: list[YamlPath] = []
    if item.get("type") in ("slack", "teams") and "url" in item:
        out.append(("alerts", index, "url"))
    smtp = item.get("smtp")
    if isinstance(smtp, Mapping) and "password" in smtp:
        out.append(("alerts", index, "smtp", "password"))
    return out


def _lookup(data: object, path: YamlPath) -> object:
    for part in path:
        if isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
            continue
        if not (isinstance(data, Mapping) and part in data):
            return None
        data = data[part]
    return data


def _read_file(source: str) -> tuple[object, Located] | None:
    """The file's ``alerts`` as written (no substitution) and its lines, or None
    when the configuration did not come from a file."""
    path = Path(source)
    if not path.is_file():
        return None
    try:
        doc = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError):
        return None  # the main loader reports an unreadable file
    if not isinstance(doc, CommentedMap):
        return None
    located = Located()
    return located.convert(doc).get("alerts"), located


def validate_alerts(
    raw: object, source_file: str, *, located: Located | None = None
) -> AlertsConfig:
    """Check the ``alerts`` value (``${...}`` already substituted) and build it.

    ``source_file`` is read again, without substitution, to check that every secret
    is a reference rather than written in the file, and for the lines of problems
    when ``located`` (the main loader's) is not given. Raises :class:`ConfigError`.
    """
    problems: list[str] = []
    written = _read_file(source_file)
    lines = located or (written[1] if written else Located())
    if raw is None:
        return AlertsConfig()
    if not isinstance(raw, list):
        raise ConfigError([lines.at(source_file, ("alerts",), "expected a list of destinations")])
    if written is not None:
        as_written = written[0] if isinstance(written[0], list) else []
        for index, item in enumerate(as_written):
            for path in _secret_paths(item, index):
                value = _lookup(written[0], path[1:])
                if not (isinstance(value, str) and _REF_ONLY.match(value)):
                    problems.append(
                        lines.at(
                            source_file,
                            path,
                            "secrets must not be written in the file; "
                            "use ${ENV_VAR} or ${file:PATH}",
                        )
                    )
    built: list[Destination] = []
    try:
        built = _LIST.validate_python(raw)
    except ValidationError as exc:
        problems.extend(
            validation_problems(
                exc, raw, lines, source_file, keys=_KEYS, prefix=("alerts",), wording="pydantic"
            )
        )
    seen: dict[str, int] = {}
    for index, dest in enumerate(built):
        if dest.id in seen:
            problems.append(
                lines.at(
                    source_file,
                    ("alerts", index, "name"),
                    f"a second destination named {dest.id!r} "
                    f"(the first is alerts.{seen[dest.id]}); give each its own name",
                )
            )
        seen.setdefault(dest.id, index)
    if problems:
        raise ConfigError(_unique(problems))
    config = AlertsConfig(destinations=tuple(built))
    for secret in config.secrets():
        register_secret(secret)  # the CLI's redact() then masks it everywhere
    return config


def load_alerts(path: str | Path, *, env: Mapping[str, str] | None = None) -> AlertsConfig:
    """The ``alerts`` section of a configuration file on its own (``leadsync alerts
    test``): substituted and checked like the whole file would be, other sections
    left alone. Raises :class:`ConfigError`."""
    import os

    p = Path(path)
    source = str(path)
    try:
        doc = YAML(typ="rt").load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{source}:1: (file): cannot read: {exc.strerror}"]) from None
    except YAMLError as exc:
        raise ConfigError([f"{source}:1: (yaml): {str(exc).splitlines()[0]}"]) from None
    if not isinstance(doc, CommentedMap) or "alerts" not in doc:
        raise ConfigError([f"{source}:1: alerts: no alerts section in this file"])
    loader = _Loader(source, p.parent, os.environ if env is None else env)
    data = loader.located.convert(doc)
    own = [line for line in loader.problems if _path_of(line).startswith("alerts")]
    try:
        config = validate_alerts(data.get("alerts"), source, located=loader.located)
    except ConfigError as exc:
        unfilled = loader.unfilled
        own.extend(line for line in exc.problems if _path_of(line) not in unfilled)
        raise ConfigError(_unique(own)) from None
    if own:
        raise ConfigError(own)
    return config


def _path_of(line: str) -> str:
    """The dotted path of a ``FILE:LINE: path: message`` line."""
    parts = line.split(": ", 2)
    return parts[1] if len(parts) > 1 else ""


def _unique(lines: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(lines))


__all__ = [
    "AlertsConfig",
    "DailySummary",
    "EmailDestination",
    "SlackDestination",
    "SmtpSettings",
    "TeamsDestination",
    "load_alerts",
    "render_path",
    "validate_alerts",
]
