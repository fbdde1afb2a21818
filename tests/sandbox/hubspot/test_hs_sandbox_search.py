"""Search: lag behind writes, page and result limits, filter-group limits, sorts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hubspot.crm.contacts import (
    ApiException,
    CollectionResponseWithTotalSimplePublicObjectForwardPaging,
)

from connectors.sandbox import HubSpotSandbox, ManualClock, SandboxApp, generate_world


def _search(client: Any, **body: Any) -> Any:
    return client.crm.contacts.search_api.do_search(body)


def _eq(prop: str, value: str) -> dict[str, Any]:
    return {"propertyName": prop, "operator": "EQ", "value": value}


def test_search_returns_a_model_with_total_and_paging(
    hs_client: Any, hs_sandbox: HubSpotSandbox
) -> None:
    result = _search(hs_client, limit=50, properties=["email"])
    assert isinstance(result, CollectionResponseWithTotalSimplePublicObjectForwardPaging)
    visible = int(
        hs_sandbox.store.tables["contacts"].s_visible[: hs_sandbox.store.tables["contacts"].n].sum()
    )
    assert result.total == visible
    assert len(result.results) == 50
    assert result.paging.next.after == "50"
    last = _search(hs_client, limit=50, after=str(visible - 10))
    assert len(last.results) == 10 and last.paging is None


def test_search_sees_creates_and_updates_only_after_the_lag(
    hs_client: Any, hs_clock: ManualClock
) -> None:
    api = hs_client.crm.contacts.basic_api
    created = api.create({"properties": {"email": "lag@example.org", "jobtitle": "Analyst"}})
    by_email = [{"filters": [_eq("email", "lag@example.org")]}]
    assert _search(hs_client, filterGroups=by_email).total == 0
    assert api.get_by_id(created.id).id == created.id  # reads by id do not lag
    hs_clock.advance(2.9)
    assert _search(hs_client, filterGroups=by_email).total == 0
    hs_clock.advance(0.2)
    found = _search(hs_client, filterGroups=by_email, properties=["jobtitle"])
    assert found.total == 1 and found.results[0].properties["jobtitle"] == "Analyst"
    hs_clock.advance(1)
    api.update(created.id, {"properties": {"jobtitle": "Director"}})
    stale = _search(hs_client, filterGroups=by_email, properties=["jobtitle"])
    assert stale.results[0].properties["jobtitle"] == "Analyst"  # the previous version
    by_title = [{"filters": [_eq("jobtitle", "Director"), _eq("email", "lag@example.org")]}]
    assert _search(hs_client, filterGroups=by_title).total == 0
    assert api.get_by_id(created.id, properties=["jobtitle"]).properties["jobtitle"] == "Director"
    hs_clock.advance(3)
    fresh = _search(hs_client, filterGroups=by_title, properties=["jobtitle"])
    assert fresh.total == 1 and fresh.results[0].properties["jobtitle"] == "Director"


def test_incremental_window_on_lastmodifieddate_and_id(
    hs_client: Any, hs_sandbox: HubSpotSandbox, hs_clock: ManualClock
) -> None:
    start_ms = int(hs_clock.now() * 1000)
    ids = hs_sandbox.simulate_activity(7, seed=1)
    hs_clock.advance(5)
    window = [
        {
            "filters": [
                {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(start_ms)},
                {"propertyName": "lastmodifieddate", "operator": "LTE", "value": str(start_ms + 1)},
                {"propertyName": "hs_object_id", "operator": "GT", "value": "0"},
            ]
        }
    ]
    result = _search(
        hs_client,
        filterGroups=window,
        sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        limit=200,
    )
    assert [r.id for r in result.results] == sorted(ids, key=int)
    after_third = _search(
        hs_client,
        filterGroups=[
            {
                "filters": [
                    *window[0]["filters"][:2],
                    {"propertyName": "hs_object_id", "operator": "GT", "value": ids[2]},
                ]
            }
        ],
        sorts=["hs_object_id"],
    )
    assert [r.id for r in after_third.results] == sorted(ids, key=int)[3:]
    desc = _search(hs_client, filterGroups=window, sorts=["-hs_object_id"])
    assert [r.id for r in desc.results] == sorted(ids, key=int, reverse=True)


def test_page_size_200_is_fine_201_is_refused(hs_client: Any) -> None:
    assert len(_search(hs_client, limit=200).results) == 200
    with pytest.raises(ApiException) as err:
        _search(hs_client, limit=201)
    assert err.value.status == 400
    assert json.loads(err.value.body)["category"] == "VALIDATION_ERROR"


def test_paging_stops_at_10000_results(hs_client: Any, hs_clock: ManualClock) -> None:
    assert _search(hs_client, after="9999", limit=1).results == []  # fewer results here
    with pytest.raises(ApiException) as err:
        _search(hs_client, after="10000", limit=1)
    assert err.value.status == 400


def test_more_than_10000_results_cannot_be_paged_past_the_cap(hs_clock: ManualClock) -> None:
    """12,000 records sharing one timestamp: the 10,000 cap bites, a split query does not."""
    hs = HubSpotSandbox(world=generate_world(12_000, seed=5), clock=hs_clock, search_lag_seconds=0)
    app = SandboxApp(hs)
    from connectors.sandbox.framework import Request

    def search(body: dict[str, Any]) -> Any:
        return app(
            Request(
                "POST",
                "/crm/v3/objects/contacts/search",
                headers={"authorization": "Bearer sandbox-token"},
                body=json.dumps(body).encode(),
            )
        )

    ids = hs.simulate_activity(11_000, seed=2)
    hs_clock.advance(1)  # a new second: the search limit allows five a second
    now_ms = str(int((hs_clock.now() - 1) * 1000))
    same_stamp = [
        {"filters": [{"propertyName": "lastmodifieddate", "operator": "EQ", "value": now_ms}]}
    ]
    first = json.loads(
        search({"filterGroups": same_stamp, "limit": 200, "sorts": ["hs_object_id"]}).body
    )
    assert first["total"] == len(ids) == 11_000
    ok = search({"filterGroups": same_stamp, "limit": 200, "after": "9800"})
    assert ok.status == 200 and json.loads(ok.body)["paging"]["next"]["after"] == "10000"
    refused = search({"filterGroups": same_stamp, "limit": 200, "after": "10000"})
    assert refused.status == 400
    split = [
        {
            "filters": [
                same_stamp[0]["filters"][0],
                {
                    "propertyName": "hs_object_id",
                    "operator": "GT",
                    "value": sorted(ids, key=int)[9_999],
                },
            ]
        }
    ]
    rest = json.loads(search({"filterGroups": split, "limit": 200}).body)
    assert rest["total"] == 1_000


def _filters(n: int) -> list[dict[str, Any]]:
    return [{"propertyName": "hs_object_id", "operator": "GT", "value": str(i)} for i in range(n)]


def test_filter_group_limits(hs_client: Any, hs_clock: ManualClock) -> None:
    def ok(groups: list[dict[str, Any]]) -> None:
        hs_clock.advance(1)  # stay under the search rate limit
        _search(hs_client, filterGroups=groups, limit=1)

    def refused(groups: list[dict[str, Any]]) -> None:
        hs_clock.advance(1)
        with pytest.raises(ApiException) as err:
            _search(hs_client, filterGroups=groups, limit=1)
        assert err.value.status == 400

    ok([{"filters": _filters(5)} for _ in range(5)])  # 5 groups, 25 filters
    refused([{"filters": _filters(1)} for _ in range(6)])  # 6 groups
    ok([{"filters": _filters(10)}])  # 10 in one group
    refused([{"filters": _filters(11)}])  # 11 in one group
    refused([{"filters": _filters(6)}, *({"filters": _filters(5)} for _ in range(4))])  # 26


def test_filter_operators(
    hs_client: Any, hs_sandbox: HubSpotSandbox, hs_clock: ManualClock
) -> None:
    api = hs_client.crm.contacts.basic_api
    api.create(
        {
            "properties": {
                "email": "op1@example.org",
                "jobtitle": "Marketing Associate",
                "lifecyclestage": "lead",
            }
        }
    )
    api.create(
        {
            "properties": {
                "email": "op2@example.org",
                "jobtitle": "Student",
                "lifecyclestage": "customer",
            }
        }
    )
    hs_clock.advance(5)

    def emails(*filters: dict[str, Any]) -> set[str]:
        hs_clock.advance(1)
        base = {"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "op*"}
        res = _search(
            hs_client, filterGroups=[{"filters": [base, *filters]}], properties=["email"], limit=200
        )
        return {r.properties["email"] for r in res.results}

    assert emails() == {"op1@example.org", "op2@example.org"}
    assert emails(
        {"propertyName": "jobtitle", "operator": "CONTAINS_TOKEN", "value": "marketing"}
    ) == {"op1@example.org"}
    assert emails(
        {"propertyName": "lifecyclestage", "operator": "IN", "values": ["customer", "opportunity"]}
    ) == {"op2@example.org"}
    assert emails({"propertyName": "lifecyclestage", "operator": "NEQ", "value": "lead"}) == {
        "op2@example.org"
    }
    assert emails({"propertyName": "phone", "operator": "NOT_HAS_PROPERTY"}) == {
        "op1@example.org",
        "op2@example.org",
    }
    with pytest.raises(ApiException):
        emails({"propertyName": "no_such_prop", "operator": "EQ", "value": "1"})


def test_search_over_deals_and_engagements_by_hs_lastmodifieddate(hs_client: Any) -> None:
    result = hs_client.crm.objects.search_api.do_search(
        "calls",
        {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}
                    ]
                }
            ],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}],
            "properties": ["hs_call_title"],
            "limit": 5,
        },
    )
    stamps = [r.properties["hs_lastmodifieddate"] for r in result.results]
    assert stamps == sorted(stamps, reverse=True) and result.total > 5
    deals = hs_client.crm.deals.search_api.do_search(
        {
            "filterGroups": [{"filters": [_eq("dealstage", "closedwon")]}],
            "properties": ["dealstage"],
        }
    )
    assert deals.total > 0 and {d.properties["dealstage"] for d in deals.results} == {"closedwon"}


def test_query_matches_word_prefixes_in_default_properties(
    hs_client: Any, hs_clock: ManualClock
) -> None:
    hs_client.crm.contacts.basic_api.create(
        {"properties": {"email": "zq@example.org", "firstname": "Zebulon", "lastname": "Quartz"}}
    )
    hs_clock.advance(4)

    def found(query: str) -> int:
        hs_clock.advance(1)
        total: int = _search(hs_client, query=query).total
        return total

    assert found("zebu") == 1
    assert found("Zebulon quar") == 1
    assert found("zebu nomatch") == 0
    hs_client.crm.contacts.basic_api.update(
        hs_client.crm.contacts.basic_api.get_by_id("zq@example.org", id_property="email").id,
        {"properties": {"lastname": "Onyx"}},
    )
    assert found("quartz") == 1  # still the indexed version
    hs_clock.advance(3)
    assert found("quartz") == 0 and found("onyx") == 1
