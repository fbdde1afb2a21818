"""Where a backtest's history comes from (:class:`scheduler.backtest.HistorySource`).

``FilesHistory`` reads the ``files`` connector's exports (contacts, events, outcomes)
through the connector itself, so an export that syncs also backtests, with its bad
rows reported the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl

from connectors.base import DealRecord
from connectors.files import FilesConnector
from scheduler.backtest import (
    DEALS_SCHEMA,
    HistoryData,
    HubSpotStages,
    NoReconstruction,
    Reconstruction,
    SalesforceConversion,
    data_end_of,
)
from scoring.engine import records_to_frames
from scoring.model import ScoringModel
from scoring.timeutil import parse_timestamp
from scoring.vocabulary import STAGE_DATE_PREFIX, STAGE_DATE_SUFFIX

__all__ = ["FilesHistory", "deals_frame"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UTC_DT = pl.Datetime("us", "UTC")


def deals_frame(deals: Iterable[DealRecord]) -> pl.DataFrame:
    """One row per (deal, contact), as :class:`HistoryData` wants it."""
    rows: dict[str, list[Any]] = {name: [] for name in DEALS_SCHEMA}
    for deal in deals:
        rows["deal_id"].append(deal.id)
        rows["contact_id"].append(deal.contact_id)
        rows["created_at"].append(deal.created_at)
        rows["closed_at"].append(None if deal.is_open else deal.closed_at)
        rows["outcome"].append("open" if deal.is_open else ("won" if deal.is_won else "lost"))
        rows["amount"].append(deal.amount)
    return pl.DataFrame(rows, schema=DEALS_SCHEMA).filter(pl.col("created_at").is_not_null())


def _timestamp(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


class FilesHistory:
    """Contacts, events and outcomes of a ``files`` connector.

    A column ``converted_at`` (Salesforce's ``ConvertedDate``) makes converted Leads
    ineligible from that instant; columns ``hs_lifecyclestage_<stage>_date`` (HubSpot's
    own export) rebuild the lifecycle stage as of each snapshot.
    """

    def __init__(self, connector: FilesConnector) -> None:
        self.connector = connector
        self.rejected: list[str] = []

    def load(self, models: Sequence[ScoringModel]) -> HistoryData:
        contacts: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        extra: dict[str, list[Any]] = {}
        far = datetime(9999, 1, 1, tzinfo=UTC)
        for batch in self.connector.read_changes(None, until=far, events_since=_EPOCH):
            for contact in batch.contacts:
                contacts.append({"id": contact.id, **contact.fields, "kind": contact.kind})
            for event in batch.events:
                events.append(
                    {
                        **event.attributes,
                        "id": event.id,
                        "contact_id": event.contact_id,
                        "type": event.type,
                        "occurred_at": event.occurred_at,
                    }
                )
        self.rejected = list(self.connector.rejected)
        dated = sorted(
            {
                key
                for c in contacts
                for key in c
                if key == "converted_at"
                or (key.startswith(STAGE_DATE_PREFIX) and key.endswith(STAGE_DATE_SUFFIX))
            }
        )
        for key in dated:
            extra[key] = [_timestamp(c.get(key)) for c in contacts]
        cframe, eframe = records_to_frames(list(models), contacts, events)
        if "kind" not in cframe.columns:
            cframe = cframe.with_columns(pl.Series("kind", [c["kind"] for c in contacts]))
        for key, values in extra.items():
            cframe = cframe.drop(key, strict=False).with_columns(
                pl.Series(key, values, dtype=_UTC_DT)
            )
        deals = deals_frame(self.connector.read_deal_outcomes(None))
        self.rejected.extend(self.connector.rejected_outcomes)
        reconstruction: Reconstruction = NoReconstruction()
        if HubSpotStages.available(cframe.columns):
            reconstruction = HubSpotStages(cframe.columns)
        elif "converted_at" in cframe.columns:
            reconstruction = SalesforceConversion()
        return HistoryData(
            contacts=cframe,
            events=eframe,
            deals=deals,
            data_end=data_end_of(cframe, eframe, deals),
            source="files",
            reconstruction=reconstruction,
        )
