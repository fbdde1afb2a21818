"""The SOQL parser and the id scheme, without HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.sandbox.salesforce import soql
from connectors.sandbox.salesforce.ids import make_id, normalise_id, parse_id


def test_select_list_with_parent_fields_where_order_limit_offset() -> None:
    q = soql.parse(
        "select Id, Account.Name, Owner.Email FROM Contact "
        "WHERE (Email != null AND SystemModstamp >= 2024-01-01T00:00:00Z) OR Id IN ('a', 'b') "
        "ORDER BY SystemModstamp DESC NULLS LAST, Id LIMIT 10 OFFSET 5"
    )
    assert [f.path for f in q.fields] == [("Id",), ("Account", "Name"), ("Owner", "Email")]
    assert q.sobject == "Contact"
    assert isinstance(q.where, soql.Or)
    first = q.where.items[0]
    assert isinstance(first, soql.And) and len(first.items) == 2
    assert [(o.field.text, o.descending, o.nulls_last) for o in q.order] == [
        ("SystemModstamp", True, True),
        ("Id", False, False),
    ]
    assert (q.limit, q.offset) == (10, 5)


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("2024-01-01T00:00:00Z", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T02:00:00+0200", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T02:00:00+02:00", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2023-12-31T19:00:00-05:00", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T00:00:00.250Z", datetime(2024, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_unquoted_datetime_literals(literal: str, expected: datetime) -> None:
    q = soql.parse(f"SELECT Id FROM Lead WHERE SystemModstamp > {literal}")
    assert isinstance(q.where, soql.Compare) and isinstance(q.where.value, soql.Literal)
    assert q.where.value.kind == "datetime"
    assert q.where.value.value == pytest.approx(expected.timestamp())


def test_literals_of_every_kind() -> None:
    q = soql.parse(
        "SELECT Id FROM Opportunity WHERE Amount >= -1.5e3 AND IsWon = TRUE AND CloseDate < 2024-02-29 "
        "AND Name = 'O\\'Brien \\\\ \\u00e9' AND Type = null AND NOT StageName IN ('A')"
    )
    assert isinstance(q.where, soql.And)
    values = [c.value for c in q.where.items[:5]]  # type: ignore[union-attr]
    assert [(v.kind, v.value) for v in values] == [  # type: ignore[union-attr]
        ("number", -1500.0),
        ("boolean", True),
        ("date", "2024-02-29"),
        ("string", "O'Brien \\ é"),
        ("null", None),
    ]
    assert isinstance(q.where.items[5], soql.Not)


def test_count_and_not_in_and_like() -> None:
    q = soql.parse(
        "SELECT COUNT() FROM Lead WHERE Status NOT IN ('x') AND Email LIKE '%@a\\_b.com'"
    )
    assert q.count and q.fields == ()
    assert isinstance(q.where, soql.And)
    assert q.where.items[0].op == "NOT IN"  # type: ignore[union-attr]
    pattern = soql.like_to_regex(q.where.items[1].value.value)  # type: ignore[union-attr]
    assert pattern.fullmatch("Jo@A_B.com")
    assert not pattern.fullmatch("jo@axb.com")


@pytest.mark.parametrize(
    "bad",
    [
        "SELECT Id FROM Lead WHERE IsConverted = false AND Status = 'x' OR Email = 'y'",
        "SELECT Id FROM Lead GROUP BY Id",
        "SELECT Id, (SELECT Id, (SELECT Id FROM Tasks) FROM Tasks) FROM Lead",
        "SELECT Id FROM Lead WHERE Id IN (SELECT WhoId FROM Task)",
        'SELECT Id FROM Lead WHERE Name = "x"',
        "SELECT Id FROM Lead WHERE Name = 'unterminated",
        "SELECT MAX(Amount) FROM Opportunity",
        "SELECT Id FROM Lead WHERE CreatedDate = THIS_FISCAL_QUARTER",
        "SELECT Id FROM Lead WHERE CreatedDate = LAST_N_DAYS:x",
        "SELECT Id FROM Lead LIMIT -1",
        "SELECT Id Lead",
        "SELECT FROM Lead",
        "SELECT Id, Id FROM Lead",
        "",
    ],
)
def test_everything_else_is_malformed(bad: str) -> None:
    with pytest.raises(soql.SoqlError) as caught:
        soql.parse(bad)
    assert caught.value.code == "MALFORMED_QUERY"


def test_error_message_points_at_the_token() -> None:
    with pytest.raises(soql.SoqlError) as caught:
        soql.parse("SELECT Id FROM Lead GROUP BY Id")
    assert "ERROR at Row:1:Column:21" in caught.value.message
    assert "unexpected token: 'GROUP'" in caught.value.message


def test_offset_limit_is_2000() -> None:
    assert soql.parse("SELECT Id FROM Lead OFFSET 2000").offset == 2000
    with pytest.raises(soql.SoqlError) as caught:
        soql.parse("SELECT Id FROM Lead OFFSET 2001")
    assert caught.value.code == "NUMBER_OUTSIDE_VALID_RANGE"


def test_ids_have_the_salesforce_checksum() -> None:
    # The suffix encodes which of the first 15 characters are upper case.
    assert normalise_id("a0D30000001n7Pi") == "a0D30000001n7Pi"  # not one of ours: unchanged
    lead = make_id("Lead", 12345)
    assert len(lead) == 18 and lead.startswith("00Q")
    assert parse_id(lead) == ("Lead", 12345)
    assert parse_id(lead[:15]) == ("Lead", 12345)
    assert normalise_id(lead[:15]) == lead
    assert parse_id(lead[:15] + "ZZZ") is None
    assert make_id("Lead", 1) < make_id("Lead", 2) < make_id("Lead", 62)


def test_checksum_matches_salesforce_for_a_known_id() -> None:
    from connectors.sandbox.salesforce.ids import _suffix

    # Salesforce's documented example: 15-character a0D30000001n7Pi is a0D30000001n7PiEAI.
    assert _suffix("a0D30000001n7Pi") == "EAI"


def test_relative_date_literals() -> None:
    q = soql.parse(
        "SELECT Id FROM Task WHERE CreatedDate = last_n_days:30 AND ActivityDate < TODAY"
    )
    assert isinstance(q.where, soql.And)
    values = [c.value for c in q.where.items]  # type: ignore[union-attr]
    assert [(v.kind, v.value) for v in values] == [  # type: ignore[union-attr]
        ("relative", ("LAST_N_DAYS", 30)),
        ("relative", ("TODAY", 0)),
    ]
