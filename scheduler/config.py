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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

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


def parse_duration(value: Any) -> timedelta:
    """``30d``, ``15m``, ``1.5h``, ``45s``, ``2w``; a bare number means seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15m, 1d or 30d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    raise ValueError(f"expected a duration such as 15m, 1d or 30d, got {value!r}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    pipeline: str | None = "default"
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


class OnCrossConfig(_Strict):
    deal: DealConfig | None = Field(default_factory=DealConfig)
    task: TaskConfig | None = Field(default_factory=TaskConfig)
    owners: OwnersConfig = Field(default_factory=OwnersConfig)


class WritebackConfig(_Strict):
    min_change: float = Field(default=1.0, ge=0)
    band_field: str | None = None
    max_actions_per_run: int = Field(default=100, ge=0)
    skip_if_open_deal: Literal["any", "ours"] = "any"
    write_batch: int = Field(default=1000, ge=1)  # handed to the connector, which splits per API
    max_rejected_share: float = Field(default=0.5, gt=0, le=1)  # of writes refused for one reason
    on_cross: OnCrossConfig = Field(default_factory=OnCrossConfig)


class ScheduleConfig(_Strict):
    every: timedelta | None = None
    cron: str | None = None
    misfire_grace: timedelta = timedelta(minutes=5)

    @field_validator("every", "misfire_grace", mode="before")
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
    # Set by the loader, not by the user: where relative paths start.
    base_dir: str = "."
    source: str = "<config>"

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("lock_ttl", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> timedelta:
        return parse_duration(v)

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


def _line_of(node: Any, key: Any) -> int | None:
    try:
        if isinstance(node, CommentedMap):
            return int(node.lc.key(key)[0]) + 1
        if isinstance(node, CommentedSeq):
            return int(node.lc.item(key)[0]) + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return None


class _Loader:
    def __init__(self, source: str, base_dir: Path, env: Mapping[str, str]) -> None:
        self.source = source
        self.base_dir = base_dir
        self.env = env
        self.lines: dict[tuple[Any, ...], int] = {}
        self.problems: list[str] = []

    def where(self, path: tuple[Any, ...]) -> str:
        line = None
        p = path
        while p and line is None:
            line = self.lines.get(p)
            p = p[:-1]
        return f"{self.source}:{line or 1}"

    def problem(self, path: tuple[Any, ...], message: str) -> None:
        dotted = ".".join(str(x) for x in path) or "(top)"
        self.problems.append(f"{self.where(path)}: {dotted}: {message}")

    def plain(self, node: Any, path: tuple[Any, ...]) -> Any:
        if isinstance(node, CommentedMap):
            out: dict[str, Any] = {}
            for key, value in node.items():
                line = _line_of(node, key)
                if line:
                    self.lines[(*path, key)] = line
                out[str(key)] = self.plain(value, (*path, key))
            return out
        if isinstance(node, CommentedSeq):
            items = []
            for i, value in enumerate(node):
                line = _line_of(node, i)
                if line:
                    self.lines[(*path, i)] = line
                items.append(self.plain(value, (*path, i)))
            return items
        if isinstance(node, str):
            return self.substitute(node, path)
        if node is not None and not isinstance(node, bool | int | float):
            return str(node)
        return node

    def substitute(self, value: str, path: tuple[Any, ...]) -> str:
        key = str(path[-1]) if path else ""
        refs = _REF.findall(value)
        if _SECRET_KEY.search(key) and not (refs and _REF.fullmatch(value.strip())):
            self.problem(
                path,
                "secrets must not be written in the file; use ${ENV_VAR} or ${file:PATH}",
            )
            return ""
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
                    self.problem(path, f"cannot read secret file {fpath}: {exc.strerror}")
                    return ""
                register_secret(text)
                return text
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ref):
                self.problem(path, f"bad reference ${{{ref}}}: use ${{ENV_VAR}} or ${{file:PATH}}")
                return ""
            if ref not in self.env:
                self.problem(path, f"environment variable {ref} is not set")
                return ""
            got = self.env[ref]
            if secret:
                register_secret(got)
            return got

        return _REF.sub(repl, value)


def _pydantic_problems(loader: _Loader, exc: ValidationError) -> None:
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        loader.problem(loc, msg)


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> SyncConfig:
    """Read, substitute and validate; raise :class:`ConfigError` with every problem found."""
    p = Path(path)
    source = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{source}:1: (file): cannot read: {exc.strerror}"]) from None
    return parse_config(text, source=source, base_dir=p.parent, env=env)


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    base_dir: str | Path = ".",
    env: Mapping[str, str] | None = None,
) -> SyncConfig:
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
        raise ConfigError([f"{source}:1: (top): expected a mapping with crm, models, state, ..."])
    loader = _Loader(source, Path(base_dir), os.environ if env is None else env)
    data = loader.plain(doc, ())
    for reserved in ("base_dir", "source"):
        if reserved in data:
            loader.problem((reserved,), "unknown key")
    data["base_dir"] = str(base_dir)
    data["source"] = source
    config: SyncConfig | None = None
    try:
        config = SyncConfig.model_validate(data)
    except ValidationError as exc:
        _pydantic_problems(loader, exc)
    if loader.problems:
        raise ConfigError(loader.problems)
    assert config is not None
    return config


def config_from_mapping(data: Mapping[str, Any], *, base_dir: str | Path = ".") -> SyncConfig:
    """Build a configuration in code (the demo, tests); same validation as a file."""
    merged = dict(data)
    merged.setdefault("base_dir", str(base_dir))
    merged.setdefault("source", "<config>")
    try:
        return SyncConfig.model_validate(merged)
    except ValidationError as exc:
        loader = _Loader("<config>", Path(base_dir), {})
        _pydantic_problems(loader, exc)
        raise ConfigError(loader.problems) from None


def secret_values(values: Iterable[str]) -> None:
    """Register credentials that reached the config by another way (the demo's tokens)."""
    for v in values:
        register_secret(v)
