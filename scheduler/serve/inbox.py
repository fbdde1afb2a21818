"""The durable inbox: every accepted notification is a row before the service answers.

It lives in the state store's database (same URL) in a table of its own, created with
``metadata.create_all`` so that it needs no migration of the state store's schema.
A row's ``key`` is unique: a redelivered webhook (HubSpot retries up to 10 times,
Salesforce for 24 hours) inserts nothing. ``due_at`` does three jobs: when a pending
row may be claimed, the lease of a claimed row (a worker that dies leaves it due again
after the lease), and the back-off of a failed one.

Statuses: ``pending`` (to process), ``waiting`` (a product event whose e-mail no
contact has yet; looked at again until ``expires_at``), ``done``, ``failed`` (after
``max_attempts``; kept for inspection), ``expired``.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from scheduler.serve.intake import Incoming

__all__ = ["TABLE", "Inbox", "InboxError", "InboxItem"]

TABLE = "leadsync_inbox"
PENDING, WAITING, DONE, FAILED, EXPIRED = "pending", "waiting", "done", "failed", "expired"


class InboxError(Exception):
    """The inbox's database cannot be used (the service answers 503, never a 2xx)."""


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One claimed notification, handed to the :class:`~scheduler.serve.worker.Processor`."""

    id: int
    key: str
    source: str  # hubspot | salesforce | events
    kind: str  # created | changed | deleted | merged | restored | event
    contact_id: str | None
    email: str | None
    occurred_at: datetime
    received_at: datetime
    attempts: int = 0  # failed attempts before this one
    payload: Mapping[str, Any] = field(default_factory=dict)


def _epoch(dt: datetime) -> float:
    return dt.timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def _table(md: sa.MetaData) -> sa.Table:
    ident = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrement
    return sa.Table(
        TABLE,
        md,
        sa.Column("id", ident, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(300), nullable=False, unique=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("contact_id", sa.String(64)),
        sa.Column("email", sa.String(320)),
        sa.Column("occurred_at", sa.Float, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("due_at", sa.Float, nullable=False),
        sa.Column("claimed_by", sa.String(40)),
        sa.Column("expires_at", sa.Float),
        sa.Column("done_at", sa.Float),
        # When the item's score write was acknowledged (its deals and tasks come after).
        sa.Column("scored_at", sa.Float),
        sa.Column("error", sa.Text),
        sa.Index(f"{TABLE}_due", "status", "due_at"),
        sa.Index(f"{TABLE}_contact", "contact_id"),
        sa.Index(f"{TABLE}_email", "email"),
    )


class Inbox:
    """The inbox table on the state store's database (SQLite or PostgreSQL)."""

    def __init__(
        self,
        url: str,
        *,
        now: Callable[[], datetime],
        schema: str | None = None,
        lease: timedelta = timedelta(minutes=5),
    ) -> None:
        self.now = now
        self.lease = lease
        is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if is_sqlite:
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        try:
            self.engine: Engine = sa.create_engine(url, **kwargs)
        except (sa.exc.ArgumentError, ImportError, sa.exc.NoSuchModuleError) as exc:
            raise InboxError(f"inbox: cannot use the state database: {exc}") from None
        self.dialect = self.engine.dialect.name
        if is_sqlite:
            _sqlite_durable(self.engine)
        self.metadata = sa.MetaData(schema=schema if self.dialect == "postgresql" else None)
        self.t = _table(self.metadata)

    def create(self) -> None:
        """Create the table if it is missing (idempotent, safe from several processes)."""
        try:
            self.metadata.create_all(self.engine, checkfirst=True)
            self._add_missing_columns()
        except sa.exc.SQLAlchemyError as exc:
            # Two processes creating at once: the loser finds the table there.
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                if sa.inspect(self.engine).has_table(TABLE, schema=self.t.schema):
                    return
            raise InboxError(f"inbox: cannot create its table: {_short(exc)}") from None

    def _add_missing_columns(self) -> None:
        """An inbox created by an earlier release lacks ``scored_at``: add it (nullable,
        so existing rows stay valid). A concurrent process adding it first is fine."""
        have = {c["name"] for c in sa.inspect(self.engine).get_columns(TABLE, schema=self.t.schema)}
        if "scored_at" in have:
            return
        name = self.engine.dialect.identifier_preparer.format_table(self.t)
        with contextlib.suppress(sa.exc.SQLAlchemyError), self.engine.begin() as conn:
            conn.execute(sa.text(f"ALTER TABLE {name} ADD COLUMN scored_at FLOAT"))

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ intake
    def add(
        self, items: Sequence[Incoming], *, keep_unknown: timedelta | None = None
    ) -> tuple[int, int]:
        """Store ``items`` in one transaction; returns (new, duplicates). Committed when
        this returns: only then may the service answer 2xx."""
        return self.add_groups([items], keep_unknown=keep_unknown)[0]

    def add_groups(
        self, groups: Sequence[Sequence[Incoming]], *, keep_unknown: timedelta | None = None
    ) -> list[tuple[int, int]]:
        """Store the items of several requests in ONE transaction (group commit: one
        disk sync for many requests); returns (new, duplicates) per request. A key
        sent twice counts as new for the first request that carries it."""
        now = _epoch(self.now())
        unique: dict[str, Incoming] = {}
        for group in groups:
            for item in group:
                unique.setdefault(item.key, item)
        if not unique:
            return [(0, 0) for _ in groups]
        rows = [
            {
                "key": item.key,
                "source": item.source,
                "kind": item.kind,
                "contact_id": item.contact_id,
                "email": item.email,
                "occurred_at": _epoch(item.occurred_at),
                "received_at": now,
                "payload": json.dumps(item.payload, separators=(",", ":"), default=str),
                "status": PENDING,
                "attempts": 0,
                "due_at": now,
                "expires_at": (
                    now + keep_unknown.total_seconds()
                    if keep_unknown is not None and item.source == "events"
                    else None
                ),
            }
            for item in unique.values()
        ]
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        try:
            with self.engine.begin() as conn:
                inserted: set[str] = set()
                for start in range(0, len(rows), 500):  # bound the statement's parameters
                    stmt = (
                        insert(self.t)
                        .values(rows[start : start + 500])
                        .on_conflict_do_nothing(index_elements=["key"])
                        .returning(self.t.c.key)
                    )
                    inserted.update(r[0] for r in conn.execute(stmt))
        except sa.exc.SQLAlchemyError as exc:
            raise InboxError(f"inbox: cannot store: {_short(exc)}") from None
        results: list[tuple[int, int]] = []
        for group in groups:
            new = 0
            for item in group:
                if item.key in inserted:
                    inserted.discard(item.key)
                    new += 1
            results.append((new, len(group) - new))
        return results

    # ------------------------------------------------------------------ draining
    def claim(self, limit: int, *, group: bool = True) -> list[InboxItem]:
        """Claim up to ``limit`` due rows, oldest received first, plus (``group``) the
        other due rows about the same contacts, so that contacts that arrive together
        are read together. Returned sorted by ``occurred_at``: the order in which things
        happened, whatever order they arrived in."""
        now = _epoch(self.now())
        token = uuid.uuid4().hex
        t = self.t
        due = sa.and_(t.c.status.in_((PENDING, WAITING)), t.c.due_at <= now)
        pick = sa.select(t.c.id).where(due).order_by(t.c.id).limit(limit)
        if self.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        try:
            with self.engine.begin() as conn:
                ids = [r[0] for r in conn.execute(pick)]
                if ids and group:
                    ids = self._grouped(conn, ids, due, limit)
                if not ids:
                    return []
                conn.execute(
                    t.update()
                    .where(t.c.id.in_(ids))
                    .values(claimed_by=token, due_at=now + self.lease.total_seconds())
                )
                rows = conn.execute(sa.select(t).where(t.c.id.in_(ids))).mappings().all()
        except sa.exc.SQLAlchemyError as exc:
            raise InboxError(f"inbox: cannot claim: {_short(exc)}") from None
        items = [_item(row) for row in rows]
        return sorted(items, key=lambda i: (i.occurred_at, i.id))

    def _grouped(
        self, conn: Connection, ids: list[int], due: sa.ColumnElement[bool], limit: int
    ) -> list[int]:
        t = self.t
        rows = conn.execute(sa.select(t.c.contact_id, t.c.email).where(t.c.id.in_(ids))).all()
        contacts = {r[0] for r in rows if r[0]}
        emails = {r[1] for r in rows if r[1] and not r[0]}
        same = sa.or_(t.c.contact_id.in_(contacts), t.c.email.in_(emails))
        more = sa.select(t.c.id).where(due, same, t.c.id.not_in(ids)).order_by(t.c.id).limit(limit)
        if self.dialect == "postgresql":
            more = more.with_for_update(skip_locked=True)
        return ids + [r[0] for r in conn.execute(more)]

    def done(self, ids: Iterable[int], *, scored_at: datetime | None = None) -> None:
        """Processed: kept (to dedupe redeliveries) until :meth:`purge`. ``scored_at`` is
        when the items' score write was acknowledged (``done_at`` comes after the deals
        and tasks)."""
        t = self.t
        stmt = (
            t.update()
            .where(t.c.id.in_(list(ids)))
            .values(
                status=DONE,
                done_at=_epoch(self.now()),
                scored_at=None if scored_at is None else _epoch(scored_at),
                claimed_by=None,
                error=None,
            )
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(stmt)
        except sa.exc.SQLAlchemyError as exc:
            raise InboxError(f"inbox: cannot mark done: {_short(exc)}") from None

    def retry(self, items: Sequence[InboxItem], *, error: str, max_attempts: int) -> None:
        """Count a failed attempt: back off exponentially (1 s doubling, at most 15 min);
        after ``max_attempts`` the row is kept as ``failed``."""
        now = _epoch(self.now())
        t = self.t
        try:
            with self.engine.begin() as conn:
                for item in items:
                    attempts = item.attempts + 1
                    values: dict[str, Any] = {
                        "attempts": attempts,
                        "claimed_by": None,
                        "error": error[:500],
                        "due_at": now + min(2.0 ** (attempts - 1), 900.0),
                    }
                    if attempts >= max_attempts:
                        values.update(status=FAILED, done_at=now)
                    conn.execute(t.update().where(t.c.id == item.id).values(**values))
        except sa.exc.SQLAlchemyError as exc:
            raise InboxError(f"inbox: cannot record a failure: {_short(exc)}") from None

    def wait(self, items: Sequence[InboxItem], *, recheck: timedelta) -> None:
        """Items whose contact is not known yet: look again after ``recheck``, until
        their ``expires_at``; items without one (webhooks) are done."""
        now = _epoch(self.now())
        t = self.t
        try:
            with self.engine.begin() as conn:
                rows = conn.execute(
                    sa.select(t.c.id, t.c.expires_at).where(t.c.id.in_([i.id for i in items]))
                ).all()
                for row_id, expires in rows:
                    if expires is None:
                        values: dict[str, Any] = {"status": DONE, "done_at": now}
                    elif now >= expires:
                        values = {"status": EXPIRED, "done_at": now}
                    else:
                        values = {
                            "status": WAITING,
                            "due_at": min(now + recheck.total_seconds(), expires),
                        }
                    conn.execute(
                        t.update().where(t.c.id == row_id).values(claimed_by=None, **values)
                    )
        except sa.exc.SQLAlchemyError as exc:
            raise InboxError(f"inbox: cannot park items: {_short(exc)}") from None

    def purge(self, *, older_than: timedelta) -> int:
        """Forget finished rows older than ``older_than`` (they dedupe redeliveries
        until then: keep it longer than the senders' retry window)."""
        cutoff = _epoch(self.now()) - older_than.total_seconds()
        t = self.t
        stmt = t.delete().where(t.c.status.in_((DONE, EXPIRED)), t.c.done_at < cutoff)
        try:
            with self.engine.begin() as conn:
                return conn.execute(stmt).rowcount or 0
        except sa.exc.SQLAlchemyError as exc:
            raise InboxError(f"inbox: cannot purge: {_short(exc)}") from None

    # ------------------------------------------------------------------ reading
    def counts(self) -> dict[str, int]:
        """Rows per status."""
        t = self.t
        stmt = sa.select(t.c.status, sa.func.count()).group_by(t.c.status)
        try:
            with self.engine.connect() as conn:
                return {status: int(n) for status, n in conn.execute(stmt)}
        except sa.exc.SQLAlchemyError as exc:
            raise InboxError(f"inbox: cannot count: {_short(exc)}") from None

    def depth(self) -> int:
        """Rows still to process (waiting product events are not a backlog)."""
        return self.counts().get(PENDING, 0)

    def status_of(self, key: str) -> str | None:
        t = self.t
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t.c.status).where(t.c.key == key)).scalar()

    def waiting_events(self, emails: Iterable[str] | None = None) -> list[InboxItem]:
        """Product events still waiting for their contact (for a run that learns new
        e-mails to match them)."""
        t = self.t
        stmt = sa.select(t).where(t.c.status == WAITING)
        if emails is not None:
            stmt = stmt.where(t.c.email.in_([e.lower() for e in emails]))
        with self.engine.connect() as conn:
            return [_item(row) for row in conn.execute(stmt.order_by(t.c.id)).mappings()]


def _item(row: Any) -> InboxItem:
    return InboxItem(
        id=int(row["id"]),
        key=row["key"],
        source=row["source"],
        kind=row["kind"],
        contact_id=row["contact_id"],
        email=row["email"],
        occurred_at=_dt(row["occurred_at"]),
        received_at=_dt(row["received_at"]),
        attempts=int(row["attempts"]),
        payload=json.loads(row["payload"]),
    )


def _sqlite_durable(engine: Engine) -> None:
    """WAL with a full sync on commit (an answered request survives a crash), a long
    busy timeout, and ``BEGIN IMMEDIATE`` so that two claimers never read the same
    free rows."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        with contextlib.suppress(Exception):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
