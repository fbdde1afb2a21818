"""SOQL text and Salesforce values: quoting, datetime literals, id chunks.

Values always go through ``simple_salesforce.format`` quoting; datetimes are written
as unquoted UTC literals with milliseconds so that a tie-break on an exact
``SystemModstamp`` matches the value the API returned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import TypeVar
from urllib.parse import quote

from simple_salesforce.format import format_soql, quote_soql_value

T = TypeVar("T")

# A query travels in the URL of a GET (``/query/?q=...``). Salesforce answers 414 for
# URIs longer than 16,384 bytes; stay well below it after percent-encoding.
MAX_ENCODED_QUERY = 16_000
URI_LIMIT = 16_384
PAGE_SIZE = 2000  # records per query page (Salesforce's maximum batch size)
COLLECTION_SIZE = 200  # records per sObject Collections call


def soql_datetime(value: datetime) -> str:
    """``2024-01-01T00:00:00Z``: an unquoted SOQL datetime literal in UTC.

    Salesforce documents whole seconds, and its audit stamps are whole seconds, so
    those are written without a fraction; a stamp that does carry milliseconds (as a
    fake's may) keeps them, so that ``SystemModstamp = X`` still matches exactly."""
    if value.tzinfo is None:
        raise ValueError("naive datetime in a SOQL filter")
    v = value.astimezone(UTC)
    millis = v.microsecond // 1000
    return v.strftime("%Y-%m-%dT%H:%M:%S") + (f".{millis:03d}Z" if millis else "Z")


def parse_datetime(value: object) -> datetime | None:
    """``2013-05-20T20:49:32.000+0000`` (or ``...Z``) to an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_date(value: object) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def encoded_length(text: str) -> int:
    return len(quote(text, safe=""))


def chunk_ids(
    ids: Sequence[str], template: str, *, max_encoded: int = MAX_ENCODED_QUERY
) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(soql, chunk)`` with ``template`` (containing ``{ids}``) filled with as
    many ids as fit under the URL budget, so each query is one call and never a 414."""
    base = encoded_length(format_soql(template, ids=[]))
    for chunk in _chunks(ids, base, max_encoded):
        yield format_soql(template, ids=chunk), chunk


def chunk_people(
    people: Sequence[tuple[str, str]],
    template: str,
    *,
    lead_field: str,
    contact_field: str,
    max_encoded: int = MAX_ENCODED_QUERY,
) -> Iterator[str]:
    """Like :func:`chunk_ids` for ``(id, kind)`` pairs where Leads and Contacts are
    matched by different fields (CampaignMember's ``LeadId`` and ``ContactId``):
    ``template``'s ``{who}`` becomes ``(LeadId IN (...) OR ContactId IN (...))``."""

    def who(chunk: Sequence[tuple[str, str]]) -> str:
        leads = [i for i, kind in chunk if kind == "lead"]
        contacts = [i for i, kind in chunk if kind != "lead"]
        parts = [
            format_soql(f"{field} IN {{}}", ids)
            for field, ids in ((lead_field, leads), (contact_field, contacts))
            if ids or not chunk
        ]
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    base = encoded_length(template.replace("{who}", who([])))
    for chunk in _chunks(people, base, max_encoded, key=lambda p: p[0]):
        yield template.replace("{who}", who(chunk))


def _chunks(
    items: Sequence[T], base: int, max_encoded: int, key: Callable[[T], str] = str
) -> Iterator[list[T]]:
    chunk: list[T] = []
    size = base
    for item in items:
        cost = encoded_length(quote_soql_value(key(item))) + 3  # the comma, encoded
        if chunk and size + cost > max_encoded:
            yield chunk
            chunk, size = [], base
        chunk.append(item)
        size += cost
    if chunk:
        yield chunk


def ids_per_query(template: str, id_len: int = 18, max_encoded: int = MAX_ENCODED_QUERY) -> int:
    """How many ids of ``id_len`` characters one ``chunk_ids`` query holds."""
    base = encoded_length(format_soql(template, ids=[]))
    cost = encoded_length(quote_soql_value("0" * id_len)) + 3
    return max(1, (max_encoded - base) // cost)


def changes_query(
    obj: str,
    fields: Sequence[str],
    *,
    since: datetime | None,
    until: datetime,
    after: tuple[datetime, str] | None = None,
    extra_where: str = "",
) -> str:
    """Records of ``obj`` with ``since <= SystemModstamp <= until`` in (SystemModstamp,
    Id) order. ``after`` resumes strictly after a (stamp, id) position, so a restarted
    query neither repeats nor skips rows that share one stamp."""
    where = [f"SystemModstamp <= {soql_datetime(until)}"]
    if since is not None:
        where.append(f"SystemModstamp >= {soql_datetime(since)}")
    if after is not None:
        stamp = soql_datetime(after[0])
        where.append(
            format_soql(
                f"(SystemModstamp > {stamp} OR (SystemModstamp = {stamp} AND Id > {{last}}))",
                last=after[1],
            )
        )
    if extra_where:
        where.append(extra_where)
    select = ", ".join(dict.fromkeys(["Id", "SystemModstamp", *fields]))
    return f"SELECT {select} FROM {obj} WHERE {' AND '.join(where)} ORDER BY SystemModstamp, Id"
