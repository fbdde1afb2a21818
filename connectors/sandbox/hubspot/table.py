"""One HubSpot object type's records: compact columns, two views, a lagging index.

Records live in *slots* (slot order is id order, since ids only grow). Each slot has
a live view, which reads by id answer from at once, and a search view, which only
catches up with a write ``search_lag`` seconds later, as HubSpot's search index
does. Writes never change a properties dict in place (copy on write), so the
search view can keep pointing at the previous version until the lag has passed.

Seeded engagement records are *lazy*: their properties are computed from the
world's activity columns when first asked for, so 100,000 contacts with half a
year of activity fit in memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from connectors.sandbox.hubspot.schema import (
    CREATED_PROPERTY,
    MODIFIED_PROPERTY,
    PropertyDef,
)

Props = dict[str, str]
LazySource = Callable[[int], Props]


@dataclass(slots=True)
class _Pending:
    at: float  # when the write happened (seconds)
    slot: int
    props: Props | None  # None: lazy seeded version
    mod_ms: float
    visible: bool


class Table:
    """Storage and indexes for one object type. Not thread-safe by itself: the
    sandbox serialises requests around it."""

    def __init__(
        self,
        object_type: str,
        properties: list[PropertyDef],
        *,
        next_id: int,
        lag: float,
    ) -> None:
        self.object_type = object_type
        self.defs: dict[str, PropertyDef] = {p.name: p for p in properties}
        self.modified_name = MODIFIED_PROPERTY[object_type]
        self.created_name = CREATED_PROPERTY[object_type]
        self.lag = lag
        self.next_id = next_id
        self._cap = 0
        self.n = 0
        self.ids = np.zeros(0, dtype=np.int64)
        self.created_ms = np.zeros(0, dtype=np.float64)
        self.updated_ms = np.zeros(0, dtype=np.float64)
        self.archived = np.zeros(0, dtype=bool)
        self.archived_ms = np.zeros(0, dtype=np.float64)
        self.gone = np.zeros(0, dtype=bool)  # merged away: never listed, never searched
        self.live: list[Props | None] = []
        self.s_props: list[Props | None] = []
        self.s_mod = np.zeros(0, dtype=np.float64)
        self.s_visible = np.zeros(0, dtype=bool)
        self.seeded = 0  # slots [0, seeded) hold the seeded ids, ascending
        self._id_slot: dict[int, int] = {}
        self.lazy: LazySource | None = None
        self.unique: dict[str, dict[str, int]] = {}
        self.s_unique: dict[str, dict[str, int]] = {}
        self._pending: deque[_Pending] = deque()
        self._columns: dict[str, tuple[Callable[[Props], Any], np.ndarray]] = {}
        self.version = 0  # bumps whenever the search view changes
        self.layout = 0  # bumps when a record is archived or merged away
        self.cache: dict[str, Any] = {}  # derived search structures, keyed with ``version``
        for p in properties:
            if p.has_unique_value or (object_type == "contacts" and p.name == "email"):
                self.unique[p.name] = {}
                self.s_unique[p.name] = {}

    # ------------------------------------------------------------------ storage
    def _grow(self, need: int) -> None:
        if need <= self._cap:
            return
        cap = max(need, self._cap * 2, 64)
        for name in ("ids", "created_ms", "updated_ms", "archived", "archived_ms", "gone"):
            old = getattr(self, name)
            new = np.zeros(cap, dtype=old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)
        for name in ("s_mod", "s_visible"):
            old = getattr(self, name)
            new = np.zeros(cap, dtype=old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)
        self._cap = cap

    def load_seed(
        self,
        ids: np.ndarray,
        created_ms: np.ndarray,
        updated_ms: np.ndarray,
        props: list[Props] | None,
        lazy: LazySource | None = None,
    ) -> None:
        """Bulk-load the seeded records (already visible to search)."""
        count = len(ids)
        self._grow(count)
        self.n = self.seeded = count
        self.ids[:count] = ids
        self.created_ms[:count] = created_ms
        self.updated_ms[:count] = updated_ms
        self.s_mod[:count] = updated_ms
        self.s_visible[:count] = True
        self.lazy = lazy
        if props is None:
            self.live = [None] * count
            self.s_props = [None] * count
        else:
            self.live = list(props)
            self.s_props = list(props)
            for name, index in self.unique.items():
                s_index = self.s_unique[name]
                for slot, p in enumerate(props):
                    value = p.get(name)
                    if value:
                        index[value.lower()] = slot
                        s_index[value.lower()] = slot
        if count:
            self.next_id = max(self.next_id, int(ids[count - 1]) + 1)
        if props is not None and count:
            warm_iso(np.concatenate([created_ms, updated_ms]))

    def slot_of(self, object_id: int) -> int | None:
        slot = self._id_slot.get(object_id)
        if slot is not None:
            return slot
        if self.seeded:
            pos = int(np.searchsorted(self.ids[: self.seeded], object_id))
            if pos < self.seeded and int(self.ids[pos]) == object_id:
                return pos
        return None

    def props(self, slot: int) -> Props:
        p = self.live[slot]
        if p is None:
            assert self.lazy is not None
            return self.lazy(slot)
        return p

    def search_props(self, slot: int) -> Props:
        p = self.s_props[slot]
        if p is None:
            assert self.lazy is not None
            return self.lazy(slot)
        return p

    def value(self, slot: int, name: str, *, search: bool = False) -> str | None:
        """A property's stored value, computed stamps included."""
        if name == "hs_object_id":
            return str(int(self.ids[slot]))
        if name == self.created_name or name == "createdate":
            return _iso(self.created_ms[slot])
        if name == self.modified_name:
            return _iso(self.s_mod[slot] if search else self.updated_ms[slot])
        props = self.search_props(slot) if search else self.props(slot)
        return props.get(name)

    # ------------------------------------------------------------------- writes
    def create(self, props: Props, now: float) -> int:
        slot = self.n
        self._grow(slot + 1)
        self.n += 1
        object_id = self.next_id
        self.next_id += 1
        now_ms = _ms(now)
        if self.object_type == "contacts" and props.get("lifecyclestage"):
            props = {f"hs_lifecyclestage_{props['lifecyclestage']}_date": _iso(now_ms), **props}
        self.ids[slot] = object_id
        self.created_ms[slot] = now_ms
        self.updated_ms[slot] = now_ms
        self.live.append(props)
        self.s_props.append(props)
        self.s_mod[slot] = now_ms
        self.s_visible[slot] = False
        self._id_slot[object_id] = slot
        self._index(slot, None, props)
        self._pending.append(_Pending(now, slot, props, now_ms, visible=True))
        return slot

    def update(self, slot: int, changes: Props, now: float) -> None:
        old = self.props(slot)
        new = dict(old)
        for key, value in changes.items():
            if value == "":
                new.pop(key, None)  # HubSpot clears a property written with ""
            else:
                new[key] = value
        stage = new.get("lifecyclestage")
        if self.object_type == "contacts" and stage and stage != old.get("lifecyclestage"):
            # HubSpot keeps the first time a contact reached each stage.
            new.setdefault(f"hs_lifecyclestage_{stage}_date", _iso(_ms(now)))
        self.live[slot] = new
        self._index(slot, old, new)
        self.touch(slot, now)

    def touch(self, slot: int, now: float) -> None:
        """Advance the modification stamp (every write does, as in production)."""
        now_ms = max(_ms(now), float(self.updated_ms[slot]))
        self.updated_ms[slot] = now_ms
        visible = not (self.archived[slot] or self.gone[slot])
        self._pending.append(_Pending(now, slot, self.live[slot], now_ms, visible))

    def archive(self, slot: int, now: float, *, gone: bool = False) -> None:
        self.layout += 1
        self.archived[slot] = True
        self.archived_ms[slot] = _ms(now)
        if gone:
            self.gone[slot] = True
        old = self.props(slot)
        self._index(slot, old, {})
        self.touch(slot, now)

    def _index(self, slot: int, old: Props | None, new: Props) -> None:
        for name, index in self.unique.items():
            before = (old or {}).get(name)
            after = new.get(name)
            if before == after:
                continue
            if before and index.get(before.lower()) == slot:
                del index[before.lower()]
            if after:
                index[after.lower()] = slot

    def owner_of(self, name: str, value: str) -> int | None:
        """The live slot holding ``value`` in unique property ``name``."""
        index = self.unique.get(name)
        return None if index is None else index.get(value.lower())

    # ------------------------------------------------------------- search view
    def settle(self, now: float) -> None:
        """Let the search view catch up with writes older than the lag."""
        horizon = now - self.lag
        pending = self._pending
        while pending and pending[0].at <= horizon:
            entry = pending.popleft()
            self.version += 1
            slot = entry.slot
            old = self.s_props[slot] if self.s_visible[slot] else None
            new = entry.props if entry.visible else None
            for name, index in self.s_unique.items():
                before = old.get(name) if old else None
                after = (new or {}).get(name)
                if before and index.get(before.lower()) == slot:
                    del index[before.lower()]
                if after:
                    index[after.lower()] = slot
            self.s_props[slot] = entry.props
            self.s_mod[slot] = entry.mod_ms
            self.s_visible[slot] = entry.visible
            if self._columns:
                props = entry.props if entry.props is not None else self.search_props(slot)
                for key, (fn, arr) in list(self._columns.items()):
                    if slot < len(arr):
                        value = fn(props)
                        if arr.dtype.kind == "U" and len(value) > arr.dtype.itemsize // 4:
                            arr = arr.astype(f"U{2 * len(value)}")  # fixed width: widen
                            self._columns[key] = (fn, arr)
                        arr[slot] = value

    def column(self, key: str, fn: Callable[[Props], Any], dtype: Any) -> np.ndarray:
        """A search-view column of ``fn(properties)`` per slot, built on first use and
        kept current as writes settle, so filters on any property run vectorised.
        Text columns use numpy's fixed-width ``U`` strings (``dtype=None``): searching
        them is many times faster than variable-width strings."""
        entry = self._columns.get(key)
        if entry is None:
            arr = np.array([fn(self.search_props(s)) for s in range(self.n)], dtype=dtype)
            self._columns[key] = (fn, arr)
            return arr
        arr = entry[1]
        if len(arr) < self.n:
            extra = np.array(
                [fn(self.search_props(s)) for s in range(len(arr), self.n)], dtype=dtype
            )
            arr = np.concatenate([arr, extra])  # numpy widens fixed-width text as needed
            self._columns[key] = (fn, arr)
        return arr[: self.n]

    # ----------------------------------------------------------------- listing
    def listable(self, *, archived: bool) -> np.ndarray:
        """Slots a list call returns, in id order (cached until a create or archive)."""
        key = (self.n, self.layout, archived)
        cached = self.cache.get("listable")
        if cached is not None and cached[0] == key:
            return cached[1]  # type: ignore[no-any-return]
        n = self.n
        mask = ~self.gone[:n]
        mask &= self.archived[:n] if archived else ~self.archived[:n]
        slots = np.flatnonzero(mask)
        self.cache["listable"] = (key, slots)
        return slots

    def listable_ids(self, *, archived: bool) -> np.ndarray:
        """The ids of :meth:`listable`, for ``after`` cursors (cached alongside)."""
        slots = self.listable(archived=archived)
        cached = self.cache.get("listable_ids")
        if cached is not None and cached[0] is slots:
            return cached[1]  # type: ignore[no-any-return]
        ids: np.ndarray = self.ids[slots]
        self.cache["listable_ids"] = (slots, ids)
        return ids

    def record_json(
        self,
        slot: int,
        wanted: Iterable[str],
        always: Iterable[str],
        *,
        search: bool = False,
    ) -> dict[str, Any]:
        """One record as HubSpot answers it."""
        return self.records_json([slot], wanted, always, search=search)[0]

    def records_json(
        self,
        slots: Sequence[int] | np.ndarray,
        wanted: Iterable[str],
        always: Iterable[str],
        *,
        search: bool = False,
    ) -> list[dict[str, Any]]:
        """A page of records as HubSpot answers them. Which property comes from
        where is worked out once per page, and the stamps are formatted once per
        record: rendering is most of the cost of a list or search call."""
        created_names = ("createdate", self.created_name)
        plan: list[tuple[str, int]] = []  # 0 stored, 1 id, 2 created, 3 modified
        seen: set[str] = set()
        for name in always:
            if name not in seen:
                seen.add(name)
                plan.append((name, _code(name, created_names, self.modified_name)))
        for name in wanted:
            if name not in seen and name in self.defs:
                seen.add(name)
                plan.append((name, _code(name, created_names, self.modified_name)))
        slot_list = [int(x) for x in slots]
        ids = self.ids[slot_list].tolist()
        created_ms = self.created_ms[slot_list].tolist()
        updated_ms = (self.s_mod if search else self.updated_ms)[slot_list].tolist()
        archived = self.archived[slot_list].tolist()
        get_props = self.search_props if search else self.props
        out: list[dict[str, Any]] = []
        for i, slot in enumerate(slot_list):
            props = get_props(slot)
            object_id = str(ids[i])
            created = _iso(created_ms[i])
            updated = _iso(updated_ms[i])
            values: dict[str, str | None] = {}
            for name, code in plan:
                if code == 0:
                    values[name] = props.get(name)
                elif code == 1:
                    values[name] = object_id
                elif code == 2:
                    values[name] = created
                else:
                    values[name] = updated
            record: dict[str, Any] = {
                "id": object_id,
                "properties": values,
                "createdAt": created,
                "updatedAt": updated,
                "archived": archived[i],
            }
            if archived[i]:
                record["archivedAt"] = _iso(self.archived_ms[slot])
            out.append(record)
        return out

    def history(self, slot: int, names: Iterable[str]) -> dict[str, list[dict[str, str]]]:
        """``propertiesWithHistory`` of one record, newest value first.

        The sandbox keeps no log of every write; what a backtest needs is there:
        ``lifecyclestage`` from the ``hs_lifecyclestage_<stage>_date`` stamps (each
        stage from the day it was reached), any other property as its current value
        since the record's last change. Unknown names are ignored, as by HubSpot.
        """
        props = self.props(slot)
        out: dict[str, list[dict[str, str]]] = {}
        for name in names:
            if name not in self.defs or name in out:
                continue
            entries: list[tuple[str, str]] = []  # (iso timestamp, value)
            if name == "lifecyclestage" and self.object_type == "contacts":
                prefix, suffix = "hs_lifecyclestage_", "_date"
                entries = [
                    (stamp, key[len(prefix) : -len(suffix)])
                    for key, stamp in props.items()
                    if key.startswith(prefix) and key.endswith(suffix) and stamp
                ]
            value = props.get(name)
            if not entries and value is not None:
                entries = [(_iso(float(self.updated_ms[slot])), value)]
            entries.sort(reverse=True)  # ISO stamps with milliseconds sort as times
            out[name] = [
                {"value": v, "timestamp": t, "sourceType": "CRM_UI", "sourceId": "sandbox"}
                for t, v in entries
            ]
        return out


