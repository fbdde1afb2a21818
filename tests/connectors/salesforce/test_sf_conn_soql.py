"""SOQL text: literals, quoting, id chunks under the URL budget, the resume window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from connectors.salesforce.soql import (
    changes_query,
    chunk_ids,
    ids_per_query,
    parse_datetime,
    soql_datetime,
)


def test_salesforce_datetimes_become_aware_utc() -> None:
    assert parse_datetime("2013-05-20T20:49:32.000+0000") == datetime(
        2013, 5, 20, 20, 49, 32, tzinfo=UTC
    )
    assert parse_datetime("2013-05-20T22:49:32.250+0200") == datetime(
        2013, 5, 20, 20, 49, 32, 250000, tzinfo=UTC
    )
    assert parse_datetime("2013-05-20T20:49:32Z") == datetime(2013, 5, 20, 20, 49, 32, tzinfo=UTC)
    assert parse_datetime("") is None
    assert parse_datetime("yesterday") is None
    assert parse_datetime(None) is None


def test_soql_datetime_literal_is_utc_with_millis() -> None:
    local = datetime(2024, 1, 1, 2, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert soql_datetime(local) == "2024-01-01T00:00:00.123Z"
    assert soql_datetime(local.replace(microsecond=0)) == "2024-01-01T00:00:00Z"
    with pytest.raises(ValueError):
        soql_datetime(datetime(2024, 1, 1))


def test_chunks_cover_every_id_once_and_stay_under_the_budget() -> None:
    ids = [f"003{i:015d}" for i in range(5000)] + ["003'quote\\slash"]
    template = "SELECT Id FROM Task WHERE WhoId IN {ids}"
    seen: list[str] = []
    queries = list(chunk_ids(ids, template, max_encoded=4000))
    for soql, chunk in queries:
        assert len(quote(soql, safe="")) <= 4000
        seen.extend(chunk)
    assert seen == ids
    assert "'003\\'quote\\\\slash'" in queries[-1][0]  # escaped by simple_salesforce.format
    per = ids_per_query(template, max_encoded=4000)
    assert len(queries) == -(-5001 // per) or len(queries) == -(-5001 // per) + 1


def test_changes_query_orders_and_resumes_after_a_row() -> None:
    until = datetime(2024, 2, 1, tzinfo=UTC)
    since = datetime(2024, 1, 1, tzinfo=UTC)
    stamp = datetime(2024, 1, 5, 12, tzinfo=UTC)
    q = changes_query(
        "Lead",
        ["Email"],
        since=since,
        until=until,
        after=(stamp, "00Q1"),
        extra_where="IsConverted = false",
    )
    assert q.startswith("SELECT Id, SystemModstamp, Email FROM Lead WHERE ")
    assert "SystemModstamp <= 2024-02-01T00:00:00Z" in q
    assert "SystemModstamp >= 2024-01-01T00:00:00Z" in q
    assert (
        "(SystemModstamp > 2024-01-05T12:00:00Z OR "
        "(SystemModstamp = 2024-01-05T12:00:00Z AND Id > '00Q1'))" in q
    )
    assert q.endswith("ORDER BY SystemModstamp, Id")
    full = changes_query("Contact", ["Account.Name"], since=None, until=until)
    assert ">=" not in full
