"""Deal outcomes and Lead conversions in the state store, read incrementally by each run.

A backtest needs, besides contacts and events, what happened after: the deals (created,
closed, won or lost, amount, associated contacts) and, on Salesforce, when each Lead
was converted into which Contact. ``sync_outcomes`` reads them through the connector
(``read_deal_outcomes`` and the optional ``read_conversions``) and keeps them in two
tables of their own, next to the sync's, created on first use: the sync's schema
migrations stay untouched.

Incremental and at-least-once, like the contact read: the cursor is the start of the
last complete read, and the next read asks for changes since that instant minus an
overlap; rows are upserted on their keys, so a re-read changes nothing. The first read
(no cursor) is the one-time backfill, conversions from before go-live included.

``StoreHistory`` turns the store into a :class:`scheduler.backtest.HistorySource`.
A converted Lead's history counts as its Contact's: its events are moved to the
Contact, the Contact gets the conversion instant as ``converted_at`` and the Lead's
creation as ``created_at`` (from the Lead's row, the conversion read, or, when neither
is known, the person's first recorded activity).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa

from connectors.base import Connector, DealRecord, ReadsConversions
from scheduler.backtest import (
    DEALS_SCHEMA,
    HistoryData,
    HubSpotStages,
    NoReconstruction,
    Reconstruction,
    SalesforceConversion,
)
from scheduler.state import StateStore, epoch, from_epoch
from scoring.engine import records_to_frames
from scoring.model import ScoringModel

__all__ = [
    "Conversion",
    "OutcomeStore",
    "OutcomeSummary",
    "StoreHistory",
    "sync_outcomes",
]

_UTC_DT = pl.Datetime("us", "UTC")
OVERLAP = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Conversion:
    """A Salesforce Lead converted into a Contact (and maybe an Opportunity)."""

    lead_id: str
    contact_id: str
    converted_at: datetime
    opportunity_id: str | None = None
    # When the Lead was created (Salesforce's ``Lead.CreatedDate``), if the CRM said so:
    # the Contact a conversion creates is as old as the conversion, the person is not.
    lead_created_at: datetime | None = None


@dataclass
class OutcomeSummary:
    deals: int = 0
    conversions: int = 0
    full: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"deals": self.deals, "conversions": self.conversions, "full": self.full}


class OutcomeStore:
    """The two outcome tables on the state store's database (and PostgreSQL schema)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        schema = store.t["kv"].schema
        md = sa.MetaData(schema=schema)
        self.deals = sa.Table(
            "ls_outcomes",
            md,
            sa.Column("deal_id", sa.String(100), primary_key=True),
            sa.Column("contact_id", sa.String(100), primary_key=True),
            sa.Column("created_at", sa.Float, nullable=True),
            sa.Column("closed_at", sa.Float, nullable=True),
            sa.Column("outcome", sa.String(10), nullable=False),
            sa.Column("stage", sa.String(200), nullable=True),
            sa.Column("amount", sa.Float, nullable=True),
        )
        self.conversions = sa.Table(
            "ls_conversions",
            md,
            sa.Column("lead_id", sa.String(100), primary_key=True),
            sa.Column("contact_id", sa.String(100), nullable=False, index=True),
            sa.Column("converted_at", sa.Float, nullable=False),
            sa.Column("opportunity_id", sa.String(100), nullable=True),
            sa.Column("lead_created_at", sa.Float, nullable=True),
        )
        self._md = md

    def ensure(self) -> None:
        """Create the tables on first use; a conversions table from before the Lead's
        creation was kept gains that (nullable) column."""
        with self.store.tx() as conn:
            self._md.create_all(conn, checkfirst=True)
            table = self.conversions
            present = {
                c["name"] for c in sa.inspect(conn).get_columns(table.name, schema=table.schema)
            }
            if "lead_created_at" not in present:
                preparer = conn.dialect.identifier_preparer
                conn.execute(
                    sa.text(
                        f"ALTER TABLE {preparer.format_table(table)} "
                        "ADD COLUMN lead_created_at FLOAT"
                    )
                )

    def cursor_key(self, pipeline: str) -> str:
        return f"outcomes:{pipeline}"

    def upsert_deals(self, conn: sa.Connection, deals: Iterable[DealRecord]) -> int:
        rows = [
            {
                "deal_id": d.id,
                "contact_id": d.contact_id,
                "created_at": None if d.created_at is None else epoch(d.created_at),
                "closed_at": None if d.is_open or d.closed_at is None else epoch(d.closed_at),
                "outcome": "open" if d.is_open else ("won" if d.is_won else "lost"),
                "stage": d.stage,
                "amount": d.amount,
            }
            for d in deals
            if d.contact_id
        ]
        _upsert(conn, self.deals, rows, ["deal_id", "contact_id"])
        return len(rows)

    def upsert_conversions(self, conn: sa.Connection, rows: Iterable[Conversion]) -> int:
        items = [
            {
                "lead_id": c.lead_id,
                "contact_id": c.contact_id,
                "converted_at": epoch(c.converted_at),
                "opportunity_id": c.opportunity_id,
                "lead_created_at": None if c.lead_created_at is None else epoch(c.lead_created_at),
            }
            for c in rows
        ]
        _upsert(conn, self.conversions, items, ["lead_id"])
        return len(items)

    def deals_frame(self) -> pl.DataFrame:
        t = self.deals
        with self.store.tx() as conn:
            rows = conn.execute(
                sa.select(
                    t.c.deal_id,
                    t.c.contact_id,
                    t.c.created_at,
                    t.c.closed_at,
                    t.c.outcome,
                    t.c.amount,
                ).order_by(t.c.deal_id, t.c.contact_id)
            ).all()
        return pl.DataFrame(
            {
                "deal_id": [r.deal_id for r in rows],
                "contact_id": [r.contact_id for r in rows],
                "created_at": [from_epoch(r.created_at) for r in rows],
                "closed_at": [from_epoch(r.closed_at) for r in rows],
                "outcome": [r.outcome for r in rows],
                "amount": [r.amount for r in rows],
            },
            schema=DEALS_SCHEMA,
        )

    def conversions_list(self) -> list[Conversion]:
        t = self.conversions
        with self.store.tx() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.lead_id)).all()
        return [
            Conversion(
                r.lead_id,
                r.contact_id,
                from_epoch(r.converted_at) or _EPOCH,
                r.opportunity_id,
                from_epoch(r.lead_created_at),
            )
            for r in rows
        ]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _upsert(
    conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], keys: list[str]
) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table)
    update = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_=update)
    for i in range(0, len(rows), 500):
        conn.execute(stmt, rows[i : i + 500])


