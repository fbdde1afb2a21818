"""Our own score writes, remembered so that the next read does not take them for changes.

Every property write moves a contact's ``lastmodifieddate``. Without a memory of
what we wrote, the run after a score write finds every written contact "changed",
pages through all of them and re-reads their engagement. The batch-update answer
carries the stamp HubSpot gave our write; we keep ``id → (stamp, digest of the
fields we had read)`` in the state, for as long as a stamp can fall inside the next
read's look-back window, so that the next read can

* skip a contact whose ``lastmodifieddate`` is still our stamp and whose read fields
  hash to the same digest (an echo of our write), and
* skip the whole read when a count shows that nobody else changed anything
  (:meth:`OwnWriteChecks.unchanged_since`).

``dirty_until`` marks writes that may hide someone else's change (see
:meth:`OwnWriteChecks.changed_after_read`): while such a write is inside the window,
the count shortcut is off and only the digest comparison may skip a contact.

Glossary
--------
echo
    A contact whose only change since the read is our own score write: same stamp as
    our write's answer, same digest of the fields we read. Skipped, not re-delivered.
suspect
    A contact changed after the read saw it (its indexed stamp is neither the one
    the read saw nor one of our writes). Writing it makes our stamp hide that
    change, so the run's writes turn dirty and the next read compares fields.
vouched
    The previous read's boundary, when a check after that read (before its run's
    first write) found no suspect: its stamps may then count as "known" in the next
    read's count shortcut.
boundary
    ``id → stamp`` of the contacts a read delivered inside the next read's look-back
    window, so that the next read does not deliver them again unchanged.
horizon
    Where the next read's look-back window starts (``until`` minus the look-back):
    writes and boundary entries older than it can no longer be seen and are dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connectors.hubspot import reads
from connectors.hubspot.reads import Raw
from connectors.hubspot.transport import HubSpotTransport
from connectors.hubspot.values import to_datetime, to_epoch_ms

if TYPE_CHECKING:
    from connectors.hubspot.state import HubSpotState

# Beyond this many remembered writes the oldest are forgotten: that only costs a
# re-read of those contacts (and turns the count shortcut off), never a miss.
MAX_OWN_WRITES = 100_000
DIGEST_BYTES = 6  # 12 hex characters: ~20 bytes per remembered write in the cursor
NEVER_HASHED = frozenset({"lastmodifieddate", "hs_lastmodifieddate"})


# The owner is hashed apart from the rest: leadsync writes it too (assigning a rep
# before acting), and the digest after that write is then known without the fields.
OWNER_PROPERTY = "hubspot_owner_id"


def fields_digest(properties: Mapping[str, Any], skip: Collection[str]) -> str:
    """A short digest of the properties we read, leaving out the stamps and the
    properties we write ourselves (which our own write changes)."""
    return with_owner(rest_digest(properties, skip), properties.get(OWNER_PROPERTY))


def rest_digest(properties: Mapping[str, Any], skip: Collection[str]) -> str:
    """``fields_digest`` without the owner (see ``with_owner``)."""
    kept = {
        k: v
        for k, v in properties.items()
        if k not in NEVER_HASHED and k not in skip and k != OWNER_PROPERTY and v not in (None, "")
    }
    payload = json.dumps(kept, sort_keys=True, default=str)
    return hashlib.blake2b(payload.encode(), digest_size=DIGEST_BYTES).hexdigest()


def with_owner(rest: str, owner: object) -> str:
    """The digest of a contact whose other fields hash to ``rest`` and whose owner
    is ``owner``: what our owner write leaves behind, computed without a read."""
    payload = f"{rest}|{'' if owner in (None, '') else owner}"
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


# ----------------------------------------------------------------- one read's writes


def stamp_ms(raw: Raw) -> int | None:
    props = raw.get("properties") or {}
    when = to_datetime(props.get("lastmodifieddate")) or to_datetime(raw.get("updatedAt"))
    return None if when is None else int(to_epoch_ms(when))


@dataclass
class ReadWrites:
    """One read and the score writes after it: what ``write_scores`` needs from the
    read before it, and what ``checkpoint()`` makes a state of."""

    until_ms: int
    horizon_ms: int  # the next read's look-back start
    boundary: dict[str, int]  # id -> stamp the read saw, for stamps since the horizon
    own: OwnWrites
    # contacts changed after the read saw them (id -> stamp), from the check before
    # the first write; None until then
    suspects: dict[str, int] | None = None
    complete: bool = False  # the read has seen all its pages
    checked: bool = False  # a check ran after the read was complete
    written: dict[str, int] = field(default_factory=dict)  # this run's writes
    first_write_ms: int | None = None  # the earliest stamp among them
    unexplained: int | None = None  # a recheck's count did not match: dirty up to here
    done: bool = False  # the read yielded its state

    def snapshot(self) -> HubSpotState:
        """The state as of now: the read's boundary and our writes so far. A contact
        changed after the read saw it, and not read again since, turns the count
        shortcut off while its stamp is in the window: if we wrote it, our stamp
        hides that change; if not, a contact of ours merged or deleted at the same
        time could balance the count. The next read then compares fields
        (``OwnWrites.is_echo``)."""
        marks = [*(self.suspects or {}).values(), self.unexplained, self.own.dirty_until]
        stamps = [m for m in marks if m is not None]
        from connectors.hubspot.state import HubSpotState

        return HubSpotState(
            since_ms=self.until_ms,
            boundary=self.boundary,
            boundary_checked=self.checked,
            own=self.own.stamps,
            own_dirty_until=max(stamps) if stamps else None,
        )


def latest(*maps: Mapping[str, int]) -> dict[str, int]:
    """``id → stamp`` over several maps, keeping each id's latest stamp."""
    out: dict[str, int] = {}
    for m in maps:
        for cid, stamp in m.items():
            if stamp > out.get(cid, stamp - 1):
                out[cid] = stamp
    return out


