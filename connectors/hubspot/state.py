"""The HubSpot connector's resume point: a frozen value with a JSON round trip.

Stored form (version 1, unchanged since the first release, so that every stored
state loads as it is)::

    {"version": 1,
     "since": <ms>,                       # the read's ``until``
     "boundary": {"<ms>": "id,id"},       # contacts delivered inside the look-back
     "boundary_checked": true,            # a check after the read vouched for them
     "own": {"<ms>": "id:digest,..."},    # our score writes (own_writes.py)
     "own_dirty_until": "<ms>",           # writes that may hide another's change
     "own_deals": {"<ms>": "deal:contact,..."}}  # deals we created, by creation time

``own_deals`` is optional (a state without it loads as it always did): it lets a new
process tell the contact of a deal it created without reading the deal's
associations when the deal shows up in the next outcomes read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from connectors.base import ConnectorConfigError, StoredState
from connectors.hubspot.own_writes import OwnWrites

STATE_VERSION = 1
# Contacts delivered inside the next run's look-back window, kept in the state so
# that the next run does not deliver them again (grouped by stamp: ~11 bytes an id).
# Beyond this many the map is dropped and they are re-delivered (at-least-once).
MAX_BOUNDARY = 50_000
# Deals we created, kept in the state for this long and at most this many (newest
# kept): enough for the outcomes reads that follow their creation; a deal beyond
# them costs one association read (a page of a thousand), never a wrong contact.
OWN_DEALS_MS = 7 * 86_400_000
MAX_STATE_OWN_DEALS = 5_000


def _frozen(mapping: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class HubSpotState:
    """Where the next incremental read starts, and what it may skip."""

    since_ms: int
    boundary: Mapping[str, int] = field(default_factory=dict)  # id -> stamp ms
    boundary_checked: bool = False
    own: Mapping[str, tuple[int, str]] = field(default_factory=dict)  # id -> (stamp, digest)
    own_dirty_until: int | None = None
    # deal id -> (contact id, created ms): deals this connector created (see above)
    own_deals: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    version: int = STATE_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "boundary", _frozen(self.boundary))
        object.__setattr__(self, "own", MappingProxyType(dict(self.own)))
        object.__setattr__(self, "own_deals", MappingProxyType(dict(self.own_deals)))

    def own_writes(self) -> OwnWrites:
        """A working copy of the remembered writes (the state itself never changes)."""
        return OwnWrites(dict(self.own), self.own_dirty_until)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "version": self.version,
            "since": self.since_ms,
            "boundary": pack_boundary(self.boundary),
        }
        out.update(OwnWrites(dict(self.own), self.own_dirty_until).pack())
        if self.boundary_checked:
            out["boundary_checked"] = True
        if self.own_deals:
            out["own_deals"] = pack_own_deals(self.own_deals, now_ms=self.since_ms)
        return out

    @classmethod
    def from_json(cls, data: StoredState) -> HubSpotState:
        """Raises ``ConnectorConfigError`` (one line) for what it cannot read."""
        try:
            version = data.get("version")
            if version != STATE_VERSION:
                raise ValueError(f"unsupported cursor version {version!r}")
            since = data["since"]
            if not isinstance(since, int | float | str):
                raise TypeError(f"since is {type(since).__name__}")
            packed = data.get("boundary") or {}
            if not isinstance(packed, Mapping):
                raise TypeError("boundary is not an object")
            boundary = {
                cid: int(stamp)
                for stamp, ids in packed.items()
                for cid in str(ids).split(",")
                if cid
            }
            own = OwnWrites.unpack(data)
            own_deals = unpack_own_deals(data)
            return cls(
                since_ms=int(since),
                boundary=boundary,
                boundary_checked=data.get("boundary_checked") is True,
                own=own.stamps,
                own_dirty_until=own.dirty_until,
                own_deals=own_deals,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConnectorConfigError(
                f"hubspot cursor: unreadable ({exc}); run a full sync to reset it"
            ) from None


def pack_boundary(boundary: Mapping[str, int]) -> dict[str, str]:
    """``{stamp ms: "id,id,..."}``: compact, since many contacts share a stamp."""
    if len(boundary) > MAX_BOUNDARY:
        return {}
    grouped: dict[int, list[str]] = {}
    for cid, stamp in boundary.items():
        grouped.setdefault(stamp, []).append(cid)
    return {str(stamp): ",".join(sorted(ids)) for stamp, ids in sorted(grouped.items())}


def pack_own_deals(deals: Mapping[str, tuple[str, int]], *, now_ms: int) -> dict[str, str]:
    """``{created ms: "deal:contact,..."}`` of the deals created in the last
    ``OWN_DEALS_MS`` before ``now_ms``, the newest ``MAX_STATE_OWN_DEALS`` of them."""
    recent = sorted(
        (
            (ms, deal, contact)
            for deal, (contact, ms) in deals.items()
            if ms >= now_ms - OWN_DEALS_MS
        ),
        reverse=True,
    )[:MAX_STATE_OWN_DEALS]
    grouped: dict[int, list[str]] = {}
    for ms, deal, contact in recent:
        grouped.setdefault(ms, []).append(f"{deal}:{contact}")
    return {str(ms): ",".join(sorted(pairs)) for ms, pairs in sorted(grouped.items())}


def unpack_own_deals(data: StoredState) -> dict[str, tuple[str, int]]:
    """The ``own_deals`` of a stored state (``pack_own_deals``); raises ``TypeError``
    or ``ValueError`` for what it cannot read."""
    deals = data.get("own_deals") or {}
    if not isinstance(deals, Mapping):
        raise TypeError("own_deals is not an object")
    out: dict[str, tuple[str, int]] = {}
    for stamp, pairs in deals.items():
        for pair in str(pairs).split(","):
            deal, _, contact = pair.partition(":")
            if deal and contact:
                out[deal] = (contact, int(stamp))
    return out
