"""The ``files`` connector: contact and event exports (CSV or JSONL) as a read-only CRM.

Useful to try leadsync on an export before connecting a CRM, for backtests, and for
CRMs without a connector: export, then ``leadsync run --dry-run`` or ``explain``. The
rows are parsed by :mod:`scoring.readers`, the same parser ``leadsync score`` uses, so
a file that scores offline reads the same way here.

Configuration (the ``files:`` section of the sync configuration)::

    crm:
      type: files
      files:
        contacts: exports/contacts.csv     # required; format from the extension
        events: exports/events.jsonl       # optional
        outcomes: exports/deals.csv        # optional: deal outcomes, for backtests
        batch_size: 1000                   # optional: contacts per ReadBatch
        base_dir: /path/for/relative/paths # optional; set by the sync, default: cwd

Incremental reads: an export is a snapshot, so every read that sees a changed file
returns all of it. The state (:class:`FilesState`) is the content fingerprint of the
files (size, mtime, sha256); an unchanged export yields nothing. Contacts that
disappear from an export are not reported as deletions: that would need every id in
the state. Rows that
cannot be read are skipped and listed in :attr:`FilesConnector.rejected` as
``FILE:LINE: field: problem``, for the sync to report (exit status 1).

Outcomes (``outcomes``, CSV or JSONL) hold one row per deal and contact:
``contact_id, deal_id, created_at, closed_at, outcome, amount`` where ``outcome`` is
``won``, ``lost`` or ``open``; ``closed_at`` is required for won and lost deals and
``amount`` is optional. They let ``leadsync backtest`` judge an export with no CRM.
Bad rows are skipped and listed in :attr:`FilesConnector.rejected_outcomes`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, NoReturn

from connectors.base import (
    ActionResult,
    Budget,
    ConnectorConfigError,
    ContactKind,
    ContactRecord,
    DealRecord,
    DealSpec,
    EventRecord,
    FieldCheck,
    FieldSpec,
    Owner,
    ReadBatch,
    RuntimeContext,
    ScoreUpdate,
    StoredState,
    TaskSpec,
    WriteResult,
)
from scoring.readers import RowError, format_for, read_contacts, read_events
from scoring.timeutil import parse_timestamp, to_iso

__all__ = ["FilesConnector", "FilesState", "Fingerprint"]

_KNOWN_SETTINGS = ("contacts", "events", "outcomes", "batch_size", "base_dir")
OUTCOME_COLUMNS = ("contact_id", "deal_id", "created_at", "closed_at", "outcome", "amount")
_OUTCOMES = ("won", "lost", "open")
_READ_ONLY = (
    "the files connector is read-only: it cannot {what}; "
    "use `leadsync run --dry-run`, `leadsync explain` or `leadsync score` with it"
)
_EVENT_KEYS = frozenset({"id", "contact_id", "type", "occurred_at"})
_CHUNK = 1 << 20


class _Unreadable(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """Enough to tell that an export changed: its content's hash decides."""

    size: int
    mtime_ns: int
    sha256: str

    def to_json(self) -> dict[str, object]:
        return {"size": self.size, "mtime_ns": self.mtime_ns, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class FilesState:
    """The fingerprints of the exports last read (``contacts``, and ``events`` when
    configured). Stored as ``{"version": 1, "files": {"contacts": {...}}}``; the
    unversioned ``{"contacts": {...}, "events": {...}}`` of earlier releases loads too."""

    files: Mapping[str, Fingerprint] = field(default_factory=dict)
    version: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))

    def to_json(self) -> dict[str, object]:
        return {"version": self.version, "files": {k: f.to_json() for k, f in self.files.items()}}

    @classmethod
    def from_json(cls, data: StoredState) -> FilesState:
        """Unreadable entries are dropped: that only costs one full read of the export."""
        version = data.get("version")
        if version not in (None, 1):
            raise ConnectorConfigError(
                f"files cursor: unsupported version {version!r}; run a full sync to reset it"
            )
        files = data.get("files") if version == 1 else data
        out: dict[str, Fingerprint] = {}
        for key, value in files.items() if isinstance(files, Mapping) else ():
            if not isinstance(value, Mapping):
                continue
            size, mtime, digest = value.get("size"), value.get("mtime_ns"), value.get("sha256")
            if isinstance(size, int) and isinstance(mtime, int) and isinstance(digest, str):
                out[str(key)] = Fingerprint(size, mtime, digest)
        return cls(out)