# ------------------------------------------------------------------------- checks


class OwnWriteChecks:
    """The searches that tell our own writes from other clients' changes: the count
    shortcut before a read, and the check after a read (before its run's first
    write, and again at the end of a read that had writes between its batches)."""

    def __init__(
        self,
        transport: HubSpotTransport,
        *,
        properties: Callable[[], list[str]],
        digest: Callable[[Raw], str],
    ) -> None:
        self.transport = transport
        self.properties = properties  # the contact properties a read asks for
        self.digest = digest  # of a contact's read fields (``fields_digest``)

    def unchanged_since(
        self,
        own: OwnWrites,
        delivered: Mapping[str, int],
        start: datetime,
        deleted: Sequence[str],
    ) -> bool:
        """True when nobody but us changed a contact since ``start``: one search call.

        ``lastmodifieddate`` never decreases, so every contact we wrote at or after
        ``start`` is in the search set ``lastmodifieddate >= start`` once the index
        has our writes, and so is every contact the previous read delivered with a
        stamp since ``start`` (``delivered``: its boundary map, passed only when the
        check before that run's first write vouched for it). If the set is exactly
        as large as those contacts (less those deleted since) and its newest stamp
        is the newest we know of, the set is those contacts and nobody changed one
        after our last write. A lagging index either lacks our latest write (the
        newest stamp differs) or lacks others (the count differs): both fall back
        to the full windowed read, never to a miss (see docs/connectors.md for the
        race that remains)."""
        start_ms = int(to_epoch_ms(start))
        mine = own.in_range(start_ms)
        if not mine or own.dirty_since(start_ms):
            return False
        known = latest(mine, {c: s for c, s in delivered.items() if s >= start_ms})
        expected = len(known.keys() - set(deleted))
        total, rows = reads.newest(
            self.transport,
            "contacts",
            modified_prop="lastmodifieddate",
            since=start,
            properties=self.properties(),
            limit=reads.SEARCH_PAGE,
        )
        if total != expected or not rows or stamp_ms(rows[0]) != max(known.values()):
            return False
        # The newest contacts come back whole: a change stamped in the same
        # millisecond as our write of that contact shows in its fields.
        for raw in rows:
            cid, stamp = str(raw.get("id")), stamp_ms(raw)
            if stamp is None or known.get(cid) != stamp:
                return False
            digest = own.digest(cid) if mine.get(cid) == stamp else ""
            if digest and digest != self.digest(raw):
                return False
        return True

    def recheck(self, read: ReadWrites) -> None:
        """The check again, at the end of a read that had writes between its
        batches: page through what changed before our first write of the run, and
        count what changed since, which should be our writes of this run only (so
        that paging through them is not needed). The index may not have our last
        writes yet: it is taken to be complete up to the newest stamp it shows,
        which must be one of ours, with exactly our writes up to there."""
        cut = read.first_write_ms
        read.suspects = self.changed_after_read(read, before=cut)
        read.checked = True
        if cut is None or not read.written:
            return
        since = datetime.fromtimestamp(cut / 1000, tz=UTC)
        total, rows = reads.newest(
            self.transport, "contacts", modified_prop="lastmodifieddate", since=since
        )
        newest = stamp_ms(rows[0]) if rows else None
        ours = sorted(read.written.values())
        indexed = sum(1 for w in ours if newest is not None and w <= newest)
        if total != indexed or (newest is not None and newest not in read.written.values()):
            read.unexplained = max(newest or cut, ours[-1])

    def changed_after_read(self, read: ReadWrites, *, before: int | None = None) -> dict[str, int]:
        """Before the first write after a read started (and again at the end of a read
        that had writes between its batches): the contacts whose indexed
        stamp (since the next read's look-back start) is not the version the read
        saw nor one of our earlier writes, ``id → stamp``. Usually one search page.

        A contact that someone changed after we read it and that we then write keeps
        only our write's stamp: the next read could not tell it from an echo of our
        write without comparing its fields. Writing one of these marks the run's
        writes dirty, so that the next read compares fields instead of trusting the
        count (``unchanged_since``)."""
        mine = read.own.in_range(read.horizon_ms)
        changed: dict[str, int] = {}
        horizon = datetime.fromtimestamp(read.horizon_ms / 1000, tz=UTC)
        until = None if before is None else datetime.fromtimestamp((before - 1) / 1000, tz=UTC)
        for page in reads.search_window(
            self.transport,
            "contacts",
            modified_prop="lastmodifieddate",
            since=horizon,
            until=until,
            properties=["lastmodifieddate"],
        ):
            for raw in page:
                cid, stamp = str(raw.get("id")), stamp_ms(raw)
                # the version the read saw, or our own write (the index may not have
                # a write of ours yet, or the read came from the list endpoint)
                if stamp is not None and stamp not in (mine.get(cid), read.boundary.get(cid)):
                    changed[cid] = stamp
        return changed
