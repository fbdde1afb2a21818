"""The deployment file: which brokers, which database, which tenants.

Validated like ``leadsync.yaml``: ``${VAR}`` and ``${file:PATH}`` are substituted,
and every problem is one ``FILE:LINE: path: problem`` line. Each tenant gets its own
PostgreSQL schema in the one database (named from its id, see :func:`schema_for`),
which is why SQLite is refused: a file per tenant on one worker's disk is not shared
with the others.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from scheduler.config import ConfigError, located_mapping, parse_duration, read_config_text
from scoring.yaml_problems import model_keys, validation_problems

TENANT_ID = re.compile(r"^[a-z0-9_-]+$")
MAX_ID = 40  # the schema name (ls_ + id) stays well under PostgreSQL's 63 characters
TENANT_FILE = "leadsync.yaml"


def schema_for(tenant_id: str) -> str:
    """The tenant's PostgreSQL schema: ``ls_`` + the id with ``-`` as ``_`` (an
    identifier needs no quoting then). Two ids that map to one schema are refused."""
    return "ls_" + tenant_id.replace("-", "_")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(v: object) -> timedelta:
    d = parse_duration(v)
    if d.total_seconds() <= 0:
        raise ValueError("must be longer than zero")
    return d


class TenantEntry(_Strict):
    id: str
    config: str

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not TENANT_ID.match(v):
            raise ValueError(f"{v!r}: a tenant id is lower-case letters, digits, - and _")
        if len(v) > MAX_ID:
            raise ValueError(f"{v!r}: a tenant id has at most {MAX_ID} characters")
        return v


class CrmBudget(_Strict):
    """One CRM's shared API budget per bucket (portal or org + app)."""

    # e.g. "190 per 10 seconds" (the limits library's notation); None: no window limit
    window: str | None = None
    daily: int | None = Field(default=None, gt=0)  # the account's daily quota
    daily_share: float = Field(default=0.8, gt=0, le=1)  # leadsync's share of it
    search: str | None = None  # a separate rate for search endpoints ("4 per 1 second")
    headroom: float = Field(default=0.9, gt=0, le=1)  # the part of each rate used

    @field_validator("window", "search")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from limits import parse_many

        try:
            parsed = parse_many(v)
        except ValueError:
            raise ValueError(f"{v!r}: expected a rate such as '190 per 10 seconds'") from None
        if len(parsed) != 1:
            raise ValueError(f"{v!r}: expected one rate such as '190 per 10 seconds'")
        return v


def _default_budgets() -> dict[str, CrmBudget]:
    # HubSpot private app, Professional: 190 per 10 s and 650,000 a day; Salesforce: the
    # 24-hour allocation of a small Enterprise org (100,000 + per-licence calls).
    return {
        "hubspot": CrmBudget(window="190 per 10 seconds", daily=650_000, search="4 per 1 second"),
        "salesforce": CrmBudget(window=None, daily=100_000),
    }


