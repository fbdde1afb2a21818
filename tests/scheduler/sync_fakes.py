"""An in-memory CRM that implements ``connectors.base.Connector``, and a transparent
scorer, so that the sync's rules are tested without HTTP or the scoring engine.

The fake counts calls like a real connector (one per page or batch), keeps deals and
tasks by idempotency key, and can refuse records, drop responses after committing,
or run out of quota, so that each rule of the write-back has a failure to face.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import (
    ActionResult,
    Budget,
    ContactRecord,
    CRMResponseError,
    DealRecord,
    DealSpec,
    EventRecord,
    FieldCheck,
    FieldSpec,
    Merge,
    Owner,
    QuotaExhausted,
    ReadBatch,
    RecordFailure,
    ScoreUpdate,
    TaskSpec,
    WriteResult,
)
from scoring.model import ScoringModel, load_models

T0 = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)

MODEL_YAML = """\
models:
  - name: main
    score_field: ls_score
    bands: {hot: 70, warm: 40}
    rules:
      - {id: base, kind: fit, field: points, match: {exists: true}, points: 1}
      - {id: views, kind: behavior, event: page_view, points: 5, window_days: 30}
      - {id: demo, kind: behavior, event: form_submit, points: 0, immediate: true, window_days: 30}
"""


def models(text: str = MODEL_YAML) -> list[ScoringModel]:
    return list(load_models(text, "test-model.yaml").models)


@dataclass(frozen=True, slots=True)
class SeqState:
    """The fake's resume point: the change sequence number read up to."""

    seq: int
    version: int = 1

    def to_json(self) -> dict[str, object]:
        return {"seq": self.seq}


@dataclass(frozen=True)
class _Reason:
    rule: str
    kind: str
    points: float
    events: int | None = None


@dataclass(frozen=True)
class _Imm:
    type: str
    occurred_at: datetime
    id: str | None


@dataclass(frozen=True)
class _Result:
    contact_id: str
    model: str
    score: float
    band: str
    immediate: bool
    immediate_event: _Imm | None
    last_activity_at: datetime | None
    reasons: tuple[_Reason, ...]


def fake_score(
    model_list: Sequence[ScoringModel],
    contacts: Any,
    events: Any,
    *,
    as_of: datetime,
) -> list[_Result]:
    """score = the contact's ``points`` field + the ``points`` attribute of each event
    in the last 30 days; a ``form_submit`` in that window is immediate. Plain enough
    that every expected number in a test can be worked out by hand."""
    by_contact: dict[str, list[Mapping[str, Any]]] = {}
    for e in events:
        by_contact.setdefault(e["contact_id"], []).append(e)
    out = []
    for m in model_list:
        for c in contacts:
            evs = [
                e
                for e in by_contact.get(c["id"], [])
                if as_of - timedelta(days=30) < e["occurred_at"] <= as_of
            ]
            base = float(c.get("points") or 0)
            ev_points = sum(float(e.get("points") or 0) for e in evs)
            score = max(0.0, min(100.0, base + ev_points))
            band = "hot" if score >= m.bands.hot else "warm" if score >= m.bands.warm else "cold"
            imm = [e for e in evs if e["type"] == "form_submit"]
            newest = max(imm, key=lambda e: e["occurred_at"]) if imm else None
            out.append(
                _Result(
                    contact_id=c["id"],
                    model=m.name,
                    score=round(score, 2),
                    band=band,
                    immediate=newest is not None,
                    immediate_event=(
                        _Imm(newest["type"], newest["occurred_at"], newest.get("id"))
                        if newest
                        else None
                    ),
                    last_activity_at=None,
                    reasons=(
                        _Reason("base", "fit", base),
                        _Reason("views", "behavior", ev_points, len(evs)),
                    ),
                )
            )
    return out


