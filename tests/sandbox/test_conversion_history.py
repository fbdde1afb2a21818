"""Fields a CRM changes at conversion keep the history the CRM would keep, so that a
backtest can tell what they said before the deal: HubSpot's lifecycle stage dates and
``propertiesWithHistory``, Salesforce's converted Lead fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import hubspot
import pytest
import requests
import responses

from connectors.sandbox import (
    HubSpotSandbox,
    ManualClock,
    Request,
    SandboxApp,
    mount_responses,
    serve,
)
from connectors.sandbox.hubspot.store import CONTACT_BASE, CONTACT_STRIDE, DEAL_BASE, DEAL_STRIDE
from connectors.sandbox.world import World, generate_world


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(400, seed=11, days=400)


def _get(app: SandboxApp, path: str, token: str = "sandbox-token") -> Any:
    response = app(
        Request.from_url(
            "GET", f"http://sandbox{path}", headers={"Authorization": f"Bearer {token}"}
        )
    )
    assert response.status == 200, response.body
    return json.loads(response.body)


def _iso(seconds: float) -> datetime:
    return datetime.fromtimestamp(round(seconds, 3), tz=UTC)


def test_hubspot_lifecycle_stage_moves_on_the_deal_date_and_keeps_its_history(
    world: World,
) -> None:
    clock = ManualClock(world.now)
    app = SandboxApp(HubSpotSandbox(world=world, clock=clock, search_lag_seconds=0))
    checked = 0
    for deal in world.deals:
        person = world.people[deal.person_idx]
        cid = CONTACT_BASE + CONTACT_STRIDE * person.idx
        got = _get(
            app,
            f"/crm/v3/objects/contacts/{cid}?properties=lifecyclestage,"
            "hs_lifecyclestage_opportunity_date,hs_lifecyclestage_customer_date"
            "&propertiesWithHistory=lifecyclestage",
        )
        props = got["properties"]
        opportunity_at = datetime.fromisoformat(props["hs_lifecyclestage_opportunity_date"])
        deal_json = _get(app, f"/crm/v3/objects/deals/{DEAL_BASE + DEAL_STRIDE * deal.idx}")
        assert opportunity_at == datetime.fromisoformat(deal_json["createdAt"])
        history = got["propertiesWithHistory"]["lifecyclestage"]
        assert history[0]["value"] == props["lifecyclestage"]  # newest first
        stamps = [datetime.fromisoformat(h["timestamp"]) for h in history]
        assert stamps == sorted(stamps, reverse=True)
        # before the deal the contact was at an earlier stage, never opportunity
        before = [h["value"] for h, t in zip(history, stamps, strict=True) if t < opportunity_at]
        assert before and not {"opportunity", "customer"} & set(before)
        if deal.stage == "won":
            assert props["lifecyclestage"] == "customer"
            assert datetime.fromisoformat(props["hs_lifecyclestage_customer_date"]) == _iso(
                deal.closed_at or 0.0
            )
        else:
            assert props["lifecyclestage"] == "opportunity"
            assert props["hs_lifecyclestage_customer_date"] is None
        checked += 1
    assert checked >= 20


def test_writing_a_lifecycle_stage_stamps_its_date(world: World) -> None:
    clock = ManualClock(world.now + 3600)
    hs = HubSpotSandbox(world=world, clock=clock, search_lag_seconds=0)
    app = SandboxApp(hs)
    lead = next(p for p in world.people if p.lifecycle_stage == "lead" and p.duplicate_of is None)
    cid = CONTACT_BASE + CONTACT_STRIDE * lead.idx
    body = json.dumps({"properties": {"lifecyclestage": "salesqualifiedlead"}}).encode()
    response = app(
        Request.from_url(
            "PATCH",
            f"http://sandbox/crm/v3/objects/contacts/{cid}",
            headers={"Authorization": "Bearer sandbox-token"},
            body=body,
        )
    )
    assert response.status == 200
    got = _get(
        app,
        f"/crm/v3/objects/contacts/{cid}?properties=hs_lifecyclestage_salesqualifiedlead_date",
    )
    stamp = got["properties"]["hs_lifecyclestage_salesqualifiedlead_date"]
    assert datetime.fromisoformat(stamp) == clock.datetime()


def test_the_official_client_reads_properties_with_history(world: World) -> None:
    clock = ManualClock(world.now)
    hs = HubSpotSandbox(world=world, clock=clock, search_lag_seconds=0)
    won = next(d for d in world.deals if d.stage == "won")
    cid = str(CONTACT_BASE + CONTACT_STRIDE * won.person_idx)
    with serve(SandboxApp(hs, sleep=clock.sleep), port=0) as server:
        client = hubspot.HubSpot(access_token="sandbox-token", host=server.base_url)
        got = client.crm.contacts.basic_api.get_by_id(
            cid, properties=["lifecyclestage"], properties_with_history=["lifecyclestage"]
        )
        values = [h.value for h in got.properties_with_history["lifecyclestage"]]
        assert values[0] == "customer" and "opportunity" in values
        page = client.crm.contacts.basic_api.get_page(
            limit=5, properties_with_history=["lifecyclestage"]
        )
        assert all("lifecyclestage" in r.properties_with_history for r in page.results)


def test_salesforce_converted_leads_carry_their_conversion(world: World) -> None:
    pytest.importorskip("connectors.sandbox.salesforce")
    from simple_salesforce import Salesforce

    from connectors.sandbox import SalesforceSandbox

    clock = ManualClock(world.now)
    sf_box = SalesforceSandbox(world=world, clock=clock)
    instance = "https://sandbox.my.salesforce.com"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount_responses(SandboxApp(sf_box, sleep=clock.sleep), rsps, instance)
        sf = Salesforce(
            session_id="sandbox-session",
            instance_url=instance,
            version="59.0",
            session=requests.Session(),
        )
        leads = sf.query_all(
            "SELECT Id, Status, ConvertedDate, ConvertedContactId, ConvertedOpportunityId "
            "FROM Lead WHERE IsConverted = true"
        )["records"]
        assert len(leads) >= 10
        for lead in leads:
            assert lead["Status"] == "Closed - Converted"
            opp = sf.query(
                f"SELECT CreatedDate FROM Opportunity WHERE Id = '{lead['ConvertedOpportunityId']}'"
            )["records"][0]
            assert opp["CreatedDate"][:10] == lead["ConvertedDate"]
            roles = sf.query(
                "SELECT ContactId FROM OpportunityContactRole "
                f"WHERE OpportunityId = '{lead['ConvertedOpportunityId']}'"
            )["records"]
            assert [r["ContactId"] for r in roles] == [lead["ConvertedContactId"]]
        # no conversion without a deal
        converted_people = {p.idx for p in world.people if p.sf_kind == "converted_lead"}
        assert converted_people <= {d.person_idx for d in world.deals}