class FilesConnector:
    """Reads ``contacts`` and ``events`` exports; every write (scores, deals, tasks,
    owners) raises ``ConnectorConfigError``."""

    name = "files"
    bucket = "files:local"  # no API: nothing to share

    def __init__(
        self,
        contacts: Path,
        events: Path | None = None,
        *,
        context: RuntimeContext | None = None,
        batch_size: int = 1000,
        outcomes: Path | None = None,
    ) -> None:
        self.contacts_path = contacts
        self.events_path = events
        self.outcomes_path = outcomes
        # Outcome rows skipped by the last read of outcomes, as FILE:LINE: field: problem.
        self.rejected_outcomes: list[str] = []
        self.context = context
        self.batch_size = batch_size
        # Rows skipped by the last read, as FILE:LINE: field: problem lines.
        self.rejected: list[str] = []
        # Events whose contact is not in the contacts export (last read).
        self.orphan_events = 0
        self._state: FilesState | None = None  # the last complete read's

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, context: RuntimeContext) -> FilesConnector:
        unknown = sorted(str(key) for key in config if key not in _KNOWN_SETTINGS)
        if unknown:
            raise ConnectorConfigError(
                f"files.{unknown[0]}: unknown setting (known: {', '.join(_KNOWN_SETTINGS)})"
            )
        base_value = config.get("base_dir", ".")
        if not isinstance(base_value, str | os.PathLike):
            raise ConnectorConfigError("files.base_dir: expected a directory path")
        base = Path(base_value)
        contacts = _path_setting(config, "contacts", base, required=True)
        assert contacts is not None
        events = _path_setting(config, "events", base, required=False)
        outcomes = _path_setting(config, "outcomes", base, required=False)
        batch_size = config.get("batch_size", 1000)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConnectorConfigError(
                f"files.batch_size: expected a whole number of at least 1, got {batch_size!r}"
            )
        return cls(contacts, events, context=context, batch_size=batch_size, outcomes=outcomes)

    # --- reading ----------------------------------------------------------------------

    def fingerprint(self) -> FilesState:
        """The exports' fingerprints as they are now (each file hashed)."""
        return self._current_fingerprint(None)

    def load_state(self, data: StoredState | None) -> FilesState | None:
        return None if data is None else FilesState.from_json(data)

    def checkpoint(self) -> FilesState | None:
        """Nothing is written to an export: the last complete read's state."""
        return self._state

    def read_changes(
        self,
        state: FilesState | StoredState | None,
        *,
        until: datetime,
        events_since: datetime,
    ) -> Iterator[ReadBatch]:
        """All contacts with their events newer than ``events_since`` when the export
        changed since ``state``; nothing when it did not. ``until`` does not bound a
        snapshot: the fingerprint never refers to a time."""
        if state is not None and not isinstance(state, FilesState):
            state = FilesState.from_json(state)
        self.rejected = []
        self.orphan_events = 0
        self._state = None
        current = self._current_fingerprint(state)
        if state is not None and _same(state, current):
            self._state = current  # same content; newer stamps spare the next hashing
            return
        events_by_contact = self._events_by_contact(events_since)
        batch: list[ContactRecord] = []
        batch_events: list[EventRecord] = []
        pending: ReadBatch | None = None
        for contact in self._contacts():
            batch.append(contact)
            batch_events.extend(events_by_contact.pop(contact.id, ()))
            if len(batch) >= self.batch_size:
                if pending is not None:
                    yield pending
                pending = ReadBatch(contacts=tuple(batch), events=tuple(batch_events))
                batch, batch_events = [], []
        self.orphan_events = sum(len(events) for events in events_by_contact.values())
        self._state = current
        if batch or pending is None:
            if pending is not None:
                yield pending
            yield ReadBatch(contacts=tuple(batch), events=tuple(batch_events), state=current)
        else:
            yield ReadBatch(contacts=pending.contacts, events=pending.events, state=current)

    def _current_fingerprint(self, previous: FilesState | None) -> FilesState:
        known = previous.files if previous is not None else {}
        out = {"contacts": _fingerprint(self.contacts_path, "contacts", known.get("contacts"))}
        if self.events_path is not None:
            out["events"] = _fingerprint(self.events_path, "events", known.get("events"))
        return FilesState(out)

    def _contacts(self) -> Iterator[ContactRecord]:
        path = self.contacts_path
        with _open(path, "contacts") as handle:
            rows = read_contacts(
                _lines(handle, path, "contacts"), str(path), format=format_for(str(path))
            )
            for row in self._keep_good(rows):
                yield _contact_record(row)

    def _events_by_contact(self, since: datetime) -> dict[str, list[EventRecord]]:
        grouped: dict[str, list[EventRecord]] = {}
        path = self.events_path
        if path is None:
            return grouped
        seen: dict[str, int] = {}
        with _open(path, "events") as handle:
            rows = read_events(
                _lines(handle, path, "events"), str(path), format=format_for(str(path))
            )
            for row in self._keep_good(rows):
                if row["occurred_at"] < since:
                    continue
                record = _event_record(row, seen)
                grouped.setdefault(record.contact_id, []).append(record)
        return grouped

    def _keep_good(self, rows: Iterable[dict[str, Any] | RowError]) -> Iterator[dict[str, Any]]:
        for row in rows:
            if isinstance(row, RowError):
                if row.problem == "missing column in the header":
                    # Not a bad row: no row of the file can be read. One error, naming
                    # the header, rather than "1 row rejected".
                    raise ConnectorConfigError(
                        f"{row.source}:{row.line}: {row.field}: the header has no "
                        f"{row.field!r} column; a CSV export needs it in its first line"
                    )
                self.rejected.append(str(row))
            else:
                yield row

    def list_owners(self) -> Sequence[Owner]:
        return ()

    def open_deals(self, contact_ids: Sequence[str]) -> Mapping[str, Sequence[DealRecord]]:
        return {}

    def read_deal_outcomes(self, since: datetime | None) -> Iterator[DealRecord]:
        """Every deal of the ``outcomes`` export (an export is a snapshot, so ``since``
        does not narrow it); nothing without one. Bad rows go to ``rejected_outcomes``."""
        self.rejected_outcomes = []
        path = self.outcomes_path
        if path is None:
            return
        with _open(path, "outcomes") as handle:
            for line, row in _outcome_rows(handle, path):
                if isinstance(row, RowError):
                    self.rejected_outcomes.append(str(row))
                    continue
                parsed = _outcome(row, str(path), line)
                if isinstance(parsed, RowError):
                    self.rejected_outcomes.append(str(parsed))
                else:
                    yield parsed

    def check_deal_settings(
        self, *, pipeline: str | None, stage: str, lead_status: str | None
    ) -> tuple[str, ...]:
        """``leadsync check``: write-back is configured, and an export cannot take it."""
        del pipeline, stage, lead_status
        return (
            "the files connector is read-only, but writeback.on_cross creates deals: "
            "use `leadsync run --dry-run` with exports, or set writeback.on_cross.deal "
            "to null",
        )

    def budget(self) -> Budget:
        return Budget(calls=0)

    def close(self) -> None:
        """Nothing to release: files are opened and closed within each read."""

    # --- writing: not possible --------------------------------------------------------

    def ensure_fields(
        self,
        fields: Sequence[FieldSpec],
        *,
        create: bool = True,
        actions: Collection[str] = ("deal", "task"),
    ) -> FieldCheck:
        """An export has no score fields to check or create: nothing is missing, so
        ``leadsync check --config`` and a dry run pass; writing scores is what fails."""
        del create, actions
        return FieldCheck()

    def write_scores(self, updates: Sequence[ScoreUpdate]) -> WriteResult:
        _read_only("write scores")

    def create_deal(self, spec: DealSpec) -> ActionResult:
        _read_only("create deals")

    def create_task(self, spec: TaskSpec) -> ActionResult:
        _read_only("create tasks")

    def set_owner(self, contact_id: str, owner_id: str, *, kind: ContactKind = "contact") -> None:
        _read_only("assign owners")