def sync_outcomes(
    store: StateStore,
    connector: Connector,
    *,
    pipeline: str,
    started: datetime,
    overlap: timedelta = OVERLAP,
) -> OutcomeSummary:
    """Read deals (open ones too, where the connector can) and conversions changed
    since the last read into the store; the cursor moves only when both reads finished."""
    outcomes = OutcomeStore(store)
    outcomes.ensure()
    key = outcomes.cursor_key(pipeline)
    last = store.kv_get(key)
    since: datetime | None = None
    if isinstance(last, str):
        since = datetime.fromisoformat(last) - overlap
    summary = OutcomeSummary(full=since is None)
    deals = _read_deals(connector, since)
    conversions: list[Conversion] = []
    reader = _conversion_reader(connector)
    if reader is not None:
        conversions = list(reader(since))
    with store.tx() as conn:
        summary.deals = outcomes.upsert_deals(conn, deals)
        summary.conversions = outcomes.upsert_conversions(conn, conversions)
        store.kv_set(conn, key, started.astimezone(UTC).isoformat())
    return summary


def _conversion_reader(
    connector: Connector,
) -> Callable[[datetime | None], Iterable[Conversion]] | None:
    """Lead conversions, from connectors whose CRM has them (``ReadsConversions``)."""
    if not isinstance(connector, ReadsConversions):
        return None
    reads = connector

    def read(since: datetime | None) -> Iterable[Conversion]:
        for row in reads.read_conversions(since):
            # a tuple (the protocol; a fifth element is the Lead's creation), or
            # already a Conversion (an in-process reader)
            yield row if isinstance(row, Conversion) else Conversion(*row)

    return read


def _read_deals(connector: Connector, since: datetime | None) -> list[DealRecord]:
    """Open deals matter as much as closed ones: a contact with an open deal is no longer
    a lead to score. Connectors that can return them take ``include_open``."""
    method = connector.read_deal_outcomes
    if "include_open" in inspect.signature(method).parameters:
        return list(method(since, include_open=True))  # type: ignore[call-arg]
    return list(method(since))


