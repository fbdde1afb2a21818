"""What every connector offers, in small typed records that carry no CRM types.

The sync (``scheduler``) talks to HubSpot, Salesforce, file exports and third-party
CRMs through this one protocol, so that its crash-safety and budget logic is written
once. Records are plain frozen dataclasses: canonical field names, numbers as
numbers, timestamps as aware UTC datetimes, empty strings already turned into
missing values. Connectors normalise at the edge; nothing downstream re-parses.

Exception tree (callers branch on the class, never on message text)::

    ConnectorError
    ├── ConnectorConfigError   configuration or missing CRM set-up; exit 2, fix and rerun
    ├── AuthError              credentials refused after a refresh attempt; stop the run
    ├── QuotaExhausted         the run's share of the daily allowance is spent; stop cleanly
    └── CRMResponseError       the CRM answered something unusable after bounded retries
        └── NotRetried         a non-idempotent request got no clean answer; not re-sent

Messages never contain secrets: connectors add theirs to the host's
``RuntimeContext.redactor`` and redact before raising.

How the sync drives a connector, once per run (``docs/sync.md`` numbers the steps)::

    state = connector.load_state(stored)            # None on a first run or --full
    for batch in connector.read_changes(state, until=..., events_since=...):
        ...                                         # applied to the local copy
    connector.write_scores(...); connector.create_deal(...); ...
    stored = connector.checkpoint().to_json()       # only after the writes

Optional capabilities are small runtime-checkable protocols (``ReadsContacts``,
``ChecksDealSettings``, ``ReportsRejected``, ``CountsOrphanEvents``): the host asks
``isinstance(connector, ReadsContacts)``, so connectors without them (``files``,
third-party ones) keep satisfying ``Connector``.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol, runtime_checkable

# The stored form of a connector's state: a small JSON object whose content only the
# connector understands (``ConnectorState.to_json``). Kept under its old name for
# connectors written before typed state.
StoredState = Mapping[str, object]
Cursor = StoredState

ContactKind = Literal["contact", "lead"]


class ConnectorError(Exception):
    """Base of every error a connector raises on purpose."""


class ConnectorConfigError(ConnectorError):
    """The configuration or the CRM's set-up is wrong; the message says how to fix it."""


class AuthError(ConnectorError):
    """The CRM refused the credentials even after a token refresh."""


class QuotaExhausted(ConnectorError):
    """The run may not spend more of the API allowance; progress so far is valid."""


class CRMResponseError(ConnectorError):
    """The CRM kept failing or answered with something that cannot be used."""


class NotRetried(CRMResponseError):
    """A non-idempotent request (a plain create) got no clean answer and was not sent
    again: it may or may not have been applied. The caller reads before it creates
    again (a keyed create looks the key up), never re-sends blindly."""


