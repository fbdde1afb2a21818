"""Marketing e-mail events, forms and submissions, associations v4, and the
contact aggregates that must agree with them."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hubspot.crm.associations.v4 import (
    BatchResponseLabelsBetweenObjectPair,
    BatchResponsePublicAssociationMultiWithLabel,
    BatchResponsePublicAssociationMultiWithLabelWithErrors,
)

from connectors.sandbox import HubSpotSandbox, ManualClock


def _all_email_events(http: Any, base: str, **params: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    offset = None
    while True:
        query = {"limit": 1000, **params}
        if offset is not None:
            query["offset"] = offset
        r = http.get(f"{base}/email/public/v1/events", params=query)
        assert r.status_code == 200
        body = r.json()
        events.extend(body["events"])
        if not body["hasMore"]:
            return events
        offset = body["offset"]


def test_email_events_page_by_offset_inside_the_time_window(
    hs_http: Any, hs_server: Any, hs_sandbox: HubSpotSandbox
) -> None:
    world = hs_sandbox.world
    start = int((world.now - 30 * 86_400) * 1000)
    end = int((world.now - 10 * 86_400) * 1000)
    events = _all_email_events(hs_http, hs_server.base_url, startTimestamp=start, endTimestamp=end)
    assert events
    assert all(start <= e["created"] < end for e in events)
    assert [e["created"] for e in events] == sorted(e["created"] for e in events)
    assert len({e["id"] for e in events}) == len(events)
    assert {e["type"] for e in events} <= {"SENT", "OPEN", "CLICK", "STATUSCHANGE"}
    small = hs_http.get(
        f"{hs_server.base_url}/email/public/v1/events",
        params={"startTimestamp": start, "endTimestamp": end, "limit": 7},
    ).json()
    assert small["hasMore"] is True and len(small["events"]) == 7
    assert [e["id"] for e in small["events"]] == [e["id"] for e in events[:7]]


def test_contact_email_aggregates_match_the_email_events(
    hs_http: Any, hs_server: Any, hs_client: Any, hs_sandbox: HubSpotSandbox
) -> None:
    events = _all_email_events(hs_http, hs_server.base_url)
    opens = Counter(e["recipient"] for e in events if e["type"] == "OPEN")
    recipient, count = opens.most_common(1)[0]
    contact = hs_client.crm.contacts.basic_api.get_by_id(
        recipient, id_property="email", properties=["hs_email_open", "hs_email_last_open_date"]
    )
    assert contact.properties["hs_email_open"] == str(count)
    last_open = max(
        e["created"] for e in events if e["recipient"] == recipient and e["type"] == "OPEN"
    )
    from connectors.sandbox.framework import iso_ms

    assert contact.properties["hs_email_last_open_date"] == iso_ms(last_open / 1000)
    only = hs_http.get(
        f"{hs_server.base_url}/email/public/v1/events",
        params={"recipient": recipient, "eventType": "OPEN", "limit": 1000},
    ).json()
    assert len(only["events"]) == count


def test_forms_and_submissions(hs_http: Any, hs_server: Any, hs_client: Any) -> None:
    forms = hs_http.get(f"{hs_server.base_url}/marketing/v3/forms/").json()["results"]
    by_name = {f["name"]: f["id"] for f in forms}
    assert "Demo request" in by_name
    v2 = hs_http.get(f"{hs_server.base_url}/forms/v2/forms").json()
    assert {f["guid"] for f in v2} == set(by_name.values())
    url = f"{hs_server.base_url}/form-integrations/v1/submissions/forms/{by_name['Newsletter']}"
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        params = {"limit": 50, **({"after": after} if after else {})}
        body = hs_http.get(url, params=params).json()
        seen.extend(body["results"])
        if "paging" not in body:
            break
        after = body["paging"]["next"]["after"]
    assert seen
    stamps = [s["submittedAt"] for s in seen]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    emails = Counter(next(v["value"] for v in s["values"] if v["name"] == "email") for s in seen)
    assert all("@" in e for e in emails)
    missing = hs_http.get(f"{hs_server.base_url}/form-integrations/v1/submissions/forms/nope")
    assert missing.status_code == 404


def test_conversion_aggregates_match_form_submissions(
    hs_http: Any, hs_server: Any, hs_client: Any
) -> None:
    forms = hs_http.get(f"{hs_server.base_url}/marketing/v3/forms").json()["results"]
    per_email: Counter[str] = Counter()
    for form in forms:
        url = f"{hs_server.base_url}/form-integrations/v1/submissions/forms/{form['id']}"
        after = None
        while True:
            body = hs_http.get(
                url, params={"limit": 50, **({"after": after} if after else {})}
            ).json()
            for s in body["results"]:
                per_email[next(v["value"] for v in s["values"] if v["name"] == "email")] += 1
            if "paging" not in body:
                break
            after = body["paging"]["next"]["after"]
    email, count = per_email.most_common(1)[0]
    contact = hs_client.crm.contacts.basic_api.get_by_id(
        email, id_property="email", properties=["num_conversion_events"]
    )
    assert int(contact.properties["num_conversion_events"]) >= count


def test_associations_v4_batch_read_up_to_1000(hs_client: Any, hs_sandbox: HubSpotSandbox) -> None:
    table = hs_sandbox.store.tables["contacts"]
    ids = [str(int(i)) for i in table.ids[: table.n]]
    assert len(ids) >= 400
    inputs = [{"id": ids[i % len(ids)]} for i in range(1000)]
    result = hs_client.crm.associations.v4.batch_api.get_page(
        "contacts", "deals", {"inputs": inputs}
    )
    assert isinstance(
        result,
        BatchResponsePublicAssociationMultiWithLabel
        | BatchResponsePublicAssociationMultiWithLabelWithErrors,
    )
    with_deals = {r._from.id for r in result.results}
    assert with_deals and all(
        t.association_types[0].type_id == 4 for r in result.results for t in r.to
    )
    assert result.errors[0].sub_category == "crm.associations.NO_ASSOCIATIONS_FOUND"
    context = result.errors[0].context
    assert context["fromObjectType"] == ["contact"] and context["toObjectType"] == ["deal"]
    assert len(context["fromObjectId"]) == 1 and context["fromObjectId"][0] not in with_deals
    with pytest.raises(Exception) as err:
        hs_client.crm.associations.v4.batch_api.get_page(
            "contacts", "deals", {"inputs": [*inputs, {"id": ids[0]}]}
        )
    assert err.value.status == 400  # type: ignore[attr-defined]


def test_associations_v4_batch_create(hs_client: Any, hs_sandbox: HubSpotSandbox) -> None:
    contact = hs_client.crm.contacts.basic_api.create(
        {"properties": {"email": "linked@example.org"}}
    )
    deal = hs_client.crm.deals.basic_api.create(
        {"properties": {"dealname": "Linked", "dealstage": "qualifiedtobuy"}}
    )
    created = hs_client.crm.associations.v4.batch_api.create(
        "contacts",
        "deals",
        {
            "inputs": [
                {
                    "from": {"id": contact.id},
                    "to": {"id": deal.id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 4}],
                }
            ]
        },
    )
    assert isinstance(created, BatchResponseLabelsBetweenObjectPair)
    assert str(created.results[0].to_object_id) == deal.id
    back = hs_client.crm.associations.v4.batch_api.get_page(
        "deals", "contacts", {"inputs": [{"id": deal.id}]}
    )
    assert [str(t.to_object_id) for t in back.results[0].to] == [contact.id]


def test_simulate_activity_bumps_aggregates_and_stamps(
    hs_client: Any, hs_sandbox: HubSpotSandbox, hs_clock: ManualClock
) -> None:
    props = ["hs_analytics_num_page_views", "hs_email_open", "lastmodifieddate"]
    table = hs_sandbox.store.tables["contacts"]
    hs_clock.advance(60)
    ids = hs_sandbox.simulate_activity(5, seed=4)
    assert len(ids) == len(set(ids)) == 5
    assert (
        hs_sandbox.simulate_activity(5, seed=4) != []
        and hs_sandbox.simulate_activity(5, seed=4) == ids
    )
    for contact_id in ids:
        got = hs_client.crm.contacts.basic_api.get_by_id(contact_id, properties=props)
        assert got.properties["lastmodifieddate"] == "2026-06-30T12:01:00.000Z"
        assert int(got.properties["hs_analytics_num_page_views"]) >= 3  # three rounds above
        slot = table.slot_of(int(contact_id))
        assert slot is not None and not table.gone[slot]
