"""A leadsync connector for Notebook (an example of a third-party connector).

What it shows: a typed, versioned resume point with a JSON round trip; keyset pages
so that no change is lost among records sharing a modification stamp; keyed creates
that read by key before creating again after an unclear failure; refusals reported
per record; ``checkpoint()`` after the writes; ``read_contacts`` as an optional
capability. Settings (``crm.notebook`` in leadsync.yaml)::

    crm:
      type: notebook
      notebook:
        account: my-notebook   # which Notebook account to talk to
        page_size: 100         # contacts per page and per ReadBatch
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from connectors.base import (
    ActionResult,
    Budget,
    ConnectorConfigError,
    ContactKind,
    ContactRecord,
    CRMResponseError,
    DealRecord,
    DealSpec,
    FieldCheck,
    FieldSpec,
    Owner,
    ReadBatch,
    RecordFailure,
    RuntimeContext,
    ScoreUpdate,
    TaskSpec,
    WriteResult,
)
from notebook_crm.backend import (
    AnswerLost,
    Contact,
    Kind,
    Notebook,
    NotFound,
    Unavailable,
    open_notebook,
)

__all__ = ["NotebookConnector", "NotebookState"]

_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class NotebookState:
    """Everything stamped before ``until`` has been read."""

    until: datetime
    version: int = 1

    def to_json(self) -> dict[str, object]:
        return {"version": self.version, "until": self.until.isoformat()}


class NotebookConnector:
    """Reads and writes one Notebook account."""

    name = "notebook"
    # The API budget its calls spend (shared by every process using this account);
    # one in-memory notebook per process here, so nothing is shared.
    bucket = "notebook:local"

    def __init__(self, notebook: Notebook, *, context: RuntimeContext, page_size: int) -> None:
        self.notebook = notebook
        self.context = context
        self.page_size = page_size
        self._last: NotebookState | None = None

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, context: RuntimeContext
    ) -> NotebookConnector:
        account = config.get("account")
        if not isinstance(account, str) or not account:
            raise ConnectorConfigError("notebook.account: the Notebook account name is missing")
        notebook = open_notebook(account)
        if notebook is None:
            raise ConnectorConfigError(f"notebook.account: no Notebook account {account!r}")
        page_size = config.get("page_size", 100)
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ConnectorConfigError(f"notebook.page_size: expected a whole number >= 1, got {page_size!r}")  # fmt: skip
        return cls(notebook, context=context, page_size=page_size)

    # -- state -------------------------------------------------------------------------

    def load_state(self, data: Mapping[str, object] | None) -> NotebookState | None:
        if data is None:
            return None
        if data.get("version") != 1 or not isinstance(data.get("until"), str):
            raise ConnectorConfigError(f"notebook: unreadable stored state {dict(data)!r}")
        return NotebookState(until=datetime.fromisoformat(str(data["until"])))

    def checkpoint(self) -> NotebookState | None:
        """The state after the run's writes. Score writes re-stamp the contacts they
        touch, and the next read sees them again: Notebook cannot tell our writes from a
        user's, so the state needs nothing from the writes."""
        return None if self._last is None else replace(self._last)

    # -- reads -------------------------------------------------------------------------

    def read_changes(
        self, state: Any, *, until: datetime, events_since: datetime
    ) -> Iterator[ReadBatch]:
        since = state.until if isinstance(state, NotebookState) else None
        after: tuple[datetime, str] | None = None
        last: list[Contact] = []
        page = self.notebook.changed(None, since, until, self.page_size)
        while page:
            after = self._page_after(page[-1])
            following = self.notebook.changed(after, since, until, self.page_size)
            if following:
                yield ReadBatch(contacts=tuple(_record(c) for c in page))
            page, last = following, page
        done = NotebookState(until=until)
        self._last = done
        yield ReadBatch(contacts=tuple(_record(c) for c in last), state=done)

    def _page_after(self, last: Contact) -> tuple[datetime, str]:
        """Where the next page starts: after this (stamp, id), not after this stamp,
        which would skip the rest of the records sharing it."""
        return (last.stamp, last.id)

    def read_contacts(self, ids: Sequence[str], *, events_since: datetime) -> ReadBatch:
        return ReadBatch(contacts=tuple(_record(c) for c in self.notebook.get(ids)))

    def list_owners(self) -> Sequence[Owner]:
        return ()

    def open_deals(self, contact_ids: Sequence[str]) -> Mapping[str, Sequence[DealRecord]]:
        wanted = set(contact_ids)
        out: dict[str, list[DealRecord]] = {}
        for ident, deal in self.notebook.records["deal"].items():
            contact = str(deal["contact_id"])
            if contact in wanted:
                out.setdefault(contact, []).append(
                    DealRecord(
                        ident,
                        contact,
                        str(deal["name"]),
                        None,
                        str(deal["stage"]),
                        is_open=True,
                        key=str(deal["key"]),
                    )
                )
        return out

    def read_deal_outcomes(self, since: datetime | None) -> Iterator[DealRecord]:
        return iter(())

    # -- writes ------------------------------------------------------------------------

    def ensure_fields(
        self,
        fields: Sequence[FieldSpec],
        *,
        create: bool = True,
        actions: Collection[str] = ("deal", "task"),
    ) -> FieldCheck:
        """Notebook records take any field: everything is present."""
        return FieldCheck(present=tuple(f.name for f in fields))

    def write_scores(self, updates: Sequence[ScoreUpdate]) -> WriteResult:
        succeeded: list[str] = []
        failed: list[RecordFailure] = []
        for update in updates:
            try:
                self.notebook.update(update.contact_id, dict(update.values))
            except NotFound as exc:
                failed.append(RecordFailure(update.contact_id, str(exc)))
            else:
                succeeded.append(update.contact_id)
        return WriteResult(succeeded=tuple(succeeded), failed=tuple(failed))

    def create_deal(self, spec: DealSpec) -> ActionResult:
        record = {"key": spec.key, "contact_id": spec.contact_id, "name": spec.name,
                  "stage": spec.stage}  # fmt: skip
        return self._create_once("deal", spec.key, record)

    def create_task(self, spec: TaskSpec) -> ActionResult:
        record = {"key": spec.key, "contact_id": spec.contact_id, "subject": spec.subject,
                  "due_at": spec.due_at.isoformat()}  # fmt: skip
        return self._create_once("task", spec.key, record)

    def _create_once(self, kind: Kind, key: str, record: Mapping[str, object]) -> ActionResult:
        """Read by key, then create; after an unclear failure read by key again before
        creating again (Notebook's create does not refuse a second record per key)."""
        found = self.notebook.find(kind, key)
        if found is not None:
            return ActionResult(key, found, created=False, note="already existed")
        for _ in range(_ATTEMPTS):
            try:
                return ActionResult(key, self.notebook.create(kind, record), created=True)
            except (AnswerLost, Unavailable):
                found = self.notebook.find(kind, key)
                if found is not None:
                    return ActionResult(key, found, created=True, note="confirmed after a retry")
                self.context.sleep(1.0)
        raise CRMResponseError(f"notebook create {kind}: gave up after {_ATTEMPTS} attempts")

    def set_owner(self, contact_id: str, owner_id: str, *, kind: ContactKind = "contact") -> None:
        self.notebook.update(contact_id, {"owner_id": owner_id})

    def budget(self) -> Budget:
        return Budget(calls=self.notebook.calls)

    def close(self) -> None:
        pass


def _record(contact: Contact) -> ContactRecord:
    return ContactRecord(id=contact.id, fields=dict(contact.fields))
