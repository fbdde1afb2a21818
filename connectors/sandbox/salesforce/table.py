"""One sObject's rows: seeded rows materialised on demand, written rows kept as dicts.

Seeded rows come from the world's columnar arrays through ``base_row(seq)``; only rows
that are written (or created) are stored as dicts. Modification stamps, creation dates
and deletion flags are numpy arrays for every row, so that incremental queries on
``SystemModstamp`` and sorts by it never materialise rows they do not return.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from .ids import make_id, normalise_id
from .schema import FieldSpec, SObjectSpec

Row = dict[str, Any]
BaseLookup = Callable[[Any], Iterable[int]]


def fmt_datetime(ts: float) -> str:
    """``2013-05-20T20:49:32.000+0000``: the REST API's datetime format."""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{round(ts * 1000) % 1000:03d}+0000"


def fmt_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).date().isoformat()


def ms(ts: float) -> float:
    """Stamps are kept to the millisecond, as Salesforce stores them."""
    return round(ts * 1000) / 1000


def index_key(spec: FieldSpec, value: object) -> Any:
    """How values of ``spec`` compare: text case-insensitively, ids in their 18-character form."""
    if value is None:
        return None
    if spec.type in ("id", "reference"):
        return normalise_id(str(value))
    if isinstance(value, str):
        return value.casefold()
    return value


class Table:
    def __init__(
        self,
        spec: SObjectSpec,
        *,
        n_base: int = 0,
        base_row: Callable[[int], Row] | None = None,
        created: npt.NDArray[np.float64] | None = None,
        stamp: npt.NDArray[np.float64] | None = None,
        deleted: npt.NDArray[np.bool_] | None = None,
        base_lookups: dict[str, BaseLookup] | None = None,
        base_columns: dict[str, npt.NDArray[np.generic]] | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.n_base = n_base
        self._base_row = base_row
        capacity = max(16, n_base + n_base // 4)
        self._created = np.zeros(capacity, dtype=np.float64)
        self._stamp = np.zeros(capacity, dtype=np.float64)
        self._deleted = np.zeros(capacity, dtype=np.bool_)
        if n_base:
            assert created is not None and stamp is not None
            self._created[:n_base] = created
            self._stamp[:n_base] = stamp
            if deleted is not None:
                self._deleted[:n_base] = deleted
        self.n = n_base
        self.overlay: dict[int, Row] = {}
        self.base_lookups: dict[str, BaseLookup] = dict(base_lookups or {})
        # never-null fields of seeded rows as arrays, so filters on them need no rows
        self.base_columns: dict[str, npt.NDArray[np.generic]] = dict(base_columns or {})
        self.added: dict[str, dict[Any, set[int]]] = {}
        for name in self.base_lookups:
            self.added[name] = {}

    # arrays ------------------------------------------------------------------
    @property
    def stamp(self) -> npt.NDArray[np.float64]:
        return self._stamp[: self.n]

    @property
    def created(self) -> npt.NDArray[np.float64]:
        return self._created[: self.n]

    @property
    def deleted(self) -> npt.NDArray[np.bool_]:
        return self._deleted[: self.n]

    def _grow(self) -> None:
        size = len(self._stamp) * 2
        for attr in ("_created", "_stamp", "_deleted"):
            old = getattr(self, attr)
            new = np.zeros(size, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, attr, new)

    # rows --------------------------------------------------------------------
    def id_of(self, seq: int) -> str:
        return make_id(self.name, seq)

    def has(self, seq: int, *, include_deleted: bool = False) -> bool:
        return 0 <= seq < self.n and (include_deleted or not bool(self._deleted[seq]))

    def is_deleted(self, seq: int) -> bool:
        return bool(self._deleted[seq])

    def row(self, seq: int) -> Row:
        """The current row; callers copy before changing it."""
        found = self.overlay.get(seq)
        if found is not None:
            return found
        assert self._base_row is not None and seq < self.n_base
        return self._base_row(seq)

    def seqs(self, *, include_deleted: bool) -> npt.NDArray[np.int64]:
        if include_deleted:
            return np.arange(self.n, dtype=np.int64)
        return np.flatnonzero(~self.deleted).astype(np.int64)

    def put(self, seq: int, row: Row) -> None:
        self.overlay[seq] = row
        self._stamp[seq] = row["SystemModstamp"]
        self._created[seq] = row["CreatedDate"]
        self._deleted[seq] = bool(row.get("IsDeleted"))
        for name, values in self.added.items():
            spec = self.spec.get(name)
            if spec is None:
                continue
            key = index_key(spec, row.get(spec.name))
            if key is not None:
                values.setdefault(key, set()).add(seq)

    def append(self, row: Row) -> int:
        """Add a new row; fills in its ``Id``."""
        if self.n >= len(self._stamp):
            self._grow()
        seq = self.n
        self.n += 1
        row["Id"] = make_id(self.name, seq)
        self.put(seq, row)
        return seq

    # indexes -----------------------------------------------------------------
    def index_field(self, name: str) -> None:
        """Track ``name`` (an external-id or unique field) from now on."""
        self.added.setdefault(name.lower(), {})

    def indexed(self, name: str) -> bool:
        return name.lower() in self.added

    def lookup(self, name: str, values: Sequence[Any]) -> set[int]:
        """Rows that may hold one of ``values`` (index keys): a superset, re-checked by callers."""
        name = name.lower()
        out: set[int] = set()
        base = self.base_lookups.get(name)
        added = self.added.get(name, {})
        for value in values:
            if value is None:
                continue
            if base is not None:
                out.update(base(value))
            out.update(added.get(value, ()))
        return out

    def has_column(self, name: str) -> bool:
        return name.lower() in self.base_columns

    def column_mask(self, name: str, values: Sequence[Any]) -> npt.NDArray[np.bool_]:
        """Exactly the rows whose ``name`` is one of ``values`` (index keys)."""
        column = self.base_columns[name.lower()]
        spec = self.spec.get(name)
        assert spec is not None
        mask = np.zeros(self.n, dtype=np.bool_)
        mask[: self.n_base] = np.isin(column, list(values))
        wanted = set(values)
        for seq, row in self.overlay.items():
            mask[seq] = index_key(spec, row.get(spec.name)) in wanted
        return mask

    def find(self, spec: FieldSpec, value: object, *, include_deleted: bool = False) -> list[int]:
        """Rows whose ``spec`` field equals ``value`` exactly (by index key)."""
        key = index_key(spec, value)
        return sorted(
            seq
            for seq in self.lookup(spec.name, [key])
            if self.has(seq, include_deleted=include_deleted)
            and index_key(spec, self.row(seq).get(spec.name)) == key
        )


def date_of(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
