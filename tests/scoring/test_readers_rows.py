"""Contact and event readers: good rows normalised, bad rows reported in place."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.readers import RowError, collect, format_for, read_contacts, read_events


def split(items: Any) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for item in items:
        if isinstance(item, RowError):
            errors.append(str(item))
        else:
            rows.append(item)
    return rows, errors


def test_format_comes_from_the_extension() -> None:
    assert format_for("data/contacts.CSV") == "csv"
    assert format_for("events.jsonl") == "jsonl"
    assert format_for("events.ndjson") == "jsonl"
    with pytest.raises(ValueError, match=r"events\.xlsx: unknown file type"):
        format_for("events.xlsx")


def test_csv_contacts_are_normalised_and_bad_rows_kept_apart() -> None:
    text = (
        "\ufeffid,email,company_size,created_at,owner_id,industry\n"
        "c1,ann@acme.com,250,2026-01-01T09:00:00+01:00,7,\n"
        ",nobody@acme.com,3,,,\n"
        "c3,bob@acme.com,51-200,2026-13-01,,\n"
        "\n"
        "c4,eve@acme.com,1e3,,,software\n"
        "c5,too,few\n"
    )
    rows, errors = split(read_contacts(text, "contacts.csv", format="csv"))
    assert rows == [
        {
            "id": "c1",
            "email": "ann@acme.com",
            "company_size": 250,
            "created_at": datetime(2026, 1, 1, 8, tzinfo=UTC),
            "owner_id": "7",
        },
        {"id": "c4", "email": "eve@acme.com", "company_size": 1000, "industry": "software"},
    ]
    assert errors == [
        "contacts.csv:3: id: missing",
        "contacts.csv:4: created_at: not a timestamp: '2026-13-01' (month must be in 1..12)",
        "contacts.csv:7: (csv): expected 6 columns as in the header, got 3",
    ]


def test_duplicate_contact_ids_are_rejected_after_the_first() -> None:
    text = "id,email\nc1,a@x.io\nc2,b@x.io\nc1,c@x.io\n"
    rows, errors = split(read_contacts(text, "c.csv", format="csv"))
    assert rows == [{"id": "c1", "email": "a@x.io"}, {"id": "c2", "email": "b@x.io"}]
    assert errors == ["c.csv:4: id: duplicate contact id 'c1'"]
    rows, errors = split(read_contacts(text, "c.csv", format="csv", unique=False))
    assert len(rows) == 3 and errors == []


def test_non_numeric_sizes_stay_text() -> None:
    rows, _ = split(read_contacts('id,company_size\na,51-200\nb,"1,500"\n', "c.csv", format="csv"))
    assert [row["company_size"] for row in rows] == ["51-200", "1,500"]


def test_jsonl_contacts() -> None:
    lines = [
        '{"id": 12, "email": "a@b.co", "tags": ["x"], "company_size": "40", "note": ""}\n',
        "\n",
        '{"id": true}\n',
        '{"id": "c2", "email": null}\n',
        "not json\n",
        '["a list"]\n',
    ]
    rows, errors = split(read_contacts(lines, "contacts.jsonl", format="jsonl"))
    assert rows == [
        {"id": "12", "email": "a@b.co", "tags": ["x"], "company_size": 40},
        {"id": "c2"},
    ]
    assert errors == [
        "contacts.jsonl:3: id: expected text or a whole number, got true/false",
        "contacts.jsonl:5: (json): broken JSON: Expecting value: line 1 column 1 (char 0)",
        "contacts.jsonl:6: (json): expected a JSON object, got a list",
    ]


def test_csv_events_with_attribute_columns() -> None:
    text = (
        "contact_id,type,occurred_at,id,url,form\n"
        "c1,page_view,2026-06-01T10:00:00.5Z,e1,https://x.io/pricing,\n"
        "c1,form_submit,2026-06-01 12:00:00+02:00,,,demo-request\n"
        "c2,page_view,last tuesday,e3,/,\n"
        ",page_view,2026-06-01T10:00:00Z,e4,/,\n"
        "c3,,2026-06-01T10:00:00Z,e5,/,\n"
        "c4,page_view,,e6,/,\n"
    )
    rows, errors = split(read_events(text, "events.csv", format="csv"))
    assert rows == [
        {
            "contact_id": "c1",
            "type": "page_view",
            "occurred_at": datetime(2026, 6, 1, 10, 0, 0, 500000, tzinfo=UTC),
            "id": "e1",
            "url": "https://x.io/pricing",
        },
        {
            "contact_id": "c1",
            "type": "form_submit",
            "occurred_at": datetime(2026, 6, 1, 10, tzinfo=UTC),
            "form": "demo-request",
        },
    ]
    assert errors == [
        "events.csv:4: occurred_at: not a timestamp: 'last tuesday' "
        "(expected ISO 8601 such as 2026-06-30T12:00:00Z)",
        "events.csv:5: contact_id: missing",
        "events.csv:6: type: missing",
        "events.csv:7: occurred_at: missing",
    ]


def test_jsonl_events_flatten_nested_attributes_and_accept_epoch_seconds() -> None:
    text = (
        '{"contact_id": 5, "type": "email_open", "occurred_at": 1780000000, "id": 99,'
        ' "attributes": {"email_id": "welcome", "campaign": "spring"}, "campaign": "summer"}\n'
        '{"contact_id": "5", "type": 3, "occurred_at": "2026-01-01"}\n'
    )
    rows, errors = split(read_events(text, "events.jsonl", format="jsonl"))
    assert rows == [
        {
            "contact_id": "5",
            "type": "email_open",
            "occurred_at": datetime.fromtimestamp(1780000000, tz=UTC),
            "id": "99",
            "email_id": "welcome",
            "campaign": "summer",
        }
    ]
    assert errors == ["events.jsonl:2: type: expected text, got a number"]


def test_header_problems_stop_the_file_with_one_line() -> None:
    _, errors = split(read_events("contact_id,type,when\nc1,x,2026\n", "e.csv", format="csv"))
    assert errors == ["e.csv:1: occurred_at: missing column in the header"]
    _, errors = split(read_contacts("id,email,email\n1,a,b\n", "c.csv", format="csv"))
    assert errors == ["c.csv:1: email: duplicate column in the header"]
    _, errors = split(read_contacts("id,,x\n", "c.csv", format="csv"))
    assert errors == ["c.csv:1: (header): column 2 has no name"]
    assert split(read_contacts("", "c.csv", format="csv")) == ([], [])


def test_broken_csv_quoting_is_one_error_and_reading_goes_on() -> None:
    text = 'id,email\nc1,a@x.io\nc2,"broken"x\nc3,"multi\nline"\nc4,d@x.io\n'
    rows, errors = split(read_contacts(text, "c.csv", format="csv"))
    assert [row["id"] for row in rows] == ["c1", "c3", "c4"]
    assert rows[1]["email"] == "multi\nline"
    assert errors == ["c.csv:3: (csv): broken CSV: ',' expected after '\"'"]


def test_multi_line_records_report_their_first_line() -> None:
    text = 'id,note,created_at\nc1,"two\nlines",never\n'
    _, errors = split(read_contacts(text, "c.csv", format="csv"))
    assert errors[0].startswith("c.csv:2: created_at:")


def test_readers_stream_without_reading_ahead() -> None:
    consumed: list[int] = []

    def lines() -> Iterator[str]:
        for number in range(1, 1_000_000):
            consumed.append(number)
            yield json.dumps({"id": str(number)}) + "\n"

    first = next(iter(read_contacts(lines(), "c.jsonl", format="jsonl")))
    assert first == {"id": "1"}
    assert len(consumed) == 1


def test_collect_separates_errors_lazily() -> None:
    errors: list[RowError] = []
    handle = io.StringIO('{"id": "a"}\n{oops\n{"id": "b"}\n')
    rows = collect(read_contacts(handle, "c.jsonl", format="jsonl"), errors)
    assert next(rows) == {"id": "a"}
    assert errors == []
    assert list(rows) == [{"id": "b"}]
    assert [str(e) for e in errors] == [
        "c.jsonl:2: (json): broken JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)"
    ]


cells = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "2026-06-01T10:00:00Z", "2026-06-01", "nope", '"', "a,b", "\n"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(cells, min_size=0, max_size=6), max_size=8), st.booleans())
def test_random_csv_never_raises(rows: list[list[str]], events: bool) -> None:
    header = "contact_id,type,occurred_at,id,url\n" if events else "id,email,created_at\n"
    text = header + "\n".join(",".join(row) for row in rows)
    reader = read_events if events else read_contacts
    for item in reader(text, "r.csv", format="csv"):
        if isinstance(item, RowError):
            assert str(item).startswith("r.csv:") and "\n" not in item.problem
        else:
            assert all(value != "" for value in item.values())
            if events:
                assert item["occurred_at"].tzinfo is UTC


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=30),
            st.dictionaries(
                st.sampled_from(["id", "contact_id", "type", "occurred_at", "attributes", "url"]),
                json_values,
            ).map(json.dumps),
        ),
        max_size=8,
    )
)
def test_random_jsonl_never_raises(lines: list[str]) -> None:
    text = "\n".join(line.replace("\n", " ") for line in lines)
    for reader in (read_events, read_contacts):
        for item in reader(text, "r.jsonl", format="jsonl"):
            if isinstance(item, RowError):
                assert item.source == "r.jsonl" and item.line >= 1
            else:
                assert isinstance(item.get("id", ""), str)