class StoreHistory:
    """The sync's local copy plus the outcome tables, as a backtest history."""

    def __init__(
        self,
        store: StateStore,
        *,
        source: str,
        read_at: datetime,
        kept_since: datetime | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.read_at = read_at
        self.kept_since = kept_since

    def load(self, models: Sequence[ScoringModel]) -> HistoryData:
        outcomes = OutcomeStore(self.store)
        outcomes.ensure()
        conversions = {c.lead_id: c for c in outcomes.conversions_list()}
        contacts: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        converted_at: dict[str, datetime] = {}
        for c in conversions.values():
            previous = converted_at.get(c.contact_id)
            converted_at[c.contact_id] = (
                min(previous, c.converted_at) if previous else c.converted_at
            )
        lead_created: dict[str, datetime] = {}
        for c in conversions.values():
            if c.lead_created_at is not None:
                before = lead_created.get(c.contact_id)
                lead_created[c.contact_id] = min(before or c.lead_created_at, c.lead_created_at)
        first_event: dict[str, datetime] = {}
        for chunk, chunk_events in self.store.iter_chunks(5000):
            for contact in chunk:
                conversion = conversions.get(contact.id)
                if conversion is not None:
                    # The converted Lead lives on as its Contact, which existed (as
                    # this Lead) from the Lead's creation.
                    created = _as_datetime(contact.fields.get("created_at"))
                    if created is not None:
                        before = lead_created.get(conversion.contact_id)
                        lead_created[conversion.contact_id] = min(before or created, created)
                    continue
                contacts.append({**contact.fields, "id": contact.id, "kind": contact.kind})
            for event in chunk_events:
                owner = conversions.get(event["contact_id"])
                if owner is not None:
                    event = {**event, "contact_id": owner.contact_id}
                events.append(event)
                who = event["contact_id"]
                if who in converted_at:
                    at = _as_datetime(event.get("occurred_at"))
                    if at is not None and (who not in first_event or at < first_event[who]):
                        first_event[who] = at
        for row in contacts:
            earlier = lead_created.get(row["id"])
            if earlier is None:
                # Neither the Lead (a first sync after the conversion reads unconverted
                # Leads only) nor its creation is known: the person existed by their
                # first recorded activity, which their Contact now carries. Without
                # this bound a Lead converted before the first sync would enter every
                # snapshot only at its conversion, after its deal: never a positive.
                earlier = first_event.get(row["id"])
            own = _as_datetime(row.get("created_at"))
            if earlier is not None and (own is None or earlier < own):
                row["created_at"] = earlier
        frame, eframe = records_to_frames(list(models), contacts, events)
        frame = frame.with_columns(
            pl.Series("kind", [c.get("kind") for c in contacts], dtype=pl.String),
            pl.Series("converted_at", [converted_at.get(c["id"]) for c in contacts], dtype=_UTC_DT),
        )
        stage_columns = sorted({k for c in contacts for k in c if HubSpotStages.available([k])})
        for column in stage_columns:
            frame = frame.drop(column, strict=False).with_columns(
                pl.Series(column, [_as_datetime(c.get(column)) for c in contacts], dtype=_UTC_DT)
            )
        deals = outcomes.deals_frame()
        # A deal of a converted Lead is its Contact's.
        lead_to_contact = {k: v.contact_id for k, v in conversions.items()}
        if lead_to_contact:
            deals = deals.with_columns(
                pl.col("contact_id").replace(lead_to_contact).alias("contact_id")
            ).unique(["deal_id", "contact_id"], keep="first", maintain_order=True)
        reconstruction: Reconstruction = NoReconstruction()
        if stage_columns:
            reconstruction = HubSpotStages(stage_columns)
        elif self.source == "salesforce":
            reconstruction = SalesforceConversion()
        # The store knows the CRM as of its last complete read, not as of its newest row.
        data_end = self.read_at
        return HistoryData(
            contacts=frame,
            events=eframe,
            deals=deals,
            data_end=data_end,
            source=self.source,
            reconstruction=reconstruction,
            kept_since=self.kept_since,
        )


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, str) and value:
        from scoring.timeutil import parse_timestamp

        try:
            return parse_timestamp(value)
        except ValueError:
            return None
    return None
