"""Pure parts of the HubSpot connector: value normalisation, mappings, settings, table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.base import ConnectorConfigError
from connectors.hubspot import Settings
from connectors.hubspot.policy import make_table, rate_headers, to_failure
from connectors.hubspot.values import (
    canonical_fields,
    field_mappings,
    merged_ids,
    summary_events,
    to_datetime,
    to_number,
)
from connectors.runtime import Action, Failure


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("17", 17),
        ("2.5", 2.5),
        ("25-50", 25),
        ("1000+", 1000),
        ("1,000", 1000),
        ("", None),
        ("  ", None),
        (None, None),
        ("n/a", None),
        ("9300000001", 9300000001),
    ],
)
def test_to_number(raw: str | None, expected: float | None) -> None:
    assert to_number(raw) == expected
    if expected is not None:
        assert type(to_number(raw)) is type(expected)


def test_to_datetime_is_aware_utc() -> None:
    assert to_datetime("2019-12-07T16:50:06.678Z") == datetime(
        2019, 12, 7, 16, 50, 6, 678000, tzinfo=UTC
    )
    assert to_datetime("2019-12-07T17:50:06+01:00") == datetime(2019, 12, 7, 16, 50, 6, tzinfo=UTC)
    assert to_datetime("1575737406678") == datetime(2019, 12, 7, 16, 50, 6, 678000, tzinfo=UTC)
    assert to_datetime("") is None and to_datetime("yesterday") is None


def test_canonical_fields_default_and_extra_mapping() -> None:
    mappings = field_mappings(
        {"hs_lead_status": "lead_status", "annualrevenue": {"field": "revenue", "type": "number"}}
    )
    props = {
        "email": "ann@example.com",
        "firstname": "Ann",
        "lastname": "",
        "jobtitle": "VP Sales",
        "numemployees": "25-50",
        "createdate": "2024-01-02T03:04:05.000Z",
        "hubspot_owner_id": "71200000",
        "hs_lead_status": "OPEN",
        "annualrevenue": "1500000",
    }
    fields = canonical_fields(props, mappings)
    assert fields == {
        "email": "ann@example.com",
        "first_name": "Ann",
        "job_title": "VP Sales",
        "company_size": 25,
        "created_at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "owner_id": "71200000",
        "lead_status": "OPEN",
        "revenue": 1500000,
    }
    assert "last_name" not in fields  # empty is missing


def test_property_map_can_override_a_default_target() -> None:
    mappings = field_mappings({"hs_job_title_custom": "job_title"})
    fields = canonical_fields({"jobtitle": "old", "hs_job_title_custom": "new"}, mappings)
    assert fields["job_title"] == "new"


def test_property_map_errors_name_the_key() -> None:
    with pytest.raises(ConnectorConfigError, match=r"property_map\.x\.type"):
        field_mappings({"x": {"field": "y", "type": "money"}})
    with pytest.raises(ConnectorConfigError, match=r"property_map\.x"):
        field_mappings({"x": 3})


def test_merged_ids() -> None:
    assert merged_ids({"hs_merged_object_ids": "11;22;5"}, "5") == ("11", "22")
    assert merged_ids({"hs_merged_object_ids": ""}, "5") == ()


def test_summary_events_have_stable_ids_and_respect_since() -> None:
    props = {
        "hs_analytics_last_visit_timestamp": "2026-06-29T10:00:00.000Z",
        "hs_analytics_num_page_views": "12",
        "hs_email_last_open_date": "2026-06-01T10:00:00.000Z",
        "recent_conversion_date": "2026-06-29T11:00:00.000Z",
        "recent_conversion_event_name": "demo-request",
    }
    since = datetime(2026, 6, 15, tzinfo=UTC)
    first = summary_events("7", props, since=since, email=True, forms=True)
    again = summary_events("7", props, since=since, email=True, forms=True)
    assert [e.id for e in first] == [e.id for e in again]
    types = {e.type: e for e in first}
    assert set(types) == {"page_view", "form_submit"}  # the open is older than since
    assert types["page_view"].attributes["total"] == 12
    assert types["form_submit"].attributes["form"] == "demo-request"
    assert summary_events("7", props, since=since, page_views=False) == []


def test_settings_validation_is_one_line_and_names_the_key() -> None:
    base = {"access_token": "t0ken-abc"}
    assert Settings.parse(base).tier == "pro"
    cases = [
        ({}, "crm.access_token"),
        (
            {**base, "oauth": {"client_id": "a", "client_secret": "b", "refresh_token": "c"}},
            "crm.access_token",
        ),
        ({"oauth": {"client_id": "a", "client_secret": "b"}}, "crm.oauth.refresh_token"),
        ({**base, "headroom": 2}, "crm.headroom"),
        ({**base, "quota_share": "lots"}, "crm.quota_share"),
        ({**base, "web_analytics": "yes"}, "crm.web_analytics"),
        ({**base, "base_url": "ftp://x"}, "crm.base_url"),
        ({**base, "colour": "red"}, "crm.colour"),
        ({**base, "tier": "gold"}, "crm.tier"),
    ]
    for config, where in cases:
        with pytest.raises(ConnectorConfigError) as info:
            Settings.parse(config)
        message = str(info.value)
        assert message.startswith(where) and "\n" not in message
        assert "t0ken-abc" not in message


def test_table_actions() -> None:
    table = make_table()
    daily = '{"status":"error","errorType":"RATE_LIMIT","policyName":"DAILY"}'
    assert table.classify(Failure(429, daily)).action is Action.STOP_FOR_DAY
    ten = '{"policyName":"TEN_SECONDLY_ROLLING","message":"You have reached your ten secondly limit."}'
    assert table.classify(Failure(429, ten)).action is Action.RATE_LIMITED
    assert table.classify(Failure(401)).action is Action.REFRESH_AUTH
    assert table.classify(Failure(409)).action is Action.REPORT_RECORD
    assert table.classify(Failure(502)).action is Action.RETRY
    assert table.classify(Failure(None)).action is Action.RETRY
    assert table.classify(Failure(400)).action is Action.FAIL


def test_to_failure_duck_types_sdk_exceptions() -> None:
    from hubspot.crm.deals.exceptions import ApiException as DealsError
    from hubspot.crm.objects.exceptions import ServiceException

    exc = DealsError(status=409, reason="Conflict")
    exc.body = '{"message":"exists"}'
    exc.headers = {"X-HubSpot-RateLimit-Remaining": "5"}
    failure = to_failure(exc)
    assert failure is not None and failure.status == 409 and "exists" in failure.body
    svc = ServiceException(status=503, reason="x")
    assert to_failure(svc) == Failure(503, "", {}, "ServiceException")
    no_answer = to_failure(DealsError(status=0, reason="ssl"))
    assert no_answer is not None and no_answer.status is None
    assert no_answer.detail == "ApiException"
    assert to_failure(KeyError("bug")) is None
    assert rate_headers({"x-hubspot-ratelimit-daily-remaining": "12"})["daily_remaining"] == 12