class Deployment(_Strict):
    broker: str
    redis: str
    state: str
    tenants: list[TenantEntry] | None = None
    tenants_dir: str | None = None
    # Prefix of every Redis key and the Celery queue's name: two deployments (or two
    # tests) can share one Redis and one broker.
    name: str = "leadsync"
    # The longest a run may take; the broker's redelivery timeouts are set above it.
    longest_run: timedelta = timedelta(hours=2)
    # How often beat looks for due tenants (and re-reads this file).
    dispatch_every: timedelta = timedelta(seconds=5)
    # Credentials refused: wait one interval, then double, up to this.
    max_backoff: timedelta = timedelta(days=1)
    budgets: dict[str, CrmBudget] = Field(default_factory=_default_budgets)
    # Set by the loader.
    base_dir: str = "."
    source: str = "<deployment>"

    @field_validator("longest_run", "dispatch_every", "max_backoff", mode="before")
    @classmethod
    def _dur(cls, v: object) -> timedelta:
        return _duration(v)

    @field_validator("broker")
    @classmethod
    def _broker(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "amqp://", "amqps://")):
            raise ValueError("expected a redis:// or amqp:// URL")
        return v

    @field_validator("redis")
    @classmethod
    def _redis(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://")):
            raise ValueError("expected a redis:// URL (the shared limiter and the beat lock)")
        return v

    @field_validator("state")
    @classmethod
    def _state(cls, v: str) -> str:
        if v.startswith("sqlite"):
            raise ValueError(
                "SQLite cannot be shared by several workers; use a PostgreSQL URL "
                "(postgresql+psycopg://user@host/db)"
            )
        if not v.startswith("postgresql"):
            raise ValueError("expected a PostgreSQL URL (postgresql+psycopg://user@host/db)")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not TENANT_ID.match(v):
            raise ValueError(f"{v!r}: lower-case letters, digits, - and _")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> Deployment:
        if (self.tenants is None) == (self.tenants_dir is None):
            raise ValueError("give exactly one of tenants and tenants_dir")
        return self

    @property
    def queue(self) -> str:
        return self.name

    def key(self, *parts: str) -> str:
        """A Redis key of this deployment."""
        return ":".join((self.name, *parts))


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    config_path: Path

    @property
    def schema(self) -> str:
        return schema_for(self.id)


def tenants(deployment: Deployment) -> list[Tenant]:
    """The tenants as of now: a ``tenants_dir`` is listed again on every call (beat
    calls it every tick), so that added and removed tenants are noticed without a
    restart. Raises :class:`ConfigError` for an id that is not allowed."""
    base = Path(deployment.base_dir)
    if deployment.tenants is not None:
        out = [Tenant(t.id, _rel(base, t.config)) for t in deployment.tenants]
    else:
        folder = _rel(base, deployment.tenants_dir or ".")
        if not folder.is_dir():
            raise ConfigError([f"{deployment.source}:1: tenants_dir: {folder} is not a folder"])
        out = []
        bad: list[str] = []
        for child in sorted(folder.iterdir()):
            if not (child / TENANT_FILE).is_file():
                continue
            if not TENANT_ID.match(child.name) or len(child.name) > MAX_ID:
                bad.append(
                    f"{child / TENANT_FILE}:1: (tenant id): folder name {child.name!r} is not "
                    f"a tenant id (lower-case letters, digits, - and _, at most {MAX_ID})"
                )
                continue
            out.append(Tenant(child.name, child / TENANT_FILE))
        if bad:
            raise ConfigError(bad)
    _check_unique(deployment, out)
    return out


def _check_unique(deployment: Deployment, found: list[Tenant]) -> None:
    seen: dict[str, str] = {}
    problems: list[str] = []
    for t in found:
        other = seen.get(t.schema)
        if other is not None:
            what = (
                "is listed twice" if other == t.id else f"shares schema {t.schema} with {other!r}"
            )
            problems.append(f"{deployment.source}:1: tenants: tenant {t.id!r} {what}")
        seen[t.schema] = t.id
    if problems:
        raise ConfigError(problems)


def _rel(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def load_deployment(path: str | Path, *, env: Mapping[str, str] | None = None) -> Deployment:
    """Read, substitute and validate; raise :class:`ConfigError` with every problem."""
    text = read_config_text(path)
    return parse_deployment(text, source=str(path), base_dir=Path(path).parent, env=env)


def parse_deployment(
    text: str,
    *,
    source: str = "<deployment>",
    base_dir: str | Path = ".",
    env: Mapping[str, str] | None = None,
) -> Deployment:
    loader, data = located_mapping(
        text, source=source, base_dir=base_dir, env=env, top="broker, redis, state"
    )
    for reserved in ("base_dir", "source"):
        if reserved in data:
            loader.problem((reserved,), "unknown key", key=True)
    data["base_dir"] = str(base_dir)
    data["source"] = source
    deployment: Deployment | None = None
    try:
        deployment = Deployment.model_validate(data)
    except ValidationError as exc:
        loader.more(
            validation_problems(
                exc,
                data,
                loader.located,
                source,
                keys=model_keys(Deployment) - {"base_dir", "source"},
                wording="pydantic",
            )
        )
    if loader.problems:
        raise ConfigError(loader.problems)
    assert deployment is not None
    if deployment.tenants is not None:
        tenants(deployment)  # duplicate ids are a problem of the file itself
    return deployment
