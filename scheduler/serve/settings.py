"""The ``serve:`` section of ``leadsync.yaml``: where the service is reached, its secrets.

Kept apart from :mod:`scheduler.config` (which imports this model for its ``serve`` key)
so that the two modules do not import each other: what this one needs from there is
imported where it is used. Secrets (``client_secret``, ``path_token``, ``secret``) are
refused unless written as ``${VAR}`` or ``${file:PATH}``: the configuration loader
enforces that by key name, and registers every value so that logs can be scrubbed.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = [
    "DEFAULT_MAX_BODY",
    "EventsSettings",
    "HubSpotSettings",
    "SalesforceSettings",
    "ServeConfig",
    "WorkerSettings",
    "parse_size",
]

DEFAULT_MAX_BODY = 1024 * 1024
_MIN_BODY = 1024
_MAX_BODY = 64 * 1024 * 1024
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB)?\s*$")
_UNITS = {None: 1, "B": 1, "KB": 1000, "KiB": 1024, "MB": 1000**2, "MiB": 1024**2}
# A Salesforce organization id: 15 characters (case-sensitive) or the 18-character form.
_ORG_ID = re.compile(r"^00D[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$")


def parse_size(value: Any) -> int:
    """``1048576``, ``512KiB``, ``1MiB``, ``2MB``: a body size in bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 1MiB or 512KiB")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        size = int(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"expected a size such as 1MiB or 512KiB, got {value!r}")
    if not _MIN_BODY <= size <= _MAX_BODY:
        raise ValueError(f"must be between 1KiB and 64MiB, got {size} bytes")
    return size


def _duration(value: Any) -> timedelta:
    from scheduler.config import parse_duration  # see the module docstring

    return parse_duration(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HubSpotSettings(_Strict):
    """The public app's client secret: the key of ``X-HubSpot-Signature-v3``."""

    client_secret: SecretStr = Field(min_length=8)


class SalesforceSettings(_Strict):
    """Outbound Messages carry no signature: the organization id they name and a
    secret in the URL path (over HTTPS) are what tell them from anyone's POST."""

    organization_id: str
    path_token: SecretStr = Field(min_length=16)

    @field_validator("organization_id")
    @classmethod
    def _org(cls, value: str) -> str:
        if not _ORG_ID.match(value):
            raise ValueError(
                f"expected a Salesforce organization id (15 or 18 characters, starting 00D), "
                f"got {value!r}"
            )
        return value

    @field_validator("path_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", value.get_secret_value()):
            raise ValueError("use only letters, digits, - and _ (it goes into a URL path)")
        return value


class EventsSettings(_Strict):
    """Product events, signed with a secret shared with the sender."""

    secret: SecretStr = Field(min_length=16)
    # An event for an e-mail the CRM does not hold yet waits this long for the contact.
    keep_unknown: timedelta = timedelta(days=30)

    @field_validator("keep_unknown", mode="before")
    @classmethod
    def _dur(cls, value: Any) -> timedelta:
        return _duration(value)


class WorkerSettings(_Strict):
    """How the inbox is drained."""

    batch_size: int = Field(default=100, ge=1, le=1000)
    idle: timedelta = timedelta(seconds=1)  # pause when the inbox is empty
    # Least time between batch starts. A batch costs the same few API calls whatever
    # its size, so under a steady stream spacing them keeps the drain within the CRM's
    # rate limit with larger batches, rather than pausing inside a batch on it. 1 s
    # suits HubSpot (about 14 calls a batch against 190 per 10 s); a lone event after
    # a quiet spell is never delayed by it.
    min_interval: timedelta = timedelta(seconds=1)
    max_attempts: int = Field(default=20, ge=1)  # then the item is kept as failed
    keep_done: timedelta = timedelta(days=3)  # longer than HubSpot's 24 h of redelivery

    @field_validator("idle", "keep_done", "min_interval", mode="before")
    @classmethod
    def _dur(cls, value: Any) -> timedelta:
        return _duration(value)


class ServeConfig(_Strict):
    """``serve:`` in ``leadsync.yaml``. A source left out has no endpoint (404)."""

    public_url: str
    max_body: int = DEFAULT_MAX_BODY
    hubspot: HubSpotSettings | None = None
    salesforce: SalesforceSettings | None = None
    events: EventsSettings | None = None
    worker: WorkerSettings = Field(default_factory=WorkerSettings)

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError(
                f"expected the service's public base URL such as https://leads.example.com, "
                f"got {value!r}"
            )
        if parts.query or parts.fragment:
            raise ValueError("the base URL must not carry a query or a fragment")
        return value.strip().rstrip("/")

    @field_validator("max_body", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return parse_size(value)

    def secrets(self) -> list[str]:
        """Every secret of the section, for the log redactor."""
        out: list[str] = []
        if self.hubspot is not None:
            out.append(self.hubspot.client_secret.get_secret_value())
        if self.salesforce is not None:
            out.append(self.salesforce.path_token.get_secret_value())
        if self.events is not None:
            out.append(self.events.secret.get_secret_value())
        return out