@runtime_checkable
class ConnectorState(Protocol):
    """A connector's resume point: frozen, versioned, JSON round trip.

    Only the connector understands its content; the host stores ``to_json()`` and
    hands back ``connector.load_state(stored)``. A value is never changed after it
    was handed out: a newer resume point is a new value (``Connector.checkpoint``).
    """

    @property
    def version(self) -> int: ...

    def to_json(self) -> dict[str, object]: ...


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """A person as the scoring core sees them, plus what the sync needs to route writes.

    ``fields`` holds canonical names (``email``, ``job_title``, ``company_size``,
    ``created_at``, ``owner_id``, ...) and any mapped custom field.
    """

    id: str
    fields: Mapping[str, Any]
    # The CRM's modification stamp: the sync keeps it to tell a record read again
    # unchanged (after a stopped run, or by --full) from a changed one.
    updated_at: datetime | None = None
    kind: ContactKind = "contact"
    converted: bool = False


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One engagement event with an id that is stable across reads (for de-duplication)."""

    id: str
    contact_id: str
    type: str  # canonical: page_view, email_open, email_click, form_submit, ...
    occurred_at: datetime
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Merge:
    """``merged_id`` no longer exists; its history now belongs to ``into_id``."""

    merged_id: str
    into_id: str


@dataclass(frozen=True, slots=True)
class ReadBatch:
    """One slice of a change read, small enough to score and write before the next.

    Only the last batch of a complete read carries ``state``: the resume point that
    is valid once every batch of the read has been applied. A read that stops early
    yields no state, so the sync keeps the old one and re-reads (at-least-once).

    ``state`` is a frozen value: writes that follow the read do not change it. The
    sync stores ``connector.checkpoint()`` after its writes instead, which also
    remembers the connector's own writes (so that the next read does not mistake
    them for changes).

    Merges are reported here only (each ``Merge`` once), never on the contact.
    """

    contacts: tuple[ContactRecord, ...] = ()
    events: tuple[EventRecord, ...] = ()
    merges: tuple[Merge, ...] = ()
    deletions: tuple[str, ...] = ()
    state: ConnectorState | None = None

    @property
    def cursor(self) -> dict[str, object] | None:
        """``state`` in its stored (JSON) form; for logs, tests and older callers."""
        return None if self.state is None else self.state.to_json()


@dataclass(frozen=True, slots=True)
class Owner:
    id: str
    email: str | None
    name: str | None = None
    active: bool = True
    kind: Literal["person", "queue"] = "person"


@dataclass(frozen=True, slots=True)
class DealRecord:
    """An open or closed deal/opportunity linked to a contact."""

    id: str
    contact_id: str
    name: str | None
    owner_id: str | None
    stage: str | None
    is_open: bool
    is_won: bool | None = None
    amount: float | None = None
    created_at: datetime | None = None
    closed_at: datetime | None = None
    key: str | None = None  # leadsync's idempotency key when leadsync created it


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A logical field leadsync writes (a score or a band)."""

    name: str
    type: Literal["number", "text"] = "number"
    label: str | None = None


@dataclass(frozen=True, slots=True)
class FieldCheck:
    """Result of ``ensure_fields``: what exists, what was created, what a human must
    create, and (when asked not to create) what the connector would create itself."""

    present: tuple[str, ...] = ()
    created: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    instructions: tuple[str, ...] = ()  # one line per missing field: where, name, type
    would_create: tuple[str, ...] = ()  # ``create=False``: absent, created by a real run


@dataclass(frozen=True, slots=True)
class ScoreUpdate:
    contact_id: str
    values: Mapping[str, Any]  # logical field -> value (score number, band text)
    kind: ContactKind = "contact"


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A record the CRM refused; never dropped silently."""

    id: str
    reason: str
    retriable: bool = False


@dataclass(frozen=True, slots=True)
class WriteResult:
    succeeded: tuple[str, ...] = ()
    failed: tuple[RecordFailure, ...] = ()


@dataclass(frozen=True, slots=True)
class DealSpec:
    """A deal to create exactly once under ``key`` (same key, same deal, whatever retried)."""

    key: str
    contact_id: str
    name: str
    owner_id: str | None
    stage: str
    close_date: date
    amount: float | None = None
    contact_kind: ContactKind = "contact"
    # What only some CRMs understand, by name (``pipeline`` for HubSpot; for Salesforce
    # ``lead_status``, set on a Lead instead of creating a deal); a connector ignores
    # the names it does not know and fills the ones missing from its own settings.
    crm_options: Mapping[str, str] = field(default_factory=dict)
    # True only when the caller's ledger proves that no earlier call carried this key
    # (it marks each batch as sent before sending it): the connector may then create
    # without looking for the key first. False (unknown) always looks.
    first_attempt: bool = False


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A follow-up task to create exactly once under ``key``."""

    key: str
    contact_id: str
    owner_id: str | None
    subject: str
    body: str
    due_at: datetime
    priority: Literal["low", "medium", "high"] = "high"
    type: Literal["call", "email", "todo"] = "call"
    contact_kind: ContactKind = "contact"
    first_attempt: bool = False  # as DealSpec's


def never_sent(specs: Iterable[DealSpec] | Iterable[TaskSpec]) -> frozenset[str]:
    """The keys of the specs the caller's ledger proves were never sent
    (``first_attempt``): a connector may create those without looking for them."""
    return frozenset(spec.key for spec in specs if spec.first_attempt)


@dataclass(frozen=True, slots=True)
class ActionResult:
    key: str
    id: str | None
    created: bool  # False when an earlier attempt had already created it
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Budget:
    """API spending as the connector knows it from counting and from rate-limit headers."""

    calls: int
    window_remaining: int | None = None
    window_limit: int | None = None
    daily_remaining: int | None = None
    daily_limit: int | None = None


