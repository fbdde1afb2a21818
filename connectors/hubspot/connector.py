"""``HubSpotConnector``: the ``connectors.base.Connector`` protocol over HubSpot.

All calls go through :class:`~connectors.hubspot.transport.HubSpotTransport` (auth,
pacing, retries, quota, redaction); change reads live in ``reads.py``. Score writes
are remembered in the state (``own_writes.py``, ``state.py``) so that the next read does not take
them for changes and, when nobody else changed anything, costs one count. Writes are
idempotent under the caller's key without ever using search (its index lags writes
by seconds): deals are found again by a read on the unique-valued ``leadsync_key``
property (``idProperty``), tasks by reading the contact's associated tasks.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time
from typing import Any, Literal

from connectors.base import (
    ActionResult,
    BatchOutcome,
    Budget,
    ConnectorConfigError,
    ConnectorError,
    ContactKind,
    ContactRecord,
    CRMResponseError,
    DealRecord,
    DealSpec,
    EventRecord,
    FieldCheck,
    FieldSpec,
    Merge,
    NotRetried,
    Owner,
    OwnerSpec,
    ReadBatch,
    RecordFailure,
    RuntimeContext,
    ScoreUpdate,
    StoredState,
    TaskSpec,
    WriteResult,
    bucket_of,
    never_sent,
)
from connectors.fieldcheck import hubspot_property_problem
from connectors.hubspot import actions, reads
from connectors.hubspot.own_writes import (
    OWNER_PROPERTY,
    OwnWriteChecks,
    OwnWrites,
    ReadWrites,
    rest_digest,
    stamp_ms,
    with_owner,
)
from connectors.hubspot.reads import Raw, SourceUnavailable
from connectors.hubspot.settings import HubSpotSettingsModel
from connectors.hubspot.state import HubSpotState, pack_own_deals, unpack_own_deals
from connectors.hubspot.transport import HubSpotTransport, OAuthCredentials
from connectors.hubspot.values import (
    ANALYTICS_PROPERTIES,
    SYSTEM_PROPERTIES,
    FieldMapping,
    canonical_fields,
    field_mappings,
    merged_ids,
    summary_events,
    to_datetime,
    to_epoch_ms,
    to_number,
    to_text,
)
from connectors.runtime import RecordRejected
from connectors.settings import parse_settings_model

KEY_PROPERTY = "leadsync_key"
DEAL_PROPERTIES = (
    "dealname",
    "dealstage",
    "pipeline",
    "amount",
    "hubspot_owner_id",
    "createdate",
    "closedate",
    "hs_is_closed",
    "hs_is_closed_won",
    KEY_PROPERTY,
)
CLOSED_STAGES = {"closedwon": True, "closedlost": False}
MAX_OWN_DEALS = 100_000
PRIORITY = {"low": "LOW", "medium": "MEDIUM", "high": "HIGH"}
TASK_TYPE = {"call": "CALL", "email": "EMAIL", "todo": "TODO"}
_PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SETUP_PROBLEM = re.compile(r"PROPERTY_DOESNT_EXIST|READ_ONLY_VALUE|does not exist|read only")


@dataclass(frozen=True)
class Settings:
    base_url: str = "https://api.hubapi.com"
    access_token: str | None = None
    oauth: OAuthCredentials | None = None
    tier: str = "pro"
    headroom: float = 0.9
    quota_share: float = 0.25
    mappings: tuple[FieldMapping, ...] = ()
    score_fields: Mapping[str, str] = field(default_factory=dict)
    web_analytics: bool = False
    email_events: bool = True
    form_submissions: bool = True
    lookback_seconds: float = 300.0
    batch_size: int = 1000
    max_attempts: int = 5
    timeout_seconds: float = 30.0
    deal_pipeline: str = "default"

    @classmethod
    def parse(cls, config: Mapping[str, Any], *, source: str = "crm") -> Settings:
        """Validate with :class:`HubSpotSettingsModel`; one ``source.key: problem`` line."""
        return cls.from_model(parse_settings_model(HubSpotSettingsModel, config, prefix=source))

    @classmethod
    def from_model(cls, model: HubSpotSettingsModel) -> Settings:
        oauth = None
        if model.oauth is not None:
            oauth = OAuthCredentials(
                model.oauth.client_id, model.oauth.client_secret, model.oauth.refresh_token
            )
        return cls(
            base_url=model.base_url,
            access_token=model.access_token,
            oauth=oauth,
            tier=model.tier,
            headroom=model.headroom,
            quota_share=model.quota_share,
            mappings=field_mappings(model.property_map, source="crm.property_map"),
            score_fields=dict(model.score_fields),
            web_analytics=model.web_analytics,
            email_events=model.email_events,
            form_submissions=model.form_submissions,
            lookback_seconds=model.lookback_seconds,
            batch_size=model.batch_size,
            max_attempts=model.max_attempts,
            timeout_seconds=model.timeout_seconds,
            deal_pipeline=model.deal_pipeline,
        )


class HubSpotConnector:
    """HubSpot through ``hubspot-api-client``; see docs/connectors.md."""

    name = "hubspot"
    # The ``crm.hubspot`` section's schema, for leadsync.yaml checks (connectors/settings.py).
    settings_model = HubSpotSettingsModel

    def __init__(self, settings: Settings, *, context: RuntimeContext) -> None:
        self.settings = settings
        self.context = context
        # The API budget: the account, named by a digest of its credentials (never
        # the secret itself).
        identity = settings.access_token or (settings.oauth.client_id if settings.oauth else "")
        self.bucket = bucket_of("hubspot", identity)
        self.transport = HubSpotTransport(
            base_url=settings.base_url,
            access_token=settings.access_token,
            oauth=settings.oauth,
            tier=settings.tier,
            headroom=settings.headroom,
            quota_share=settings.quota_share,
            now=context.now,
            sleep=context.sleep,
            max_attempts=settings.max_attempts,
            timeout=settings.timeout_seconds,
            redactor=context.redactor,
            # Search has its own per-second limit: its calls spend "<bucket>:search".
            reserve=lambda kind: context.reserve(
                self.bucket + (":search" if kind == "search" else "")
            ),
        )
        self.log = self.transport.log
        # our own writes told from other clients' changes (own_writes.py)
        self.checks = OwnWriteChecks(
            self.transport, properties=self._contact_properties, digest=self._digest
        )
        self._sources_off: set[str] = set()
        self._stages: dict[str, tuple[bool, bool | None]] | None = None  # id -> (open, won)
        self._key_checked: set[str] = set()
        # deal id -> contact id of the deals this connector created (or found by its
        # key), each with the association it was created with: an outcomes read takes
        # an open one's contact from here instead of an association read (see
        # ``read_deal_outcomes``). Oldest dropped beyond MAX_OWN_DEALS.
        self._own_deals: dict[str, tuple[str, int]] = {}  # deal -> (contact, created ms)
        # Contacts a deal of ours was associated with since the last checkpoint.
        self._linked: set[str] = set()
        # Our own writes (see own_writes.py): those after a read are remembered with
        # that read and go into ``checkpoint()``; those made before any read wait
        # here for the next one.
        self._read: ReadWrites | None = None
        # id -> (digest of the read fields but the owner, the owner): our writes' digests
        self._read_hash: dict[str, tuple[str, str | None]] = {}
        self._unattached = OwnWrites()
        self.echoes_skipped = 0  # contacts not delivered: only our write changed them
        self.fast_reads = 0  # incremental reads settled by one count

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, context: RuntimeContext) -> HubSpotConnector:
        return cls(Settings.parse(config), context=context)

    # ------------------------------------------------------------------ helpers
    def _crm_field(self, logical: str) -> str:
        return self.settings.score_fields.get(logical, logical)

    def _contact_properties(self) -> list[str]:
        props = [m.prop for m in self.settings.mappings]
        props += list(SYSTEM_PROPERTIES) + list(ANALYTICS_PROPERTIES)
        props += [self._crm_field(f) for f in self.settings.score_fields]
        return list(dict.fromkeys(props))

    def _contact(self, raw: Raw) -> ContactRecord:
        props = raw.get("properties") or {}
        cid = str(raw.get("id"))
        fields = canonical_fields(props, self.settings.mappings)
        for logical in self.settings.score_fields:
            value = to_number(props.get(self._crm_field(logical)))
            if value is not None:
                fields.setdefault(logical, value)
        updated = to_datetime(props.get("lastmodifieddate")) or to_datetime(raw.get("updatedAt"))
        return ContactRecord(id=cid, fields=fields, updated_at=updated)

    # -------------------------------------------------------------------- state
    def load_state(self, data: StoredState | None) -> HubSpotState | None:
        """A stored state (the format has not changed since the first release)."""
        state = None if data is None else HubSpotState.from_json(data)
        self._recall_deals(state)
        return state

    def _recall_deals(self, state: HubSpotState | None) -> None:
        """The deals a previous process created, so that their contacts need no
        association read (``read_deal_outcomes``); this process's own win."""
        if state is not None:
            self._own_deals = {**state.own_deals, **self._own_deals}

    def checkpoint(self) -> HubSpotState | None:
        """The last complete read's state with the score writes made since, and the
        deals created: a new value each time (the one the read yielded stays as it
        was). Contacts our deals were associated with get their new stamps first
        (``_settle_linked``)."""
        read = self._read
        if read is None or not read.done:
            return None
        self._settle_linked()
        return replace(read.snapshot(), own_deals=self._own_deals)

    def _settle_linked(self) -> None:
        """A deal associated with a contact raises the contact's calculated
        ``num_associated_deals``, which moves its ``lastmodifieddate`` to a stamp no
        answer of ours carried: read those contacts' stamps (one batch read per 100)
        and remember them as our own writes, with the digest of the fields we read,
        so that the next read does not take them for changes. If the read fails, or
        HubSpot recalculates after it, those contacts are re-read next run: a cost,
        never a miss. A score write after the deals answers with those stamps, and
        takes its contacts off the list (``write_scores``)."""
        ids = sorted(self._linked)
        self._linked.clear()
        if not ids:
            return
        try:
            raws = reads.batch_read(self.transport, "contacts", ids, ["lastmodifieddate"])
        except ConnectorError as exc:
            self.log.info("hubspot: new stamps of linked contacts not read: %s", exc)
            return
        stamps = {str(r.get("id")): s for r in raws if (s := stamp_ms(r)) is not None}
        self._remember(stamps)

    # -------------------------------------------------------------------- reads
    def read_changes(
        self,
        state: HubSpotState | StoredState | None,
        *,
        until: datetime,
        events_since: datetime,
    ) -> Iterator[ReadBatch]:
        """Contacts changed since ``state`` (see docs/connectors.md, "Reading changes").

        Score writes that follow the read are remembered with it and go into
        ``checkpoint()``, so that the next read does not take them for changes.
        A stored (JSON) state is accepted too and loaded first."""
        if state is not None and not isinstance(state, HubSpotState):
            state = HubSpotState.from_json(state)
        self._recall_deals(state)
        until = _aware(until, "until")
        events_since = _aware(events_since, "events_since")
        props = self._contact_properties()
        lookback = self.settings.lookback_seconds
        boundary: dict[str, int] = {}
        own = OwnWrites()
        since: datetime | None = None
        deleted: tuple[str, ...] = ()
        window_since = events_since
        if self._read is not None:
            # writes after the previous read whose state the caller may have stored
            # before them (say, retries before this read): remembered, but dirty
            self._unattached.absorb(self._read.own)
        self._read = None
        self._read_hash = {}
        if state is None:
            pages: Iterator[list[Raw]] = reads.list_all(self.transport, "contacts", props)
        else:
            since = datetime.fromtimestamp(state.since_ms / 1000, tz=UTC)
            boundary, own, checked = (
                dict(state.boundary),
                state.own_writes(),
                state.boundary_checked,
            )
            start = reads.look_back(since, lookback)
            # time-window sources: only what is new since the previous read
            window_since = max(events_since, start)
            own.absorb(self._unattached.missing_from(own))
            deleted = self._deleted_since(start)
            vouched = boundary if checked else {}
            if self.checks.unchanged_since(own, vouched, start, deleted):
                self.fast_reads += 1
                pages = iter(())
            else:
                pages = reads.search_window(
                    self.transport,
                    "contacts",
                    modified_prop="lastmodifieddate",
                    since=start,
                    until=until,
                    properties=props,
                )
        self._unattached = OwnWrites()
        context = _EventContext(events_since, until, window_since)
        seen: set[str] = set()
        new_boundary: dict[str, int] = {}
        until_ms = int(to_epoch_ms(until))
        boundary_from = int(to_epoch_ms(reads.look_back(until, lookback)))
        # writes made from here on (between batches, or after the read) belong to
        # the state of this read
        read = ReadWrites(until_ms, boundary_from, new_boundary, own.expire(boundary_from))
        self._read = read
        buffer: list[Raw] = []
        for page in pages:
            for raw in page:
                cid = str(raw.get("id"))
                if cid in seen:
                    continue
                seen.add(cid)
                stamp = stamp_ms(raw)
                if stamp is not None and boundary_from <= stamp <= until_ms:
                    new_boundary[cid] = stamp
                if (
                    read.suspects
                    and stamp is not None
                    and stamp >= read.suspects.get(cid, stamp + 1)
                ):
                    del read.suspects[cid]  # read at (or after) the version the check saw
                rest, owner = self._digest_parts(raw)
                digest = with_owner(rest, owner)
                self._read_hash[cid] = (rest, owner)  # for our write of it, if any
                if stamp is not None and boundary.get(cid) == stamp:
                    continue  # delivered by the previous run, unchanged since
                if stamp is not None and own.is_echo(cid, stamp, digest):
                    self.echoes_skipped += 1
                    continue  # only our own score write changed it
                buffer.append(raw)
            while len(buffer) >= self.settings.batch_size:
                chunk, buffer = (
                    buffer[: self.settings.batch_size],
                    buffer[self.settings.batch_size :],
                )
                yield self._batch(chunk, context)
        last = self._batch(buffer, context) if buffer else ReadBatch()
        read.complete = True
        if read.suspects is not None:
            # writes came between batches, after a check that saw only part of the
            # read: look again now that the boundary map is complete
            self.checks.recheck(read)
        read.done = True
        yield ReadBatch(
            contacts=last.contacts,
            events=last.events,
            merges=last.merges,
            deletions=tuple(d for d in deleted if d not in seen),
            state=read.snapshot(),
        )

    def read_contacts(self, ids: Sequence[str], *, events_since: datetime) -> ReadBatch:
        """Given contacts (batch reads of 100) with their engagement since
        ``events_since``; unknown ids are left out. The portal-wide time-window
        sources (marketing e-mail events, form submissions) are not read for a few
        contacts: the contact's summary properties stand in for them. The state of
        change reads is not touched."""
        events_since = _aware(events_since, "events_since")
        wanted = list(dict.fromkeys(str(i) for i in ids))
        if not wanted:
            return ReadBatch()
        raws = reads.batch_read(self.transport, "contacts", wanted, self._contact_properties())
        # the digests of what was read: a score write after this read is then known
        # as ours by another process's change read (``own_writes``)
        self._read_hash.update({str(r.get("id")): self._digest_parts(r) for r in raws})
        now = self.context.now()
        return self._batch(raws, _EventContext(events_since, now, events_since, portal=False))

    def own_writes(self) -> StoredState:
        """Score writes made outside a change read (``leadsync serve``'s, after
        ``read_contacts``), packed as the cursor packs them: ``with_own_writes`` of
        the scheduled run's connector takes them. Those older than a day are dropped
        (a run reads at least that often; an older one only costs a re-read)."""
        self._settle_linked()  # the contacts its deals were linked to, as checkpoint() does
        horizon = int(to_epoch_ms(self.context.now())) - 86_400_000
        self._unattached = self._unattached.expire(horizon)
        packed: dict[str, object] = dict(self._unattached.pack())
        deals = pack_own_deals(self._own_deals, now_ms=int(to_epoch_ms(self.context.now())))
        if deals:
            packed["own_deals"] = deals  # so that the run's outcomes read knows their contacts
        return packed

    def with_own_writes(
        self, state: HubSpotState | StoredState | None, writes: StoredState
    ) -> HubSpotState | None:
        """``state`` with another process's score writes (``own_writes``) as this
        connector's own, so that the read from it skips their echoes by digest. They
        count as dirty (nothing checked them against other clients' changes): while
        one is inside the read's window a search replaces the count shortcut."""
        if state is None:
            return None
        if not isinstance(state, HubSpotState):
            state = HubSpotState.from_json(state)
        try:
            other = OwnWrites.unpack(writes)
            deals = unpack_own_deals(writes)
        except (TypeError, ValueError, AttributeError):
            return state  # unreadable: only costs a re-read
        own = state.own_writes()
        own.absorb(other.missing_from(own))
        return dataclasses.replace(
            state,
            own=own.stamps,
            own_dirty_until=own.dirty_until,
            own_deals={**deals, **state.own_deals},
        )

    def _digest(self, raw: Raw) -> str:
        return with_owner(*self._digest_parts(raw))

    def _digest_parts(self, raw: Raw) -> tuple[str, str | None]:
        """``_digest`` as (the fields but the owner, the owner): see ``with_owner``."""
        props = raw.get("properties") or {}
        skip = [self._crm_field(f) for f in self.settings.score_fields]
        owner = props.get(OWNER_PROPERTY)
        return rest_digest(props, skip), None if owner in (None, "") else str(owner)

    def _batch(self, raws: Sequence[Raw], ctx: _EventContext) -> ReadBatch:
        contacts = [self._contact(r) for r in raws]
        merges = tuple(
            Merge(m, c.id)
            for c, r in zip(contacts, raws, strict=True)
            for m in merged_ids(r.get("properties") or {}, c.id)
        )
        events = self._events(raws, contacts, ctx)
        return ReadBatch(contacts=tuple(contacts), events=tuple(events), merges=merges)

    def _events(
        self, raws: Sequence[Raw], contacts: Sequence[ContactRecord], ctx: _EventContext
    ) -> list[EventRecord]:
        if not contacts:
            return []
        ids = [c.id for c in contacts]
        since = ctx.events_since
        events = reads.engagement_events(self.transport, ids, since=since)
        email_on = self._source(ctx, "email_events")
        forms_on = self._source(ctx, "form_submissions")
        if self.settings.web_analytics:
            events += reads.web_analytics_events(self.transport, ids, since=since)
        for raw, contact in zip(raws, contacts, strict=True):
            for address in _addresses(contact, raw):
                if email_on and ctx.email is not None:
                    events += ctx.email.events_for(contact.id, address, since)
                if forms_on and ctx.forms is not None:
                    events += ctx.forms.events_for(contact.id, address)
            events += summary_events(
                contact.id,
                raw.get("properties") or {},
                since=since,
                page_views=not self.settings.web_analytics,
                email=not email_on,
                forms=not forms_on,
            )
        return events

    def _source(self, ctx: _EventContext, name: str) -> bool:
        """Read an optional event source once per run, and only once a read has found
        a changed contact; a portal without it (403/404) falls back to the contact's
        summary properties.

        These sources can only be read by time window over the whole portal. A full
        read takes the whole ``events_since`` window; an incremental one only what
        is new since the previous read (its cursor minus the look-back): an e-mail
        open, click or form submission also updates the contact's own properties,
        so its contact is among the changed ones, and older events were delivered
        with the read that found them."""
        if not ctx.portal or not getattr(self.settings, name) or name in self._sources_off:
            return False
        try:
            if name == "email_events" and ctx.email is None:
                ctx.email = reads.EmailEvents.read(self.transport, ctx.window_since, None)
            if name == "form_submissions" and ctx.forms is None:
                ctx.forms = reads.FormSubmissions.read(self.transport, ctx.window_since)
        except SourceUnavailable as exc:
            self._sources_off.add(name)
            self.log.warning(
                "hubspot: %s unavailable (%s); using contact summary properties", name, exc
            )
            return False
        return True

    def _deleted_since(self, since: datetime) -> tuple[str, ...]:
        out: list[str] = []
        for raw in reads.list_archived(self.transport, "contacts"):
            when = to_datetime(raw.get("archivedAt")) or to_datetime(raw.get("updatedAt"))
            if when is None or when >= since:
                out.append(str(raw.get("id")))
        return tuple(out)

    def list_owners(self) -> Sequence[Owner]:
        api = self.transport.api("crm.owners.owners_api")
        owners: list[Owner] = []
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 500, "archived": False}
            if after is not None:
                kwargs["after"] = after
            reply = self.transport.call("list owners", api.get_page, **kwargs)
            results, after = reads.page_results(reply.data)
            for raw in results:
                name = " ".join(
                    p for p in (to_text(raw.get("firstName")), to_text(raw.get("lastName"))) if p
                )
                kind: Literal["person", "queue"] = (
                    "queue" if str(raw.get("type", "")).upper() == "QUEUE" else "person"
                )
                owners.append(
                    Owner(
                        id=str(raw.get("id")),
                        email=to_text(raw.get("email")),
                        name=name or None,
                        active=not bool(raw.get("archived")),
                        kind=kind,
                    )
                )
            if after is None:
                return owners

    # ---------------------------------------------------------------- deals
    def _stage_map(self) -> dict[str, tuple[bool, bool | None]]:
        """Deal stage id → (open, won) from the pipelines, when the portal serves them."""
        if self._stages is not None:
            return self._stages
        stages: dict[str, tuple[bool, bool | None]] = {}
        try:
            results = self._deal_pipelines()
        except RecordRejected:
            results = []
        for pipeline in results:
            for stage in pipeline.get("stages") or []:
                meta = stage.get("metadata") or {}
                closed = str(meta.get("isClosed", "false")).lower() == "true"
                probability = to_number(meta.get("probability"))
                won = None if not closed else (probability is not None and probability >= 1)
                stages[str(stage.get("id"))] = (not closed, won)
        self._stages = stages
        return stages

    def _deal_pipelines(self) -> list[Raw]:
        """The raw deal pipelines with their stages; ``RecordRejected`` when refused."""
        api = self.transport.api("crm.pipelines.pipelines_api")
        reply = self.transport.call("deal pipelines", api.get_all, "deals")
        results, _ = reads.page_results(reply.data)
        return [p for p in results if isinstance(p, Mapping)]

    def check_deal_settings(
        self, *, pipeline: str | None, stage: str, lead_status: str | None
    ) -> tuple[str, ...]:
        """Catch a pipeline or stage typo at ``leadsync check`` time rather than as a
        rejected deal on the first crossing. Ids and labels are both accepted (labels
        case-insensitively) because the HubSpot UI shows labels. ``lead_status`` is a
        Salesforce notion and is ignored here."""
        del lead_status
        wanted = pipeline or self.settings.deal_pipeline
        try:
            pipelines = self._deal_pipelines()
        except RecordRejected as exc:
            return (
                f"deal pipelines cannot be read (HTTP {exc.status}); grant the app the "
                "crm.objects.deals.read scope, or set writeback.on_cross.deal to null",
            )
        found = _match_by_id_or_label(pipelines, wanted)
        if found is None:
            names = ", ".join(f"{p.get('id')} ({p.get('label')})" for p in pipelines) or "none"
            return (
                f"deal pipeline {wanted!r} of writeback.on_cross.deal.pipeline does not exist "
                f"in HubSpot; use one of: {names}",
            )
        stages = [s for s in found.get("stages") or [] if isinstance(s, Mapping)]
        hit = _match_by_id_or_label(stages, stage)
        if hit is None:
            names = ", ".join(f"{s.get('id')} ({s.get('label')})" for s in stages) or "none"
            return (
                f"deal stage {stage!r} of writeback.on_cross.deal.stage is not a stage of "
                f"pipeline {found.get('label')!r}; use one of: {names}",
            )
        meta = hit.get("metadata") or {}
        if str(meta.get("isClosed", "false")).lower() == "true":
            return (
                f"deal stage {stage!r} of writeback.on_cross.deal.stage is a closed stage: "
                "deals would be created closed; choose an open stage of pipeline "
                f"{found.get('label')!r}",
            )
        return ()

    def _deal(self, raw: Raw, contact_id: str) -> DealRecord:
        props = raw.get("properties") or {}
        stage = to_text(props.get("dealstage"))
        # HubSpot derives ``hs_is_closed`` and ``hs_is_closed_won`` from the stage's
        # metadata: read with the deal, they save the pipelines read; the stage map
        # is the fallback for a portal that does not answer them.
        closed_flag = to_text(props.get("hs_is_closed"))
        known = (
            (closed_flag == "false", to_text(props.get("hs_is_closed_won")) == "true")
            if closed_flag in ("true", "false")
            else self._stage_map().get(stage or "")
        )
        if known is not None:
            is_open, won = known
        else:
            won = CLOSED_STAGES.get(stage or "")
            is_open = stage not in CLOSED_STAGES
        closed_at = None if is_open else to_datetime(props.get("closedate"))
        return DealRecord(
            id=str(raw.get("id")),
            contact_id=contact_id,
            name=to_text(props.get("dealname")),
            owner_id=to_text(props.get("hubspot_owner_id")),
            stage=stage,
            is_open=is_open,
            is_won=None if is_open else won,
            amount=_float(props.get("amount")),
            created_at=to_datetime(props.get("createdate")),
            closed_at=closed_at,
            key=to_text(props.get(KEY_PROPERTY)),
        )

    def open_deals(self, contact_ids: Sequence[str]) -> Mapping[str, Sequence[DealRecord]]:
        links = reads.associations(self.transport, "contacts", "deals", list(contact_ids))
        wanted = list(dict.fromkeys(d for ids in links.values() for d in ids))
        deals = {
            str(r.get("id")): r
            for r in reads.batch_read(self.transport, "deals", wanted, DEAL_PROPERTIES)
        }
        out: dict[str, list[DealRecord]] = {cid: [] for cid in contact_ids}
        for cid, ids in links.items():
            for deal_id in ids:
                raw = deals.get(deal_id)
                if raw is None:
                    continue
                record = self._deal(raw, cid)
                if record.is_open:
                    out.setdefault(cid, []).append(record)
        return out

    def read_deal_outcomes(
        self, since: datetime | None, *, include_open: bool = True
    ) -> Iterator[DealRecord]:
        """Every deal (closed ones only with ``include_open=False``) changed since
        ``since``, with its creation date, one record per associated contact; won or
        lost from the pipeline's stage metadata."""
        if since is None:
            pages: Iterator[list[Raw]] = reads.list_all(self.transport, "deals", DEAL_PROPERTIES)
        else:
            pages = reads.search_window(
                self.transport,
                "deals",
                modified_prop="hs_lastmodifieddate",
                since=_aware(since, "since"),
                until=None,
                properties=DEAL_PROPERTIES,
            )
        for page in pages:
            closed = [r for r in page if include_open or not self._deal(r, "").is_open]
            if not closed:
                continue
            # An open deal this connector created still has the contact it was created
            # with (a later re-association is not seen until the deal closes); a closed
            # deal's contacts are always read, since its outcome is attributed to them.
            known = {
                str(r.get("id")): [self._own_deals[str(r.get("id"))][0]]
                for r in closed
                if str(r.get("id")) in self._own_deals and self._deal(r, "").is_open
            }
            unknown = [str(r.get("id")) for r in closed if str(r.get("id")) not in known]
            links = (
                reads.associations(self.transport, "deals", "contacts", unknown) if unknown else {}
            )
            links.update(known)
            for raw in closed:
                for cid in links.get(str(raw.get("id")), []):
                    yield self._deal(raw, cid)

    # ---------------------------------------------------------------- writes
    def ensure_fields(
        self,
        fields: Sequence[FieldSpec],
        *,
        create: bool = True,
        actions: Collection[str] = ("deal", "task"),
    ) -> FieldCheck:
        """Check the score (and band) properties on contacts and the key property on
        deals and tasks (those of ``actions``); create the absent ones, or with
        ``create=False`` (a dry run) only list them in ``would_create``."""
        api = self.transport.api("crm.properties.core_api")
        present: list[str] = []
        created: list[str] = []
        missing: list[str] = []
        instructions: list[str] = []
        would_create: list[str] = []

        def existing(object_type: str) -> dict[str, Raw]:
            reply = self.transport.call(f"{object_type} properties", api.get_all, object_type)
            results, _ = reads.page_results(reply.data)
            return {str(p.get("name")): p for p in results}

        contact_props = existing("contacts")
        for spec in fields:
            name = self._crm_field(spec.name)
            if name in contact_props:
                # exists, but can it take a score (or a band)? judged from its metadata
                problem = hubspot_property_problem(spec, contact_props[name])
                if problem is None:
                    present.append(name)
                    continue
                missing.append(name)
                instructions.append(
                    f"HubSpot contacts: property {name!r} (for {spec.label or spec.name}) "
                    f"{problem}; point score_fields at another property, or remove the "
                    "mapping and leadsync creates one"
                )
                continue
            if not _PROPERTY_NAME.match(name):
                missing.append(name)
                instructions.append(
                    f"HubSpot contacts: property {name!r} is not a valid internal name "
                    "(lowercase letters, digits, underscores); set score_fields to one that is"
                )
                continue
            if not create:
                would_create.append(name)
            elif self._create_property(
                "contacts", name, spec.label or name, spec.type, unique=False
            ):
                created.append(name)
            else:
                present.append(name)
        for object_type in [o for o, a in (("deals", "deal"), ("tasks", "task")) if a in actions]:
            qualified = f"{object_type}.{KEY_PROPERTY}"
            if KEY_PROPERTY in existing(object_type):
                present.append(qualified)
            elif not create:
                would_create.append(qualified)
                continue  # still to create: the first action's own check does it
            elif self._create_property(
                object_type, KEY_PROPERTY, "leadsync key", "text", unique=True
            ):
                created.append(qualified)
            else:
                present.append(qualified)
            self._key_checked.add(object_type)
        return FieldCheck(
            tuple(present),
            tuple(created),
            tuple(missing),
            tuple(instructions),
            tuple(dict.fromkeys(would_create)),
        )

    def _create_property(
        self, object_type: str, name: str, label: str, kind: str, *, unique: bool
    ) -> bool:
        """Create a property; False when it already existed (409)."""
        api = self.transport.api("crm.properties.core_api")
        number = kind == "number"
        body: dict[str, Any] = {
            "name": name,
            "label": label,
            "type": "number" if number else "string",
            "fieldType": "number" if number else "text",
            "groupName": _GROUPS.get(object_type, "contactinformation"),
            "hasUniqueValue": unique,
            "description": "Written by leadsync.",
        }
        try:
            # creating a property twice gives 409, so a re-send is harmless
            self.transport.call(
                f"create {object_type} property {name}",
                api.create,
                object_type,
                body,
                expect=(201, 200),
            )
        except RecordRejected as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def _ensure_key(self, object_type: str) -> None:
        if object_type in self._key_checked:
            return
        api = self.transport.api("crm.properties.core_api")
        try:
            self.transport.call(
                f"{object_type} property {KEY_PROPERTY}", api.get_by_name, object_type, KEY_PROPERTY
            )
        except RecordRejected as exc:
            if exc.status != 404:
                raise
            self._create_property(object_type, KEY_PROPERTY, "leadsync key", "text", unique=True)
        self._key_checked.add(object_type)

    def write_scores(self, updates: Sequence[ScoreUpdate]) -> WriteResult:
        """Batch updates of 100. Each write's stamp (from the answer) is remembered
        with the read before it and goes into ``checkpoint()``, so that the next read
        does not take the write for a change."""
        succeeded: list[str] = []
        failed: list[RecordFailure] = []
        inputs: list[dict[str, Any]] = []
        for update in updates:
            props = {self._crm_field(k): _wire(v) for k, v in update.values.items()}
            inputs.append({"id": str(update.contact_id), "properties": props})
        if not inputs:
            return WriteResult()
        self._before_write()
        stamps: dict[str, int] = {}
        for start in range(0, len(inputs), reads.BATCH_READ):
            self._update_batch(inputs[start : start + reads.BATCH_READ], succeeded, failed, stamps)
        self._remember(stamps)
        # a write after our deals were linked answers with the stamp they moved (the
        # sync acts before it writes the scores of whom it acted on): nothing to read
        self._linked.difference_update(stamps)
        return WriteResult(tuple(succeeded), tuple(failed))

    def _before_write(self) -> None:
        """Before our first contact write after a read: which contacts others changed
        since it (their next read must not be skipped as our own echo)."""
        read = self._read
        if read is not None and read.suspects is None:
            read.suspects = self.checks.changed_after_read(read)
            read.checked = read.complete

    def _remember(
        self, stamps: Mapping[str, int], *, owners: Mapping[str, str] | None = None
    ) -> None:
        """Our writes' stamps (score writes, owner changes), remembered with the read
        before them so that the next read does not take them for changes. ``owners``:
        the owners these writes set, which the remembered digest must include."""
        read = self._read
        own = read.own if read is not None else self._unattached
        for cid, stamp in stamps.items():
            parts = self._read_hash.get(cid)
            if parts is not None and owners is not None and cid in owners:
                parts = self._read_hash[cid] = (parts[0], owners[cid])
            digest = with_owner(*parts) if parts is not None else own.digest(cid)
            dirty = read is None or cid in (read.suspects or {})
            own.record(cid, stamp, digest, dirty=dirty)
        if read is not None:
            read.written.update(stamps)
            if stamps:
                low = min(stamps.values())
                read.first_write_ms = min(low, read.first_write_ms or low)

    def _update_batch(
        self,
        inputs: list[dict[str, Any]],
        succeeded: list[str],
        failed: list[RecordFailure],
        stamps: dict[str, int],
    ) -> None:
        api = self.transport.api("crm.objects.batch_api")
        try:
            reply = self.transport.call(
                "batch update contacts",
                api.update,
                "contacts",
                {"inputs": inputs},
                expect=(200, 207),
                record_statuses=(400,),
            )
        except RecordRejected as exc:
            if exc.status == 400 and _SETUP_PROBLEM.search(exc.reason):
                raise ConnectorConfigError(
                    f"hubspot contacts: score properties cannot be written ({exc.reason}); "
                    "run ensure_fields or fix score_fields"
                ) from None
            if len(inputs) == 1 or exc.status not in (400, 409):
                for item in inputs:
                    failed.append(RecordFailure(item["id"], exc.reason, retriable=False))
                return
            # one bad value fails the whole batch: halve until the bad records are alone
            half = len(inputs) // 2
            self._update_batch(inputs[:half], succeeded, failed, stamps)
            self._update_batch(inputs[half:], succeeded, failed, stamps)
            return
        data = reply.data if isinstance(reply.data, Mapping) else {}
        # the CRM's stamp of our write, under the id search will show (a merged-away
        # input answers as its survivor)
        for result in data.get("results") or []:
            if isinstance(result, Mapping) and result.get("id") is not None:
                stamp = stamp_ms(result)
                if stamp is not None:
                    stamps[str(result["id"])] = stamp
        reasons: dict[str, tuple[str, bool]] = {}
        for error in data.get("errors") or []:
            if not isinstance(error, Mapping):
                continue
            reason = self.transport.redactor(
                "; ".join(str(error[k]) for k in ("category", "message") if error.get(k))
                or "refused"
            )
            retriable = "RATE_LIMIT" in str(error.get("category", "")).upper()
            context = error.get("context") or {}
            for cid in context.get("ids") or []:
                reasons[str(cid)] = (reason, retriable)
        # every input not named in an error succeeded (a merged-away id answers as its
        # survivor, so results cannot be matched to inputs by id)
        for item in inputs:
            cid = item["id"]
            if cid in reasons:
                failed.append(RecordFailure(cid, reasons[cid][0], retriable=reasons[cid][1]))
            else:
                succeeded.append(cid)

    def create_deal(self, spec: DealSpec) -> ActionResult:
        self._ensure_key("deals")
        existing = self._deal_by_key(spec.key)
        if existing is not None:
            return ActionResult(spec.key, existing, created=False, note="already existed")
        body = self._deal_input(spec)
        return self._create_once("deals", spec.key, body, find=lambda: self._deal_by_key(spec.key))

    def _deal_input(self, spec: DealSpec) -> dict[str, Any]:
        props: dict[str, Any] = {
            "dealname": spec.name,
            "dealstage": spec.stage,
            "pipeline": spec.crm_options.get("pipeline") or self.settings.deal_pipeline,
            "closedate": to_epoch_ms(datetime.combine(spec.close_date, time(), tzinfo=UTC)),
            KEY_PROPERTY: spec.key,
        }
        if spec.amount is not None:
            props["amount"] = _wire(spec.amount)
        if spec.owner_id:
            props["hubspot_owner_id"] = spec.owner_id
        return {"properties": props, "associations": [_assoc(spec.contact_id, 3)]}

    # ------------------------------------------------------ actions in batches
    def create_deals(self, specs: Sequence[DealSpec]) -> Sequence[BatchOutcome]:
        """Deals in batches of 100 (see actions.py): a keyed read, then one batch
        create with each deal's association to its contact."""
        if not specs:
            return []
        inputs = [(spec.key, self._deal_input(spec)) for spec in specs]
        outcomes = self._batch_create("deals", inputs, never_sent(specs))
        contacts = {spec.key: spec.contact_id for spec in specs}
        created = int(to_epoch_ms(self.context.now()))
        for outcome in outcomes:
            if isinstance(outcome, ActionResult) and outcome.id and outcome.key in contacts:
                self._own_deals[outcome.id] = (contacts[outcome.key], created)
                if outcome.created:
                    self._linked.add(contacts[outcome.key])
        while len(self._own_deals) > MAX_OWN_DEALS:
            self._own_deals.pop(next(iter(self._own_deals)))
        return outcomes

    def create_tasks(self, specs: Sequence[TaskSpec]) -> Sequence[BatchOutcome]:
        """Tasks in batches of 100, as ``create_deals``."""
        if not specs:
            return []
        inputs = [(spec.key, self._task_input(spec)) for spec in specs]
        return self._batch_create("tasks", inputs, never_sent(specs))

    def set_owners(self, specs: Sequence[OwnerSpec]) -> Sequence[BatchOutcome]:
        """Owner assignments in batch updates of 100 contacts."""
        if not specs:
            return []
        self._before_write()
        outcomes, stamps = actions.set_owners(self.transport, specs)
        # the digest after the write has the new owner (it is one of the read fields)
        self._remember(stamps, owners={s.contact_id: s.owner_id for s in specs})
        return outcomes

    def _batch_create(
        self,
        object_type: str,
        inputs: list[tuple[str, dict[str, Any]]],
        unsent: frozenset[str],
    ) -> Sequence[BatchOutcome]:
        """The key property is not checked before each run's first batch (two calls a
        run): the keyed read refuses a missing one with a 400, and so does a create
        that names it; only then is it created and the batch run again, every key
        looked for first (which makes that safe)."""

        def run(fresh: frozenset[str]) -> Sequence[BatchOutcome]:
            return actions.create_once(
                self.transport,
                object_type,
                inputs,
                max_attempts=self.settings.max_attempts,
                sleep=self.context.sleep,
                never_sent=fresh,
            )

        if object_type in self._key_checked:
            return run(unsent)
        try:
            return run(unsent)
        except CRMResponseError as exc:
            if not isinstance(exc, actions.KeyPropertyMissing) and "(HTTP 400)" not in str(exc):
                raise
            self._ensure_key(object_type)
            return run(frozenset())

    def _deal_by_key(self, key: str) -> str | None:
        api = self.transport.api("crm.objects.basic_api")
        try:
            reply = self.transport.call(
                "read deal by key",
                api.get_by_id,
                "deals",
                key,
                id_property=KEY_PROPERTY,
                properties=[KEY_PROPERTY],
            )
        except RecordRejected as exc:
            if exc.status == 404:
                return None
            raise
        data = reply.data if isinstance(reply.data, Mapping) else {}
        return str(data.get("id")) if data.get("id") is not None else None

    def _create_once(
        self,
        object_type: str,
        key: str,
        body: Mapping[str, Any],
        *,
        find: Callable[[], str | None],
    ) -> ActionResult:
        """A plain create is never re-sent blindly: after an unclear failure (a dropped
        answer, a 5xx) we read by key first, and create again only if nothing is there."""
        api = self.transport.api("crm.objects.basic_api")
        last_error: CRMResponseError | None = None
        for _ in range(self.settings.max_attempts):
            try:
                reply = self.transport.call(
                    f"create {object_type}",
                    api.create,
                    object_type,
                    dict(body),
                    expect=(201,),
                    idempotent=False,
                )
            except RecordRejected as exc:
                if exc.status == 409:  # the unique key already exists
                    found = find()
                    if found is not None:
                        return ActionResult(key, found, created=False, note="already existed")
                raise
            except NotRetried as exc:  # may have been applied: look before creating again
                last_error = exc
                found = find()
                if found is not None:
                    return ActionResult(key, found, created=True, note="confirmed after a retry")
                self.context.sleep(1.0)
                continue
            data = reply.data if isinstance(reply.data, Mapping) else {}
            object_id = data.get("id")
            if object_id is None:
                raise CRMResponseError(f"hubspot create {object_type}: no id in the answer")
            return ActionResult(key, str(object_id), created=True)
        raise CRMResponseError(
            f"hubspot create {object_type}: gave up after {self.settings.max_attempts} "
            f"attempts: {last_error}"
        )

    def create_task(self, spec: TaskSpec) -> ActionResult:
        self._ensure_key("tasks")
        existing = self._task_by_key(spec.contact_id, spec.key)
        if existing is not None:
            return ActionResult(spec.key, existing, created=False, note="already existed")
        body = self._task_input(spec)
        return self._create_once(
            "tasks", spec.key, body, find=lambda: self._task_by_key(spec.contact_id, spec.key)
        )

    def _task_input(self, spec: TaskSpec) -> dict[str, Any]:
        props: dict[str, Any] = {
            "hs_timestamp": to_epoch_ms(_aware(spec.due_at, "due_at")),
            "hs_task_subject": spec.subject,
            "hs_task_body": spec.body,
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": PRIORITY[spec.priority],
            "hs_task_type": TASK_TYPE[spec.type],
            KEY_PROPERTY: spec.key,
        }
        if spec.owner_id:
            props["hubspot_owner_id"] = spec.owner_id
        return {"properties": props, "associations": [_assoc(spec.contact_id, 204)]}

    def _task_by_key(self, contact_id: str, key: str) -> str | None:
        """The contact's associated tasks, read (not searched: search lags writes)."""
        links = reads.associations(self.transport, "contacts", "tasks", [contact_id])
        task_ids = [t for ids in links.values() for t in ids]
        if not task_ids:
            return None
        for raw in reads.batch_read(self.transport, "tasks", task_ids, [KEY_PROPERTY]):
            if to_text((raw.get("properties") or {}).get(KEY_PROPERTY)) == key:
                return str(raw.get("id"))
        return None

    def set_owner(self, contact_id: str, owner_id: str, *, kind: ContactKind = "contact") -> None:
        api = self.transport.api("crm.objects.basic_api")
        self.transport.call(
            "set contact owner",
            api.update,
            "contacts",
            contact_id,
            {"properties": {"hubspot_owner_id": owner_id}},
        )

    def budget(self) -> Budget:
        return self.transport.meter.budget()

    def close(self) -> None:
        self.transport.close()