@dataclass
class FakeCRM:
    """Implements ``connectors.base.Connector`` in memory."""

    name: str = "fake"
    page: int = 100
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[EventRecord] = field(default_factory=list)
    owners: list[Owner] = field(
        default_factory=lambda: [
            Owner("o1", "ann@example.com", "Ann"),
            Owner("o2", "bob@example.com", "Bob"),
            Owner("o3", "cat@example.com", "Cat"),
        ]
    )
    deals: dict[str, DealRecord] = field(default_factory=dict)
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    score_writes: list[list[ScoreUpdate]] = field(default_factory=list)
    owner_sets: list[tuple[str, str]] = field(default_factory=list)
    reject: dict[str, str] = field(default_factory=dict)  # contact id -> reason
    drop_after_create: int = 0  # the next N creates commit, then "lose" the response
    fail_creates: int = 0  # the next N creates fail before committing
    quota_after: int | None = None  # calls allowed before QuotaExhausted
    calls: int = 0
    calls_by: dict[str, int] = field(default_factory=dict)
    seq: int = 0
    merges: list[tuple[int, Merge]] = field(default_factory=list)
    deletions: list[tuple[int, str]] = field(default_factory=list)
    fields_ensured: list[str] = field(default_factory=list)
    bucket: str = "fake:test"
    last_state: SeqState | None = None

    # ---------------------------------------------------------------- test helpers
    def add(
        self, cid: str, *, kind: str = "contact", converted: bool = False, **fields: Any
    ) -> None:
        self.seq += 1
        base = {
            "first_name": "F" + cid,
            "last_name": "L" + cid,
            "created_at": T0 - timedelta(days=5),
        }
        base.update(fields)
        self.contacts[cid] = {"fields": base, "kind": kind, "converted": converted, "seq": self.seq}

    def touch(self, cid: str, **fields: Any) -> None:
        self.seq += 1
        self.contacts[cid]["fields"].update(fields)
        self.contacts[cid]["seq"] = self.seq

    def event(
        self, cid: str, eid: str, when: datetime, type: str = "page_view", **attrs: Any
    ) -> None:
        self.events.append(EventRecord(eid, cid, type, when, attrs))
        self.touch(cid)

    def merge(self, merged: str, into: str) -> None:
        self.seq += 1
        self.merges.append((self.seq, Merge(merged, into)))
        self.contacts.pop(merged, None)
        self.events = [
            EventRecord(
                e.id,
                into if e.contact_id == merged else e.contact_id,
                e.type,
                e.occurred_at,
                e.attributes,
            )
            for e in self.events
        ]
        self.touch(into)

    def delete(self, cid: str) -> None:
        self.seq += 1
        self.deletions.append((self.seq, cid))
        self.contacts.pop(cid, None)

    def rep_deal(self, cid: str, *, is_open: bool = True) -> None:
        self.deals[f"rep-{cid}"] = DealRecord(
            f"rep-{cid}", cid, "rep deal", "o1", "s", is_open=is_open
        )

    def close_deals(self) -> None:
        self.deals = {
            k: DealRecord(
                d.id, d.contact_id, d.name, d.owner_id, "closedlost", is_open=False, key=d.key
            )
            for k, d in self.deals.items()
        }

    def deals_for(self, cid: str) -> list[DealRecord]:
        return [d for d in self.deals.values() if d.contact_id == cid and d.key]

    def tasks_for(self, cid: str) -> list[TaskSpec]:
        return [t for t in self.tasks.values() if t.contact_id == cid]

    def _call(self, what: str, n: int = 1) -> None:
        if self.quota_after is not None and self.calls + n > self.quota_after:
            raise QuotaExhausted("daily API allowance share for this run is spent")
        self.calls += n
        self.calls_by[what] = self.calls_by.get(what, 0) + n

    # ------------------------------------------------------------------ protocol
    def load_state(self, data: Mapping[str, object] | None) -> SeqState | None:
        if data is None:
            return None
        seq = data.get("seq", 0)
        return SeqState(int(seq) if isinstance(seq, int | str) else 0)

    def checkpoint(self) -> SeqState | None:
        return self.last_state

    def read_changes(
        self, state: SeqState | None, *, until: datetime, events_since: datetime
    ) -> Iterator[ReadBatch]:
        self.last_state = None
        since = state.seq if state is not None else 0
        changed = sorted(
            (cid for cid, c in self.contacts.items() if c["seq"] > since),
            key=lambda cid: self.contacts[cid]["seq"],
        )
        merges = tuple(m for s, m in self.merges if s > since)
        deletions = tuple(d for s, d in self.deletions if s > since)
        top = self.seq
        pages = max(1, math.ceil(len(changed) / self.page))
        for i in range(pages):
            self._call("read")
            ids = changed[i * self.page : (i + 1) * self.page]
            recs = tuple(
                ContactRecord(
                    cid,
                    dict(self.contacts[cid]["fields"]),
                    # The CRM's modification stamp: moves with every change.
                    updated_at=T0 + timedelta(microseconds=self.contacts[cid]["seq"]),
                    kind=self.contacts[cid]["kind"],
                    converted=self.contacts[cid]["converted"],
                )
                for cid in ids
            )
            evs = tuple(
                e for e in self.events if e.contact_id in set(ids) and e.occurred_at > events_since
            )
            last = i == pages - 1
            yield ReadBatch(
                contacts=recs,
                events=evs,
                merges=merges if i == 0 else (),
                deletions=deletions if i == 0 else (),
                state=SeqState(top) if last else None,
            )
        self.last_state = SeqState(top)

    def list_owners(self) -> Sequence[Owner]:
        self._call("owners")
        return list(self.owners)

    def open_deals(self, contact_ids: Sequence[str]) -> Mapping[str, Sequence[DealRecord]]:
        self._call("open_deals", max(1, math.ceil(len(contact_ids) / 100)))
        out: dict[str, list[DealRecord]] = {}
        for d in self.deals.values():
            if d.contact_id in contact_ids and d.is_open:
                out.setdefault(d.contact_id, []).append(d)
        return out

    def read_deal_outcomes(self, since: datetime | None) -> Iterator[DealRecord]:
        return iter(())

    def ensure_fields(self, fields: Sequence[FieldSpec]) -> FieldCheck:
        self._call("fields")
        self.fields_ensured.extend(f.name for f in fields)
        return FieldCheck(present=tuple(f.name for f in fields))

    def write_scores(self, updates: Sequence[ScoreUpdate]) -> WriteResult:
        self._call("write", math.ceil(len(updates) / 100))
        self.score_writes.append(list(updates))
        ok, bad = [], []
        for u in updates:
            if u.contact_id in self.reject:
                bad.append(RecordFailure(u.contact_id, self.reject[u.contact_id]))
            else:
                self.scores.setdefault(u.contact_id, {}).update(u.values)
                ok.append(u.contact_id)
        return WriteResult(tuple(ok), tuple(bad))

    def _create(self) -> None:
        if self.fail_creates:
            self.fail_creates -= 1
            raise CRMResponseError("the CRM answered 503 three times")

    def _maybe_drop(self) -> None:
        if self.drop_after_create:
            self.drop_after_create -= 1
            raise CRMResponseError("connection dropped after the request was sent")

    def create_deal(self, spec: DealSpec) -> ActionResult:
        self._call("deal")
        if spec.key in self.deals:
            return ActionResult(spec.key, self.deals[spec.key].id, created=False)
        self._create()
        self.deals[spec.key] = DealRecord(
            f"d{len(self.deals) + 1}",
            spec.contact_id,
            spec.name,
            spec.owner_id,
            spec.stage,
            is_open=True,
            key=spec.key,
        )
        self._maybe_drop()
        return ActionResult(spec.key, self.deals[spec.key].id, created=True)

    def create_task(self, spec: TaskSpec) -> ActionResult:
        self._call("task")
        if spec.key in self.tasks:
            return ActionResult(spec.key, spec.key, created=False)
        self._create()
        self.tasks[spec.key] = spec
        self._maybe_drop()
        return ActionResult(spec.key, spec.key, created=True)

    def set_owner(self, contact_id: str, owner_id: str, *, kind: str = "contact") -> None:
        self._call("owner")
        self.owner_sets.append((contact_id, owner_id))
        if contact_id in self.contacts:
            self.contacts[contact_id]["fields"]["owner_id"] = owner_id

    def budget(self) -> Budget:
        return Budget(calls=self.calls)

    def close(self) -> None:
        return None
