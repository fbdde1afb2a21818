"""Salesforce Leads converted before the first sync: the Lead is not in the store."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import sqlalchemy as sa

from scheduler.backtest import BacktestOptions, run_backtest
from scheduler.outcomes import Conversion, OutcomeStore, StoreHistory, sync_outcomes
from scheduler.state import StateStore, StoredContact
from tests.backtest.test_outcomes_store import DAY, FakeCRM, T, _deal, _store
from tests.backtest.worlds import model


def _converted_contact_only(tmp_path: Path, conversion: Conversion) -> StateStore:
    """The store a first sync builds after the conversion: Salesforce's full read asks
    for unconverted Leads only, so the Lead itself is not there; the Contact was created
    at the conversion and the Lead's activities now name the Contact."""
    store = _store(tmp_path)
    with store.tx() as conn:
        store.upsert_contacts(
            conn,
            [
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
                    "contact_id": "003contact",
                    "type": "meeting_booked",
                    "occurred_at": T - i * DAY,
                    "attributes": {},
                }
                for i in range(1, 4)
            ],
        )
    crm = FakeCRM()
    crm.conversions = [conversion]
    crm.deals = [_deal("006opp", "003contact", T + 10 * DAY, "won")]
    sync_outcomes(store, crm, pipeline="p", started=T + 200 * DAY)  # type: ignore[arg-type]
    return store


def test_a_contact_converted_before_the_first_sync_is_a_lead_from_the_leads_creation(
    tmp_path: Path,
) -> None:
    conversion = Conversion(
        "00Qlead", "003contact", T + 10 * DAY, "006opp", lead_created_at=T - 40 * DAY
    )
    store = _converted_contact_only(tmp_path, conversion)
    data = StoreHistory(store, source="salesforce", read_at=T + 200 * DAY).load([model().models[0]])
    created = dict(data.contacts.select("id", "created_at").iter_rows())
    assert created["003contact"] == T - 40 * DAY
    pairs = (
        run_backtest([("current", model().models[0])], data, BacktestOptions(start=T, end=T))
        .runs[0]
        .pairs
    )
    row = pairs.filter(pl.col("contact_id") == "003contact").row(0, named=True)
    assert row["label"] == 1 and row["score"] >= 30
    store.close()


def test_without_the_leads_creation_its_first_activity_bounds_it(tmp_path: Path) -> None:
    """A CRM that does not say when the Lead was created: the person existed by its
    first recorded activity, not only from the Contact's creation at the conversion,
    which would leave every converted Lead out of every snapshot before its deal."""
    store = _converted_contact_only(
        tmp_path, Conversion("00Qlead", "003contact", T + 10 * DAY, "006opp")
    )
    data = StoreHistory(store, source="salesforce", read_at=T + 200 * DAY).load([model().models[0]])
    created = dict(data.contacts.select("id", "created_at").iter_rows())
    assert created["003contact"] == T - 3 * DAY
    assert created["00Qother"] == T - 30 * DAY
    pairs = (
        run_backtest([("current", model().models[0])], data, BacktestOptions(start=T, end=T))
        .runs[0]
        .pairs
    )
    row = pairs.filter(pl.col("contact_id") == "003contact").row(0, named=True)
    assert row["label"] == 1
    store.close()


def test_the_leads_creation_survives_the_store(tmp_path: Path) -> None:
    store = _store(tmp_path)
    outcomes = OutcomeStore(store)
    outcomes.ensure()
    with store.tx() as conn:
        outcomes.upsert_conversions(
            conn, [Conversion("00Q1", "0031", T, None, lead_created_at=T - 5 * DAY)]
        )
    assert outcomes.conversions_list()[0].lead_created_at == T - 5 * DAY
    store.close()


def test_a_conversions_table_from_before_gains_the_leads_creation(tmp_path: Path) -> None:
    """A store whose conversions table was created before the column existed keeps its
    rows and stores the Lead's creation from then on."""
    store = _store(tmp_path)
    with store.tx() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE ls_conversions (lead_id VARCHAR(100) PRIMARY KEY, "
                "contact_id VARCHAR(100) NOT NULL, converted_at FLOAT NOT NULL, "
                "opportunity_id VARCHAR(100))"
            )
        )
        conn.execute(sa.text("INSERT INTO ls_conversions VALUES ('00Q0', '0030', 0.0, NULL)"))
    outcomes = OutcomeStore(store)
    outcomes.ensure()
    outcomes.ensure()  # twice: the column is added once
    with store.tx() as conn:
        outcomes.upsert_conversions(
            conn, [Conversion("00Q1", "0031", T, None, lead_created_at=T - 5 * DAY)]
        )
    rows = {c.lead_id: c.lead_created_at for c in outcomes.conversions_list()}
    assert rows == {"00Q0": None, "00Q1": T - 5 * DAY}
    store.close()
