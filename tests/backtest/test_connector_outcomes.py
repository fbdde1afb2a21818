"""Outcome reads against both sandboxes: open deals on request, Lead conversions."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.sandbox.framework import ManualClock
from scheduler.outcomes import Conversion, _conversion_reader, _read_deals

_HERE = Path(__file__).resolve().parents[1] / "connectors"
for folder in (_HERE / "hubspot", _HERE / "salesforce"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from hs_conn_env import sandbox_env  # noqa: E402
from sf_conn_support import responses_org  # noqa: E402


def test_hubspot_deals_open_and_closed_with_dates_and_contacts() -> None:
    with sandbox_env(300) as env:
        connector = env.connector()
        closed = list(connector.read_deal_outcomes(None, include_open=False))
        every = _read_deals(connector, None)
        assert len(every) > len(closed)
        # every deal is the default: open ones with their creation date
        assert list(connector.read_deal_outcomes(None)) == every
        assert any(d.is_open for d in every) and not any(d.is_open for d in closed)
        assert all(d.created_at is not None and d.contact_id for d in every)
        assert all(d.closed_at is None and d.is_won is None for d in every if d.is_open)
        assert _conversion_reader(connector) is None  # HubSpot has no Lead conversion
        connector.close()


def test_salesforce_opportunities_open_and_closed_and_conversions() -> None:
    for org in responses_org(ManualClock()):
        connector = org.connector()
        every = _read_deals(connector, None)
        closed = [d for d in every if not d.is_open]
        assert closed == list(connector.read_deal_outcomes(None, include_open=False))
        assert any(d.is_open for d in every)
        assert all(d.is_won is None and d.closed_at is None for d in every if d.is_open)
        reader = _conversion_reader(connector)
        assert reader is not None
        conversions = list(reader(None))
        table = org.sandbox.store.tables["Lead"]
        converted = [table.row(s) for s in range(table.n) if table.row(s).get("IsConverted")]
        assert converted, "the seeded org converts some Leads"
        assert {c.lead_id for c in conversions} == {r["Id"] for r in converted}
        assert all(
            isinstance(c, Conversion) and c.contact_id.startswith("003") for c in conversions
        )
        connector.close()


def test_salesforce_conversions_carry_the_leads_creation() -> None:
    """The Contact a conversion creates is as old as the conversion: the Lead's
    CreatedDate is what tells a backtest since when the person was a lead to score."""
    for org in responses_org(ManualClock()):
        connector = org.connector()
        reader = _conversion_reader(connector)
        assert reader is not None
        conversions = list(reader(None))
        table = org.sandbox.store.tables["Lead"]
        created = {
            r["Id"]: datetime.fromtimestamp(r["CreatedDate"], tz=UTC)  # the store keeps epochs
            for r in (table.row(s) for s in range(table.n))
            if r.get("IsConverted")
        }
        assert conversions
        for c in conversions:
            assert c.lead_created_at is not None
            assert abs(c.lead_created_at - created[c.lead_id]) < timedelta(seconds=1)
            assert c.lead_created_at <= c.converted_at + timedelta(days=1)
        connector.close()
