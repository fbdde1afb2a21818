"""Contacts and events from JSONL and CSV exports, one parser for every caller.

``leadsync score`` and the ``files`` connector both read through here, so a file that
scores offline also syncs. The parsers take lines (or a whole text) and a source name
and never open files themselves: the core stays free of I/O. They stream: each row is
yielded as soon as it is read, and a bad row becomes a ``RowError`` in its place while
the rows around it are kept (docs/scoring.md, "Data files").

Normalisation is the one the connector protocol promises (``connectors/base.py``):
canonical names untouched, empty strings and nulls dropped, timestamps as aware UTC
datetimes, ids as text, numeric canonical fields (``company_size``) as numbers.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, NoReturn, TypeVar

from scoring import vocabulary
from scoring.timeutil import parse_timestamp

__all__ = [
    "CONTACT_TIMESTAMP_FIELDS",
    "EVENT_REQUIRED",
    "NUMERIC_FIELDS",
    "Contact",
    "Event",
    "Format",
    "RowError",
    "collect",
    "format_for",
    "read_contacts",
    "read_events",
]

Format = Literal["jsonl", "csv"]
# A record as read: text, numbers, booleans, timestamps (datetime) and whatever else a
# JSON line holds. Open-ended (a file may carry any column), so its values are
# ``object``: the engine reads each through ``text_form`` and narrows nothing else.
Contact = dict[str, object]
Event = dict[str, object]
_Row = dict[str, object]

# Canonical contact fields that are numbers; CSV gives text, so we convert them here
# once instead of every comparison guessing.
NUMERIC_FIELDS = vocabulary.NUMERIC_FIELDS
CONTACT_TIMESTAMP_FIELDS = frozenset({"created_at", "updated_at"})
# Identifier fields: a JSON export may write them as numbers; they are text everywhere.
ID_FIELDS = frozenset({"id", "owner_id", "contact_id"})
EVENT_REQUIRED = ("contact_id", "type", "occurred_at")

_EXTENSIONS: dict[str, Format] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_NUMBER_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RowError:
    """One rejected row; ``str()`` is the ``FILE:LINE: field: problem`` line users see."""

    source: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.field}: {self.problem}"


def format_for(path: str) -> Format:
    """The format a file name implies; ValueError for anything else (no guessing)."""
    lowered = path.lower()
    for extension, fmt in _EXTENSIONS.items():
        if lowered.endswith(extension):
            return fmt
    known = ", ".join(_EXTENSIONS)
    raise ValueError(f"{path}: unknown file type (expected one of {known})")


def collect(items: Iterable[T | RowError], errors: list[RowError]) -> Iterator[T]:
    """Pass good rows on and put errors aside, without holding the file in memory."""
    for item in items:
        if isinstance(item, RowError):
            errors.append(item)
        else:
            yield item


def read_contacts(
    lines: Iterable[str] | str, source: str, *, format: Format, unique: bool = True
) -> Iterator[Contact | RowError]:
    """Contacts: ``id`` is required; every other column is a field.

    With ``unique`` (the default) a second row for an id already read is rejected:
    which of two versions of a person to score is a question for the export, not a
    guess for us. This keeps one set of ids in memory.
    """
    seen: set[object] = set()  # ids, text once _take_id has read them
    for line, row in _rows(lines, source, format, required=("id",)):
        if isinstance(row, RowError):
            yield row
            continue
        contact = _contact(row, source, line)
        if unique and not isinstance(contact, RowError):
            if contact["id"] in seen:
                yield RowError(source, line, "id", f"duplicate contact id {contact['id']!r}")
                continue
            seen.add(contact["id"])
        yield contact


def read_events(
    lines: Iterable[str] | str, source: str, *, format: Format
) -> Iterator[Event | RowError]:
    """Events: ``contact_id``, ``type`` and ``occurred_at`` are required, ``id`` is
    optional, every other column is an attribute (``url``, ``form``, ...)."""
    for line, row in _rows(lines, source, format, required=EVENT_REQUIRED):
        if isinstance(row, RowError):
            yield row
        else:
            yield _event(row, source, line)


# ---------------------------------------------------------------------------------------


def _rows(
    lines: Iterable[str] | str, source: str, format: Format, *, required: tuple[str, ...]
) -> Iterator[tuple[int, _Row | RowError]]:
    if format == "jsonl":
        return _jsonl_rows(lines, source)
    if format == "csv":
        return _csv_rows(lines, source, required)
    raise ValueError(f"unknown format {format!r}")


def _as_lines(lines: Iterable[str] | str, *, csv_mode: bool) -> Iterable[str]:
    if isinstance(lines, str):
        # Only "\n" (and "\r" for CSV) end a line: str.splitlines would also split on
        # form feeds and U+2028 inside values and throw line numbers off.
        return io.StringIO(lines, newline="" if csv_mode else "\n")
    return lines


def _jsonl_rows(lines: Iterable[str] | str, source: str) -> Iterator[tuple[int, _Row | RowError]]:
    for number, raw in enumerate(_as_lines(lines, csv_mode=False), start=1):
        text = raw.strip()
        if number == 1:
            text = text.lstrip("\ufeff")
        if not text:
            continue
        try:
            value = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            yield number, RowError(source, number, "(json)", f"broken JSON: {_short(exc)}")
            continue
        if not isinstance(value, dict):
            yield (
                number,
                RowError(source, number, "(json)", f"expected a JSON object, got {_kind(value)}"),
            )
            continue
        yield number, value


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _csv_rows(
    lines: Iterable[str] | str, source: str, required: tuple[str, ...]
) -> Iterator[tuple[int, _Row | RowError]]:
    reader = csv.reader(iter(_as_lines(lines, csv_mode=True)), strict=True)
    header: list[str] | None = None
    previous_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            start = previous_end + 1
            previous_end = reader.line_num
            yield start, RowError(source, start, "(csv)", f"broken CSV: {_short(exc)}")
            if header is None:
                return  # without a header no later row can be read
            continue
        start = previous_end + 1
        previous_end = reader.line_num
        if not any(cells):
            continue  # blank line, or only separators
        if header is None:
            header = [cell.strip() for cell in cells]
            header[0] = header[0].lstrip("\ufeff")
            problem = _header_problem(header, required)
            if problem is not None:
                field, message = problem
                yield start, RowError(source, start, field, message)
                return
            continue
        if len(cells) != len(header):
            yield (
                start,
                RowError(
                    source,
                    start,
                    "(csv)",
                    f"expected {len(header)} columns as in the header, got {len(cells)}",
                ),
            )
            continue
        yield start, dict(zip(header, cells, strict=True))


def _header_problem(header: list[str], required: tuple[str, ...]) -> tuple[str, str] | None:
    seen: set[str] = set()
    for index, name in enumerate(header, start=1):
        if not name:
            return "(header)", f"column {index} has no name"
        if name in seen:
            return name, "duplicate column in the header"
        seen.add(name)
    for name in required:
        if name not in seen:
            return name, "missing column in the header"
    return None


def _present(row: _Row) -> _Row:
    """The row without missing values (null, empty or whitespace-only text)."""
    # Hot path (millions of rows): plain type checks, no helper call per value.
    return {
        key: value
        for key, value in row.items()
        if value is not None and not (type(value) is str and (not value or value.isspace()))
    }


def _contact(row: _Row, source: str, line: int) -> Contact | RowError:
    out = _present(row)
    problem = _take_id(out, "id", source, line, required=True)
    if problem is not None:
        return problem
    if "owner_id" in out:
        problem = _take_id(out, "owner_id", source, line, required=False)
        if problem is not None:
            return problem
    for name in CONTACT_TIMESTAMP_FIELDS:
        if name in out:
            try:
                out[name] = parse_timestamp(out[name])
            except ValueError as exc:
                return RowError(source, line, name, str(exc))
    for name in NUMERIC_FIELDS:
        if name in out:
            out[name] = _number_or_value(out[name])
    return out


def _event(row: _Row, source: str, line: int) -> Event | RowError:
    nested = row.get("attributes")
    if type(nested) is dict:
        # Exports written from EventRecord keep attributes nested; flatten them, the
        # top-level columns winning on a clash.
        flat = {str(key): value for key, value in nested.items()}
        flat.update((key, value) for key, value in row.items() if key != "attributes")
        row = flat
    out = _present(row)
    problem = _take_id(out, "contact_id", source, line, required=True)
    if problem is None and "id" in out:
        problem = _take_id(out, "id", source, line, required=False)
    if problem is not None:
        return problem
    event_type = out.get("type")
    if event_type is None:
        return RowError(source, line, "type", "missing")
    if type(event_type) is not str:
        return RowError(source, line, "type", f"expected text, got {_kind(event_type)}")
    out["type"] = event_type.strip()
    occurred = out.get("occurred_at")
    if occurred is None:
        return RowError(source, line, "occurred_at", "missing")
    try:
        out["occurred_at"] = parse_timestamp(occurred)
    except ValueError as exc:
        return RowError(source, line, "occurred_at", str(exc))
    return out


def _take_id(row: _Row, name: str, source: str, line: int, *, required: bool) -> RowError | None:
    value = row.get(name)
    if value is None:
        return RowError(source, line, name, "missing") if required else None
    if type(value) is str:
        if value[0].isspace() or value[-1].isspace():
            row[name] = value.strip()
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return RowError(source, line, name, f"expected text or a whole number, got {_kind(value)}")
    row[name] = str(value).strip()
    return None


def _number_or_value(value: object) -> object:
    """``"250"`` -> 250, ``"2.5e3"`` -> 2500; text that is not a number stays text."""
    if isinstance(value, bool) or not isinstance(value, str):
        return value
    # "1,500" stays text: it reads as 1500 or 1.5 depending on the country.
    text = value.strip()
    if not _NUMBER_RE.fullmatch(text):
        return value
    number = float(text)
    if not math.isfinite(number):
        return value
    if number.is_integer() and abs(number) < 2**53:
        return int(number)
    return number


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 120 else text[:117] + "..."