# ------------------------------------------------------------------ host services

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=\-!]{6,}"), r"\1 ***"),
    # Salesforce session ids / access tokens: 00D<org id>!<opaque>
    (re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._\-]+"), "***"),
    # key=value and "key": "value" forms of well-known secret names
    (
        re.compile(
            r"(?i)([\"']?(?:access_token|refresh_token|client_secret|session_?id|sid|"
            r"private_key|password|assertion|authorization)[\"']?\s*[=:]\s*[\"']?)"
            r"([^\"'&\s,}]{4,})"
        ),
        r"\1***",
    ),
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        "***",
    ),
)


class Redactor:
    """Removes registered secrets (and token-shaped strings) from text.

    Registered secrets are matched literally, also in their URL-encoded form, because
    clients put tokens in query strings and form bodies. Thread-safe.
    """

    MASK = "***"

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | bytes | None) -> None:
        if secret is None:
            return
        text = secret.decode("utf-8", "replace") if isinstance(secret, bytes) else str(secret)
        if len(text) < 4:  # too short to mask without destroying the message
            return
        from urllib.parse import quote, quote_plus

        with self._lock:
            self._secrets.update({text, quote(text, safe=""), quote_plus(text)})
            if "\n" in text:  # PEM keys: also mask each long line on its own
                self._secrets.update(ln for ln in text.splitlines() if len(ln) >= 16)

    def __call__(self, text: object) -> str:
        out = str(text)
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in out:
                out = out.replace(secret, self.MASK)
        for pattern, replacement in _PATTERNS:
            out = pattern.sub(replacement, out)
        return out


class CallLimiter(Protocol):
    """A shared API budget (say, in Redis) that several processes spend together.

    Connectors call ``reserve(bucket)`` before every HTTP request when the host gave
    them one (``RuntimeContext.limiter``), and sleep ``context.sleep(wait)`` while it
    answers more than zero. A CRM with a separate limit for some endpoints spends a
    sub-bucket for them (HubSpot's search: ``"<bucket>:search"``).
    """

    def reserve(self, bucket: str) -> float:
        """Count one call under ``bucket`` and return 0.0, or return the seconds to
        wait before asking again (nothing counted). Never raises for a full bucket."""
        ...


def _now_utc() -> datetime:
    return datetime.now(UTC)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


@dataclass(frozen=True, slots=True)
class RuntimeContext:
    """What a connector gets from its host instead of reaching for globals: time and
    sleep are injected so that tests never wait for real; the redactor is the host's,
    so that the secrets a connector adds to it are masked in the host's messages too;
    the limiter, when set, is a budget shared with other processes."""

    now: Callable[[], datetime] = _now_utc  # aware UTC
    sleep: Callable[[float], None] = _sleep
    redactor: Redactor = field(default_factory=Redactor)
    limiter: CallLimiter | None = None

    def reserve(self, bucket: str) -> None:
        """Wait, through ``sleep``, until the limiter (if any) grants one call."""
        if self.limiter is None:
            return
        while (wait := self.limiter.reserve(bucket)) > 0:
            self.sleep(wait)


def bucket_of(crm: str, identity: str) -> str:
    """``"<crm>:<16 hex>"``: a budget name from an account identity that may be a
    secret (a token): only a digest of it goes into the name."""
    return f"{crm}:{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


