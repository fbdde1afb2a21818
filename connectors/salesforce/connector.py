"""The Salesforce connector: SOQL reads on ``SystemModstamp``, sObject Collections writes.

Reads follow the boundary rules in ``docs/crm-api-notes.md``: ``>=`` with a
look-back window and de-duplication, an upper bound at the sync's start, and a total
order on ``(SystemModstamp, Id)`` so that a restarted query resumes after the last row
it returned even when thousands of rows share one timestamp. An incremental read is
one ``queryAll`` per object, whose deleted rows (``IsDeleted``) are the deletions and
merges, so a read with nothing changed costs two calls. Writes are updates or upserts
by an external-id field, which makes every retry safe.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from simple_salesforce.exceptions import SalesforceMalformedRequest
from simple_salesforce.format import format_soql

from connectors.base import (
    ActionResult,
    BatchOutcome,
    Budget,
    ConnectorConfigError,
    ContactKind,
    ContactRecord,
    CRMResponseError,
    DealRecord,
    DealSpec,
    EventRecord,
    FieldCheck,
    FieldSpec,
    Merge,
    Owner,
    OwnerSpec,
    ReadBatch,
    RecordFailure,
    RuntimeContext,
    ScoreUpdate,
    StoredState,
    TaskSpec,
    WriteResult,
    never_sent,
)
from connectors.fieldcheck import salesforce_field_problem
from connectors.salesforce import actions, mapping
from connectors.salesforce.api import Query, QueryLocatorExpired, SalesforceApi
from connectors.salesforce.config import (
    SalesforceSettings,
    SalesforceSettingsModel,
    parse_settings,
)
from connectors.salesforce.policy import RETRIABLE_RECORD_ERRORS, error_codes
from connectors.salesforce.soql import (
    COLLECTION_SIZE,
    PAGE_SIZE,
    changes_query,
    chunk_ids,
    chunk_people,
    ids_per_query,
    parse_date,
    parse_datetime,
    soql_datetime,
)
from connectors.salesforce.state import ObjectState, SalesforceState

MAX_SEEN = 100_000  # ids remembered for de-duplication inside the look-back window
OBJECT_OF: Mapping[ContactKind, str] = {"lead": "Lead", "contact": "Contact"}
KEY_PREFIX: Mapping[str, str] = {"Lead": "00Q", "Contact": "003"}  # of record ids
PRIORITY = {"high": "High", "medium": "Normal", "low": "Low"}
TASK_TYPE = {"call": "Call", "email": "Email", "todo": "Other"}
TASK_SUBTYPE = {"call": "Call", "email": "Email", "todo": "Task"}
MAX_LOCATOR_RESTARTS = 20
OWN_WRITE_TOLERANCE = timedelta(seconds=2)  # client clock vs Salesforce's, when we wrote
# How long the cursor's memory of ``describe`` (does the object have MasterRecordId?)
# is trusted. Schemas rarely change, and an incremental read should not pay a describe
# per object each run; ensure_fields and any describe this process made refresh it.
DESCRIBE_MAX_AGE = timedelta(days=1)
DELETED_MARK = "deleted:"  # prefixes the stamp of a deleted row in the cursor's seen ids
# Audit stamps move on our own writes; IsDeleted and MasterRecordId are only selected
# by incremental reads (and MasterRecordId only where describe lists it), so hashing
# them would make a full read's digest differ from an incremental one's.
_NOT_HASHED = frozenset(
    {
        "attributes",
        "SystemModstamp",
        "LastModifiedDate",
        "LastModifiedById",
        "IsDeleted",
        "MasterRecordId",
    }
)


# Read fields leadsync also writes (the owner it assigns, the Lead status it sets):
# hashed apart from the rest, so that the digest after our write of them is known
# without reading the record again (see ``_digest_with``).
_WE_WRITE = ("OwnerId", "Status")


def _hash_parts(rec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A digest of the fields we read (not the audit stamps our writes move), in two
    parts: the digest of the fields leadsync never writes, and the values of those it
    does; ``_digest_with`` joins them."""
    payload = json.dumps(
        {k: v for k, v in rec.items() if k not in _NOT_HASHED and k not in _WE_WRITE},
        sort_keys=True,
        default=str,
    )
    rest = hashlib.blake2b(payload.encode(), digest_size=8).hexdigest()
    return rest, {k: rec[k] for k in _WE_WRITE if k in rec}


def _digest_with(rest: str, written: Mapping[str, Any]) -> str:
    payload = json.dumps([rest, dict(written)], sort_keys=True, default=str)
    return hashlib.blake2b(payload.encode(), digest_size=8).hexdigest()


def _seen_stamp(stored: str) -> str:
    """The ``SystemModstamp`` of a remembered ``seen`` entry (``[deleted:]stamp[#digest]``)."""
    return stored.removeprefix(DELETED_MARK).partition("#")[0]


def _unchanged(stored: str | None, mark: str, digest: str) -> bool:
    """Whether a row read now is the one remembered: same stamp (and deletion state),
    and the same fields where the digest was kept (rows stamped in ``until``'s second)."""
    if stored is None:
        return False
    stamp, _, stored_digest = stored.partition("#")
    return stamp == mark and (not stored_digest or stored_digest == digest)


# Engagement for a batch of people. Only closed Tasks are engagement (an open one is
# work planned for the rep, such as leadsync's own follow-ups). ``{{ids}}``/``{who}``
# are filled per chunk; ``{since}`` is a SOQL datetime literal.
_TASK_QUERY = (
    "SELECT Id, WhoId, TaskSubtype, Type, Subject, Status, CreatedDate, CompletedDateTime "
    "FROM Task WHERE WhoId IN {{ids}} AND IsClosed = true AND CreatedDate >= {since}"
)
# Events are read with ``queryAll``: a meeting called off is a deleted Event, which
# mapping.event_event reports as ``meeting_cancelled``.
_EVENT_QUERY = (
    "SELECT Id, WhoId, Subject, StartDateTime, CreatedDate, IsDeleted, SystemModstamp "
    "FROM Event WHERE WhoId IN {{ids}} AND CreatedDate >= {since}"
)
_TASK_WINDOW = (
    "SELECT Id, WhoId, TaskSubtype, Type, Subject, Status, CreatedDate, CompletedDateTime "
    "FROM Task WHERE IsClosed = true AND CreatedDate >= {since} AND WhoId != null"
)
_EVENT_WINDOW = (
    "SELECT Id, WhoId, Subject, StartDateTime, CreatedDate, IsDeleted, SystemModstamp "
    "FROM Event WHERE CreatedDate >= {since} AND WhoId != null"
)
# Sources read with ``queryAll`` (deleted rows too).
_WITH_DELETED = frozenset({"Event"})
_MEMBER_WINDOW = (
    "SELECT Id, LeadId, ContactId, HasResponded, FirstRespondedDate, CreatedDate, "
    "Campaign.Type, Campaign.Name FROM CampaignMember WHERE HasResponded = true "
    "AND SystemModstamp >= {since}"
)
_MEMBER_QUERY = (
    "SELECT Id, LeadId, ContactId, HasResponded, FirstRespondedDate, CreatedDate, "
    "Campaign.Type, Campaign.Name FROM CampaignMember WHERE {{who}} "
    "AND HasResponded = true AND SystemModstamp >= {since}"
)