# --- helpers ----------------------------------------------------------------------------


def _read_only(what: str) -> NoReturn:
    raise ConnectorConfigError(_READ_ONLY.format(what=what))


def _path_setting(
    config: Mapping[str, Any], key: str, base: Path, *, required: bool
) -> Path | None:
    value = config.get(key)
    if value is None or value == "":
        if required:
            raise ConnectorConfigError(
                f"files.{key}: missing; give the path of the {key} export (.csv or .jsonl)"
            )
        return None
    if not isinstance(value, str | os.PathLike):
        raise ConnectorConfigError(f"files.{key}: expected a file path, got {type(value).__name__}")
    path = Path(value)
    if not path.is_absolute():
        path = base / path
    try:
        format_for(str(path))
    except ValueError as exc:
        raise ConnectorConfigError(f"files.{key}: {exc}") from None
    if not path.is_file():
        problem = "is a directory, not a file" if path.is_dir() else "no such file"
        raise ConnectorConfigError(f"files.{key}: {path}: {problem}")
    return path


def _open(path: Path, key: str) -> IO[str]:
    try:
        return open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise ConnectorConfigError(
            f"files.{key}: {path}: cannot read: {exc.strerror or exc}"
        ) from None


def _lines(handle: IO[str], path: Path, key: str) -> Iterator[str]:
    try:
        yield from handle
    except UnicodeDecodeError as exc:
        raise ConnectorConfigError(f"files.{key}: {path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConnectorConfigError(
            f"files.{key}: {path}: cannot read: {exc.strerror or exc}"
        ) from None


