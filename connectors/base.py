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

Messages never contain secrets: connectors redact tokens before raising.

Optional methods (not members of ``Connector``, so that connectors without them, such
as ``files`` and third-party ones, keep satisfying the protocol; callers look them up
with ``getattr(connector, name, None)``)::

    check_deal_settings(self, *, pipeline: str | None, stage: str,
                        lead_status: str | None) -> tuple[str, ...]

        Used by ``leadsync check`` with ``writeback.on_cross.deal``: whether deals can be
        created in ``pipeline`` (``None``: the connector's default) at ``stage``, and
        whether ``lead_status`` can be set on a lead. Returns one line per problem, each
        saying what is wrong and how to fix it; empty when everything is fine. Values
        that mean nothing to the CRM (a pipeline in Salesforce) are ignored.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol, runtime_checkable

# A connector's resume point: a small JSON-serialisable mapping whose content only the
# connector understands. The sync stores it and hands it back unchanged.
Cursor = Mapping[str, Any]

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


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """A person as the scoring core sees them, plus what the sync needs to route writes.

    ``fields`` holds canonical names (``email``, ``job_title``, ``company_size``,
    ``created_at``, ``owner_id``, ...) and any mapped custom field.
    """

    id: str
    fields: Mapping[str, Any]
    updated_at: datetime | None = None
    kind: ContactKind = "contact"
    converted: bool = False
    merged_ids: tuple[str, ...] = ()  # ids that were merged into this one


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

    Only the last batch of a read carries ``cursor``: the resume point that is valid
    once every batch of the read has been applied. A read that stops early yields no
    cursor, so the sync keeps the old one and re-reads (at-least-once).

    The sync stores the cursor only after the run's writes, and a connector may add to
    the mapping it yielded until then: both CRM connectors record their own score
    writes there, so that the next read does not mistake those writes for changes.
    """

    contacts: tuple[ContactRecord, ...] = ()
    events: tuple[EventRecord, ...] = ()
    merges: tuple[Merge, ...] = ()
    deletions: tuple[str, ...] = ()
    cursor: Cursor | None = None


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
    pipeline: str | None
    close_date: date
    amount: float | None = None
    contact_kind: ContactKind = "contact"
    lead_status: str | None = None  # Salesforce Lead: the status to set instead of a deal


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


@runtime_checkable
class Connector(Protocol):
    """The operations the sync needs from a CRM. Read-only connectors raise
    ``ConnectorConfigError`` from the write methods."""

    name: str

    def read_changes(
        self, cursor: Cursor | None, *, until: datetime, events_since: datetime
    ) -> Iterator[ReadBatch]:
        """Contacts changed since ``cursor`` (all of them when ``None``), with their
        events newer than ``events_since``, merges and deletions. Changes after
        ``until`` (the sync's start) may be returned but the cursor never passes it."""
        ...

    def list_owners(self) -> Sequence[Owner]: ...

    def open_deals(self, contact_ids: Sequence[str]) -> Mapping[str, Sequence[DealRecord]]: ...

    def read_deal_outcomes(self, since: datetime | None) -> Iterator[DealRecord]: ...

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
        key fields of deals and tasks are checked only for those."""
        ...

    def write_scores(self, updates: Sequence[ScoreUpdate]) -> WriteResult: ...

    def create_deal(self, spec: DealSpec) -> ActionResult: ...

    def create_task(self, spec: TaskSpec) -> ActionResult: ...

    def set_owner(
        self, contact_id: str, owner_id: str, *, kind: ContactKind = "contact"
    ) -> None: ...

    def budget(self) -> Budget: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RuntimeContext:
    """What a connector gets from its host instead of reaching for globals: time and
    sleep are injected so that tests never wait for real."""

    now: Any  # Callable[[], datetime], aware UTC
    sleep: Any  # Callable[[float], None]


class ConnectorFactory(Protocol):
    """What an entry point in the ``leadsync.connectors`` group must resolve to."""

    name: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, context: RuntimeContext) -> Connector: ...