def _record_error(result: Mapping[str, Any]) -> tuple[str, bool]:
    errors = result.get("errors") or []
    parts: list[str] = []
    retriable = bool(errors)
    for err in errors if isinstance(errors, list) else []:
        if not isinstance(err, Mapping):
            continue
        code = str(err.get("statusCode") or err.get("errorCode") or "ERROR")
        text = f"{code}: {err.get('message') or ''}".strip()
        if err.get("fields"):
            text += f" (fields: {', '.join(map(str, err['fields']))})"
        parts.append(text)
        retriable = retriable and code in RETRIABLE_RECORD_ERRORS
    return "; ".join(parts) or "refused without a reason", retriable


_QUEUES = Query("SELECT Id, Name, Email FROM Group WHERE Type = 'Queue' ORDER BY Id", "read queues")


def _queue(rec: Mapping[str, Any]) -> Owner:
    return Owner(
        id=str(rec["Id"]),
        email=rec.get("Email") or None,
        name=rec.get("Name") or None,
        kind="queue",
    )


@dataclass(frozen=True)
class _ChangeQuery:
    """What one object's change read asks for (see ``_change_query``)."""

    obj: str
    since: datetime | None
    until: datetime
    full: bool
    master: bool | None  # None: a plain query; else a queryAll (with MasterRecordId if True)


