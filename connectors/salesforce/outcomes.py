"""Salesforce Lead conversions, for backtests: when each Lead became which Contact.

A converted Lead's history counts as its Contact's, and a person converted at ``t`` is
no longer a lead to score after ``t``. The Lead change read filters converted Leads
out of full reads, so conversions from before go-live are read here, once, by a read
without ``since`` (the backfill); later reads ask only for Leads modified since.
``ConvertedDate`` is a date: the conversion instant is taken as 00:00 UTC of that day.
The Lead's ``CreatedDate`` comes too: the Contact a conversion creates is as old as the
conversion, the person is as old as their Lead, and a backtest counts them as a lead to
score from then (without it, only from their first recorded activity).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time
from typing import Any

from connectors.salesforce.api import Query
from connectors.salesforce.soql import parse_date, parse_datetime, soql_datetime

__all__ = ["ConversionRow", "conversions_query", "read_conversions"]

# lead, contact, when, opportunity, and when the Lead was created
ConversionRow = tuple[str, str, datetime, str | None, datetime | None]


def conversions_query(since: datetime | None) -> Query:
    """The converted Leads modified since ``since`` (all of them without it)."""
    where = "IsConverted = true AND ConvertedContactId != null"
    if since is not None:
        where += f" AND SystemModstamp >= {soql_datetime(since)}"
    soql = (
        "SELECT Id, CreatedDate, ConvertedDate, ConvertedContactId, ConvertedOpportunityId "
        f"FROM Lead WHERE {where} ORDER BY SystemModstamp, Id"
    )
    return Query(soql, "read converted leads")


def read_conversions(connector: Any, since: datetime | None) -> Iterator[Any]:
    """``(lead_id, contact_id, converted_at, opportunity_id, lead_created_at)`` of
    converted Leads: ``ConversionRow``s, the protocol's four elements and the Lead's
    creation (typed ``Any`` so that the connector's four-element signature still
    holds)."""
    query = conversions_query(since)
    for page in connector.api.query_pages(query.soql, what=query.what):
        for rec in page:
            day = parse_date(rec.get("ConvertedDate"))
            if day is None:
                continue
            opportunity = rec.get("ConvertedOpportunityId")
            row: ConversionRow = (
                str(rec["Id"]),
                str(rec["ConvertedContactId"]),
                datetime.combine(day, time(), tzinfo=UTC),
                None if opportunity is None else str(opportunity),
                parse_datetime(rec.get("CreatedDate")),
            )
            yield row