def _fingerprint(path: Path, key: str, previous: Fingerprint | None) -> Fingerprint:
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConnectorConfigError(
            f"files.{key}: {path}: cannot read: {exc.strerror or exc}"
        ) from None
    if (
        previous is not None
        and previous.size == stat.st_size
        and previous.mtime_ns == stat.st_mtime_ns
    ):
        # Same size and modification time: trust the stored hash rather than re-read
        # a large export on every scheduled run.
        return previous
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise ConnectorConfigError(
            f"files.{key}: {path}: cannot read: {exc.strerror or exc}"
        ) from None
    return Fingerprint(stat.st_size, stat.st_mtime_ns, digest.hexdigest())


def _same(before: FilesState, current: FilesState) -> bool:
    """Content decides: a touched but identical export is unchanged."""
    if set(before.files) != set(current.files):
        return False
    return all(before.files[k].sha256 == f.sha256 for k, f in current.files.items())


def _contact_record(row: dict[str, Any]) -> ContactRecord:
    fields = dict(row)
    contact_id = fields.pop("id")
    # A ``kind`` column (contact or lead) routes writes like the CRM connectors do;
    # any other value is an ordinary field.
    kind: ContactKind = "contact"
    if isinstance(fields.get("kind"), str) and fields["kind"].strip().lower() in (
        "contact",
        "lead",
    ):
        kind = "lead" if fields.pop("kind").strip().lower() == "lead" else "contact"
    updated = fields.get("updated_at")
    return ContactRecord(
        id=contact_id,
        fields=fields,
        updated_at=updated if isinstance(updated, datetime) else None,
        kind=kind,
    )


