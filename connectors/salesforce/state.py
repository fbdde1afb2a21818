"""The Salesforce connector's resume point: a frozen value with a JSON round trip.

Stored form, version 2::

    {"version": 2,
     "objects": {"Lead": {"until": "<SOQL datetime>",
                          "seen": {"<id>": "[deleted:]<stamp>[#digest]"},
                          "master": ["<SOQL datetime>", true]},   # optional
                 "Contact": {...}},
     "own_writes": {"<id>": ["<SOQL datetime>", "<digest>"]}}

Version 1 (``{"v": 1, ...}``, the same content under another version key) is still
read: it is what releases before typed state stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from connectors.base import ConnectorConfigError, StoredState
from connectors.salesforce.soql import parse_datetime, soql_datetime

STATE_VERSION = 2
_LEGACY_VERSION = 1  # stored under "v"

_UNREADABLE = (
    "salesforce: the saved cursor is not one this connector wrote; run a full sync to replace it"
)


@dataclass(frozen=True, slots=True)
class ObjectState:
    """One object's (Lead's, Contact's) read: up to when, and what it delivered."""

    until: datetime
    # id -> ``[deleted:]stamp[#digest]`` of rows read inside the look-back window
    seen: Mapping[str, str] = field(default_factory=dict)
    # what describe said about MasterRecordId, and when (saves a describe a run)
    master: tuple[datetime, bool] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "seen", MappingProxyType(dict(self.seen)))

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"until": soql_datetime(self.until), "seen": dict(self.seen)}
        if self.master is not None:
            out["master"] = [soql_datetime(self.master[0]), self.master[1]]
        return out


@dataclass(frozen=True, slots=True)
class SalesforceState:
    """Where the next read of each object starts, and our score writes to skip."""

    objects: Mapping[str, ObjectState] = field(default_factory=dict)
    # id -> (when we wrote it as a SOQL datetime, digest of the fields we had read)
    own_writes: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    version: int = STATE_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", MappingProxyType(dict(self.objects)))
        object.__setattr__(self, "own_writes", MappingProxyType(dict(self.own_writes)))

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "objects": {obj: st.to_json() for obj, st in self.objects.items()},
            "own_writes": {i: [w, d] for i, (w, d) in self.own_writes.items()},
        }

    @classmethod
    def from_json(cls, data: StoredState) -> SalesforceState:
        """Versions 2 and 1; ``ConnectorConfigError`` (one line) for anything else."""
        objects = data.get("objects") if isinstance(data, Mapping) else None
        versioned = data.get("version") == STATE_VERSION or (
            "version" not in data and data.get("v") == _LEGACY_VERSION
        )
        if not versioned or not isinstance(objects, Mapping):
            raise ConnectorConfigError(_UNREADABLE)
        own = data.get("own_writes") or {}
        own_writes = {
            str(k): (str(v[0]), str(v[1]))
            for k, v in (own.items() if isinstance(own, Mapping) else ())
            if isinstance(v, list | tuple) and len(v) == 2
        }
        parsed: dict[str, ObjectState] = {}
        for obj, entry in objects.items():
            stamp = parse_datetime(entry.get("until")) if isinstance(entry, Mapping) else None
            if stamp is None or not isinstance(entry, Mapping):
                raise ConnectorConfigError(f"salesforce: cursor for {obj} has no valid 'until'")
            seen = entry.get("seen") or {}
            # Optional (older states lack it); anything unreadable costs one describe.
            master: tuple[datetime, bool] | None = None
            known = entry.get("master")
            if isinstance(known, list | tuple) and len(known) == 2:
                at = parse_datetime(known[0])
                if at is not None and isinstance(known[1], bool):
                    master = (at, known[1])
            parsed[str(obj)] = ObjectState(
                until=stamp,
                seen={str(k): str(v) for k, v in dict(seen).items()},
                master=master,
            )
        return cls(objects=parsed, own_writes=own_writes)
