"""Deals, tasks and owner assignments in batches, exactly once per input.

Each record carries its key in the unique ``leadsync_key`` property. A batch of keys is
read first (``batch/read`` with ``idProperty``: one call per 100, and a read, unlike
search, sees a write at once); only the missing are created, 100 per ``batch/create``
with their association to the contact in the same input. Each input carries its key as
``objectWriteTraceId``, so that a 207 names the inputs it refused and the others stand.

A key the caller's ledger proves was never sent (``first_attempt``: the ledger marks a
batch as sent before sending it) skips the keyed read: a create that carries it cannot
have been applied before. Should that promise be wrong, the unique key still refuses a
second record (a 409, settled below). Without the read, a portal that lacks the key
property answers the create instead: ``KeyPropertyMissing``, so that the caller makes
the property and runs the batch again.

An answer that does not account for every input (a dropped connection, a 5xx, a 429
after the retries) may still have been applied: the batch's keys are read again and
only what is missing is created again. A 409 (a key that exists, e.g. created by a
crash between the read and the create) is settled the same way; a 400 refuses the whole
batch for one input, so the batch is halved until the bad input stands alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from connectors.base import (
    ActionResult,
    BatchOutcome,
    CRMResponseError,
    NotRetried,
    OwnerSpec,
    RecordFailure,
)
from connectors.hubspot import reads
from connectors.hubspot.own_writes import stamp_ms
from connectors.hubspot.transport import HubSpotTransport
from connectors.hubspot.values import to_text
from connectors.runtime import RecordRejected

KEY_PROPERTY = "leadsync_key"
BATCH = reads.BATCH_READ  # HubSpot's batch endpoints take at most 100 inputs


class KeyPropertyMissing(CRMResponseError):
    """The CRM refused a create because the object type has no key property yet."""


def _names_missing_key(text: str) -> bool:
    return "PROPERTY_DOESNT_EXIST" in text and KEY_PROPERTY in text


def ids_by_key(t: HubSpotTransport, object_type: str, keys: Sequence[str]) -> dict[str, str]:
    """``key → object id`` of the keys that exist (100 keys per call)."""
    found: dict[str, str] = {}
    for raw in reads.batch_read(
        t, object_type, list(keys), [KEY_PROPERTY], id_property=KEY_PROPERTY
    ):
        key = to_text((raw.get("properties") or {}).get(KEY_PROPERTY))
        if key is not None and raw.get("id") is not None:
            found[key] = str(raw["id"])
    return found


def create_once(
    t: HubSpotTransport,
    object_type: str,
    inputs: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    max_attempts: int,
    sleep: Callable[[float], None],
    never_sent: frozenset[str] = frozenset(),
) -> list[BatchOutcome]:
    """One outcome per ``(key, create input)``, in input order: the record found or
    created under the key, or the CRM's refusal of that input. The keys in
    ``never_sent`` are not looked for first."""
    out: dict[str, BatchOutcome] = {}
    for start in range(0, len(inputs), BATCH):
        chunk = list(inputs[start : start + BATCH])
        maybe_sent = [k for k, _ in chunk if k not in never_sent]
        found = ids_by_key(t, object_type, maybe_sent) if maybe_sent else {}
        for key, object_id in found.items():
            out[key] = ActionResult(key, object_id, created=False, note="already existed")
        missing = [(k, body) for k, body in chunk if k not in found]
        _create(t, object_type, missing, out, max_attempts=max_attempts, sleep=sleep)
    return [out[key] for key, _ in inputs]


def _create(
    t: HubSpotTransport,
    object_type: str,
    items: list[tuple[str, Mapping[str, Any]]],
    out: dict[str, BatchOutcome],
    *,
    max_attempts: int,
    sleep: Callable[[float], None],
) -> None:
    api = t.api("crm.objects.batch_api")
    last: Exception | None = None
    for _ in range(max_attempts):
        if not items:
            return
        body = {"inputs": [{**dict(b), "objectWriteTraceId": k} for k, b in items]}
        try:
            reply = t.call(
                f"batch create {object_type}",
                api.create,
                object_type,
                body,
                expect=(201, 207),
                idempotent=False,
                record_statuses=(400, 409),
            )
        except RecordRejected as exc:
            if exc.status == 400 and _names_missing_key(exc.reason):
                raise KeyPropertyMissing(exc.reason) from exc
            if exc.status == 409:  # a key exists already: read them, create the rest
                items = _settle(t, object_type, items, out, created=False)
                if len(items) > 1:
                    _halve(t, object_type, items, out, max_attempts=max_attempts, sleep=sleep)
                    return
                if items:
                    out[items[0][0]] = RecordFailure(items[0][0], exc.reason)
                return
            if len(items) == 1:
                out[items[0][0]] = RecordFailure(items[0][0], exc.reason)
                return
            _halve(t, object_type, items, out, max_attempts=max_attempts, sleep=sleep)
            return
        except NotRetried as exc:  # may have been applied: look before creating again
            last = exc
            items = _settle(t, object_type, items, out, created=True)
            if items:
                sleep(1.0)
            continue
        data = reply.data if isinstance(reply.data, Mapping) else {}
        _answer(t, data, items, out)
        items = _settle(t, object_type, [i for i in items if i[0] not in out], out, created=True)
        last = CRMResponseError(f"hubspot batch create {object_type}: inputs without an answer")
    for key, _ in items:
        out[key] = RecordFailure(
            key,
            f"hubspot batch create {object_type}: gave up after {max_attempts} attempts: {last}",
            retriable=True,
        )


def _halve(
    t: HubSpotTransport,
    object_type: str,
    items: list[tuple[str, Mapping[str, Any]]],
    out: dict[str, BatchOutcome],
    *,
    max_attempts: int,
    sleep: Callable[[float], None],
) -> None:
    half = len(items) // 2
    for part in (items[:half], items[half:]):
        _create(t, object_type, part, out, max_attempts=max_attempts, sleep=sleep)


def _answer(
    t: HubSpotTransport,
    data: Mapping[str, Any],
    items: Sequence[tuple[str, Mapping[str, Any]]],
    out: dict[str, BatchOutcome],
) -> None:
    """Results and errors of a 201/207, matched to inputs by ``objectWriteTraceId``
    (or, for a result without it, by the key property it carries)."""
    keys = {k for k, _ in items}
    for result in data.get("results") or []:
        if not isinstance(result, Mapping) or result.get("id") is None:
            continue
        key = to_text(result.get("objectWriteTraceId")) or to_text(
            (result.get("properties") or {}).get(KEY_PROPERTY)
        )
        if key in keys:
            out[key] = ActionResult(key, str(result["id"]), created=True)
    for error in data.get("errors") or []:
        if not isinstance(error, Mapping):
            continue
        context = error.get("context") or {}
        traces = context.get("objectWriteTraceId") if isinstance(context, Mapping) else None
        if _names_missing_key(str(error.get("message", ""))):
            # every input carries the key, so none was created: make it, run again
            raise KeyPropertyMissing(t.redactor(str(error["message"])))
        reason = t.redactor(
            "; ".join(str(error[k]) for k in ("category", "message") if error.get(k)) or "refused"
        )
        retriable = "RATE_LIMIT" in str(error.get("category", "")).upper()
        for key in traces or []:
            if str(key) in keys and str(key) not in out:
                out[str(key)] = RecordFailure(str(key), reason, retriable=retriable)


def _settle(
    t: HubSpotTransport,
    object_type: str,
    items: list[tuple[str, Mapping[str, Any]]],
    out: dict[str, BatchOutcome],
    *,
    created: bool,
) -> list[tuple[str, Mapping[str, Any]]]:
    """Read the keys of ``items``; the found are done, the rest returned."""
    if not items:
        return []
    found = ids_by_key(t, object_type, [k for k, _ in items])
    note = "confirmed after a retry" if created else "already existed"
    for key, object_id in found.items():
        out[key] = ActionResult(key, object_id, created=created, note=note)
    return [(k, b) for k, b in items if k not in found]


def set_owners(
    t: HubSpotTransport, specs: Sequence[OwnerSpec]
) -> tuple[list[BatchOutcome], dict[str, int]]:
    """Owner updates, 100 contacts per batch update (idempotent: a retry sets the same
    value). A contact the CRM no longer knows is that input's failure. Also returns
    each written contact's new modification stamp (our own write, to be remembered)."""
    api = t.api("crm.objects.batch_api")
    out: dict[str, BatchOutcome] = {}
    stamps: dict[str, int] = {}
    for start in range(0, len(specs), BATCH):
        chunk = list(specs[start : start + BATCH])
        # one input per contact (two actions on one contact in a run set one owner)
        inputs = {
            s.contact_id: {"id": s.contact_id, "properties": {"hubspot_owner_id": s.owner_id}}
            for s in chunk
        }
        try:
            reply = t.call(
                "batch update contact owners",
                api.update,
                "contacts",
                {"inputs": list(inputs.values())},
                expect=(200, 207),
                record_statuses=(400,),
            )
        except RecordRejected as exc:
            for s in chunk:
                out[s.key] = RecordFailure(s.key, exc.reason)
            continue
        data = reply.data if isinstance(reply.data, Mapping) else {}
        for result in data.get("results") or []:
            if isinstance(result, Mapping) and result.get("id") is not None:
                stamp = stamp_ms(result)
                if stamp is not None:
                    stamps[str(result["id"])] = stamp
        missing: dict[str, str] = {}
        for error in data.get("errors") or []:
            if isinstance(error, Mapping):
                reason = t.redactor(str(error.get("message") or "refused"))
                for cid in (error.get("context") or {}).get("ids") or []:
                    missing[str(cid)] = reason
        for s in chunk:
            if s.contact_id in missing:
                out[s.key] = RecordFailure(s.key, missing[s.contact_id])
            else:
                out[s.key] = ActionResult(s.key, s.owner_id, created=True)
    return [out[s.key] for s in specs], stamps
