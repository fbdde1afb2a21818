"""Our own score writes, remembered so that the next read does not take them for changes.

Every property write moves a contact's ``lastmodifieddate``. Without a memory of
what we wrote, the run after a score write finds every written contact "changed",
pages through all of them and re-reads their engagement. The batch-update answer
carries the stamp HubSpot gave our write; we keep ``id → (stamp, digest of the
fields we had read)`` in the cursor, for as long as a stamp can fall inside the next
read's look-back window, so that the next read can

* skip a contact whose ``lastmodifieddate`` is still our stamp and whose read fields
  hash to the same digest (an echo of our write), and
* skip the whole read when a count shows that nobody else changed anything
  (``HubSpotConnector._unchanged_since``).

``dirty_until`` marks writes that may hide someone else's change (see
``HubSpotConnector._window_unchanged``): while such a write is inside the window,
the count shortcut is off and only the digest comparison may skip a contact.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

# Beyond this many remembered writes the oldest are forgotten: that only costs a
# re-read of those contacts (and turns the count shortcut off), never a miss.
MAX_OWN_WRITES = 100_000
DIGEST_BYTES = 6  # 12 hex characters: ~20 bytes per remembered write in the cursor
NEVER_HASHED = frozenset({"lastmodifieddate", "hs_lastmodifieddate"})


def fields_digest(properties: Mapping[str, Any], skip: Collection[str]) -> str:
    """A short digest of the properties we read, leaving out the stamps and the
    properties we write ourselves (which our own write changes)."""
    kept = {
        k: v
        for k, v in properties.items()
        if k not in NEVER_HASHED and k not in skip and v not in (None, "")
    }
    payload = json.dumps(kept, sort_keys=True, default=str)
    return hashlib.blake2b(payload.encode(), digest_size=DIGEST_BYTES).hexdigest()


@dataclass
class OwnWrites:
    """``id → (stamp ms, digest)`` of our writes, plus the stamp up to which some of
    them may hide another client's change."""

    stamps: dict[str, tuple[int, str]] = field(default_factory=dict)
    dirty_until: int | None = None

    def record(self, contact_id: str, stamp: int, digest: str, *, dirty: bool) -> None:
        self.stamps[contact_id] = (stamp, digest)
        if dirty:
            self.mark_dirty(stamp)

    def mark_dirty(self, stamp: int) -> None:
        """No count shortcut while a read's window reaches back to ``stamp``."""
        self.dirty_until = max(stamp, self.dirty_until or stamp)

    def absorb(self, other: OwnWrites) -> None:
        """Take over writes made before this read started; nothing checked them, so
        they count as dirty."""
        for cid, (stamp, digest) in other.stamps.items():
            self.record(cid, stamp, digest or self.digest(cid), dirty=True)

    def missing_from(self, other: OwnWrites) -> OwnWrites:
        """The writes here that ``other`` does not hold (same id and stamp)."""
        return OwnWrites(
            {c: e for c, e in self.stamps.items() if other.stamps.get(c, (None,))[0] != e[0]}
        )

    def digest(self, contact_id: str) -> str:
        entry = self.stamps.get(contact_id)
        return entry[1] if entry else ""

    def is_echo(self, contact_id: str, stamp: int, digest: str) -> bool:
        """True when the contact still carries our write's stamp and the fields we
        read are as they were when we wrote (an unknown digest never matches)."""
        entry = self.stamps.get(contact_id)
        return entry is not None and entry[0] == stamp and bool(entry[1]) and entry[1] == digest

    def in_range(self, start_ms: int) -> dict[str, int]:
        return {cid: s for cid, (s, _d) in self.stamps.items() if s >= start_ms}

    def dirty_since(self, start_ms: int) -> bool:
        return self.dirty_until is not None and self.dirty_until >= start_ms

    def expire(self, horizon_ms: int) -> OwnWrites:
        """The writes a read starting at ``horizon_ms`` can still see."""
        kept = {cid: e for cid, e in self.stamps.items() if e[0] >= horizon_ms}
        dirty = self.dirty_until if self.dirty_since(horizon_ms) else None
        return OwnWrites(kept, dirty)

    def pack(self) -> dict[str, Any]:
        """Cursor keys: ``own`` = ``{"<stamp ms>": "id:digest,..."}`` (many writes of one
        batch share a stamp) and ``own_dirty_until`` when set."""
        items: list[tuple[str, tuple[int, str]]] = list(self.stamps.items())
        if len(items) > MAX_OWN_WRITES:
            items = sorted(items, key=lambda kv: kv[1][0])[-MAX_OWN_WRITES:]
        grouped: dict[int, list[str]] = {}
        for cid, (stamp, digest) in items:
            grouped.setdefault(stamp, []).append(f"{cid}:{digest}")
        out: dict[str, Any] = {
            "own": {str(s): ",".join(sorted(v)) for s, v in sorted(grouped.items())}
        }
        if self.dirty_until is not None:
            out["own_dirty_until"] = str(self.dirty_until)
        return out

    @classmethod
    def unpack(cls, cursor: Mapping[str, Any]) -> OwnWrites:
        """Raises ``ValueError``/``TypeError``/``AttributeError`` on a malformed entry."""
        packed = cursor.get("own") or {}
        stamps: dict[str, tuple[int, str]] = {}
        for stamp, entries in dict(packed).items():
            for entry in str(entries).split(","):
                if not entry:
                    continue
                cid, _, digest = entry.partition(":")
                stamps[cid] = (int(stamp), digest)
        dirty = cursor.get("own_dirty_until")
        return cls(stamps, None if dirty in (None, "") else int(dirty))
