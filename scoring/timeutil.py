"""Timestamps in and out of the scoring core.

Every timestamp the core sees is an aware UTC datetime, so that "the same UTC day"
and "days since" mean one thing everywhere (docs/scoring.md, "Timestamps"). Inputs are
ISO 8601 text from files and CRMs, or epoch seconds; output is ISO 8601 with ``Z``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

__all__ = ["parse_timestamp", "to_iso"]

# fromisoformat accepts the whole ISO 8601 family in 3.11, including the ``Z`` suffix,
# week dates and basic format; we only add whitespace trimming and friendlier errors.


def parse_timestamp(value: object) -> datetime:
    """Read one timestamp as an aware UTC datetime.

    An offset is honoured and a naive value is taken as UTC: exports from CRMs mostly
    carry UTC without saying so. Numbers are epoch seconds. Every value is accepted,
    because records straight from a file or a CRM are checked here: text, datetimes
    and numbers are read, anything else raises. Raises ``ValueError`` with a short
    reason that callers put after ``FILE:LINE: field:``.
    """
    if isinstance(value, bool):
        # bool is an int subclass; a flag is never a timestamp.
        raise ValueError("expected a timestamp, got true/false")
    if isinstance(value, datetime):
        return _as_utc(value)
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"not a timestamp: {value!r}")
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"epoch seconds out of range: {value!r}") from None
    if not isinstance(value, str):
        raise ValueError(f"expected a timestamp, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError("empty timestamp")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        shown = text if len(text) <= 40 else text[:37] + "..."
        reason = str(exc)
        if reason.startswith("Invalid isoformat string"):
            reason = "expected ISO 8601 such as 2026-06-30T12:00:00Z"
        raise ValueError(f"not a timestamp: {shown!r} ({reason})") from None
    return _as_utc(parsed)


def to_iso(dt: datetime) -> str:
    """ISO 8601 in UTC with ``Z``; microseconds only when non-zero (stable, short)."""
    utc = _as_utc(dt)
    text = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def _as_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        return dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp out of range after conversion to UTC: {dt!r}") from None
