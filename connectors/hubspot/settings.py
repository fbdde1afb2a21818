"""The ``crm.hubspot`` section of leadsync.yaml, as a pydantic model.

docs/connectors.md ("HubSpot") documents each key. ``HubSpotSettingsModel`` is what
``scheduler/config.py`` validates the section with (with FILE:LINE), and what
``HubSpotConnector.from_config`` parses before turning it into the connector's own
:class:`~connectors.hubspot.connector.Settings`.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from connectors.hubspot.policy import TIERS
from connectors.hubspot.values import field_mappings, mapping_problem
from connectors.settings import SettingsModel
from scoring.yaml_problems import problems

_NOT_EMPTY = "must not be empty (an environment variable set to nothing?)"


class OAuthSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str
    client_secret: str
    refresh_token: str

    @model_validator(mode="after")
    def _filled(self) -> OAuthSettings:
        empty = [k for k in ("client_id", "client_secret", "refresh_token") if not getattr(self, k)]
        if empty:
            raise problems(*(((k,), _NOT_EMPTY) for k in empty))
        return self


class HubSpotSettingsModel(SettingsModel):
    """``crm.hubspot``: a private-app token or OAuth, limits and what to read."""

    type: str | None = None  # tolerated: older files repeated the connector's name here
    access_token: str | None = None
    oauth: OAuthSettings | None = None
    base_url: str = "https://api.hubapi.com"
    tier: str = "pro"
    headroom: float = Field(default=0.9, ge=0.05, le=1.0)
    quota_share: float = Field(default=0.25, gt=0, le=1.0)
    property_map: dict[str, object] = Field(default_factory=dict)
    score_fields: dict[str, str] = Field(default_factory=dict)
    # strict: "yes" in quotes is text, a typo to flag rather than a flag to guess
    web_analytics: StrictBool = False
    email_events: StrictBool = True
    form_submissions: StrictBool = True
    lookback_seconds: float = Field(default=300.0, ge=0, le=7 * 86400)
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    max_attempts: int = Field(default=5, ge=1, le=20)
    timeout_seconds: float = Field(default=30.0, ge=1, le=600)
    deal_pipeline: str = Field(default="default", min_length=1)

    @field_validator("tier", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("tier")
    @classmethod
    def _known_tier(cls, value: str) -> str:
        if value not in TIERS:
            raise ValueError(f"{value!r} is not one of {', '.join(sorted(TIERS))}")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("property_map")
    @classmethod
    def _property_map(cls, value: dict[str, object]) -> dict[str, object]:
        found = [mapping_problem(prop, spec) for prop, spec in value.items()]
        if any(found):
            raise problems(*(p for p in found if p is not None))
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> HubSpotSettingsModel:
        if self.access_token is not None and not self.access_token.strip():
            raise problems((("access_token",), _NOT_EMPTY))
        if (self.access_token is None) == (self.oauth is None):
            raise problems((("access_token",), "give exactly one of access_token or oauth"))
        return self

    def mapped_fields(self) -> frozenset[str]:
        """The contact fields this configuration delivers (defaults and property_map)."""
        return frozenset(m.field for m in field_mappings(self.property_map))
