"""Logging a call, e-mail, meeting or note against a contact moves the contact's
activity properties and ``lastmodifieddate``, as in HubSpot, so that an incremental
read on ``lastmodifieddate`` sees the person who just had a meeting."""

from __future__ import annotations

from typing import Any

import pytest
from hubspot.crm.contacts import Filter, FilterGroup, PublicObjectSearchRequest
from hubspot.crm.objects import (
    AssociationSpec,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectInputForCreate,
)

from connectors.sandbox import HubSpotSandbox, ManualClock

PROPS = [
    "lastmodifieddate",
    "notes_last_updated",
    "notes_last_contacted",
    "hs_last_sales_activity_timestamp",
    "num_contacted_notes",
]
TYPE_TO_CONTACT = {"meetings": 200, "calls": 194, "emails": 198, "notes": 202}


def _contact(hs_client: Any, hs_sandbox: HubSpotSandbox) -> str:
    table = hs_sandbox.store.tables["contacts"]
    return str(int(table.ids[int(table.listable(archived=False)[3])]))


def _props(hs_client: Any, cid: str) -> dict[str, Any]:
    got = hs_client.crm.contacts.basic_api.get_by_id(cid, properties=PROPS)
    return dict(got.properties)


@pytest.mark.parametrize("kind", ["meetings", "calls", "emails", "notes"])
def test_an_engagement_created_with_a_contact_association_touches_the_contact(
    hs_client: Any, hs_sandbox: HubSpotSandbox, hs_clock: ManualClock, kind: str
) -> None:
    cid = _contact(hs_client, hs_sandbox)
    before = _props(hs_client, cid)
    hs_clock.advance(3600)
    body = SimplePublicObjectInputForCreate(
        properties={"hs_timestamp": "2026-01-05T10:00:00.000Z"},
        associations=[
            PublicAssociationsForObject(
                to=PublicObjectId(id=cid),
                types=[
                    AssociationSpec(
                        association_category="HUBSPOT_DEFINED",
                        association_type_id=TYPE_TO_CONTACT[kind],
                    )
                ],
            )
        ],
    )
    hs_client.crm.objects.basic_api.create(kind, body)
    after = _props(hs_client, cid)
    assert after["lastmodifieddate"] > before["lastmodifieddate"]
    assert after["notes_last_updated"] == after["lastmodifieddate"]
    if kind == "notes":  # a note records work; it does not reach the person
        assert after.get("notes_last_contacted") == before.get("notes_last_contacted")
    else:
        assert after["notes_last_contacted"] == after["lastmodifieddate"]
        assert after["hs_last_sales_activity_timestamp"] == after["lastmodifieddate"]
        assert int(after["num_contacted_notes"]) == int(before.get("num_contacted_notes") or 0) + 1
    # An incremental read (search on lastmodifieddate, once the index caught up) finds it.
    hs_clock.advance(10)
    found = hs_client.crm.contacts.search_api.do_search(
        PublicObjectSearchRequest(
            filter_groups=[
                FilterGroup(
                    filters=[
                        Filter(
                            property_name="lastmodifieddate",
                            operator="GTE",
                            value=after["lastmodifieddate"],
                        )
                    ]
                )
            ],
            limit=100,
        )
    )
    assert cid in {r.id for r in found.results}


def test_an_association_added_later_touches_the_contact_too(
    hs_client: Any, hs_sandbox: HubSpotSandbox, hs_clock: ManualClock
) -> None:
    cid = _contact(hs_client, hs_sandbox)
    call = hs_client.crm.objects.basic_api.create(
        "calls",
        SimplePublicObjectInputForCreate(properties={"hs_timestamp": "2026-01-05T10:00:00.000Z"}),
    )
    before = _props(hs_client, cid)
    hs_clock.advance(60)
    hs_client.crm.associations.v4.basic_api.create_default("calls", call.id, "contacts", cid)
    after = _props(hs_client, cid)
    assert after["lastmodifieddate"] > before["lastmodifieddate"]
    assert after["notes_last_contacted"] == after["lastmodifieddate"]


def test_a_task_does_not_count_as_activity(
    hs_client: Any, hs_sandbox: HubSpotSandbox, hs_clock: ManualClock
) -> None:
    """leadsync's own follow-up task must not look like the person's activity."""
    cid = _contact(hs_client, hs_sandbox)
    before = _props(hs_client, cid)
    hs_clock.advance(60)
    hs_client.crm.objects.basic_api.create(
        "tasks",
        SimplePublicObjectInputForCreate(
            properties={"hs_timestamp": "2026-01-05T10:00:00.000Z", "hs_task_subject": "x"},
            associations=[
                PublicAssociationsForObject(
                    to=PublicObjectId(id=cid),
                    types=[
                        AssociationSpec(
                            association_category="HUBSPOT_DEFINED", association_type_id=204
                        )
                    ],
                )
            ],
        ),
    )
    assert _props(hs_client, cid) == before


def test_a_deal_associated_with_a_contact_moves_its_deal_count_and_stamp(
    hs_client: Any, hs_sandbox: HubSpotSandbox, hs_clock: ManualClock
) -> None:
    """``num_associated_deals`` is calculated: a new deal raises it, so the contact
    shows up as changed to a read on ``lastmodifieddate``, though not as activity."""
    cid = _contact(hs_client, hs_sandbox)
    before = _props(hs_client, cid)
    deals_before = int(
        hs_client.crm.contacts.basic_api.get_by_id(
            cid, properties=["num_associated_deals"]
        ).properties.get("num_associated_deals")
        or 0
    )
    hs_clock.advance(60)
    hs_client.crm.objects.basic_api.create(
        "deals",
        SimplePublicObjectInputForCreate(
            properties={"dealname": "Hot lead", "dealstage": "appointmentscheduled"},
            associations=[
                PublicAssociationsForObject(
                    to=PublicObjectId(id=cid),
                    types=[
                        AssociationSpec(
                            association_category="HUBSPOT_DEFINED", association_type_id=3
                        )
                    ],
                )
            ],
        ),
    )
    after = _props(hs_client, cid)
    assert after["lastmodifieddate"] > before["lastmodifieddate"]
    assert {k: v for k, v in after.items() if k != "lastmodifieddate"} == {
        k: v for k, v in before.items() if k != "lastmodifieddate"
    }
    got = hs_client.crm.contacts.basic_api.get_by_id(cid, properties=["num_associated_deals"])
    assert int(got.properties["num_associated_deals"]) == deals_before + 1