@dataclass
class _EventContext:
    events_since: datetime
    until: datetime
    window_since: datetime  # where the time-window sources start reading
    portal: bool = True  # read the portal-wide time-window sources at all
    email: reads.EmailEvents | None = None
    forms: reads.FormSubmissions | None = None


_GROUPS = {"contacts": "contactinformation", "deals": "dealinformation", "tasks": "task"}


def _addresses(contact: ContactRecord, raw: Raw) -> list[str]:
    """The contact's e-mail and those of contacts merged into it."""
    primary = contact.fields.get("email")
    extra = to_text((raw.get("properties") or {}).get("hs_additional_emails")) or ""
    found = [primary] if isinstance(primary, str) else []
    found += [e.strip() for e in extra.split(";") if e.strip()]
    return list(dict.fromkeys(e.lower() for e in found))


def _assoc(contact_id: str, type_id: int) -> dict[str, Any]:
    return {
        "to": {"id": str(contact_id)},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


def _wire(value: Any) -> str:
    """HubSpot property values travel as strings; ``None`` clears the property."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _float(value: Any) -> float | None:
    number = to_number(value)
    return None if number is None else float(number)


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime (UTC)")
    return moment.astimezone(UTC)


def _match_by_id_or_label(items: Sequence[Raw], wanted: str) -> Raw | None:
    """The item whose id is ``wanted``, else the one whose label matches ignoring case."""
    for item in items:
        if str(item.get("id")) == wanted:
            return item
    folded = wanted.strip().casefold()
    for item in items:
        if str(item.get("label") or "").strip().casefold() == folded:
            return item
    return None