# ----------------------------------------------------------------------- protocol
@runtime_checkable
class Connector(Protocol):
    """The operations the sync needs from a CRM.

    Every method may raise the ``ConnectorError`` subclasses of the module's tree
    (and nothing else on purpose); the sync maps them to exit codes: a config error
    stops the run with exit 2, auth and quota errors stop it with exit 3 keeping what
    was done, a ``CRMResponseError`` from a write fails that one action, which is
    retried on a later run. Read-only connectors raise ``ConnectorConfigError`` from
    the write methods.
    """

    name: str
    # The API budget this connector spends: ``"<crm>:<account identity>"`` (a HubSpot
    # token's digest, a Salesforce org id, ``files:local``); never a secret. Processes
    # with the same bucket share one ``CallLimiter`` budget.
    bucket: str

    def load_state(self, data: StoredState | None) -> ConnectorState | None:
        """The state stored by an earlier run (``to_json()`` of a state this connector
        handed out), or ``None`` for none. Accepts every format an earlier release
        stored (migration); raises ``ConnectorConfigError`` for one it cannot read,
        saying that a ``--full`` run replaces it. No API calls."""
        ...

    def read_changes(
        self, state: ConnectorState | None, *, until: datetime, events_since: datetime
    ) -> Iterator[ReadBatch]:
        """Contacts changed since ``state`` (all of them when ``None``), with their
        events newer than ``events_since``, merges and deletions.

        Changes after ``until`` (the sync's start) may be returned, but the state never
        passes it. Only the last batch of a complete read carries ``state``. A read may
        deliver a record twice (at-least-once); it never skips a change. The sync
        applies each batch before pulling the next, so a connector may read lazily.
        Nothing is written to the CRM. Raises on a failure that stops the read; the
        sync then keeps its old state and the next run reads again."""
        ...

    def checkpoint(self) -> ConnectorState | None:
        """The resume point after the run's writes: a new value, equal to the state
        the last complete read yielded plus what the connector remembers of its own
        writes since (so that the next read does not take them for changes). The
        value the read yielded is never changed. ``None`` when no read completed.
        No API calls; never raises."""
        ...

    def list_owners(self) -> Sequence[Owner]:
        """Every user (active or not) and queue a record can be assigned to. Read only;
        the sync calls it at most once a run, when a crossing needs an owner."""
        ...

    def open_deals(self, contact_ids: Sequence[str]) -> Mapping[str, Sequence[DealRecord]]:
        """The open deals of each contact (``key`` set on those leadsync created); a
        contact without any may be missing from the answer. Read only."""
        ...

    def read_deal_outcomes(self, since: datetime | None) -> Iterator[DealRecord]:
        """Every deal changed since ``since`` (all of them when ``None``), open ones
        included, with ``created_at``, one record per linked contact. The host treats
        only closed ones (``is_open`` false) as outcomes. Read only; at-least-once."""
        ...

    def ensure_fields(
        self,
        fields: Sequence[FieldSpec],
        *,
        create: bool = True,
        actions: Collection[str] = ("deal", "task"),
    ) -> FieldCheck:
        """Check that each field exists and can take its values; create what the
        connector can create itself (HubSpot properties). With ``create=False`` (a dry
        run) nothing is changed: what would be created is listed in ``would_create``,
        and what a human must create is ``missing`` with its ``instructions``, as in a
        real run. ``actions``: what the write-back creates (``deal``, ``task``); the
        key fields of deals and tasks are checked only for those. Idempotent."""
        ...

    def write_scores(self, updates: Sequence[ScoreUpdate]) -> WriteResult:
        """Set the given fields on each record; every update is either in
        ``succeeded`` or in ``failed`` with the CRM's reason (a refused record never
        fails the call). Idempotent: writing the same values again is harmless, so the
        sync re-sends a batch whose answer it lost. Raises ``ConnectorConfigError``
        when the fields cannot be written at all (a set-up problem, not a record's)."""
        ...

    def create_deal(self, spec: DealSpec) -> ActionResult:
        """Create the deal (or, for a lead, what the CRM does instead) exactly once
        under ``spec.key``: a second call with the same key, after a lost answer or a
        crash, finds the first deal and returns it with ``created=False``. Raises
        ``CRMResponseError`` (``NotRetried`` when the create may have been applied) on
        failure; the sync retries under the same key on a later run."""
        ...

    def create_task(self, spec: TaskSpec) -> ActionResult:
        """Create the follow-up task exactly once under ``spec.key``, as ``create_deal``."""
        ...

    def set_owner(self, contact_id: str, owner_id: str, *, kind: ContactKind = "contact") -> None:
        """Assign the record to ``owner_id``. Idempotent (setting the same owner again
        changes nothing)."""
        ...

    def budget(self) -> Budget:
        """API calls made so far and the limits as last seen. No API calls; never
        raises (the sync reports it only)."""
        ...

    def close(self) -> None:
        """Release connections. Idempotent."""
        ...


# ------------------------------------------------------------ optional capabilities