def _code(name: str, created_names: tuple[str, str], modified_name: str) -> int:
    if name == "hs_object_id":
        return 1
    if name in created_names:
        return 2
    return 3 if name == modified_name else 0


_COMPUTED = frozenset(
    {"hs_object_id", "createdate", "hs_createdate", "lastmodifieddate", "hs_lastmodifieddate"}
)


def _ms(seconds: float) -> float:
    return float(round(seconds * 1000.0))


_DAYS: dict[int, str] = {}


def _iso(ms: float) -> str:
    """``2019-10-30T03:30:17.883Z`` from epoch milliseconds, without strftime: the
    date part is cached per day, which makes rendering a page of records cheap."""
    total = round(float(ms))
    text = _ISO_CACHE.get(total)
    if text is not None:
        return text
    if len(_ISO_CACHE) > _ISO_CACHE_MAX:
        _ISO_CACHE.clear()
    text = _ISO_CACHE[total] = _format_iso(total)
    return text


_ISO_CACHE: dict[int, str] = {}
_ISO_CACHE_MAX = 500_000


def _format_iso(total: int) -> str:
    day, rest = divmod(total, 86_400_000)
    date = _DAYS.get(day)
    if date is None:
        date = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")
        _DAYS[day] = date
    seconds, millis = divmod(rest, 1000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{date}T{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


def warm_iso(ms: np.ndarray) -> None:
    """Format many stamps at once (vectorised) into the cache, so that the first
    pages a fresh sandbox serves do not pay for formatting one at a time."""
    if len(ms) == 0 or len(_ISO_CACHE) + len(ms) > _ISO_CACHE_MAX:
        return
    keys = np.round(np.asarray(ms, dtype=np.float64)).astype("int64")
    text = np.datetime_as_string(keys.astype("datetime64[ms]"), unit="ms")
    _ISO_CACHE.update(zip(keys.tolist(), [t + "Z" for t in text.tolist()], strict=True))


def iso_seconds(seconds: float) -> str:
    """The same for epoch seconds (the framework's ``iso_ms`` signature)."""
    return _iso(seconds * 1000.0)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
