"""Opportunities, contact roles, Tasks and owner changes in batches, exactly once per key.

Each record carries its key in the key field (``settings.key_field``). A batch of at
most 200 is handled in one attempt that first reads which keys exist (SOQL ``IN`` on
the key field) and then writes only the missing ones in one sObject Collections call
(``allOrNone: false``, one result per record). Because every attempt reads before it
writes, an attempt whose answer was lost (a dropped connection, a 5xx) can be run again
without a duplicate. With the key field an External ID and Unique, the write is an
upsert by that field, which cannot duplicate either; a ``DUPLICATE_VALUE`` inside a 200
answer (a record that appeared between the read and the write) is settled by reading
that key again.

Activity fields are restricted in some orgs: when the Task key field exists but is
neither External ID nor Unique, Tasks are found by reading the person's Tasks (an
indexed ``WhoId IN`` query) and created with a plain collection insert.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from connectors.base import ActionResult, BatchOutcome, RecordFailure
from connectors.salesforce.api import SalesforceApi
from connectors.salesforce.soql import COLLECTION_SIZE, chunk_ids

Item = tuple[str, str, dict[str, Any]]  # (key, person id, record)
ErrorText = Callable[[Mapping[str, Any]], tuple[str, bool]]


def read_keys(
    sf: Any, obj: str, key_field: str, items: Sequence[Item], *, by_person: bool, timeout: float
) -> dict[str, str]:
    """``key → id`` of the items' keys that exist (by the key field, or by the people's
    records when the field is not unique)."""
    if by_person:
        template = (
            f"SELECT Id, {key_field} FROM {obj} WHERE WhoId IN {{ids}} AND {key_field} != null"
        )
        values = list(dict.fromkeys(who for _, who, _ in items))
    else:
        template = f"SELECT Id, {key_field} FROM {obj} WHERE {key_field} IN {{ids}}"
        values = [key for key, _, _ in items]
    wanted = {key for key, _, _ in items}
    found: dict[str, str] = {}
    for soql, _ in chunk_ids(values, template):
        reply = sf.query_all(soql, timeout=timeout)
        for rec in reply.get("records") or []:
            key = rec.get(key_field)
            if key in wanted:
                found.setdefault(str(key), str(rec["Id"]))
    return found


def create_keyed(
    api: SalesforceApi,
    obj: str,
    key_field: str,
    items: Sequence[Item],
    *,
    unique: bool,
    timeout: float,
    error_text: ErrorText,
    never_sent: frozenset[str] = frozenset(),
) -> dict[str, BatchOutcome]:
    """One outcome per key: found, created, or refused (the record's own reason). The
    keys in ``never_sent`` (the caller's ledger proves no call carried them) are not
    read before the first attempt's write; every retry reads them all."""
    out: dict[str, BatchOutcome] = {}
    for start in range(0, len(items), COLLECTION_SIZE):
        chunk = list(items[start : start + COLLECTION_SIZE])
        tries = [0]

        def attempt(
            sf: Any, chunk: list[Item] = chunk, tries: list[int] = tries
        ) -> tuple[dict[str, str], list[Any]]:
            tries[0] += 1
            look = [i for i in chunk if tries[0] > 1 or i[0] not in never_sent]
            found = (
                read_keys(sf, obj, key_field, look, by_person=not unique, timeout=timeout)
                if look
                else {}
            )
            missing = [item for item in chunk if item[0] not in found]
            if not missing:
                return found, []
            body = {"allOrNone": False, "records": [record for _, _, record in missing]}
            path = f"composite/sobjects/{obj}/{key_field}" if unique else "composite/sobjects"
            method = "PATCH" if unique else "POST"
            results = sf.restful(path, method=method, json=body, timeout=timeout)
            if not isinstance(results, list) or len(results) != len(missing):
                results = [None] * len(missing)  # unreadable: settled by the next read
            return found, list(zip(missing, results, strict=True))

        found, written = api.call(f"create {obj} by key", attempt, idempotent=True)
        retried = tries[0] > 1
        for key, object_id in found.items():
            note = "confirmed after a retry" if retried else "already existed"
            out[key] = ActionResult(key, object_id, created=retried, note=note)
        duplicates: list[Item] = []
        for item, res in written:
            key = item[0]
            if isinstance(res, Mapping) and res.get("success"):
                out[key] = ActionResult(key, str(res["id"]), created=bool(res.get("created", True)))
                continue
            reason, _ = error_text(res) if isinstance(res, Mapping) else ("no answer", True)
            if not isinstance(res, Mapping) or "DUPLICATE_VALUE" in reason:
                duplicates.append(item)
            else:
                out[key] = RecordFailure(key, reason)
        if duplicates:
            again = api.call(
                f"read {obj} by key",
                lambda sf, d=duplicates: read_keys(  # type: ignore[misc]
                    sf, obj, key_field, d, by_person=not unique, timeout=timeout
                ),
            )
            for key, _, _ in duplicates:
                if key in again:
                    out[key] = ActionResult(key, again[key], created=False, note="already existed")
                else:
                    out[key] = RecordFailure(key, f"{obj} {key}: duplicate value", retriable=True)
    return out


def ensure_roles(
    api: SalesforceApi,
    pairs: Sequence[tuple[str, str]],
    *,
    fresh: set[str],
    timeout: float,
    error_text: ErrorText,
) -> dict[str, str]:
    """An OpportunityContactRole for each ``(opportunity id, contact id)``; returns
    ``opportunity id → reason`` for those refused. Roles of opportunities created by
    this very call (``fresh``) cannot exist yet: they are not read for, unless an
    attempt's answer was lost."""
    refused: dict[str, str] = {}
    for start in range(0, len(pairs), COLLECTION_SIZE):
        chunk = list(dict.fromkeys(pairs[start : start + COLLECTION_SIZE]))
        tries = [0]

        def attempt(
            sf: Any, chunk: list[tuple[str, str]] = chunk, tries: list[int] = tries
        ) -> list[Any]:
            tries[0] += 1
            check = [p for p in chunk if tries[0] > 1 or p[0] not in fresh]
            have: set[tuple[str, str]] = set()
            if check:
                template = (
                    "SELECT OpportunityId, ContactId FROM OpportunityContactRole "
                    "WHERE OpportunityId IN {ids}"
                )
                for soql, _ in chunk_ids(list(dict.fromkeys(o for o, _ in check)), template):
                    for rec in sf.query_all(soql, timeout=timeout).get("records") or []:
                        have.add((str(rec["OpportunityId"]), str(rec["ContactId"])))
            todo = [p for p in chunk if p not in have]
            if not todo:
                return []
            records = [
                {
                    "attributes": {"type": "OpportunityContactRole"},
                    "OpportunityId": opp,
                    "ContactId": contact,
                    "IsPrimary": True,
                }
                for opp, contact in todo
            ]
            body = {"allOrNone": False, "records": records}
            results = sf.restful("composite/sobjects", method="POST", json=body, timeout=timeout)
            return list(zip(todo, results, strict=True)) if isinstance(results, list) else []

        for (opp, _), res in api.call("link opportunities to contacts", attempt):
            if isinstance(res, Mapping) and not res.get("success"):
                refused[opp] = error_text(res)[0]
    return refused