def _event_record(row: dict[str, Any], seen: dict[str, int]) -> EventRecord:
    attributes = {key: value for key, value in row.items() if key not in _EVENT_KEYS}
    event_id = row.get("id")
    if event_id is None:
        # No id in the export: derive one from the content so that re-reading the same
        # file gives the same ids (the sync de-duplicates on them). Identical events
        # are told apart by their order of appearance.
        payload = json.dumps(
            [row["contact_id"], row["type"], to_iso(row["occurred_at"]), attributes],
            sort_keys=True,
            default=str,
        )
        base = "files-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]
        count = seen.get(base, 0) + 1
        seen[base] = count
        event_id = base if count == 1 else f"{base}-{count}"
    return EventRecord(
        id=str(event_id),
        contact_id=row["contact_id"],
        type=row["type"],
        occurred_at=row["occurred_at"],
        attributes=attributes,
    )


def _outcome_rows(handle: IO[str], path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """Raw outcome rows as text mappings, CSV or JSONL by extension."""
    source = str(path)
    lines = _lines(handle, path, "outcomes")
    if format_for(source) == "jsonl":
        for number, raw in enumerate(lines, start=1):
            text = raw.strip().lstrip("\ufeff") if number == 1 else raw.strip()
            if not text:
                continue
            try:
                value = json.loads(text)
            except ValueError as exc:
                yield number, RowError(source, number, "(json)", f"broken JSON: {exc}")
                continue
            if not isinstance(value, dict):
                yield number, RowError(source, number, "(json)", "expected a JSON object")
                continue
            yield number, value
        return
    reader = csv.reader(lines)
    header: list[str] | None = None
    for cells in reader:
        number = reader.line_num
        if header is None:
            header = [c.strip().lstrip("\ufeff") for c in cells]
            missing = [c for c in OUTCOME_COLUMNS if c != "amount" and c not in header]
            if missing:
                raise ConnectorConfigError(
                    f"{source}:{number}: {missing[0]}: the header has no {missing[0]!r} column "
                    f"(an outcomes export needs {', '.join(OUTCOME_COLUMNS)})"
                )
            continue
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            yield (
                number,
                RowError(
                    source, number, "(csv)", f"expected {len(header)} columns, got {len(cells)}"
                ),
            )
            continue
        yield number, dict(zip(header, cells, strict=True))


def _outcome(row: Mapping[str, Any], source: str, line: int) -> DealRecord | RowError:
    def text(name: str) -> str | None:
        value = row.get(name)
        if value is None:
            return None
        value = str(value).strip()
        return value or None

    def problem(name: str, message: str) -> RowError:
        return RowError(source, line, name, message)

    contact_id = text("contact_id")
    if contact_id is None:
        return problem("contact_id", "missing")
    deal_id = text("deal_id")
    if deal_id is None:
        return problem("deal_id", "missing")
    outcome = (text("outcome") or "").lower()
    if outcome not in _OUTCOMES:
        return problem("outcome", f"expected won, lost or open, got {row.get('outcome')!r}")
    stamps: dict[str, datetime | None] = {}
    for name in ("created_at", "closed_at"):
        raw = text(name)
        if raw is None:
            stamps[name] = None
            continue
        try:
            stamps[name] = parse_timestamp(raw)
        except ValueError:
            return problem(name, f"not a date and time: {raw!r}")
    created, closed = stamps["created_at"], stamps["closed_at"]
    if created is None:
        return problem("created_at", "missing")
    if outcome != "open" and closed is None:
        return problem("closed_at", f"missing for a {outcome} deal")
    if closed is not None and closed < created:
        return problem("closed_at", "before created_at")
    amount: float | None = None
    raw_amount = text("amount")
    if raw_amount is not None:
        try:
            amount = float(raw_amount)
        except ValueError:
            return problem("amount", f"not a number: {raw_amount!r}")
        if not math.isfinite(amount):
            return problem("amount", f"not a finite number: {raw_amount!r}")
    return DealRecord(
        id=deal_id,
        contact_id=contact_id,
        name=None,
        owner_id=None,
        stage=outcome,
        is_open=outcome == "open",
        is_won=None if outcome == "open" else outcome == "won",
        amount=amount,
        created_at=created,
        closed_at=closed if outcome != "open" else None,
    )
