"""The sync's state store on SQLAlchemy Core: SQLite by default, PostgreSQL in production.

What lives here is what makes a run resumable and idempotent: the connector's cursor,
a local copy of what scoring needs (so that time-driven re-scoring costs no API call),
the last score written per contact and model, the model hashes (baseline detection),
the action ledger (intent before a CRM call, outcome after), rejected records and run
history.

The schema is versioned by a small migrations table of our own: each migration is a
function applied once, in order, inside a transaction, so that upgrading leadsync
never drops or rewrites a table that holds state. Times are stored as epoch seconds
(floats) to behave the same on both databases.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

SCHEMA_VERSION = 4


class StateError(Exception):
    """The state store cannot be used (unreachable, newer schema, lost lease)."""


class LockHeld(StateError):
    """Another run of the same pipeline holds the lock."""


class LeaseLost(StateError):
    """This run's SQLite lease was taken over by another run: it must stop now."""


# ------------------------------------------------------------------ JSON with dates


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__}")


def _hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "$dt" in obj:
            return datetime.fromisoformat(obj["$dt"])
        if "$date" in obj:
            return date.fromisoformat(obj["$date"])
    return obj


def dumps(value: Any) -> str:
    return json.dumps(value, default=_default, separators=(",", ":"), sort_keys=True)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text, object_hook=_hook)


def epoch(dt: datetime) -> float:
    return dt.timestamp()


def from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


# --------------------------------------------------------------------- the schema


