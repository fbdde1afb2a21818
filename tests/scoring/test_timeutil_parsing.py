"""Timestamps: offsets honoured, naive means UTC, fractions kept, output in Z form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.timeutil import parse_timestamp, to_iso


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-30T12:00:00Z", datetime(2026, 6, 30, 12, tzinfo=UTC)),
        ("2026-06-30T12:00:00", datetime(2026, 6, 30, 12, tzinfo=UTC)),
        ("2026-06-30T14:00:00+02:00", datetime(2026, 6, 30, 12, tzinfo=UTC)),
        ("2026-06-30T00:30:00-05:00", datetime(2026, 6, 30, 5, 30, tzinfo=UTC)),
        ("2026-06-30 12:00:00.25Z", datetime(2026, 6, 30, 12, 0, 0, 250000, tzinfo=UTC)),
        ("2026-06-30T12:00:00.123456789Z", datetime(2026, 6, 30, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2026-06-30", datetime(2026, 6, 30, tzinfo=UTC)),
        ("  2026-06-30T12:00:00Z\n", datetime(2026, 6, 30, 12, tzinfo=UTC)),
    ],
)
def test_iso_text(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


def test_epoch_seconds_and_datetimes() -> None:
    assert parse_timestamp(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_timestamp(1.5) == datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)
    naive = datetime(2026, 1, 1, 8)
    assert parse_timestamp(naive) == datetime(2026, 1, 1, 8, tzinfo=UTC)
    tokyo = datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=9)))
    assert parse_timestamp(tokyo) == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_timestamp(tokyo).tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("yesterday", "not a timestamp: 'yesterday'"),
        ("", "empty timestamp"),
        ("2026-02-30T00:00:00Z", "not a timestamp"),
        ("2026-06-30T25:00:00Z", "not a timestamp"),
        (True, "expected a timestamp, got true/false"),
        (float("nan"), "not a timestamp"),
        (1e20, "epoch seconds out of range"),
    ],
)
def test_bad_values_raise_value_error_with_a_short_reason(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match="^" + reason.replace("(", r"\(")):
        parse_timestamp(value)  # type: ignore[arg-type]


def test_to_iso_is_utc_z_with_microseconds_only_when_present() -> None:
    assert to_iso(datetime(2026, 6, 30, 12, tzinfo=UTC)) == "2026-06-30T12:00:00Z"
    assert to_iso(datetime(2026, 6, 30, 12, 0, 0, 5, tzinfo=UTC)) == "2026-06-30T12:00:00.000005Z"
    paris = timezone(timedelta(hours=2))
    assert to_iso(datetime(2026, 6, 30, 14, tzinfo=paris)) == "2026-06-30T12:00:00Z"
    assert to_iso(datetime(2026, 6, 30, 12)) == "2026-06-30T12:00:00Z"  # naive = UTC


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
        ),
    )
)
def test_round_trip(moment: datetime) -> None:
    assert parse_timestamp(to_iso(moment)) == moment