@runtime_checkable
class ReadsContacts(Protocol):
    """Reads given contacts by id, for real-time scoring of a webhook's contacts."""

    def read_contacts(self, ids: Sequence[str], *, events_since: datetime) -> ReadBatch:
        """The contacts among ``ids`` that exist, with their events newer than
        ``events_since``; ids unknown to the CRM are left out (not an error). Carries
        no state and changes no resume point. Read only."""
        ...


@runtime_checkable
class SharesOwnWrites(Protocol):
    """Score writes made by one process (``leadsync serve``, after reads by id) told
    to another's next change read (the scheduled run), so that it skips their echoes
    as it skips its own: without this it re-reads every contact the first wrote."""

    def own_writes(self) -> StoredState:
        """The score writes this connector made outside a change read, as JSON."""
        ...

    def with_own_writes(
        self, state: ConnectorState | None, writes: StoredState
    ) -> ConnectorState | None:
        """``state`` with ``writes`` (another instance's ``own_writes()``) remembered
        as this connector's own; ``None`` stays ``None`` (a full read skips nothing)."""
        ...


@runtime_checkable
class ReadsConversions(Protocol):
    """A CRM whose leads convert into contacts (Salesforce): outcomes for backtests."""

    def read_conversions(
        self, since: datetime | None
    ) -> Iterator[tuple[str, str, datetime, str | None]]:
        """``(lead id, contact id, converted at, opportunity id)`` of the leads
        converted (changed) since ``since``, all of them when ``None``. Read only."""
        ...


@runtime_checkable
class ChecksDealSettings(Protocol):
    """Checks the deal settings of ``writeback.on_cross.deal`` (``leadsync check``)."""

    def check_deal_settings(
        self, *, pipeline: str | None, stage: str, lead_status: str | None
    ) -> tuple[str, ...]:
        """Whether deals can be created in ``pipeline`` (``None``: the connector's
        default) at ``stage``, and whether ``lead_status`` can be set on a lead. One
        line per problem, each saying what is wrong and how to fix it; empty when all
        is fine. Values that mean nothing to the CRM are ignored. Read only."""
        ...


@dataclass(frozen=True, slots=True)
class OwnerSpec:
    """An owner assignment: ``contact_id`` (a lead or a contact) goes to ``owner_id``.
    ``key`` names it in the answer, as a deal's or a task's key does."""

    key: str
    contact_id: str
    owner_id: str
    kind: ContactKind = "contact"


# One answer per input of a batch, in input order: the created (or found) record, or
# the CRM's refusal of that input alone. A failure of the whole batch raises instead.
BatchOutcome = ActionResult | RecordFailure


@runtime_checkable
class CreatesInBatches(Protocol):
    """Acts in batches: a run's deals, tasks and owner assignments cost a few calls
    per hundred, not a few per action. Each method keeps ``create_deal``'s promise per
    input: exactly one record under each key, however often it is called with that key
    (after a lost answer, a crash, a partial failure). The answer holds one outcome
    per input in input order; a ``RecordFailure`` (``id`` = the input's key) is that
    input's refusal and the others stand. Raises as the single methods do when the
    CRM answered none of the inputs (``QuotaExhausted``, ``AuthError``,
    ``CRMResponseError`` after its retries)."""

    def create_deals(self, specs: Sequence[DealSpec]) -> Sequence[BatchOutcome]:
        """``create_deal`` for each spec: keys read in batches, the missing created in
        batches with their link to the contact in the same call."""
        ...

    def create_tasks(self, specs: Sequence[TaskSpec]) -> Sequence[BatchOutcome]:
        """``create_task`` for each spec, in batches as ``create_deals``."""
        ...

    def set_owners(self, specs: Sequence[OwnerSpec]) -> Sequence[BatchOutcome]:
        """``set_owner`` for each spec in batch updates; the result's id is the owner."""
        ...


@runtime_checkable
class ReportsRejected(Protocol):
    """A connector that skips unreadable rows (file exports) instead of stopping."""

    # The rows the last read skipped, one ``FILE:LINE: field: problem`` line each.
    rejected: Sequence[object]


@runtime_checkable
class CountsOrphanEvents(Protocol):
    """A connector that can read events of contacts it never saw (file exports)."""

    orphan_events: int  # such events in the last read


class ConnectorFactory(Protocol):
    """What an entry point in the ``leadsync.connectors`` group must resolve to."""

    name: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, context: RuntimeContext) -> Connector: ...
