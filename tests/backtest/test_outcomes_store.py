"""Outcomes in the state store: incremental reads, idempotent upserts, conversions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from connectors.base import DealRecord
from scheduler.backtest import BacktestOptions, run_backtest
from scheduler.outcomes import Conversion, OutcomeStore, StoreHistory, sync_outcomes
from scheduler.state import StateStore, StoredContact
from tests.backtest.worlds import model

T = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)


class FakeCRM:
    """Answers outcome reads from lists and records the ``since`` it was asked for."""

    def __init__(self) -> None:
        self.deals: list[DealRecord] = []
        self.conversions: list[Conversion] = []
        self.asked: list[tuple[str, datetime | None, bool]] = []

    def read_deal_outcomes(
        self, since: datetime | None, *, include_open: bool = False
    ) -> Iterator[DealRecord]:
        self.asked.append(("deals", since, include_open))
        for deal in self.deals:
            if include_open or not deal.is_open:
                yield deal

    def read_conversions(self, since: datetime | None) -> Iterator[Conversion]:
        self.asked.append(("conversions", since, False))
        yield from self.conversions


def _deal(deal_id: str, contact: str, created: datetime, outcome: str) -> DealRecord:
    return DealRecord(
        id=deal_id,
        contact_id=contact,
        name=None,
        owner_id=None,
        stage=outcome,
        is_open=outcome == "open",
        is_won=None if outcome == "open" else outcome == "won",
        amount=100.0,
        created_at=created,
        closed_at=None if outcome == "open" else created + 5 * DAY,
    )


def _store(tmp_path: Path) -> StateStore:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    return store


def test_reads_are_incremental_with_an_overlap_and_upserts_are_idempotent(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    crm = FakeCRM()
    crm.deals = [_deal("d1", "c1", T, "open"), _deal("d2", "c2", T, "won")]
    first = sync_outcomes(store, crm, pipeline="p", started=T + DAY)  # type: ignore[arg-type]
    assert first.full and (first.deals, first.conversions) == (2, 0)
    assert crm.asked == [("deals", None, True), ("conversions", None, False)]
    crm.deals = [_deal("d1", "c1", T, "lost")]
    second = sync_outcomes(store, crm, pipeline="p", started=T + 2 * DAY)  # type: ignore[arg-type]
    assert not second.full
    assert crm.asked[2] == ("deals", T + DAY - timedelta(hours=1), True)
    frame = OutcomeStore(store).deals_frame()
    assert frame.select("deal_id", "outcome").rows() == [("d1", "lost"), ("d2", "won")]
    store.close()


def test_store_history_counts_a_converted_leads_history_as_its_contacts(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with store.tx() as conn:
        store.upsert_contacts(
            conn,
            [
                StoredContact(
                    "00Qlead", "lead", converted=True, fields={"created_at": T - 30 * DAY}
                ),
                StoredContact(
                    "003contact", "contact", converted=False, fields={"created_at": T + 10 * DAY}
                ),
                StoredContact(
                    "00Qother", "lead", converted=False, fields={"created_at": T - 30 * DAY}
                ),
            ],
        )
        store.upsert_events(
            conn,
            [
                {
                    "event_id": f"e{i}",
                    "contact_id": "00Qlead",
                    "type": "meeting_booked",
                    "occurred_at": T - i * DAY,
                    "attributes": {},
                }
                for i in range(1, 4)
            ],
        )
    crm = FakeCRM()
    crm.conversions = [Conversion("00Qlead", "003contact", T + 10 * DAY, "006opp")]
    crm.deals = [_deal("006opp", "003contact", T + 10 * DAY, "won")]
    sync_outcomes(store, crm, pipeline="p", started=T + 200 * DAY)  # type: ignore[arg-type]
    history = StoreHistory(store, source="salesforce", read_at=T + 200 * DAY)
    m = model().models[0]
    data = history.load([m])
    assert sorted(data.contacts.get_column("id").to_list()) == ["003contact", "00Qother"]
    assert set(data.events.get_column("contact_id").to_list()) == {"003contact"}
    converted = dict(data.contacts.select("id", "converted_at").iter_rows())
    assert converted["003contact"] == T + 10 * DAY and converted["00Qother"] is None
    # Before its conversion the person was a Lead: eligible from the Lead's creation,
    # scored on the Lead's events, labelled by the Contact's won deal.
    options = BacktestOptions(start=T, end=T)
    pairs = run_backtest([("current", m)], data, options).runs[0].pairs
    row = pairs.filter(pl.col("contact_id") == "003contact").row(0, named=True)
    assert row["label"] == 1 and row["score"] >= 30  # three meetings of the Lead
    after = run_backtest(
        [("current", m)], data, BacktestOptions(start=T + 11 * DAY, end=T + 11 * DAY)
    )
    assert after.runs[0].pairs.filter(pl.col("contact_id") == "003contact").height == 0
    store.close()