class SalesforceConnector:
    """``connectors.base.Connector`` for Salesforce through simple-salesforce."""

    name = "salesforce"
    # The ``crm.salesforce`` section's schema, for leadsync.yaml checks (connectors/settings.py).
    settings_model = SalesforceSettingsModel

    def __init__(self, settings: SalesforceSettings, *, context: RuntimeContext) -> None:
        self.settings = settings
        self._ctx = context
        self.api = SalesforceApi(settings, context)
        self._fmaps = {obj: mapping.field_map(obj, settings.field_map) for obj in settings.objects}
        self._key_on_opportunity = False
        self.echoes_skipped = 0
        # Our own score writes bump SystemModstamp; to avoid re-reading every written
        # record next run, the state carries when we wrote each one and a hash of the
        # fields we had read (see _is_own_echo): ``checkpoint()`` adds the writes
        # made since the last complete read to that read's objects.
        # id -> ``_hash_parts`` of the record as read: our writes' digests (``_wrote``)
        self._read_hash: dict[str, tuple[str, dict[str, Any]]] = {}
        self._own_writes: dict[str, tuple[str, str]] = {}
        self._objects: dict[str, ObjectState] | None = None  # the last complete read's
        # object -> lower-case field name -> describe entry, and when it was described
        self._described: dict[str, dict[str, Mapping[str, Any]]] = {}
        self._described_at: dict[str, datetime] = {}
        self._queues_readable: bool | None = None  # None: not tried yet (see list_owners)

    @property
    def bucket(self) -> str:
        return self.api.bucket

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, context: RuntimeContext
    ) -> SalesforceConnector:
        return cls(parse_settings(config), context=context)

    # ================================================================== state
    def load_state(self, data: StoredState | None) -> SalesforceState | None:
        """A stored state: version 2, or version 1 (``"v": 1``) of earlier releases."""
        return None if data is None else SalesforceState.from_json(data)

    def checkpoint(self) -> SalesforceState | None:
        """The last complete read's objects with our score writes so far: a new value
        (the one the read yielded stays as it was)."""
        if self._objects is None:
            return None
        return SalesforceState(objects=self._objects, own_writes=self._own_writes)

    # ================================================================== reads
    def read_changes(
        self,
        state: SalesforceState | StoredState | None,
        *,
        until: datetime,
        events_since: datetime,
    ) -> Iterator[ReadBatch]:
        """Leads and Contacts changed since ``state`` (docs/connectors.md); a stored
        (JSON) state is accepted too and loaded first."""
        if until.tzinfo is None or events_since.tzinfo is None:
            raise ValueError("read_changes needs aware datetimes")
        if state is not None and not isinstance(state, SalesforceState):
            state = SalesforceState.from_json(state)
        self._objects = None
        # Whole seconds, the precision Salesforce documents for SOQL literals; rows in
        # the dropped fraction of a second come with the next read (look-back).
        until = until.replace(microsecond=0)
        events_since = events_since.replace(microsecond=0)
        lookback = timedelta(seconds=self.settings.lookback_seconds)
        # A full read reads everyone, so engagement is read for everyone at once by time
        # window (full 2,000-row pages, no id lists); an incremental read asks for the
        # changed people's engagement in id chunks.
        by_window = state is None
        target = PAGE_SIZE if by_window else self.batch_target()
        people: set[str] = set()
        horizon = until - lookback
        self._read_hash = {}
        own: Mapping[str, tuple[str, str]] = state.own_writes if state is not None else {}
        self._own_writes = {
            i: w for i, w in own.items() if (parse_datetime(w[0]) or horizon) >= horizon
        }
        new_objects: dict[str, ObjectState] = {}
        deletions: list[str] = []
        removed_merges: list[Merge] = []
        # Leads and Contacts share batches so that each engagement query carries as many
        # ids as the URL allows (a small incremental read needs one query per source).
        buffer: list[tuple[str, dict[str, Any]]] = []
        # An incremental read is one queryAll per object: changed rows and rows
        # deleted (or merged away) in the same window, told apart by IsDeleted,
        # instead of a second query for the recycle bin. The objects' first pages
        # come in one request (``first_pages``).
        plans: dict[str, tuple[ObjectState | None, _ChangeQuery]] = {}
        for obj in self.settings.objects:
            prev = state.objects.get(obj) if state is not None else None
            known_master = prev.master if prev is not None else None
            plans[obj] = (
                prev,
                _ChangeQuery(
                    obj,
                    since=None if prev is None else prev.until - lookback,
                    until=until,
                    full=prev is None,
                    master=None if prev is None else self._has_master(obj, known_master),
                ),
            )
        firsts = self.api.first_pages([self._change_query(q) for _p, q in plans.values()])
        for (obj, (prev, plan)), first in zip(plans.items(), firsts, strict=True):
            seen: dict[str, str] = dict(prev.seen) if prev is not None else {}
            known_master = prev.master if prev is not None else None
            emitted: set[str] = set()
            new_seen: dict[str, str] = {}
            pages = self._changed_pages(plan, first=first)
            for records in pages:
                for rec in records:
                    ident = str(rec.get("Id"))
                    stamp = str(rec.get("SystemModstamp") or "")
                    deleted = bool(rec.get("IsDeleted"))
                    # A delete in the same second as the last edit keeps the stamp:
                    # the mark tells the two apart.
                    mark = DELETED_MARK + stamp if deleted else stamp
                    parts = None if deleted else _hash_parts(rec)
                    digest = "" if parts is None else _digest_with(*parts)
                    if ident in emitted or _unchanged(seen.get(ident), mark, digest):
                        continue  # read twice in this run, or unchanged since the last run
                    emitted.add(ident)
                    if digest and (parse_datetime(stamp) or until) >= until:
                        # Stamps are whole seconds: a row stamped in the second of
                        # ``until`` may change again after this read and keep its
                        # stamp, so the fields' digest is remembered with it.
                        mark += "#" + digest
                    new_seen[ident] = mark
                    if deleted:
                        # A merge deletes the losers and names the survivor in
                        # MasterRecordId; a plain delete leaves it empty. Converted
                        # Leads are not deleted: they come as changed rows.
                        if rec.get("MasterRecordId"):
                            removed_merges.append(Merge(ident, str(rec["MasterRecordId"])))
                        else:
                            deletions.append(ident)
                        continue
                    if self._is_own_echo(rec, digest, own.get(ident)):
                        self.echoes_skipped += 1
                        continue
                    assert parts is not None  # (deleted rows went on above)
                    self._read_hash[ident] = parts
                    buffer.append((obj, rec))
                    if by_window and not rec.get("IsConverted"):
                        people.add(ident)
                while len(buffer) >= target:
                    yield self._batch(buffer[:target], events_since, with_events=not by_window)
                    del buffer[:target]
            kept = {
                i: s
                for i, s in {**seen, **new_seen}.items()
                if (parse_datetime(_seen_stamp(s)) or until) >= horizon
            }
            if len(kept) > MAX_SEEN:  # only costs a re-read of unchanged rows next time
                kept = dict(sorted(kept.items(), key=lambda kv: _seen_stamp(kv[1]))[-MAX_SEEN:])
            new_objects[obj] = ObjectState(
                until=until, seen=kept, master=self._master_memory(obj, known_master)
            )
        if by_window:
            yield from self._window_events(people, events_since)
        last = self._batch(buffer, events_since, with_events=not by_window)
        self._objects = new_objects
        yield ReadBatch(
            contacts=last.contacts,
            events=last.events,
            merges=(*last.merges, *removed_merges),
            deletions=tuple(deletions),
            state=SalesforceState(objects=new_objects, own_writes=self._own_writes),
        )

    def read_contacts(self, ids: Sequence[str], *, events_since: datetime) -> ReadBatch:
        """Given Leads and Contacts (SOQL ``Id IN`` per object, as many ids a query as
        the URL allows) with their activities since ``events_since``; unknown ids are
        left out, a converted Lead comes as a merge into its Contact. The state of
        change reads is not touched."""
        if events_since.tzinfo is None:
            raise ValueError("read_contacts needs an aware datetime")
        wanted = list(dict.fromkeys(str(i) for i in ids))
        items: list[tuple[str, dict[str, Any]]] = []
        for obj in self.settings.objects:
            # Ids carry their object's key prefix: ask each object only for its own.
            mine = [
                i for i in wanted if i[:3] not in KEY_PREFIX.values() or KEY_PREFIX[obj] == i[:3]
            ]
            if not mine:
                continue
            fields, _where = self._select(obj, full=False)
            select = ", ".join(dict.fromkeys(["Id", "SystemModstamp", *fields]))
            template = f"SELECT {select} FROM {obj} WHERE Id IN {{ids}}"
            for soql, _chunk in chunk_ids(mine, template):
                for page in self.api.query_pages(soql, what=f"read {obj} by id"):
                    items.extend((obj, rec) for rec in page)
        return self._batch(items, events_since.replace(microsecond=0))

    def _is_own_echo(
        self, rec: Mapping[str, Any], digest: str, written: tuple[str, str] | None
    ) -> bool:
        """True when the only change since our last read is our own score write: we
        wrote it (and are still its last modifier), nothing touched it after that
        write, and the fields we read are unchanged. A mismatched clock or a missing
        user id only makes this say False, which costs a re-read, never a miss."""
        if not written or self.api.user_id is None:
            return False
        if rec.get("LastModifiedById") != self.api.user_id:
            return False
        if rec.get("LastModifiedDate") != rec.get("SystemModstamp"):
            return False  # a system change (such as new activity) came after
        stamp = parse_datetime(rec.get("SystemModstamp"))
        wrote = parse_datetime(written[0])
        if stamp is None or wrote is None or stamp > wrote + OWN_WRITE_TOLERANCE:
            return False
        return bool(written[1] == digest)

    def batch_target(self) -> int:
        """People per incremental batch: a whole number of full engagement queries of
        the longest template, about one page."""
        since = "2000-01-01T00:00:00Z"
        per_query = min(
            ids_per_query(_TASK_QUERY.format(since=since)),
            ids_per_query(_EVENT_QUERY.format(since=since)),
            ids_per_query(
                _MEMBER_QUERY.format(since=since).replace(
                    "{who}", "(LeadId IN {ids} OR ContactId IN ())"
                )
            ),
        )
        return per_query * max(1, PAGE_SIZE // per_query)

    def _has_master(self, obj: str, known: tuple[datetime, bool] | None) -> bool:
        """Whether ``obj`` has ``MasterRecordId`` (which names a merge's survivor).
        Salesforce has it on Lead and Contact; an org or fake without it only reports
        deletions. Asked of ``describe`` at most once a day: what this process already
        described wins, then the answer remembered in the cursor while it is fresh."""
        if obj in self._described or known is None or self._ctx.now() - known[0] > DESCRIBE_MAX_AGE:
            return "masterrecordid" in self._fields(obj)
        return known[1]

    def _master_memory(
        self, obj: str, known: tuple[datetime, bool] | None
    ) -> tuple[datetime, bool] | None:
        """What the next state remembers about ``obj``'s MasterRecordId (no calls)."""
        if obj in self._described:
            at = self._described_at.get(obj) or self._ctx.now()
            return (at, "masterrecordid" in self._described[obj])
        return known

    def _select(self, obj: str, *, full: bool) -> tuple[list[str], str]:
        fmap = self._fmaps[obj]
        audit = ["LastModifiedById", "LastModifiedDate"]
        if obj == "Lead":
            # A full sync wants people to score; an incremental one also wants to see
            # conversions, which it reports as merges into the new Contact. The same
            # fields either way, so that _hash_parts compares like with like.
            extra = [*audit, "IsConverted", "ConvertedContactId"]
            where = "IsConverted = false" if full else ""
            return mapping.select_fields(fmap, extra, obj=obj), where
        return mapping.select_fields(fmap, audit, obj=obj), ""

    def _change_query(self, plan: _ChangeQuery, after: tuple[datetime, str] | None = None) -> Query:
        """The query of ``plan``'s rows, resumed after ``after`` when given."""
        obj = plan.obj
        fields, where = self._select(obj, full=plan.full)
        if plan.master is not None:
            fields = [*fields, "IsDeleted", *(["MasterRecordId"] if plan.master else [])]
        soql = changes_query(
            obj, fields, since=plan.since, until=plan.until, after=after, extra_where=where
        )
        return Query(soql, f"read {obj} changes", include_deleted=plan.master is not None)

    def _changed_pages(
        self, plan: _ChangeQuery, *, first: Mapping[str, Any] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of ``plan.obj`` changed in the window (``first``: the first page, when
        it came with other queries). ``plan.master`` not None makes it a ``queryAll``
        that also returns the rows deleted in the window, with ``IsDeleted`` (and
        ``MasterRecordId`` when ``master`` is True)."""
        obj = plan.obj
        after: tuple[datetime, str] | None = None
        for _ in range(MAX_LOCATOR_RESTARTS + 1):
            query = self._change_query(plan, after)
            try:
                for page in self.api.query_pages(
                    query.soql,
                    what=query.what,
                    include_deleted=query.include_deleted,
                    first=first,
                ):
                    first = None  # a restart queries again
                    if page:
                        last = page[-1]
                        stamp = parse_datetime(last.get("SystemModstamp"))
                        if stamp is not None:
                            after = (stamp, str(last["Id"]))
                    yield page
                return
            except QueryLocatorExpired:
                self.api.log.info("salesforce: %s query locator expired; resuming", obj)
        raise CRMResponseError(f"salesforce: {obj} query locators kept expiring; try again later")

    def _batch(
        self,
        items: Sequence[tuple[str, dict[str, Any]]],
        events_since: datetime,
        *,
        with_events: bool = True,
    ) -> ReadBatch:
        contacts: list[ContactRecord] = []
        merges: list[Merge] = []
        for obj, rec in items:
            converted = bool(rec.get("IsConverted"))
            contacts.append(mapping.to_contact(obj, rec, self._fmaps[obj], converted=converted))
            if converted and rec.get("ConvertedContactId"):
                merges.append(
                    Merge(merged_id=str(rec["Id"]), into_id=str(rec["ConvertedContactId"]))
                )
        live = [(c.id, c.kind) for c in contacts if not c.converted]
        events = self._events(live, events_since) if live and with_events else []
        return ReadBatch(contacts=tuple(contacts), events=tuple(events), merges=tuple(merges))

    def _events(self, people: Sequence[tuple[str, str]], since: datetime) -> list[EventRecord]:
        lit = soql_datetime(since)
        ids = [i for i, _kind in people]
        queries: list[tuple[str, str, Callable[[Mapping[str, Any]], EventRecord | None]]] = []
        for soql, _chunk in chunk_ids(ids, _TASK_QUERY.format(since=lit)):
            queries.append(("Task", soql, mapping.task_event))
        for soql, _chunk in chunk_ids(ids, _EVENT_QUERY.format(since=lit)):
            queries.append(("Event", soql, mapping.event_event))
        for soql in chunk_people(
            people, _MEMBER_QUERY.format(since=lit), lead_field="LeadId", contact_field="ContactId"
        ):
            queries.append(("CampaignMember", soql, mapping.campaign_member_event))
        events: dict[str, EventRecord] = {}
        asked = [Query(soql, f"read {name}", name in _WITH_DELETED) for name, soql, _c in queries]
        firsts = self.api.first_pages(asked)
        for (_n, _s, convert), query, first in zip(queries, asked, firsts, strict=True):
            for page in self.api.query_pages(
                query.soql, what=query.what, include_deleted=query.include_deleted, first=first
            ):
                for rec in page:
                    event = convert(rec)
                    if event is not None and event.occurred_at >= since:
                        events[event.id] = event
        return sorted(events.values(), key=lambda e: (e.occurred_at, e.id))

    def _window_events(self, people: set[str], since: datetime) -> Iterator[ReadBatch]:
        """Every engagement record since ``since``, a page at a time, kept when it
        belongs to someone this read returned."""
        lit = soql_datetime(since)
        sources = (
            ("Task", _TASK_WINDOW.format(since=lit), mapping.task_event),
            ("Event", _EVENT_WINDOW.format(since=lit), mapping.event_event),
            ("CampaignMember", _MEMBER_WINDOW.format(since=lit), mapping.campaign_member_event),
        )
        asked = [Query(soql, f"read {name}", name in _WITH_DELETED) for name, soql, _c in sources]
        firsts = self.api.first_pages(asked)
        for (_n, _s, convert), query, first in zip(sources, asked, firsts, strict=True):
            for page in self.api.query_pages(
                query.soql, what=query.what, include_deleted=query.include_deleted, first=first
            ):
                events = [
                    e
                    for e in map(convert, page)
                    if e is not None and e.contact_id in people and e.occurred_at >= since
                ]
                if events:
                    yield ReadBatch(events=tuple(events))

    def _fields(self, obj: str, *, with_: Sequence[str] = ()) -> dict[str, Mapping[str, Any]]:
        """``obj``'s fields by lower-case name, described once per connector; ``with_``
        names objects about to be needed too, described in the same request."""
        if obj not in self._described:
            wanted = [obj, *(o for o in with_ if o != obj and o not in self._described)]
            for name, described in self.api.describe_many(wanted).items():
                self._described_at[name] = self._ctx.now()
                self._described[name] = {
                    str(f.get("name", "")).lower(): f
                    for f in described.get("fields", [])
                    if isinstance(f, Mapping)
                }
        return self._described[obj]

    def list_owners(self) -> Sequence[Owner]:
        """Users (active or not), then lead queues (``Group`` with ``Type = 'Queue'``),
        which can own Leads (not Tasks: the sync gives a queue's Lead to a rep of its
        pool before acting). A SOQL dialect that refuses ``FROM Group`` (a parser that
        takes it for ``GROUP BY``) costs one refused call per connector and leaves the
        queues out."""
        owners: list[Owner] = []
        soql = "SELECT Id, Email, Name, IsActive FROM User ORDER BY Id"
        if self._queues_readable is not False:  # users and queues in one request
            self.api.prefetch([Query(soql, "read users"), _QUEUES])
        for page in self.api.query_pages(soql, what="read users"):
            for rec in page:
                owners.append(
                    Owner(
                        id=str(rec["Id"]),
                        email=rec.get("Email") or None,
                        name=rec.get("Name") or None,
                        active=bool(rec.get("IsActive", True)),
                    )
                )
        if self._queues_readable is not False:
            queues = self._queues()
            self._queues_readable = queues is not None
            owners.extend(queues or ())
        return owners

    def _queues(self) -> list[Owner] | None:
        soql = _QUEUES.soql
        timeout = self.settings.timeout_seconds
        first = self.api.ahead(_QUEUES)
        if first is not None:  # came with the users (a refusal comes as None: asked below)
            pages = self.api.query_pages(soql, what=_QUEUES.what, first=first)
            return [_queue(rec) for page in pages for rec in page]

        def attempt(sf: Any) -> list[dict[str, Any]] | None:
            try:
                result = sf.query_all(soql, timeout=timeout)
            except SalesforceMalformedRequest as exc:
                if {"MALFORMED_QUERY", "INVALID_TYPE"} & set(error_codes(exc.content)):
                    return None
                raise
            records = result.get("records") if isinstance(result, dict) else None
            return records if isinstance(records, list) else []

        records = self.api.call("read queues", attempt)
        if records is None:
            self.api.log.info("salesforce: Group queries are refused here; queues not listed")
            return None
        return [_queue(rec) for rec in records]

    def open_deals(self, contact_ids: Sequence[str]) -> Mapping[str, Sequence[DealRecord]]:
        out: dict[str, list[DealRecord]] = {cid: [] for cid in contact_ids}
        # Leads cannot have Opportunities: only Contacts (key prefix 003) are asked about.
        ids = [cid for cid in dict.fromkeys(contact_ids) if not cid.startswith("00Q")]
        # Whether leadsync's key field is on Opportunity decides which open deals are
        # ours (``skip_if_open_deal: ours``); it is asked of describe here (once per
        # connector, and only when there is a crossing to decide), never inferred from
        # whether ``ensure_fields`` happened to run in this process: a later run's new
        # connector would otherwise take its own open deal for someone else's.
        if not ids:
            return out
        # (Task is described in the same request: the act step's tasks need it next)
        has_key = self._key_on_opportunity or (
            self.settings.key_field.lower() in self._fields("Opportunity", with_=("Task",))
        )
        key = f", Opportunity.{self.settings.key_field}" if has_key else ""
        template = (
            "SELECT Id, ContactId, OpportunityId, Opportunity.Name, Opportunity.OwnerId, "
            f"Opportunity.StageName, Opportunity.Amount, Opportunity.CreatedDate{key} "
            "FROM OpportunityContactRole WHERE ContactId IN {ids} "
            "AND Opportunity.IsClosed = false"
        )
        for soql, _chunk in chunk_ids(ids, template):
            for page in self.api.query_pages(soql, what="read open opportunities"):
                for rec in page:
                    opp = rec.get("Opportunity") or {}
                    out.setdefault(str(rec["ContactId"]), []).append(
                        DealRecord(
                            id=str(rec["OpportunityId"]),
                            contact_id=str(rec["ContactId"]),
                            name=opp.get("Name"),
                            owner_id=opp.get("OwnerId"),
                            stage=opp.get("StageName"),
                            is_open=True,
                            amount=mapping.to_number(opp.get("Amount")),
                            created_at=parse_datetime(opp.get("CreatedDate")),
                            key=opp.get(self.settings.key_field) if key else None,
                        )
                    )
        return out

    def read_deal_outcomes(
        self, since: datetime | None, *, include_open: bool = True
    ) -> Iterator[DealRecord]:
        """Every Opportunity (closed ones only with ``include_open=False``; an open one
        tells that a contact is no longer a lead to score) changed since ``since``,
        with its creation date, one record per contact role."""
        clauses = [] if include_open else ["IsClosed = true"]
        if since is not None:
            clauses.append(f"SystemModstamp >= {soql_datetime(since)}")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        # The contact roles come in the same query, as a parent-to-child sub-query:
        # one call per page of Opportunities instead of two.
        soql = (
            "SELECT Id, Name, OwnerId, StageName, IsClosed, IsWon, Amount, CloseDate, "
            "CreatedDate, (SELECT ContactId FROM OpportunityContactRoles ORDER BY Id) "
            f"FROM Opportunity{where} ORDER BY SystemModstamp, Id"
        )
        # The outcomes read asks for the Lead conversions of the same window next:
        # both first pages come in one composite request (one call).
        from connectors.salesforce.outcomes import conversions_query

        self.api.prefetch([Query(soql, "read opportunities"), conversions_query(since)])
        for page in self.api.query_pages(soql, what="read opportunities"):
            roles: dict[str, list[str]] = {}
            for rec in page:
                nested = rec.get("OpportunityContactRoles") or {}
                roles[str(rec["Id"])] = [
                    str(role["ContactId"]) for role in nested.get("records") or []
                ]
            for rec in page:
                close = parse_date(rec.get("CloseDate"))
                is_open = rec.get("IsClosed") is False
                for contact_id in roles.get(str(rec["Id"]), []):
                    yield DealRecord(
                        id=str(rec["Id"]),
                        contact_id=contact_id,
                        name=rec.get("Name"),
                        owner_id=rec.get("OwnerId"),
                        stage=rec.get("StageName"),
                        is_open=is_open,
                        is_won=None if is_open else bool(rec.get("IsWon")),
                        amount=mapping.to_number(rec.get("Amount")),
                        created_at=parse_datetime(rec.get("CreatedDate")),
                        closed_at=(
                            None
                            if is_open or not close
                            else datetime.combine(close, time(), tzinfo=UTC)
                        ),
                    )

    def read_conversions(
        self, since: datetime | None
    ) -> Iterator[tuple[str, str, datetime, str | None]]:
        """Converted Leads (``ReadsConversions``): lead, contact, when, opportunity."""
        from connectors.salesforce.outcomes import read_conversions

        return read_conversions(self, since)

    # ================================================================== set-up
    def ensure_fields(
        self,
        fields: Sequence[FieldSpec],
        *,
        create: bool = True,
        actions: Collection[str] = ("deal", "task"),
    ) -> FieldCheck:
        """Salesforce custom fields are created through the Metadata API, which this
        connector does not use: it checks with ``describe`` and says what to create,
        whatever ``create`` asks (a dry run and a real run say the same). The key
        field is wanted on Opportunity and Task only when deals and tasks are created."""
        del create
        wanted: dict[str, list[tuple[str, str, bool, FieldSpec | None]]] = {}
        for obj in self.settings.objects:
            for field_spec in fields:
                type_text = "Number(5,2)" if field_spec.type == "number" else "Text(40)"
                wanted.setdefault(obj, []).append(
                    (self.settings.score_field(field_spec.name), type_text, False, field_spec)
                )
        for obj, action in (("Opportunity", "deal"), ("Task", "task")):
            if action in actions:
                wanted.setdefault(obj, []).append((self.settings.key_field, "Text(80)", True, None))
        present: list[str] = []
        missing: list[str] = []
        instructions: list[str] = []
        for obj, specs in wanted.items():
            self._described.pop(obj, None)  # fields may have been created since
            by_name = self._fields(obj)
            for name, type_text, is_key, spec in specs:
                label = f"{obj}.{name}"
                found = by_name.get(name.lower())
                api_name = name[:-3] if name.endswith("__c") else name
                where = f"Setup > Object Manager > {obj} > Fields & Relationships > New"
                if found is None:
                    missing.append(label)
                    extra = ", tick External ID and Unique" if is_key else ""
                    instructions.append(
                        f"{obj}: create custom field {name} (Field Name {api_name}) of type "
                        f"{type_text}{extra}, editable by the integration user ({where})"
                    )
                elif (
                    is_key
                    and obj == "Task"
                    and not (found.get("externalId") and found.get("unique"))
                ):
                    # Some orgs keep activity fields from being External ID or Unique:
                    # the key still works, by reading the person's Tasks before a create.
                    present.append(
                        f"{label} (not External ID and Unique: each Task is found by "
                        "reading its person's Tasks, one query per 200)"
                    )
                elif is_key and not (found.get("externalId") and found.get("unique")):
                    missing.append(label)
                    instructions.append(
                        f"{obj}: field {name} exists but must be an External ID and Unique "
                        f"(edit it in Setup > Object Manager > {obj} > Fields & Relationships)"
                    )
                elif spec is not None and (problem := salesforce_field_problem(spec, found)):
                    # exists, but cannot take a score (or a band): judged from describe
                    missing.append(label)
                    instructions.append(
                        f"{obj}: field {name} (for {spec.label or spec.name}) {problem}; "
                        f"point score_fields at another field, or create {name} as "
                        f"{type_text} ({where})"
                    )
                else:
                    present.append(label)
                    if is_key and obj == "Opportunity":
                        self._key_on_opportunity = True
        return FieldCheck(
            present=tuple(present), missing=tuple(missing), instructions=tuple(instructions)
        )

    def check_deal_settings(
        self, *, pipeline: str | None, stage: str, lead_status: str | None
    ) -> tuple[str, ...]:
        """Catch a stage or status typo at ``leadsync check`` time rather than as a
        refused write on the first crossing. Salesforce has no deal pipelines, so
        ``pipeline`` is ignored. Describe does not say which stages are closed (that
        lives in OpportunityStage), so a closed stage is not detected here."""
        del pipeline
        problems: list[str] = []
        where = "Setup > Object Manager > {} > Fields & Relationships > {}"
        problem = self._picklist_problem("Opportunity", "StageName", stage)
        if problem:
            problems.append(
                f"Opportunity stage {stage!r} of writeback.on_cross.deal.stage {problem}; "
                f"fix the value or activate it ({where.format('Opportunity', 'Stage')})"
            )
        if "Lead" in self.settings.objects:
            if not lead_status:
                problems.append(
                    "writeback.on_cross.deal.lead_status is empty: Leads get a status change "
                    "instead of an Opportunity; set it to an active Lead Status value"
                )
            else:
                problem = self._picklist_problem("Lead", "Status", lead_status)
                if problem:
                    problems.append(
                        f"Lead status {lead_status!r} of writeback.on_cross.deal.lead_status "
                        f"{problem}; fix the value or activate it "
                        f"({where.format('Lead', 'Lead Status')})"
                    )
        return tuple(problems)

    def _picklist_problem(self, obj: str, field_name: str, value: str) -> str | None:
        """Why ``value`` cannot be written to the picklist, or ``None`` when it can."""
        found = self._fields(obj).get(field_name.lower())
        if found is None:
            return f"cannot be checked: {obj}.{field_name} is not visible to the integration user"
        entries = [e for e in found.get("picklistValues") or [] if isinstance(e, Mapping)]
        active = [str(e.get("value")) for e in entries if e.get("active", True)]
        if value in active:
            return None
        inactive = {str(e.get("value")) for e in entries} - set(active)
        state = "is an inactive value" if value in inactive else "is not a value"
        return f"{state} of {obj}.{field_name} (active values: {', '.join(active) or 'none'})"

    # ================================================================== writes
    def write_scores(self, updates: Sequence[ScoreUpdate]) -> WriteResult:
        """Up to 200 records per sObject Collections call, Leads and Contacts mixed.
        Records refused only because they were locked get one more pass; every other
        refusal is reported with Salesforce's reason."""
        succeeded: list[str] = []
        failed: list[RecordFailure] = []
        pending: list[dict[str, Any]] = []
        for u in updates:
            record: dict[str, Any] = {"attributes": {"type": OBJECT_OF[u.kind]}, "id": u.contact_id}
            for logical, value in u.values.items():
                record[self.settings.score_field(logical)] = value
            pending.append(record)
        for attempt in range(2):
            retry: list[dict[str, Any]] = []
            for start in range(0, len(pending), COLLECTION_SIZE):
                chunk = pending[start : start + COLLECTION_SIZE]
                results = self.api.collection("PATCH", chunk, what="update scores")
                wrote = soql_datetime(self._ctx.now())
                for rec, res in zip(chunk, results, strict=True):
                    if res.get("success"):
                        succeeded.append(rec["id"])
                        self._wrote(rec, wrote)
                        continue
                    reason, retriable = _record_error(res)
                    if retriable and attempt == 0:
                        retry.append(rec)
                    else:
                        failed.append(RecordFailure(rec["id"], reason, retriable))
            pending = retry
            if not pending:
                break
        return WriteResult(succeeded=tuple(succeeded), failed=tuple(failed))

    def _one(
        self, method: str, record: dict[str, Any], *, what: str, path: str = ""
    ) -> Mapping[str, Any]:
        [result] = self.api.collection(method, [record], what=what, path=path)
        if not result.get("success"):
            reason, _ = _record_error(result)
            raise CRMResponseError(f"salesforce {what}: {reason}")
        return result

    def _opportunity(self, spec: DealSpec, contact: Mapping[str, Any]) -> dict[str, Any]:
        """The Opportunity record for ``spec``, on the Contact's account and, without an
        owner in the spec, with the Contact's owner (one shape for single and batch
        creates, so that a retry in either path writes the same record)."""
        opp: dict[str, Any] = {
            "attributes": {"type": "Opportunity"},
            self.settings.key_field: spec.key,
            "Name": spec.name,
            "StageName": spec.stage,
            "CloseDate": spec.close_date.isoformat(),
        }
        if contact.get("AccountId"):
            opp["AccountId"] = contact["AccountId"]
        owner = spec.owner_id or contact.get("OwnerId")
        if owner:
            opp["OwnerId"] = owner
        if spec.amount is not None:
            opp["Amount"] = spec.amount
        return opp

    def create_deal(self, spec: DealSpec) -> ActionResult:
        if spec.contact_kind == "lead":
            return self._lead_status(spec)
        rows = self._query_one(
            format_soql(
                "SELECT Id, AccountId, OwnerId FROM Contact WHERE Id = {}", spec.contact_id
            ),
            what="read contact for opportunity",
        )
        if not rows:
            raise CRMResponseError(f"salesforce create_deal: no Contact {spec.contact_id}")
        contact = rows[0]
        opp = self._opportunity(spec, contact)
        opp_id, created = self._create_keyed("Opportunity", opp, spec.key)
        self._ensure_contact_role(opp_id, spec.contact_id)
        note = None if contact.get("AccountId") else "the contact has no Account"
        return ActionResult(spec.key, opp_id, created=created, note=note)

    def _create_keyed(self, obj: str, record: dict[str, Any], key: str) -> tuple[str, bool]:
        """Create ``record`` once under ``key``: each attempt first reads by the key
        (the record may exist from an attempt whose answer was lost, or from an earlier
        run) and only then upserts by the external id, which cannot duplicate either.
        Reading first also keeps a rep's later edits from being overwritten."""
        key_field = self.settings.key_field
        found = self._fields(obj).get(key_field.lower())
        if found is None or not (found.get("externalId") and found.get("unique")):
            raise ConnectorConfigError(
                f"salesforce: {obj}.{key_field} must exist as a Text(80) External ID, Unique "
                f"field before leadsync can create {obj} records idempotently "
                f"(Setup > Object Manager > {obj} > Fields & Relationships > New)"
            )
        soql = format_soql(f"SELECT Id FROM {obj} WHERE {key_field} = {{}}", key)
        body = {"allOrNone": False, "records": [record]}
        timeout = self.settings.timeout_seconds

        def attempt(sf: Any) -> tuple[str, bool]:
            found = sf.query(soql, timeout=timeout).get("records") or []
            if found:
                return str(found[0]["Id"]), False
            [res] = sf.restful(
                f"composite/sobjects/{obj}/{key_field}", method="PATCH", json=body, timeout=timeout
            )
            if not res.get("success"):
                reason, _ = _record_error(res)
                raise CRMResponseError(f"salesforce create {obj}: {reason}")
            return str(res["id"]), bool(res.get("created", True))

        return self.api.call(f"create {obj} by key", attempt, idempotent=True)

    def _ensure_contact_role(self, opp_id: str, contact_id: str) -> None:
        """Check, then create: each attempt reads first, so a create whose answer was
        lost is found instead of made twice."""
        soql = format_soql(
            "SELECT Id FROM OpportunityContactRole WHERE OpportunityId = {} AND ContactId = {}",
            opp_id,
            contact_id,
        )
        timeout = self.settings.timeout_seconds

        def attempt(sf: Any) -> None:
            if sf.query(soql, timeout=timeout).get("records"):
                return
            body = {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": "OpportunityContactRole"},
                        "OpportunityId": opp_id,
                        "ContactId": contact_id,
                        "IsPrimary": True,
                    }
                ],
            }
            [res] = sf.restful("composite/sobjects", method="POST", json=body, timeout=timeout)
            if not res.get("success"):
                reason, _ = _record_error(res)
                raise CRMResponseError(f"salesforce create contact role: {reason}")

        self.api.call("link opportunity to contact", attempt, idempotent=True)

    def _lead_status(self, spec: DealSpec) -> ActionResult:
        status = spec.crm_options.get("lead_status")
        if not status:
            raise ConnectorConfigError(
                "salesforce create_deal: a Lead gets a status change instead of an "
                "Opportunity; DealSpec.crm_options['lead_status'] is required"
            )
        rows = self._query_one(
            format_soql("SELECT Id, Status FROM Lead WHERE Id = {}", spec.contact_id),
            what="read lead status",
        )
        if not rows:
            raise CRMResponseError(f"salesforce create_deal: no Lead {spec.contact_id}")
        if rows[0].get("Status") == status:
            return ActionResult(spec.key, spec.contact_id, created=False, note="status already set")
        self._one(
            "PATCH",
            {"attributes": {"type": "Lead"}, "id": spec.contact_id, "Status": status},
            what="update lead status",
        )
        return ActionResult(
            spec.key, spec.contact_id, created=True, note=f"Lead status set to {status}"
        )

    def create_task(self, spec: TaskSpec) -> ActionResult:
        [result] = self.create_tasks([spec])
        if isinstance(result, RecordFailure):
            raise CRMResponseError(f"salesforce create Task: {result.reason}")
        return result

    def _task_record(self, spec: TaskSpec) -> dict[str, Any]:
        task: dict[str, Any] = {
            "attributes": {"type": "Task"},
            self.settings.key_field: spec.key,
            "WhoId": spec.contact_id,
            "Subject": spec.subject,
            "Description": spec.body,
            "ActivityDate": spec.due_at.astimezone(UTC).date().isoformat(),
            "Priority": PRIORITY[spec.priority],
            "Status": "Not Started",
            # TaskSubtype is insert-only; a Task is only ever inserted (its key is read
            # first), so setting it cannot hit the upsert's update path.
            "TaskSubtype": TASK_SUBTYPE[spec.type],
            "Type": TASK_TYPE[spec.type],
        }
        if spec.owner_id:
            task["OwnerId"] = spec.owner_id
        return task

    # ------------------------------------------------------ actions in batches
    def create_deals(self, specs: Sequence[DealSpec]) -> Sequence[BatchOutcome]:
        """Opportunities for Contacts (a Contact read, a keyed read and an upsert per
        200, then their contact roles in one collection) and status changes for Leads
        (a read and an update per 200); see actions.py."""
        out: dict[str, BatchOutcome] = {}
        leads = [s for s in specs if s.contact_kind == "lead"]
        people = [s for s in specs if s.contact_kind != "lead"]
        if leads:
            self._lead_statuses(leads, out)
        if people:
            self._opportunities(people, out)
        return [out[s.key] for s in specs]

    def _key_mode(self, obj: str) -> bool:
        """Whether ``obj``'s key field is an External ID and Unique (upserts by key);
        ``False`` when it only exists (Tasks are then found through their person).
        Without the field nothing can be created exactly once: a set-up error."""
        key_field = self.settings.key_field
        found = self._fields(obj).get(key_field.lower())
        unique = found is not None and bool(found.get("externalId") and found.get("unique"))
        if found is None or (not unique and obj != "Task"):
            raise ConnectorConfigError(
                f"salesforce: {obj}.{key_field} must exist as a Text(80) External ID, Unique "
                f"field before leadsync can create {obj} records idempotently "
                f"(Setup > Object Manager > {obj} > Fields & Relationships > New)"
            )
        return unique

    def _opportunities(self, specs: Sequence[DealSpec], out: dict[str, BatchOutcome]) -> None:
        unique = self._key_mode("Opportunity")
        contacts: dict[str, Mapping[str, Any]] = {}
        template = "SELECT Id, AccountId, OwnerId FROM Contact WHERE Id IN {ids}"
        ids = list(dict.fromkeys(s.contact_id for s in specs))
        for soql, _ in chunk_ids(ids, template):
            for rec in self._query_one(soql, what="read contacts for opportunities"):
                contacts[str(rec["Id"])] = rec
        items: list[actions.Item] = []
        for spec in specs:
            contact = contacts.get(spec.contact_id)
            if contact is None:
                out[spec.key] = RecordFailure(spec.key, f"no Contact {spec.contact_id}")
                continue
            items.append((spec.key, spec.contact_id, self._opportunity(spec, contact)))
        made = actions.create_keyed(
            self.api,
            "Opportunity",
            self.settings.key_field,
            items,
            unique=unique,
            timeout=self.settings.timeout_seconds,
            error_text=_record_error,
            never_sent=never_sent(specs),
        )
        pairs: list[tuple[str, str]] = []
        fresh: set[str] = set()
        for key, contact_id, _ in items:
            result = made[key]
            if isinstance(result, ActionResult) and result.id:
                pairs.append((result.id, contact_id))
                if result.created and result.note is None:
                    fresh.add(result.id)
        refused = actions.ensure_roles(
            self.api,
            pairs,
            fresh=fresh,
            timeout=self.settings.timeout_seconds,
            error_text=_record_error,
        )
        for key, contact_id, _ in items:
            result = made[key]
            if isinstance(result, ActionResult) and result.id in refused:
                reason = f"contact role: {refused[result.id]}"
                result = RecordFailure(key, reason)
            elif isinstance(result, ActionResult) and not contacts[contact_id].get("AccountId"):
                result = ActionResult(key, result.id, result.created, "the contact has no Account")
            out[key] = result

    def _lead_statuses(self, specs: Sequence[DealSpec], out: dict[str, BatchOutcome]) -> None:
        if any(not s.crm_options.get("lead_status") for s in specs):
            raise ConnectorConfigError(
                "salesforce create_deal: a Lead gets a status change instead of an "
                "Opportunity; DealSpec.crm_options['lead_status'] is required"
            )
        status_of: dict[str, str | None] = {}
        ids = list(dict.fromkeys(s.contact_id for s in specs))
        for soql, _ in chunk_ids(ids, "SELECT Id, Status FROM Lead WHERE Id IN {ids}"):
            for rec in self._query_one(soql, what="read lead statuses"):
                status_of[str(rec["Id"])] = rec.get("Status")
        todo: dict[str, str] = {}  # one update per Lead
        for spec in specs:
            status = spec.crm_options["lead_status"]
            if spec.contact_id not in status_of:
                out[spec.key] = RecordFailure(spec.key, f"no Lead {spec.contact_id}")
            elif status_of[spec.contact_id] == status:
                out[spec.key] = ActionResult(
                    spec.key, spec.contact_id, created=False, note="status already set"
                )
            else:
                todo.setdefault(spec.contact_id, status)
        results = self._update_people(
            [{"attributes": {"type": "Lead"}, "id": i, "Status": s} for i, s in todo.items()],
            what="update lead statuses",
        )
        for spec in specs:
            if spec.key in out:
                continue
            error = results[spec.contact_id]
            status = spec.crm_options["lead_status"]
            out[spec.key] = (
                RecordFailure(spec.key, error)
                if error
                else ActionResult(
                    spec.key, spec.contact_id, created=True, note=f"Lead status set to {status}"
                )
            )

    def _wrote(self, record: Mapping[str, Any], wrote: str) -> None:
        """Remember our write of ``record`` (a collection record: ``id`` and the fields
        written) with the digest its read fields have after it."""
        ident = str(record["id"])
        parts = self._read_hash.get(ident)
        if parts is None:
            return
        rest, written = parts
        written = {**written, **{k: record[k] for k in _WE_WRITE if k in record}}
        self._read_hash[ident] = (rest, written)
        self._own_writes[ident] = (wrote, _digest_with(rest, written))

    def _update_people(self, records: list[dict[str, Any]], *, what: str) -> dict[str, str | None]:
        """Updates of Leads and Contacts, 200 per collection; ``id → None`` when
        written, else the reason. Each write is remembered like a score write, so
        that the next read does not take it for someone else's change."""
        out: dict[str, str | None] = {}
        for start in range(0, len(records), COLLECTION_SIZE):
            chunk = records[start : start + COLLECTION_SIZE]
            results = self.api.collection("PATCH", chunk, what=what)
            wrote = soql_datetime(self._ctx.now())
            for rec, res in zip(chunk, results, strict=True):
                if res.get("success"):
                    out[rec["id"]] = None
                    self._wrote(rec, wrote)
                else:
                    out[rec["id"]] = _record_error(res)[0]
        return out

    def create_tasks(self, specs: Sequence[TaskSpec]) -> Sequence[BatchOutcome]:
        """Tasks by key, 200 per keyed read and upsert (or, when the org keeps the Task
        key from being External ID and Unique, per read of the people's Tasks and
        insert)."""
        if not specs:
            return []
        unique = self._key_mode("Task")
        items = [(s.key, s.contact_id, self._task_record(s)) for s in specs]
        made = actions.create_keyed(
            self.api,
            "Task",
            self.settings.key_field,
            items,
            unique=unique,
            timeout=self.settings.timeout_seconds,
            error_text=_record_error,
            never_sent=never_sent(specs),
        )
        return [made[s.key] for s in specs]

    def set_owners(self, specs: Sequence[OwnerSpec]) -> Sequence[BatchOutcome]:
        """Owner changes of Leads and Contacts, 200 per collection update."""
        records = {
            s.contact_id: {
                "attributes": {"type": OBJECT_OF[s.kind]},
                "id": s.contact_id,
                "OwnerId": s.owner_id,
            }
            for s in specs
        }
        results = self._update_people(list(records.values()), what="set owners")
        return [
            RecordFailure(s.key, error)
            if (error := results[s.contact_id])
            else ActionResult(s.key, s.owner_id, created=True)
            for s in specs
        ]

    def set_owner(self, contact_id: str, owner_id: str, *, kind: ContactKind = "contact") -> None:
        obj = OBJECT_OF[kind]
        self._one(
            "PATCH",
            {"attributes": {"type": obj}, "id": contact_id, "OwnerId": owner_id},
            what=f"set {obj} owner",
        )

    def _query_one(self, soql: str, *, what: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for page in self.api.query_pages(soql, what=what):
            rows.extend(page)
        return rows

    # ================================================================== report
    def budget(self) -> Budget:
        return self.api.meter.budget()

    def close(self) -> None:
        self.api.close()
