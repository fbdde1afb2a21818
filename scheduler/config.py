"""``leadsync.yaml``: the sync's configuration, validated like the model files.

Errors are one line each, ``FILE:LINE: dotted.path: problem``, so that an editor can
jump to them. Secrets never sit in the file: a value is either ``${VAR}`` (read from
the environment) or ``${file:PATH}`` (read from a file, relative to the config), and
every value read that way is remembered in :data:`SECRETS` so that output and logs can
be scrubbed of it (see :func:`redact`).
"""

from __future__ import annotations

import os
import re
import string
import threading
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from connectors.settings import path_fields
from scheduler.serve.settings import ServeConfig
from scoring.vocabulary import CONTACT_FIELDS
from scoring.yaml_problems import (
    Located,
    TooBig,
    model_keys,
    render_path,
    suggest,
    validation_problems,
)
from scoring.yaml_problems import Path as YamlPath

# Keys whose values are credentials: they must come from ${VAR} or ${file:...}.
_SECRET_KEY = re.compile(
    r"(token|secret|password|private_key|session_id|api_key)(?!_file)", re.IGNORECASE
)
_REF = re.compile(r"\$\{([^}]*)\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ConfigError(Exception):
    """One or more problems, each a ``FILE:LINE: path: problem`` line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# ----------------------------------------------------------------------- secrets

_secrets_lock = threading.Lock()
SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a credential so that :func:`redact` removes it from any text."""
    if value and len(value) >= 4:
        with _secrets_lock:
            SECRETS.add(value)


def redact(text: str) -> str:
    """Replace every known secret in ``text`` (longest first, so prefixes do not leak)."""
    with _secrets_lock:
        known = sorted(SECRETS, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, "***")
    return text


# ----------------------------------------------------------------------- durations


_MAX_DURATION = timedelta(days=36_500)  # a century: anything longer is a typo


def parse_duration(value: Any) -> timedelta:
    """``30d``, ``15m``, ``1.5h``, ``45s``, ``2w``; a bare number means seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15m, 1d or 30d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        if value > _MAX_DURATION.total_seconds():
            raise ValueError(f"{value!r} seconds is longer than {_MAX_DURATION.days} days")
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            seconds = float(m.group(1)) * _UNITS[m.group(2)]
            if seconds > _MAX_DURATION.total_seconds():
                raise ValueError(f"{value!r} is longer than {_MAX_DURATION.days} days")
            return timedelta(seconds=seconds)
    raise ValueError(f"expected a duration such as 15m, 1d or 30d, got {value!r}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# What the write-back puts next to the contact's fields when it renders a template.
TEMPLATE_VALUES = frozenset({"model", "score", "band", "contact_id"})


def placeholders(template: str) -> list[str]:
    """The names a (valid) template uses, in order."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def _check_template(value: str) -> str:
    try:
        for _, name, _, _ in string.Formatter().parse(value):
            if name is not None and (name == "" or not re.fullmatch(r"[A-Za-z_][\w]*", name)):
                raise ValueError(
                    f"placeholder {{{name}}} must be a field name such as {{first_name}}"
                )
    except ValueError as exc:
        raise ValueError(f"bad template {value!r}: {exc}") from None
    return value


class DealConfig(_Strict):
    name: str = "{first_name} {last_name} - {model}"
    stage: str = "appointmentscheduled"
    # HubSpot's deal pipeline; unset, the connector's own default (``deal_pipeline``).
    pipeline: str | None = None
    close_in: timedelta = timedelta(days=30)
    amount: float | None = None
    # Salesforce Leads cannot have Opportunities: they get this status instead.
    lead_status: str | None = "Working - Contacted"

    _tpl = field_validator("name")(_check_template)

    @field_validator("close_in", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> timedelta:
        return parse_duration(v)


class TaskConfig(_Strict):
    subject: str = "Follow up: {first_name} {last_name} scored {score}"
    due_in: timedelta = timedelta(days=1)
    priority: Literal["low", "medium", "high"] = "high"
    type: Literal["call", "email", "todo"] = "call"

    _tpl = field_validator("subject")(_check_template)

    @field_validator("due_in", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> timedelta:
        return parse_duration(v)


class OwnersConfig(_Strict):
    strategy: Literal["round_robin"] = "round_robin"
    pool: list[str] = Field(default_factory=list)

    @field_validator("pool", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        # YAML reads an unquoted owner id (``pool: [12345]``) as a number; CRMs
        # give ids as text, and so does the rest of leadsync.
        if isinstance(value, list):
            return [
                str(item) if isinstance(item, int) and not isinstance(item, bool) else item
                for item in value
            ]
        return value


class OnCrossConfig(_Strict):
    deal: DealConfig | None = Field(default_factory=DealConfig)
    task: TaskConfig | None = Field(default_factory=TaskConfig)
    owners: OwnersConfig = Field(default_factory=OwnersConfig)


class WritebackConfig(_Strict):
    min_change: float = Field(default=1.0, ge=0)
    # One field for every model's band, or ``{model: field}`` (models left out write no
    # band). Kept out of the models' content hashes: changing it re-writes the bands to
    # the new field but is no model change (no baseline).
    band_field: str | dict[str, str] | None = None
    max_actions_per_run: int = Field(default=100, ge=0)
    skip_if_open_deal: Literal["any", "ours"] = "any"
    write_batch: int = Field(default=1000, ge=1)  # handed to the connector, which splits per API
    max_rejected_share: float = Field(default=0.5, gt=0, le=1)  # of writes refused for one reason
    on_cross: OnCrossConfig = Field(default_factory=OnCrossConfig)

    @field_validator("band_field")
    @classmethod
    def _band_fields(cls, value: str | dict[str, str] | None) -> str | dict[str, str] | None:
        names = [value] if isinstance(value, str) else list((value or {}).values())
        for name in names:
            if not name.strip() or " " in name:
                raise ValueError(f"band field {name!r} must be a field name without spaces")
        if isinstance(value, dict):
            seen: dict[str, str] = {}
            for model, name in value.items():
                if name in seen:
                    raise ValueError(
                        f"models {seen[name]!r} and {model!r} both write their band to "
                        f"{name!r}; each would overwrite the other's"
                    )
                seen[name] = model
        return value


class ScheduleConfig(_Strict):
    every: timedelta | None = None
    cron: str | None = None
    misfire_grace: timedelta = timedelta(minutes=5)
    # Retrain the predictive models this often (docs/predictive.md); None: never.
    retrain_every: timedelta | None = None

    @field_validator("every", "misfire_grace", "retrain_every", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> timedelta | None:
        if v is None:
            return None
        d = parse_duration(v)
        if d.total_seconds() <= 0:
            raise ValueError("must be longer than zero")
        return d

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(v, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"bad cron expression {v!r}: {exc}") from None
        return v

    @model_validator(mode="after")
    def _one(self) -> ScheduleConfig:
        if self.every is not None and self.cron is not None:
            raise ValueError("give either every or cron, not both")
        return self


class CrmConfig(BaseModel):
    """``type`` names a registered connector; the section of that name is its settings."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str = Field(min_length=1)

    @model_validator(mode="after")
    def _section(self) -> CrmConfig:
        extra = self.model_extra or {}
        section = extra.get(self.type)
        if section is not None and not isinstance(section, Mapping):
            raise ValueError(f"{self.type}: must be a mapping of settings")
        return self

    def settings(self) -> dict[str, Any]:
        section = (self.model_extra or {}).get(self.type) or {}
        return dict(section)


class SyncConfig(_Strict):
    crm: CrmConfig
    models: list[str] = Field(min_length=1)
    state: str = "sqlite:///leadsync.db"
    pipeline: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]+$")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    writeback: WritebackConfig = Field(default_factory=WritebackConfig)
    lock_ttl: timedelta = timedelta(minutes=2)
    # How long the local copy keeps events, beyond what the models read: a backtest
    # needs a year of weekly snapshots plus its horizon. Written as
    # ``state: {url: ..., retain_events: 400d}``; a plain ``state: URL`` keeps the default.
    retain_events: timedelta = timedelta(days=400)
    # How often a run also reads won and lost deals (and conversions) for the backtest.
    outcomes_every: timedelta = timedelta(hours=1)
    # Alerts to reps (docs/alerts.md): an AlertsConfig, checked by the loader.
    alerts: Any = None
    # ``leadsync serve`` (docs/realtime.md): webhooks and product events in.
    serve: ServeConfig | None = None
    # Set by the loader, not by the user: where relative paths start.
    base_dir: str = "."
    source: str = "<config>"
    # The values read from ${VAR} (secret keys) and ${file:...}: for the host's redactor.
    _secrets: tuple[str, ...] = PrivateAttr(default=())

    def secrets(self) -> tuple[str, ...]:
        """The credentials this configuration read (to register with a redactor)."""
        return self._secrets

    @model_validator(mode="before")
    @classmethod
    def _state_section(cls, data: Any) -> Any:
        """``state`` is a URL, or a mapping with the URL and how long events are kept."""
        if not isinstance(data, Mapping) or not isinstance(data.get("state"), Mapping):
            return data
        section = dict(data["state"])
        unknown = sorted(set(section) - {"url", "retain_events"})
        if unknown:
            raise ValueError(
                f"state: unknown key(s) {', '.join(unknown)} (known: url, retain_events)"
            )
        out = {k: v for k, v in data.items() if k != "state"}
        if "url" in section:
            out["state"] = section["url"]
        if "retain_events" in section:
            out["retain_events"] = section["retain_events"]
        return out

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("lock_ttl", "retain_events", "outcomes_every", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> timedelta:
        return parse_duration(v)

    def templates(self) -> dict[tuple[str, ...], str]:
        """The templates of the write-back, by their path in the file."""
        out: dict[tuple[str, ...], str] = {}
        on_cross = self.writeback.on_cross
        if on_cross.deal is not None:
            out[("writeback", "on_cross", "deal", "name")] = on_cross.deal.name
        if on_cross.task is not None:
            out[("writeback", "on_cross", "task", "subject")] = on_cross.task.subject
        return out

    def template_fields(self) -> frozenset[str]:
        """The contact fields the templates name: the sync must keep them (the values
        that the write-back supplies itself, such as ``score``, are left out)."""
        names = {name for text in self.templates().values() for name in placeholders(text)}
        return frozenset(names - TEMPLATE_VALUES)

    def model_paths(self) -> list[Path]:
        return [(Path(self.base_dir) / p) for p in self.models]

    def state_url(self) -> str:
        """Relative SQLite paths are relative to the config file, not the caller's cwd."""
        prefix = "sqlite:///"
        if self.state.startswith(prefix) and not self.state.startswith(prefix + "/"):
            rest = self.state[len(prefix) :]
            if rest and rest != ":memory:":
                return prefix + str((Path(self.base_dir) / rest).resolve())
        return self.state


# ------------------------------------------------------------------------ loading


class _Loader:
    """YAML nodes to plain data (``${...}`` substituted), remembering each path's line."""

    def __init__(self, source: str, base_dir: Path, env: Mapping[str, str]) -> None:
        self.source = source
        self.base_dir = base_dir
        self.env = env
        self.located = Located(text=self.substitute, opaque=str)
        self.problems: list[str] = []
        self.unfilled: set[str] = set()  # where a ${...} could not be filled
        self.secrets: list[str] = []  # values read for secret keys, and from files

    def problem(self, path: YamlPath, message: str, *, key: bool = False) -> None:
        self.problems.append(self.located.at(self.source, path, message, key=key))

    def more(self, lines: list[str]) -> None:
        """Problems found by validation, less those at a value that could not be
        filled in: its own problem says why, and the empty stand-in is not a second one."""
        self.problems.extend(line for line in lines if line.split(": ", 2)[1] not in self.unfilled)

    def unfilled_at(self, path: YamlPath, message: str) -> str:
        self.problem(path, message)
        self.unfilled.add(render_path(path))
        return ""

    def substitute(self, value: str, path: YamlPath) -> str:
        key = str(path[-1]) if path else ""
        refs = _REF.findall(value)
        if _SECRET_KEY.search(key) and not (refs and _REF.fullmatch(value.strip())):
            return self.unfilled_at(
                path, "secrets must not be written in the file; use ${ENV_VAR} or ${file:PATH}"
            )
        secret = bool(_SECRET_KEY.search(key))

        def repl(m: re.Match[str]) -> str:
            ref = m.group(1).strip()
            if ref.startswith("file:"):
                fpath = Path(ref[5:].strip()).expanduser()
                if not fpath.is_absolute():
                    fpath = self.base_dir / fpath
                try:
                    text = fpath.read_text(encoding="utf-8").strip()
                except OSError as exc:
                    return self.unfilled_at(
                        path, f"cannot read secret file {fpath}: {exc.strerror}"
                    )
                register_secret(text)
                self.secrets.append(text)
                return text
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ref):
                return self.unfilled_at(
                    path, f"bad reference ${{{ref}}}: use ${{ENV_VAR}} or ${{file:PATH}}"
                )
            if ref not in self.env:
                return self.unfilled_at(path, f"environment variable {ref} is not set")
            got = self.env[ref]
            if secret:
                register_secret(got)
                self.secrets.append(got)
            return got

        return _REF.sub(repl, value)


def _settings_model(loader: _Loader, crm: Any) -> type[BaseModel] | None:
    """The settings model of the configured connector, if it is installed and has one."""
    from connectors import registry
    from connectors.base import ConnectorConfigError

    if not isinstance(crm, dict) or not isinstance(crm.get("type"), str) or not crm["type"]:
        return None  # SyncConfig's validation says what is wrong
    name = crm["type"]
    installed = sorted(registry.available())
    if name not in installed:
        # A misspelt name is refused here, with its line. Any other name may be a
        # connector this machine lacks (a plug-in, a test's fake): creating the
        # connector says "unknown connector" with the installed names when it runs.
        hint = suggest(name, installed)
        if hint:
            loader.problem(
                ("crm", "type"),
                f"unknown connector {name!r}{hint} (installed: {', '.join(installed)})",
            )
        return None
    try:
        return registry.settings_model(name)
    except ConnectorConfigError as exc:
        loader.problem(("crm", "type"), str(exc).removeprefix("crm.type: "))
        return None


def _check_crm(loader: _Loader, data: dict[str, Any], base_dir: Path) -> BaseModel | None:
    """Validate ``crm.<type>`` with the connector's settings model, as the rest of the
    file (FILE:LINE, did you mean); relative paths in it become paths from the
    configuration file's folder, in ``data`` too, so that the connector gets them."""
    crm = data.get("crm")
    model = _settings_model(loader, crm)
    if model is None or not isinstance(crm, dict):
        return None
    name = crm["type"]
    from connectors import registry

    others = set(registry.available())
    for key in crm:
        if key != "type" and key not in others:
            hint = suggest(key, [name]) or f" (the settings of {name} go under crm.{name})"
            loader.problem(("crm", key), f"unknown key {key!r}{hint}", key=True)
    section = crm.get(name)
    if section is None:
        section = {}
    if not isinstance(section, dict):
        loader.problem(("crm", name), "expected a mapping of settings")
        return None
    section = _resolve_paths(section, path_fields(model), base_dir)
    crm[name] = section
    try:
        return model.model_validate(section)
    except ValidationError as exc:
        loader.more(
            validation_problems(
                exc,
                section,
                loader.located,
                loader.source,
                keys=model_keys(model),
                prefix=("crm", name),
                wording="pydantic",
            )
        )
        return None


def _resolve_paths(
    section: dict[str, Any], fields: Mapping[str, Any], base: Path
) -> dict[str, Any]:
    """Relative paths of a settings section, from ``base`` (the config file's folder)."""
    out = dict(section)
    for key, spec in fields.items():
        value = out.get(key)
        if spec is True and isinstance(value, str) and value:
            path = Path(value).expanduser()
            out[key] = str(path if path.is_absolute() else base / path)
        elif isinstance(spec, Mapping) and isinstance(value, dict):
            out[key] = _resolve_paths(value, spec, base)
    return out


def _check_templates(loader: _Loader, config: SyncConfig, known: frozenset[str] | None) -> None:
    """Every placeholder must name a field the sync can fill: ``{frist_name}`` would
    otherwise render empty on every deal. ``known`` is None when the connector does
    not say which fields it delivers; then only the canonical names are known."""
    names = TEMPLATE_VALUES | CONTACT_FIELDS | (known or frozenset())
    for path, text in config.templates().items():
        for name in placeholders(text):
            if name in names:
                continue
            loader.problem(
                path,
                f"unknown placeholder {{{name}}}{suggest(name, names)}; known: "
                + ", ".join(sorted(names)),
            )


def connector_fields(config: SyncConfig) -> frozenset[str] | None:
    """The contact fields the configured connector says it delivers (its settings
    model's ``mapped_fields()``), or None when it does not say."""
    from connectors import registry
    from connectors.base import ConnectorConfigError

    try:
        model = registry.settings_model(config.crm.type)
    except ConnectorConfigError:
        return None
    if model is None:
        return None
    try:
        settings = model.model_validate(config.crm.settings())
    except ValidationError:
        return None
    mapped = getattr(settings, "mapped_fields", None)
    return frozenset(mapped()) if callable(mapped) else None


def read_config_text(path: str | Path) -> str:
    """A configuration file's text, or the one-line error every leadsync file gives."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}:1: (file): cannot read: {exc.strerror}"]) from None


def located_mapping(
    text: str, *, source: str, base_dir: str | Path, env: Mapping[str, str] | None, top: str
) -> tuple[_Loader, dict[str, Any]]:
    """Parse YAML 1.2 whose top is a mapping (``top`` lists its keys for the error),
    substituting ``${VAR}``/``${file:}``: the loader that collects problems with their
    lines, and the data. Shared by leadsync.yaml, its serve reading and deployment
    files, so that they report bad YAML the same way."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = (mark.line + 1) if mark is not None else 1
        what = (exc.problem or exc.context or "invalid YAML").strip()
        raise ConfigError([f"{source}:{line}: (yaml): {what}"]) from None
    except YAMLError as exc:
        raise ConfigError([f"{source}:1: (yaml): {str(exc).splitlines()[0]}"]) from None
    if not isinstance(doc, CommentedMap):
        raise ConfigError([f"{source}:1: (top): expected a mapping with {top}, ..."])
    loader = _Loader(source, Path(base_dir), os.environ if env is None else env)
    try:
        data: dict[str, Any] = loader.located.convert(doc)
    except (TooBig, RecursionError) as exc:
        raise ConfigError([f"{source}:1: (yaml): {exc or 'nested too deeply'}"]) from None
    return loader, data


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> SyncConfig:
    """Read, substitute and validate; raise :class:`ConfigError` with every problem found."""
    text = read_config_text(path)
    return parse_config(text, source=str(path), base_dir=Path(path).parent, env=env)


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    base_dir: str | Path = ".",
    env: Mapping[str, str] | None = None,
) -> SyncConfig:
    loader, data = located_mapping(
        text, source=source, base_dir=base_dir, env=env, top="crm, models, state"
    )
    for reserved in ("base_dir", "source"):
        if reserved in data:
            loader.problem((reserved,), "unknown key", key=True)
    return _validate(loader, data, Path(base_dir))


def _validate(loader: _Loader, data: dict[str, Any], base_dir: Path) -> SyncConfig:
    """The checks after reading: the connector's settings, the file, the templates."""
    settings = _check_crm(loader, data, base_dir)
    if data.get("alerts") is not None:
        from scheduler.alerts.config import validate_alerts

        try:
            data["alerts"] = validate_alerts(data["alerts"], loader.source, located=loader.located)
        except ConfigError as exc:
            loader.more(exc.problems)
            data.pop("alerts")
    data["base_dir"] = str(base_dir)
    data["source"] = loader.source
    config: SyncConfig | None = None
    try:
        config = SyncConfig.model_validate(data)
    except ValidationError as exc:
        loader.more(
            validation_problems(
                exc,
                data,
                loader.located,
                loader.source,
                keys=model_keys(SyncConfig) - {"base_dir", "source"},
                wording="pydantic",
            )
        )
    # (settings that failed to validate cannot say which fields they map)
    if config is not None and (settings is not None or not loader.problems):
        mapped = getattr(settings, "mapped_fields", None)
        _check_templates(loader, config, frozenset(mapped()) if callable(mapped) else None)
    if loader.problems:
        raise ConfigError(loader.problems)
    assert config is not None
    config._secrets = tuple(dict.fromkeys(loader.secrets))
    return config


def config_from_mapping(data: Mapping[str, Any], *, base_dir: str | Path = ".") -> SyncConfig:
    """Build a configuration in code (the demo, tests); same validation as a file,
    whose problems name ``<config>`` as their file."""
    loader = _Loader("<config>", Path(base_dir), {})
    loader.located = Located(opaque=lambda value: value)  # values given in code stay as given
    plain = loader.located.convert(dict(data))
    return _validate(loader, plain, Path(base_dir))


def secret_values(values: Iterable[str]) -> None:
    """Register credentials that reached the config by another way (the demo's tokens)."""
    for v in values:
        register_secret(v)