def _tables(md: sa.MetaData) -> dict[str, sa.Table]:
    t: dict[str, sa.Table] = {}
    t["migrations"] = sa.Table(
        "ls_migrations",
        md,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("applied_at", sa.Float, nullable=False),
    )
    t["cursors"] = sa.Table(
        "ls_cursors",
        md,
        sa.Column("pipeline", sa.String(200), primary_key=True),
        sa.Column("cursor", sa.Text, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    t["contacts"] = sa.Table(
        "ls_contacts",
        md,
        sa.Column("contact_id", sa.String(100), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False, server_default="contact"),
        sa.Column("converted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=True),
    )
    t["events"] = sa.Table(
        "ls_events",
        md,
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("contact_id", sa.String(100), nullable=False, index=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("occurred_at", sa.Float, nullable=False, index=True),
        sa.Column("attributes", sa.Text, nullable=False),
    )
    t["model_state"] = sa.Table(
        "ls_model_state",
        md,
        sa.Column("contact_id", sa.String(100), primary_key=True),
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("written_score", sa.Float, nullable=True),
        sa.Column("written_band", sa.String(20), nullable=True),
        sa.Column("armed", sa.Boolean, nullable=False),
        sa.Column("crossings", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_event", sa.String(300), nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        # Above the threshold at a baseline and never acted on: what a later
        # ``run --act-on-baseline`` acts on (migration 2).
        sa.Column("baseline_hot", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    t["models"] = sa.Table(
        "ls_models",
        md,
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("hash", sa.String(100), nullable=False),
        sa.Column("baselined_at", sa.Float, nullable=False),
    )
    t["ledger"] = sa.Table(
        "ls_ledger",
        md,
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("group_key", sa.String(300), nullable=False, index=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("contact_id", sa.String(100), nullable=False, index=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),  # LedgerKind
        sa.Column("status", sa.String(20), nullable=False, index=True),  # LedgerStatus
        sa.Column("spec", sa.Text, nullable=True),
        sa.Column("result_id", sa.String(200), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        # committed before the first call that carries the entry: without it, the
        # entry certainly never reached the CRM (see ``StateStore.mark_sent``)
        sa.Column("sent", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    t["rejected"] = sa.Table(
        "ls_rejected",
        md,
        sa.Column("contact_id", sa.String(100), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        # When the write is tried again unless the record changes first (migration 2).
        sa.Column("next_attempt_at", sa.Float, nullable=True),
    )
    t["runs"] = sa.Table(
        "ls_runs",
        md,
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("started_at", sa.Float, nullable=False, index=True),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("summary", sa.Text, nullable=True),
    )
    t["kv"] = sa.Table(
        "ls_kv",
        md,
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    # Score writes made by ``leadsync serve`` since the last committed run, so that the
    # run takes a contact read back with only those values changed for an echo of the
    # write (migration 3).
    t["serve_writes"] = sa.Table(
        "ls_serve_writes",
        md,
        sa.Column("contact_id", sa.String(100), primary_key=True),
        sa.Column("written_at", sa.Float, nullable=False, index=True),
        sa.Column("scores", sa.Text, nullable=False),
    )
    t["locks"] = sa.Table(
        "ls_locks",
        md,
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    return t


def _migration_1(conn: Connection, tables: dict[str, sa.Table]) -> None:
    for name, table in tables.items():
        if name != "migrations":
            table.create(conn, checkfirst=True)


def _add_column(conn: Connection, table: sa.Table, column: str) -> bool:
    """Add ``column`` of ``table``'s definition unless it is there (a database created
    by migration 1 of this release already has it); whether it was added."""
    have = {c["name"] for c in sa.inspect(conn).get_columns(table.name, schema=table.schema)}
    if column in have:
        return False
    col = table.c[column]
    ddl = f"{col.name} {col.type.compile(dialect=conn.dialect)}"
    if col.server_default is not None:
        default = sa.false() if isinstance(col.type, sa.Boolean) else None
        if default is not None:
            ddl += f" NOT NULL DEFAULT {default.compile(dialect=conn.dialect)}"
    name = conn.dialect.identifier_preparer.format_table(table)
    conn.execute(sa.text(f"ALTER TABLE {name} ADD COLUMN {ddl}"))
    return True


def _migration_2(conn: Connection, tables: dict[str, sa.Table]) -> None:
    """``baseline_hot`` on model states and ``next_attempt_at`` on rejected records.

    Older databases kept no mark of the contacts a baseline left above the threshold;
    they are the disarmed states with no crossing acted on and no action in the ledger,
    last written by the baseline run itself (a contact a later run skipped for an open
    deal looks the same but was updated after the baseline)."""
    ms, led, models = tables["model_state"], tables["ledger"], tables["models"]
    if _add_column(conn, ms, "baseline_hot"):
        acted = (
            sa.select(led.c.key)
            .where(led.c.contact_id == ms.c.contact_id, led.c.model == ms.c.model)
            .exists()
        )
        # Only states the baseline itself left: one a later run decided (skipped for
        # an open deal or a conversion) was updated after the model's baseline.
        by_baseline = (
            sa.select(models.c.model)
            .where(models.c.model == ms.c.model, ms.c.updated_at <= models.c.baselined_at)
            .exists()
        )
        conn.execute(
            ms.update()
            .where(ms.c.armed == sa.false(), ms.c.crossings == 0, ~acted, by_baseline)
            .values(baseline_hot=True)
        )
    _add_column(conn, tables["rejected"], "next_attempt_at")


def _migration_3(conn: Connection, tables: dict[str, sa.Table]) -> None:
    """The table of ``leadsync serve``'s score writes."""
    tables["serve_writes"].create(conn, checkfirst=True)


def _migration_4(conn: Connection, tables: dict[str, sa.Table]) -> None:
    """``sent`` on ledger entries. An earlier release kept no such mark, and a crash
    may have followed any entry's call, so every entry it left counts as sent."""
    led = tables["ledger"]
    if _add_column(conn, led, "sent"):
        conn.execute(led.update().values(sent=True))


# Append-only: (version, function). A released migration is never edited.
MIGRATIONS: list[tuple[int, Callable[[Connection, dict[str, sa.Table]], None]]] = [
    (1, _migration_1),
    (2, _migration_2),
    (3, _migration_3),
    (4, _migration_4),
]


# ------------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class StoredContact:
    id: str
    kind: str
    converted: bool
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelState:
    contact_id: str
    model: str
    written_score: float | None
    written_band: str | None
    armed: bool
    crossings: int
    last_event: str | None
    baseline_hot: bool = False


class LedgerKind(StrEnum):
    """What a ledger entry does in the CRM (or, for alerts, outside it)."""

    OWNER = "owner"
    DEAL = "deal"
    TASK = "task"
    ALERT = "alert"


class LedgerStatus(StrEnum):
    """Where an entry stands. ``intent`` is written before the call, in the same
    transaction as the state change that consumes the crossing; ``failed`` is tried
    again on a later run under the same key, ``gave_up`` no more (after too many
    attempts, or because an earlier entry of its group was given up); ``purged``: the
    contact was erased before the intent ran."""

    INTENT = "intent"
    DONE = "done"
    FAILED = "failed"
    GAVE_UP = "gave_up"
    PURGED = "purged"


# A ledger entry's details as stored (JSON, with dates and datetimes kept as such):
# the fields of a DealSpec or TaskSpec other than the key and contact, or an owner.
SpecValue = str | int | float | bool | date | datetime | None
LedgerSpec = Mapping[str, SpecValue]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    key: str
    group_key: str
    seq: int
    contact_id: str
    model: str
    kind: str  # a LedgerKind (a str, so that comparisons with text keep working)
    status: str  # a LedgerStatus
    spec: LedgerSpec | None
    result_id: str | None
    error: str | None
    attempts: int


def _lock_key(name: str) -> int:
    """A signed 64-bit key for ``pg_try_advisory_lock`` derived from the lock's name."""
    digest = hashlib.sha256(name.encode()).digest()[:8]
    return int.from_bytes(digest, "big", signed=True)


class StateStore:
    """One pipeline's state. ``schema`` (PostgreSQL only) isolates tenants and tests."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.clock = clock
        self.schema = schema
        is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if is_sqlite:
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        try:
            self.engine: Engine = sa.create_engine(url, **kwargs)
        except (sa.exc.ArgumentError, ImportError, sa.exc.NoSuchModuleError) as exc:
            raise StateError(f"state: cannot use {_safe_url(url)}: {exc}") from None
        self.dialect = self.engine.dialect.name
        if is_sqlite:
            _sqlite_transactions(self.engine)
        md = sa.MetaData(schema=schema if self.dialect == "postgresql" else None)
        self.t = _tables(md)
        self._pg_lock_conns: dict[str, Connection] = {}
        self._lease_holders: dict[str, str] = {}

    # ----------------------------------------------------------------- lifecycle
    def migrate(self) -> int:
        """Apply pending migrations; returns the schema version now in force."""
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key("migrate"))))
                self.t["migrations"].create(conn, checkfirst=True)
                done = {r[0] for r in conn.execute(sa.select(self.t["migrations"].c.version))}
                newest = max(done, default=0)
                if newest > SCHEMA_VERSION:
                    raise StateError(
                        f"state: schema version {newest} was written by a newer leadsync "
                        f"(this one knows {SCHEMA_VERSION}); upgrade leadsync"
                    )
                for version, fn in MIGRATIONS:
                    if version not in done:
                        fn(conn, self.t)
                        conn.execute(
                            self.t["migrations"]
                            .insert()
                            .values(version=version, applied_at=self.clock())
                        )
                return max(done | {v for v, _ in MIGRATIONS})
        except sa.exc.DatabaseError as exc:
            # OperationalError (unreachable, locked, no such folder) and DatabaseError
            # (a file that is not a database): one line, without the SQL.
            raise StateError(f"state: cannot open {_safe_url(self.url)}: {_short(exc)}") from None

    def close(self) -> None:
        for name in list(self._pg_lock_conns):
            self.release(name)
        self.engine.dispose()

    @contextlib.contextmanager
    def tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # --------------------------------------------------------------------- locks
    def acquire(self, name: str, *, ttl: float) -> str:
        """Take the run lock or raise :class:`LockHeld`; returns the holder id."""
        holder = uuid.uuid4().hex
        if self.dialect == "postgresql":
            conn = self.engine.connect()
            got = conn.execute(sa.select(sa.func.pg_try_advisory_lock(_lock_key(self._ns(name)))))
            if not got.scalar():
                conn.close()
                raise LockHeld(f"another run of pipeline {name!r} is in progress")
            conn.commit()
            self._pg_lock_conns[name] = conn
            return holder
        locks = self.t["locks"]
        now = self.clock()
        with self.tx() as conn:
            row = conn.execute(sa.select(locks).where(locks.c.name == name)).first()
            if row is not None and row.expires_at > now:
                left = int(row.expires_at - now) + 1
                raise LockHeld(
                    f"another run of pipeline {name!r} is in progress (its lease ends within {left}s)"
                )
            if row is None:
                conn.execute(locks.insert().values(name=name, holder=holder, expires_at=now + ttl))
            else:
                conn.execute(
                    locks.update()
                    .where(locks.c.name == name)
                    .values(holder=holder, expires_at=now + ttl)
                )
        self._lease_holders[name] = holder
        return holder

    def renew(self, name: str, *, ttl: float) -> None:
        """Extend the SQLite lease; a lease taken over by another run is fatal."""
        if self.dialect == "postgresql":
            return
        holder = self._lease_holders.get(name)
        if holder is None:
            return
        locks = self.t["locks"]
        with self.tx() as conn:
            res = conn.execute(
                locks.update()
                .where(locks.c.name == name, locks.c.holder == holder)
                .values(expires_at=self.clock() + ttl)
            )
            if res.rowcount == 0:
                raise LeaseLost(f"lost the lease on pipeline {name!r} to another run")

    def release(self, name: str) -> None:
        if self.dialect == "postgresql":
            conn = self._pg_lock_conns.pop(name, None)
            if conn is not None:
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    conn.execute(sa.select(sa.func.pg_advisory_unlock(_lock_key(self._ns(name)))))
                    conn.commit()
                conn.close()
            return
        holder = self._lease_holders.pop(name, None)
        if holder is None:
            return
        locks = self.t["locks"]
        with self.tx() as conn:
            conn.execute(locks.delete().where(locks.c.name == name, locks.c.holder == holder))

    def _ns(self, name: str) -> str:
        return f"{self.schema or 'public'}:{name}"

    @contextlib.contextmanager
    def run_lock(self, name: str, *, ttl: float, heartbeat: bool = True) -> Iterator[None]:
        """Hold the pipeline's lock for a run; a heartbeat thread keeps the lease alive."""
        self.acquire(name, ttl=ttl)
        stop = threading.Event()
        thread: threading.Thread | None = None
        if heartbeat and self.dialect != "postgresql":

            def beat() -> None:
                while not stop.wait(max(ttl / 3.0, 0.05)):
                    with contextlib.suppress(StateError, sa.exc.SQLAlchemyError):
                        self.renew(name, ttl=ttl)

            thread = threading.Thread(target=beat, name="leadsync-lease", daemon=True)
            thread.start()
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=5)
            self.release(name)

    # ------------------------------------------------------------------ cursors
    def get_cursor(self, pipeline: str) -> dict[str, Any] | None:
        c = self.t["cursors"]
        with self.tx() as conn:
            row = conn.execute(sa.select(c.c.cursor).where(c.c.pipeline == pipeline)).first()
        return None if row is None else loads(row[0])

    def set_cursor(self, conn: Connection, pipeline: str, cursor: Mapping[str, Any] | None) -> None:
        _upsert(
            conn,
            self.t["cursors"],
            [
                {
                    "pipeline": pipeline,
                    "cursor": None if cursor is None else dumps(dict(cursor)),
                    "updated_at": self.clock(),
                }
            ],
            ["pipeline"],
        )

    # ------------------------------------------------------------- local copy
    def upsert_contacts(self, conn: Connection, rows: Sequence[StoredContact]) -> set[str]:
        """Keep the rows; returns the ids that are new or whose kept fields changed (a
        record read again unchanged, say after a stopped run, is not a change)."""
        if not rows:
            return set()
        now = self.clock()
        records: list[dict[str, Any]] = [
            {
                "contact_id": r.id,
                "kind": r.kind,
                "converted": r.converted,
                "fields": dumps(r.fields),
                "updated_at": now,
            }
            for r in rows
        ]
        ct = self.t["contacts"]
        before: dict[str, str] = {}
        for chunk in _chunks([r.id for r in rows], 500):
            query = sa.select(ct.c.contact_id, ct.c.fields).where(ct.c.contact_id.in_(chunk))
            before.update({str(cid): str(fields) for cid, fields in conn.execute(query)})
        _upsert(conn, ct, records, ["contact_id"])
        return {
            str(r["contact_id"]) for r in records if before.get(str(r["contact_id"])) != r["fields"]
        }

    def upsert_events(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        """Rows: ``event_id, contact_id, type, occurred_at (datetime), attributes``.
        Returns the contacts that got an event the store did not hold."""
        if not rows:
            return set()
        ev = self.t["events"]
        known: set[str] = set()
        for chunk in _chunks([str(r["event_id"]) for r in rows], 500):
            query = sa.select(ev.c.event_id).where(ev.c.event_id.in_(chunk))
            known.update(str(x) for x in conn.execute(query).scalars())
        _upsert(
            conn,
            self.t["events"],
            [
                {
                    "event_id": r["event_id"],
                    "contact_id": r["contact_id"],
                    "type": r["type"],
                    "occurred_at": epoch(r["occurred_at"]),
                    "attributes": dumps(dict(r.get("attributes") or {})),
                }
                for r in rows
            ],
            ["event_id"],
        )
        return {str(r["contact_id"]) for r in rows if str(r["event_id"]) not in known}

    def merge_contact(self, conn: Connection, merged_id: str, into_id: str) -> None:
        """The merged record's events now belong to the survivor, and so does what was
        done for it: a Lead acted on and then converted (or a duplicate merged away)
        must not cross again as its survivor. Per model, the survivor is disarmed when
        either side was, keeps the larger crossing count and the last event seen; the
        survivor's own written score stays (it is what its CRM record holds)."""
        ev, ms = self.t["events"], self.t["model_state"]
        conn.execute(ev.update().where(ev.c.contact_id == merged_id).values(contact_id=into_id))
        rows = {
            (r.contact_id, r.model): r
            for r in conn.execute(sa.select(ms).where(ms.c.contact_id.in_([merged_id, into_id])))
        }
        carried: list[ModelState] = []
        for (cid, model), gone in rows.items():
            if cid != merged_id:
                continue
            kept = rows.get((into_id, model))
            carried.append(
                ModelState(
                    into_id,
                    model,
                    kept.written_score if kept is not None else None,
                    kept.written_band if kept is not None else None,
                    bool(gone.armed) and (kept is None or bool(kept.armed)),
                    max(int(gone.crossings), int(kept.crossings) if kept is not None else 0),
                    (kept.last_event if kept is not None else None) or gone.last_event,
                    bool(gone.baseline_hot) or (kept is not None and bool(kept.baseline_hot)),
                )
            )
        self.put_model_states(conn, carried)
        self.purge_contact(conn, merged_id, keep_events=True)

    def purge_contact(
        self, conn: Connection, contact_id: str, *, keep_events: bool = False
    ) -> bool:
        """Erase a contact's local data. Ledger rows keep only their key and outcome, so
        an action already taken is never repeated, but the personal details go.
        Whether there was anything personal to erase."""
        t = self.t
        found = 0
        for name in ("contacts", *(() if keep_events else ("events",)), "model_state", "rejected"):
            table = t[name]
            res = conn.execute(table.delete().where(table.c.contact_id == contact_id))
            found += int(res.rowcount or 0)
        led = t["ledger"]
        res = conn.execute(
            led.update()
            .where(
                led.c.contact_id == contact_id,
                led.c.status != LedgerStatus.INTENT.value,
                led.c.spec.isnot(None),
            )
            .values(spec=None)
        )
        found += int(res.rowcount or 0)
        res = conn.execute(
            led.update()
            .where(led.c.contact_id == contact_id, led.c.status == LedgerStatus.INTENT.value)
            .values(status=LedgerStatus.PURGED.value, spec=None, updated_at=self.clock())
        )
        return found + int(res.rowcount or 0) > 0

    def prune_events(self, conn: Connection, older_than: datetime) -> int:
        ev = self.t["events"]
        res = conn.execute(ev.delete().where(ev.c.occurred_at < epoch(older_than)))
        return int(res.rowcount or 0)

    def contact_ids(self) -> list[str]:
        c = self.t["contacts"]
        with self.tx() as conn:
            return [r[0] for r in conn.execute(sa.select(c.c.contact_id).order_by(c.c.contact_id))]

    def count_contacts(self) -> int:
        c = self.t["contacts"]
        with self.tx() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(c)).scalar() or 0)

    def iter_chunks(self, size: int) -> Iterator[tuple[list[StoredContact], list[dict[str, Any]]]]:
        """Contacts in id order, ``size`` at a time, each chunk with its events, so that
        memory stays flat whatever the number of contacts."""
        c, ev = self.t["contacts"], self.t["events"]
        last: str | None = None
        while True:
            with self.tx() as conn:
                q = sa.select(c).order_by(c.c.contact_id).limit(size)
                if last is not None:
                    q = q.where(c.c.contact_id > last)
                rows = conn.execute(q).all()
                if not rows:
                    return
                ids = [r.contact_id for r in rows]
                events: list[dict[str, Any]] = []
                eq = (
                    sa.select(ev)
                    .where(ev.c.contact_id >= ids[0], ev.c.contact_id <= ids[-1])
                    .order_by(ev.c.contact_id, ev.c.occurred_at, ev.c.event_id)
                )
                for e in conn.execute(eq):
                    events.append(_event_item(e))
            contacts = [
                StoredContact(r.contact_id, r.kind, bool(r.converted), loads(r.fields) or {})
                for r in rows
            ]
            yield contacts, events
            last = ids[-1]
            if len(rows) < size:
                return

    def get_contact(self, contact_id: str) -> tuple[StoredContact | None, list[dict[str, Any]]]:
        c, ev = self.t["contacts"], self.t["events"]
        with self.tx() as conn:
            r = conn.execute(sa.select(c).where(c.c.contact_id == contact_id)).first()
            if r is None:
                return None, []
            events = []
            for e in conn.execute(
                sa.select(ev)
                .where(ev.c.contact_id == contact_id)
                .order_by(ev.c.occurred_at, ev.c.event_id)
            ):
                events.append(_event_item(e))
        return StoredContact(r.contact_id, r.kind, bool(r.converted), loads(r.fields) or {}), events

    def get_contacts(
        self, contact_ids: Sequence[str]
    ) -> tuple[list[StoredContact], list[dict[str, Any]]]:
        """Several contacts and their events in two queries per 500 ids (the real-time
        worker's batch), in the shape :meth:`iter_chunks` yields."""
        c, ev = self.t["contacts"], self.t["events"]
        contacts: list[StoredContact] = []
        events: list[dict[str, Any]] = []
        with self.tx() as conn:
            for chunk in _chunks(list(contact_ids), 500):
                for r in conn.execute(sa.select(c).where(c.c.contact_id.in_(chunk))):
                    contacts.append(
                        StoredContact(
                            r.contact_id, r.kind, bool(r.converted), loads(r.fields) or {}
                        )
                    )
                q = (
                    sa.select(ev)
                    .where(ev.c.contact_id.in_(chunk))
                    .order_by(ev.c.contact_id, ev.c.occurred_at, ev.c.event_id)
                )
                for e in conn.execute(q):
                    events.append(_event_item(e))
        return contacts, events

    # ------------------------------------------------------------- model state
    def model_states(self, contact_ids: Sequence[str]) -> dict[tuple[str, str], ModelState]:
        ms = self.t["model_state"]
        out: dict[tuple[str, str], ModelState] = {}
        if not contact_ids:
            return out
        with self.tx() as conn:
            for chunk in _chunks(list(contact_ids), 500):
                for r in conn.execute(sa.select(ms).where(ms.c.contact_id.in_(chunk))):
                    out[(r.contact_id, r.model)] = ModelState(
                        r.contact_id,
                        r.model,
                        r.written_score,
                        r.written_band,
                        bool(r.armed),
                        int(r.crossings),
                        r.last_event,
                        bool(r.baseline_hot),
                    )
        return out

    def put_model_states(self, conn: Connection, states: Iterable[ModelState]) -> None:
        now = self.clock()
        rows = [
            {
                "contact_id": s.contact_id,
                "model": s.model,
                "written_score": s.written_score,
                "written_band": s.written_band,
                "armed": s.armed,
                "crossings": s.crossings,
                "last_event": s.last_event,
                "baseline_hot": s.baseline_hot,
                "updated_at": now,
            }
            for s in states
        ]
        if rows:
            _upsert(conn, self.t["model_state"], rows, ["contact_id", "model"])

    def swap_model_state(self, conn: Connection, old: ModelState | None, new: ModelState) -> bool:
        """Compare-and-set of one (contact, model) state: ``new`` replaces ``old`` only
        if the stored row still is ``old`` (``None``: no row yet). Used by processes
        that act without the pipeline lock (``leadsync serve``): called in the same
        transaction as the intents that consume a crossing, a lost swap (False) means
        another process consumed it first, and its intents must not be added. The
        written score is not compared: it is the write-back's, not the crossing's."""
        ms = self.t["model_state"]
        now = self.clock()
        values = {
            "armed": new.armed,
            "crossings": new.crossings,
            "last_event": new.last_event,
            "baseline_hot": new.baseline_hot,
            "updated_at": now,
        }
        if old is None:
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                stmt = pg_insert(ms)
            else:
                from sqlalchemy.dialects.sqlite import insert as sqlite_insert

                stmt = sqlite_insert(ms)  # type: ignore[assignment]
            row = {
                "contact_id": new.contact_id,
                "model": new.model,
                "written_score": new.written_score,
                "written_band": new.written_band,
                **values,
            }
            # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT.
            inserted = conn.execute(
                stmt.values(**row)
                .on_conflict_do_nothing(index_elements=["contact_id", "model"])
                .returning(ms.c.contact_id)
            ).first()
            return inserted is not None
        res = conn.execute(
            ms.update()
            .where(
                ms.c.contact_id == old.contact_id,
                ms.c.model == old.model,
                ms.c.armed == old.armed,
                ms.c.crossings == old.crossings,
                ms.c.last_event.is_not_distinct_from(old.last_event),
                ms.c.baseline_hot == old.baseline_hot,
            )
            .values(**values)
        )
        return bool(res.rowcount == 1)

    # ----------------------------------------------------- serve's own writes
    def add_serve_writes(
        self, conn: Connection, written: Mapping[str, Mapping[str, Any]], at: float
    ) -> None:
        """Remember score writes of ``leadsync serve``: ``{contact id: {field: value}}``."""
        rows = [
            {"contact_id": cid, "written_at": at, "scores": dumps(dict(values))}
            for cid, values in written.items()
        ]
        if rows:
            _upsert(conn, self.t["serve_writes"], rows, ["contact_id"])

    def serve_writes(self, contact_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The remembered writes of these contacts: ``{id: {field: value}}``."""
        sw = self.t["serve_writes"]
        out: dict[str, dict[str, Any]] = {}
        with self.tx() as conn:
            for chunk in _chunks(list(contact_ids), 500):
                for r in conn.execute(sa.select(sw).where(sw.c.contact_id.in_(chunk))):
                    out[r.contact_id] = loads(r.scores) or {}
        return out

    def has_serve_writes(self) -> bool:
        sw = self.t["serve_writes"]
        with self.tx() as conn:
            return conn.execute(sa.select(sw.c.contact_id).limit(1)).first() is not None

    def forget_serve_writes(self, conn: Connection, before: float) -> None:
        """Drop the writes made before ``before`` (settled by a committed run)."""
        sw = self.t["serve_writes"]
        conn.execute(sw.delete().where(sw.c.written_at < before))

    def contacts_for_emails(self, emails: Sequence[str]) -> dict[str, str]:
        """``{e-mail: contact id}`` for the stored contacts with these e-mails (compared
        without case). The copy keeps fields as JSON text: a ``LIKE`` narrows the rows,
        the parsed field decides."""
        wanted = {e.strip().lower() for e in emails if e and e.strip()}
        out: dict[str, str] = {}
        if not wanted:
            return out
        ct = self.t["contacts"]
        with self.tx() as conn:
            for email in sorted(wanted):
                pattern = (
                    "%" + email.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                )
                q = sa.select(ct.c.contact_id, ct.c.fields).where(
                    sa.func.lower(ct.c.fields).like(pattern, escape="\\")
                )
                for r in conn.execute(q.order_by(ct.c.contact_id)):
                    value = (loads(r.fields) or {}).get("email")
                    if isinstance(value, str) and value.strip().lower() == email:
                        out.setdefault(email, r.contact_id)
        return out

    def set_written(self, conn: Connection, written: Sequence[tuple[str, str, float, str]]) -> None:
        """Record scores the CRM accepted: (contact_id, model, score, band)."""
        ms = self.t["model_state"]
        now = self.clock()
        for cid, model, score, band in written:
            conn.execute(
                ms.update()
                .where(ms.c.contact_id == cid, ms.c.model == model)
                .values(written_score=score, written_band=band, updated_at=now)
            )

    # ------------------------------------------------------------------ models
    def model_hashes(self) -> dict[str, str]:
        m = self.t["models"]
        with self.tx() as conn:
            return {r.model: r.hash for r in conn.execute(sa.select(m))}

    def set_model_hash(self, conn: Connection, model: str, digest: str) -> None:
        _upsert(
            conn,
            self.t["models"],
            [{"model": model, "hash": digest, "baselined_at": self.clock()}],
            ["model"],
        )

    # ------------------------------------------------------------------ ledger
    def add_intents(self, conn: Connection, entries: Sequence[LedgerEntry], run_id: str) -> None:
        now = self.clock()
        led = self.t["ledger"]
        for e in entries:
            exists = conn.execute(sa.select(led.c.key).where(led.c.key == e.key)).first()
            if exists is not None:
                continue  # the same key twice is the same action: never a second one
            conn.execute(
                led.insert().values(
                    key=e.key,
                    group_key=e.group_key,
                    seq=e.seq,
                    run_id=run_id,
                    contact_id=e.contact_id,
                    model=e.model,
                    kind=e.kind,
                    status=LedgerStatus.INTENT.value,
                    spec=None if e.spec is None else dumps(dict(e.spec)),
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                    sent=False,
                )
            )

    def mark_sent(self, keys: Sequence[str]) -> set[str]:
        """Commit that calls carrying these entries may now leave, and return the keys
        that no call had carried before. The mark precedes every such call, so only
        for those keys is it certain that the CRM has no record yet, and the action
        can be created without first looking for its key there."""
        led = self.t["ledger"]
        fresh: set[str] = set()
        with self.tx() as conn:
            for chunk in _chunks(list(dict.fromkeys(keys)), 500):
                unsent = sa.and_(led.c.key.in_(chunk), led.c.sent == sa.false())
                if conn.dialect.update_returning:
                    q = led.update().where(unsent).values(sent=True).returning(led.c.key)
                    fresh.update(conn.execute(q).scalars())
                else:  # SQLite before 3.35; writers are serialised there
                    fresh.update(conn.execute(sa.select(led.c.key).where(unsent)).scalars())
                    conn.execute(led.update().where(unsent).values(sent=True))
        return fresh

    def pending_actions(self) -> list[LedgerEntry]:
        led = self.t["ledger"]
        with self.tx() as conn:
            rows = conn.execute(
                sa.select(led)
                .where(led.c.status.in_((LedgerStatus.INTENT.value, LedgerStatus.FAILED.value)))
                .order_by(led.c.created_at, led.c.group_key, led.c.seq)
            ).all()
        return [_ledger(r) for r in rows]

    def acted_on(self, contact_ids: Sequence[str]) -> set[tuple[str, str]]:
        """(contact, model) pairs with any action in the ledger, whatever its outcome."""
        led = self.t["ledger"]
        out: set[tuple[str, str]] = set()
        with self.tx() as conn:
            for chunk in _chunks(list(contact_ids), 500):
                q = sa.select(led.c.contact_id, led.c.model).where(led.c.contact_id.in_(chunk))
                out.update((r[0], r[1]) for r in conn.execute(q.distinct()))
        return out

    def ledger_for(self, contact_id: str) -> list[LedgerEntry]:
        led = self.t["ledger"]
        with self.tx() as conn:
            rows = conn.execute(
                sa.select(led).where(led.c.contact_id == contact_id).order_by(led.c.created_at)
            ).all()
        return [_ledger(r) for r in rows]

    def record_outcome(
        self,
        key: str,
        *,
        status: LedgerStatus | str,
        result_id: str | None = None,
        error: str | None = None,
    ) -> None:
        led = self.t["ledger"]
        with self.tx() as conn:
            conn.execute(
                led.update()
                .where(led.c.key == key)
                .values(
                    status=str(LedgerStatus(status)),
                    result_id=result_id,
                    error=error,
                    attempts=led.c.attempts + 1,
                    updated_at=self.clock(),
                )
            )

    def ledger_counts(self) -> dict[str, int]:
        led = self.t["ledger"]
        with self.tx() as conn:
            return {
                f"{r[0]}:{r[1]}": int(r[2])
                for r in conn.execute(
                    sa.select(led.c.kind, led.c.status, sa.func.count()).group_by(
                        led.c.kind, led.c.status
                    )
                )
            }

    # ---------------------------------------------------------------- rejected
    def reject(
        self,
        conn: Connection,
        contact_id: str,
        reason: str,
        *,
        backoff: Callable[[int], float] | None = None,
    ) -> None:
        """Record a refusal; ``backoff(attempts)`` gives the seconds until the next
        attempt (none: the next run tries again)."""
        rj = self.t["rejected"]
        now = self.clock()
        row = conn.execute(sa.select(rj).where(rj.c.contact_id == contact_id)).first()
        attempts = 1 if row is None else int(row.attempts) + 1
        next_at = None if backoff is None else now + backoff(attempts)
        if row is None:
            conn.execute(
                rj.insert().values(
                    contact_id=contact_id,
                    reason=reason,
                    first_seen=now,
                    last_seen=now,
                    attempts=1,
                    next_attempt_at=next_at,
                )
            )
        else:
            conn.execute(
                rj.update()
                .where(rj.c.contact_id == contact_id)
                .values(reason=reason, last_seen=now, attempts=attempts, next_attempt_at=next_at)
            )

    def rejected_waiting(self, now: float) -> set[str]:
        """Refused records whose next attempt is still to come."""
        rj = self.t["rejected"]
        with self.tx() as conn:
            q = sa.select(rj.c.contact_id).where(rj.c.next_attempt_at > now)
            return {r[0] for r in conn.execute(q)}

    def clear_backoff(self, conn: Connection) -> None:
        """Every refused record is tried on the next write (the set-up changed)."""
        rj = self.t["rejected"]
        conn.execute(rj.update().values(next_attempt_at=None))

    def clear_rejected(self, conn: Connection, contact_ids: Sequence[str]) -> None:
        rj = self.t["rejected"]
        for chunk in _chunks(list(contact_ids), 500):
            conn.execute(rj.delete().where(rj.c.contact_id.in_(chunk)))

    def rejected(self) -> list[dict[str, Any]]:
        """Refused records: ``contact_id, reason, first_seen, last_seen, attempts`` and
        ``next_attempt_at`` (epoch seconds; None: the next run tries again, or sooner
        if the record changes in the CRM)."""
        rj = self.t["rejected"]
        with self.tx() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(rj).order_by(rj.c.contact_id))]

    # -------------------------------------------------------------------- runs
    def start_run(self, run_id: str) -> None:
        with self.tx() as conn:
            conn.execute(self.t["runs"].insert().values(run_id=run_id, started_at=self.clock()))

    def finish_run(self, run_id: str, exit_code: int, summary: Mapping[str, Any]) -> None:
        runs = self.t["runs"]
        with self.tx() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(finished_at=self.clock(), exit_code=exit_code, summary=dumps(dict(summary)))
            )

    def last_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        runs = self.t["runs"]
        with self.tx() as conn:
            rows = conn.execute(
                sa.select(runs).order_by(runs.c.started_at.desc()).limit(limit)
            ).all()
        return [
            {
                "run_id": r.run_id,
                "started_at": from_epoch(r.started_at),
                "finished_at": from_epoch(r.finished_at),
                "exit_code": r.exit_code,
                "summary": loads(r.summary) or {},
            }
            for r in rows
        ]

    # ---------------------------------------------------------------------- kv
    def kv_get(self, key: str, conn: Connection | None = None) -> Any:
        kv = self.t["kv"]
        if conn is None:
            with self.tx() as c:
                row = c.execute(sa.select(kv.c.value).where(kv.c.key == key)).first()
        else:
            row = conn.execute(sa.select(kv.c.value).where(kv.c.key == key)).first()
        return None if row is None else loads(row[0])

    def kv_set(self, conn: Connection, key: str, value: Any) -> None:
        _upsert(conn, self.t["kv"], [{"key": key, "value": dumps(value)}], ["key"])


_EVENT_KEYS = frozenset({"id", "contact_id", "type", "occurred_at"})


def _event_item(e: Any) -> dict[str, Any]:
    """An events row as the scoring core reads an event: its attributes, then the
    columns (which win over attributes of the same name)."""
    attrs = loads(e.attributes) or {}
    item = {k: v for k, v in attrs.items() if k not in _EVENT_KEYS}
    item.update(
        id=e.event_id,
        contact_id=e.contact_id,
        type=e.type,
        occurred_at=from_epoch(e.occurred_at),
    )
    return item


def _ledger(r: Any) -> LedgerEntry:
    return LedgerEntry(
        key=r.key,
        group_key=r.group_key,
        seq=r.seq,
        contact_id=r.contact_id,
        model=r.model,
        kind=_as(LedgerKind, r.kind),
        status=_as(LedgerStatus, r.status),
        spec=loads(r.spec),
        result_id=r.result_id,
        error=r.error,
        attempts=int(r.attempts),
    )


def _as(enum: type[LedgerKind] | type[LedgerStatus], value: str) -> str:
    """The enum member for a stored value; an unknown one (a newer release's) as is."""
    try:
        return enum(value)
    except ValueError:
        return str(value)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _upsert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table)  # type: ignore[assignment]
    update = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    if update:
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_=update)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    for i in range(0, len(rows), 500):
        conn.execute(stmt, rows[i : i + 500])


def _sqlite_transactions(engine: Engine) -> None:
    """Make every SQLite transaction ``BEGIN IMMEDIATE`` (pysqlite would otherwise defer
    the write lock and let two processes both read a free lease) and use WAL so that
    readers never wait for the writer."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        with contextlib.suppress(Exception):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<state url>"


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
