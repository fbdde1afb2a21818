"""Decisions of the write-back: which scores to write, which crossings to act on, and
how an action becomes ledger entries and idempotent CRM calls.

An action (a crossing or an immediate event) becomes up to three ledger entries that
share a ``group_key`` — ``owner``, ``deal``, ``task`` — each with a key derived only
from (contact, model, crossing number or event id). The ledger records the intent in
the same transaction that disarms the crossing; the CRM calls follow; the outcome is
recorded after each. A crash anywhere leaves either no intent (nothing happened, the
crossing is re-detected) or an intent that the next run completes under the same key,
which the connector's idempotent create turns into "already there".
"""

from __future__ import annotations

import os
import re
import signal
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, cast

from connectors.base import (
    ActionResult,
    AuthError,
    BatchOutcome,
    Connector,
    ConnectorConfigError,
    ConnectorError,
    ContactKind,
    CreatesInBatches,
    CRMResponseError,
    DealSpec,
    FieldSpec,
    Owner,
    OwnerSpec,
    QuotaExhausted,
    TaskSpec,
)
from scheduler.config import DealConfig, OnCrossConfig, TaskConfig, redact
from scheduler.state import LedgerEntry, LedgerKind, LedgerSpec, LedgerStatus, ModelState

CRASH_ENV = "LEADSYNC_CRASH_AT"
# Where a run may be killed on purpose (``name`` or ``name:N``, the N-th time): only
# the crash-safety tests do, through ``leadsync run`` with ``LEADSYNC_CRASH_AT`` set.
CrashHook = Callable[[str], None]


CRASH_POINTS = (
    "after_read_batch",
    "after_intents",
    "before_score_write",
    "after_score_write",
    "after_crm_write",
    "after_ledger",
    "before_cursor",
)


def no_crash(point: str) -> None:
    """The crash hook of every run but the crash-safety tests': does nothing."""
    del point


def crash_at(target: str | None) -> CrashHook:
    """A hook that kills the process, as SIGKILL would, at ``target`` (``name`` or
    ``name:N``, the N-th time the point is reached): the crash-safety tests cannot
    otherwise hit a window a few microseconds wide. ``None`` or empty: no crash."""
    if not target:
        return no_crash
    point, _, nth = target.partition(":")
    times = int(nth or 1)
    hits = 0

    def crash(name: str) -> None:
        nonlocal hits
        if name != point:
            return
        hits += 1
        if hits >= times:
            os.kill(os.getpid(), signal.SIGKILL)

    return crash


def crash_from_env() -> CrashHook:
    """The hook ``LEADSYNC_CRASH_AT`` asks for; read only by the ``leadsync run`` entry."""
    return crash_at(os.environ.get(CRASH_ENV))


# ------------------------------------------------------------------ score writes

# A refused score write is tried again when the record changes in the CRM, else after
# a back-off: an hour, doubling with each refusal, at most a week. A wrong set-up
# refuses every record on every run; retrying them all each run spent half a day's
# quota on a 15-minute schedule.
FIRST_RETRY_SECONDS = 3600.0
MAX_RETRY_SECONDS = 7 * 86400.0
# Refusals are judged only after this many write attempts in a run (and the first
# write of a run is no larger, so that a wrong set-up costs one batch, not all).
JUDGED_AFTER = 100

# Codes (HubSpot's ``error``, Salesforce's ``statusCode``) that say the set-up is wrong
# (a score field of the wrong type, read-only or unknown), not the record: the user
# must fix the configuration or the CRM's fields.
SET_UP_CODES = frozenset(
    {
        # HubSpot property validation
        "INVALID_OPTION",
        "INVALID_DECIMAL",
        "INVALID_INTEGER",
        "INVALID_LONG",
        "INVALID_FLOAT",
        "INVALID_BOOLEAN",
        "INVALID_DATE",
        "INVALID_DATETIME",
        "READ_ONLY_VALUE",
        "PROPERTY_DOESNT_EXIST",
        # Salesforce record errors
        "INVALID_FIELD",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "INVALID_TYPE",
        "JSON_PARSER_ERROR",
        "NUMBER_OUTSIDE_VALID_RANGE",
        "STRING_TOO_LONG",
    }
)
_CODE = re.compile(r"^([A-Z][A-Z0-9_]{2,})(?: ([\w.]+))?:")
_SF_FIELDS = re.compile(r"\(fields: ([^)]*)\)")


def retry_delay(attempts: int) -> float:
    """Seconds until a record refused ``attempts`` times in a row is written again."""
    return min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2.0 ** max(0, attempts - 1))


def reason_kind(reason: str) -> tuple[str, bool]:
    """What a refusal is about, the same for every record refused for it: the CRM's
    code and the field (``INVALID_OPTION leadsync_score``), or the reason with its
    numbers masked; and whether it is the set-up's fault rather than the record's.
    Connectors start a record's reason with the code (``CODE[ field]: message``)."""
    found = _CODE.match(reason)
    if found is None:
        return re.sub(r"\d+(?:\.\d+)?", "#", reason)[:120], False
    code, field_name = found[1], found[2]
    if field_name is None:
        fields = _SF_FIELDS.search(reason)
        field_name = fields[1] if fields else None
    kind = f"{code} {field_name}" if field_name else code
    return kind, code in SET_UP_CODES


class TooManyRejected(Exception):
    """More than ``writeback.max_rejected_share`` of a run's score writes were refused
    for one reason: the run stops rather than spend its API calls on the rest.
    ``config``: the reason is the set-up's (a wrong field type, a read-only or unknown
    field), so the user must fix something before the next run."""

    def __init__(self, message: str, *, config: bool) -> None:
        super().__init__(message)
        self.config = config


def band_field_for(band_field: str | Mapping[str, str] | None, model: str) -> str | None:
    """The field a model writes its band to: the one ``writeback.band_field`` names for
    every model, or the model's own entry of a ``{model: field}`` mapping."""
    if band_field is None or isinstance(band_field, str):
        return band_field
    return band_field.get(model)


def field_specs(
    models: Sequence[Any], band_field: str | Mapping[str, str] | None
) -> list[FieldSpec]:
    """Every field the write-back writes: each model's score field and band field."""
    specs: dict[str, FieldSpec] = {}
    for m in models:
        specs[m.score_field] = FieldSpec(m.score_field, "number", f"{m.name} score")
    for m in models:
        band = band_field_for(band_field, m.name)
        if band and band not in specs:
            label = "leadsync band" if isinstance(band_field, str) else f"{m.name} band"
            specs[band] = FieldSpec(band, "text", label)
    return list(specs.values())


def band_field_problems(
    band_field: str | Mapping[str, str] | None, models: Sequence[Any], source: str
) -> list[str]:
    """``FILE:LINE: writeback.band_field...: problem`` for a mapping that names a model
    no model file defines, or a band field that is also a score field."""
    names = {m.name for m in models}
    scores = {m.score_field: m.name for m in models}
    problems: list[str] = []
    entries = (
        [] if band_field is None else
        [(None, band_field)] if isinstance(band_field, str) else list(band_field.items())
    )  # fmt: skip
    for model, field_name in entries:
        path = "writeback.band_field" + (f".{model}" if model else "")
        where = f"{source}:{_line_of(source, model)}: {path}"
        if model is not None and model not in names:
            problems.append(
                f"{where}: no model named {model!r}{_suggest(model, names)} "
                f"(models: {', '.join(sorted(names))})"
            )
        elif field_name in scores:
            problems.append(
                f"{where}: {field_name!r} is the score field of model {scores[field_name]!r}; "
                "a band field needs a field of its own"
            )
    return problems


def _suggest(name: str, names: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _line_of(source: str, model: str | None) -> int:
    """The line of ``writeback.band_field`` (or of its entry for ``model``) in the
    configuration file; 1 when the file cannot be read again."""
    try:
        from ruamel.yaml import YAML

        with open(source, encoding="utf-8") as fh:
            doc = YAML(typ="rt").load(fh)
        wb = doc["writeback"]
        if model is None:
            return int(wb.lc.key("band_field")[0]) + 1
        return int(wb["band_field"].lc.key(model)[0]) + 1
    except Exception:  # the line is a help, never a reason to fail
        return 1


def needs_write(state: ModelState | None, score: float, band: str, min_change: float) -> bool:
    """Write when never written, when the band changed, or when it moved enough."""
    if state is None or state.written_score is None:
        return True
    if state.written_band != band:
        return True
    return abs(score - state.written_score) >= max(min_change, 1e-9)


# -------------------------------------------------------------------- templates


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, values: Mapping[str, Any]) -> str:
    """``str.format`` with missing fields rendered empty (a contact without a last name
    still gets a deal), and no attribute or index access."""
    out = string.Formatter().vformat(template, (), _Fields(values))
    return " ".join(out.split())


def _fmt_points(p: float) -> str:
    return f"{p:+.2f}".rstrip("0").rstrip(".")


def reasons_text(reasons: Sequence[Any], limit: int = 5) -> str:
    """The top reasons, largest effect first: what the rep reads in the task body."""
    ranked = sorted(reasons, key=lambda r: -abs(float(r.points)))[:limit]
    lines = []
    for r in ranked:
        events = getattr(r, "events", None)
        extra = f" ({events} events)" if events else ""
        lines.append(f"- {r.rule}: {_fmt_points(float(r.points))}{extra}")
    return "\n".join(lines)


# -------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Action:
    """A crossing or an immediate event, decided and ready to become ledger entries."""

    contact_id: str
    model: str
    kind: str  # crossing | immediate
    token: str  # crossing number (c3) or event id (e:...)
    score: float
    band: str
    contact_kind: str
    fields: Mapping[str, Any]
    reasons: tuple[Any, ...]

    @property
    def group_key(self) -> str:
        return f"{self.model}:{self.contact_id}:{self.token}"


def event_token(ev: Any) -> str:
    """An immediate event's identity: its id, or type and time when the CRM gives none."""
    if ev is None:
        return ""
    if getattr(ev, "id", None):
        return f"e:{ev.id}"
    occurred = (
        ev.occurred_at.isoformat() if isinstance(ev.occurred_at, datetime) else ev.occurred_at
    )
    return f"e:{ev.type}@{occurred}"


def plan_entries(
    action: Action,
    *,
    on_cross: OnCrossConfig,
    now: datetime,
    owner_id: str | None,
    assign_owner: bool,
) -> list[LedgerEntry]:
    """The ledger entries of one action, in execution order (owner, deal, task)."""
    g = action.group_key
    values: dict[str, Any] = dict(action.fields)
    values.update(
        model=action.model,
        score=_score_text(action.score),
        band=action.band,
        contact_id=action.contact_id,
    )
    entries: list[LedgerEntry] = []

    def entry(seq: int, kind: LedgerKind, spec: LedgerSpec) -> LedgerEntry:
        return LedgerEntry(
            key=f"{g}:{kind}",
            group_key=g,
            seq=seq,
            contact_id=action.contact_id,
            model=action.model,
            kind=kind,
            status=LedgerStatus.INTENT,
            spec=spec,
            result_id=None,
            error=None,
            attempts=0,
        )

    contact_kind = _contact_kind(action.contact_kind)
    if assign_owner and owner_id:
        entries.append(
            entry(0, LedgerKind.OWNER, {"owner_id": owner_id, "contact_kind": contact_kind})
        )
    deal: DealConfig | None = on_cross.deal
    if deal is not None:
        options = {"pipeline": deal.pipeline, "lead_status": deal.lead_status}
        spec = DealSpec(
            key=f"{g}:{LedgerKind.DEAL}",
            contact_id=action.contact_id,
            name=render(deal.name, values)[:250] or action.contact_id,
            owner_id=owner_id,
            stage=deal.stage,
            close_date=(now + deal.close_in).date(),
            amount=deal.amount,
            contact_kind=contact_kind,
            crm_options={k: v for k, v in options.items() if v is not None},
        )
        entries.append(entry(1, LedgerKind.DEAL, deal_to_ledger(spec)))
    task: TaskConfig | None = on_cross.task
    if task is not None:
        why = "immediate: " + action.token[2:] if action.kind == "immediate" else "crossed"
        body = (
            f"{action.model} score {_score_text(action.score)} ({action.band}, {why}).\n"
            f"Top reasons:\n{reasons_text(action.reasons)}"
        )
        task_spec = TaskSpec(
            key=f"{g}:{LedgerKind.TASK}",
            contact_id=action.contact_id,
            owner_id=owner_id,
            subject=render(task.subject, values)[:250],
            body=body,
            due_at=now + task.due_in,
            priority=task.priority,
            type=task.type,
            contact_kind=contact_kind,
        )
        entries.append(entry(2, LedgerKind.TASK, task_to_ledger(task_spec)))
    return entries


def _contact_kind(value: str) -> ContactKind:
    return "lead" if value == "lead" else "contact"


# The ledger keeps a DealSpec or TaskSpec without its key and contact (the entry has
# them), under the field names of the spec; a DealSpec's ``crm_options`` are kept
# beside its fields (``pipeline``, ``lead_status``), as earlier releases stored them.
_DEAL_FIELDS = ("name", "owner_id", "stage", "close_date", "amount", "contact_kind")


def deal_to_ledger(spec: DealSpec) -> LedgerSpec:
    out: dict[str, str | float | date | None] = {
        "name": spec.name,
        "owner_id": spec.owner_id,
        "stage": spec.stage,
        "close_date": spec.close_date,
        "amount": spec.amount,
        "contact_kind": spec.contact_kind,
    }
    for option, value in spec.crm_options.items():
        out.setdefault(option, value)
    return out


def deal_from_ledger(entry: LedgerEntry, *, first_attempt: bool = False) -> DealSpec:
    spec = entry.spec or {}
    close = spec["close_date"]
    if isinstance(close, datetime):
        close = close.date()
    amount = spec.get("amount")
    owner = spec.get("owner_id")
    return DealSpec(
        key=entry.key,
        contact_id=entry.contact_id,
        name=str(spec["name"]),
        owner_id=None if owner is None else str(owner),
        stage=str(spec["stage"]),
        close_date=close if isinstance(close, date) else date.fromisoformat(str(close)),
        amount=float(amount) if isinstance(amount, int | float) else None,
        contact_kind=_contact_kind(str(spec.get("contact_kind", "contact"))),
        crm_options={k: str(v) for k, v in spec.items() if k not in _DEAL_FIELDS and v is not None},
        first_attempt=first_attempt,
    )


def task_to_ledger(spec: TaskSpec) -> LedgerSpec:
    return {
        "owner_id": spec.owner_id,
        "subject": spec.subject,
        "body": spec.body,
        "due_at": spec.due_at,
        "priority": spec.priority,
        "type": spec.type,
        "contact_kind": spec.contact_kind,
    }


def task_from_ledger(entry: LedgerEntry, *, first_attempt: bool = False) -> TaskSpec:
    spec = entry.spec or {}
    due = spec["due_at"]
    if not isinstance(due, datetime):
        due = datetime.fromisoformat(str(due))
    owner = spec.get("owner_id")
    priority = str(spec.get("priority", "high"))
    kind = str(spec.get("type", "call"))
    return TaskSpec(
        key=entry.key,
        contact_id=entry.contact_id,
        owner_id=None if owner is None else str(owner),
        subject=str(spec["subject"]),
        body=str(spec["body"]),
        due_at=due,
        priority=cast(Literal["low", "medium", "high"], priority)
        if priority in ("low", "medium", "high")
        else "high",
        type=cast(Literal["call", "email", "todo"], kind)
        if kind in ("call", "email", "todo")
        else "call",
        contact_kind=_contact_kind(str(spec.get("contact_kind", "contact"))),
        first_attempt=first_attempt,
    )


def _score_text(score: float) -> str:
    return f"{score:.2f}".rstrip("0").rstrip(".")


class OwnerPool:
    """Round robin over the configured pool, resolved to owner ids once per run.

    The position is kept in the state store, so that the rotation continues across
    runs rather than always starting with the first rep."""

    def __init__(self, pool: Sequence[str], owners_loader: Callable[[], Sequence[Owner]]) -> None:
        self._pool = list(pool)
        self._loader = owners_loader
        self._resolved: list[str] | None = None
        self._owners: list[Owner] | None = None

    def _all(self) -> list[Owner]:
        if self._owners is None:
            self._owners = list(self._loader())
        return self._owners

    def can_own(self, owner_id: str) -> bool:
        """Whether ``owner_id`` can be handed a deal and a task: an active person the
        CRM lists. Salesforce Leads often sit in a queue, and a queue cannot own a
        Task; a deactivated rep (or one HubSpot archived, which its owner list leaves
        out) would never see one. Such contacts go to the pool like unowned ones.
        Without a pool there is no one else to give them to, so nothing is loaded and
        the owner stays."""
        if not self._pool:
            return True
        owners = self._all()
        if not owners:
            return True  # nothing listed at all: no grounds to take the contact away
        return any(o.id == owner_id and o.active and o.kind == "person" for o in owners)

    def resolved(self) -> list[str]:
        if self._resolved is None:
            if not self._pool:
                self._resolved = []
            else:
                owners = self._all()
                by_email = {(o.email or "").lower(): o.id for o in owners if o.active}
                ids = {o.id for o in owners if o.active}
                out = []
                for item in self._pool:
                    if item in ids:
                        out.append(item)
                    elif item.lower() in by_email:
                        out.append(by_email[item.lower()])
                if not out:
                    raise CRMResponseError(
                        "writeback.on_cross.owners.pool: none of the pool's owners exists "
                        "(or is active) in the CRM"
                    )
                self._resolved = out
        return self._resolved

    def label(self, owner_id: str | None) -> str | None:
        """The owner's name or e-mail as the CRM lists them, for a dry run's report;
        the id when the CRM does not list them."""
        if not owner_id:
            return None
        for o in self._all():
            if o.id == owner_id:
                return o.name or o.email or owner_id
        return owner_id

    def pick(self, position: int) -> str | None:
        ids = self.resolved()
        return ids[position % len(ids)] if ids else None


def execute_entry(
    connector: Connector, entry: LedgerEntry, *, first_attempt: bool = False
) -> tuple[LedgerStatus, str | None]:
    """Run one ledger entry against the CRM; returns (status, result id)."""
    spec = entry.spec or {}
    if entry.kind == LedgerKind.OWNER:
        owner = str(spec["owner_id"])
        connector.set_owner(
            entry.contact_id, owner, kind=_contact_kind(str(spec.get("contact_kind")))
        )
        return LedgerStatus.DONE, owner
    if entry.kind == LedgerKind.DEAL:
        deal = deal_from_ledger(entry, first_attempt=first_attempt)
        return LedgerStatus.DONE, connector.create_deal(deal).id
    if entry.kind == LedgerKind.TASK:
        task = task_from_ledger(entry, first_attempt=first_attempt)
        return LedgerStatus.DONE, connector.create_task(task).id
    raise ValueError(f"unknown ledger entry kind {entry.kind!r}")


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    """What became of one ledger entry: its result id, or the error that stopped its
    group (``later``: the group's entries after it, not tried, still intents)."""

    entry: LedgerEntry
    result_id: str | None = None
    error: ConnectorError | None = None
    later: tuple[LedgerEntry, ...] = ()


RecordOutcome = Callable[[EntryOutcome], None]
# Commits the "sent" mark of these keys before a call carries them; returns the keys
# no earlier call carried (``StateStore.mark_sent``).
MarkSent = Callable[[Sequence[str]], set[str]]


def _nothing_known_unsent(keys: Sequence[str]) -> set[str]:
    return set()


# Errors that stop the whole run (the rest stays as intents for the next one).
_RUN_STOPPERS = (QuotaExhausted, AuthError, ConnectorConfigError)
_STEPS = (LedgerKind.OWNER, LedgerKind.DEAL, LedgerKind.TASK)


def execute_groups(
    connector: Connector,
    groups: Sequence[Sequence[LedgerEntry]],
    *,
    record: RecordOutcome,
    crash: CrashHook = no_crash,
    mark_sent: MarkSent = _nothing_known_unsent,
) -> None:
    """Run the entries of many actions (each group: one action's entries) and hand
    each entry's outcome to ``record``, which writes it to the ledger.

    A connector that ``CreatesInBatches`` gets them step by step — every group's
    owner, then every deal, then every task — in batches, so that a run's hundred
    actions cost a few calls; others get one call per entry. Either way a group's
    entries run in order and a group stops at its first failure (the rest stay
    intents for a later run). The crash points keep their meaning per entry:
    ``after_crm_write`` once the CRM answered for the entry, ``after_ledger`` once
    ``record`` wrote its outcome. The intents were committed before: a crash anywhere
    leaves keys that the next run completes without a duplicate. ``mark_sent`` is
    called before each call with the entries it carries; the entries no call carried
    before are handed on as first attempts, which a connector may create without
    first looking for their keys (with the default, none is)."""
    ordered = [sorted(g, key=lambda e: e.seq) for g in groups if g]
    if not isinstance(connector, CreatesInBatches):
        for entries in ordered:
            for i, entry in enumerate(entries):
                try:
                    first = entry.key in mark_sent([entry.key])
                    _, result_id = execute_entry(connector, entry, first_attempt=first)
                except _RUN_STOPPERS:
                    raise
                except ConnectorError as exc:
                    record(EntryOutcome(entry, error=exc, later=tuple(entries[i + 1 :])))
                    break
                _done(entry, result_id, record, crash)
        return
    stopped: set[int] = set()
    for kind in _STEPS:
        todo = [
            (g, i, e)
            for g, entries in enumerate(ordered)
            if g not in stopped
            for i, e in enumerate(entries)
            if e.kind == kind
        ]
        if not todo:
            continue
        answers: Sequence[BatchOutcome | ConnectorError]
        try:
            step = [e for _, _, e in todo]
            answers = _run_step(connector, kind, step, mark_sent([e.key for e in step]))
        except _RUN_STOPPERS:
            raise
        except ConnectorError as exc:
            answers = [exc] * len(todo)
        for (g, i, entry), answer in zip(todo, answers, strict=True):
            if isinstance(answer, ActionResult):
                _done(entry, answer.id, record, crash)
                continue
            error = (
                answer if isinstance(answer, ConnectorError) else CRMResponseError(answer.reason)
            )
            stopped.add(g)
            record(EntryOutcome(entry, error=error, later=tuple(ordered[g][i + 1 :])))


def _done(
    entry: LedgerEntry, result_id: str | None, record: RecordOutcome, crash: CrashHook
) -> None:
    crash("after_crm_write")
    record(EntryOutcome(entry, result_id=result_id))
    crash("after_ledger")


def _run_step(
    connector: CreatesInBatches,
    kind: LedgerKind,
    entries: Sequence[LedgerEntry],
    fresh: set[str],
) -> Sequence[BatchOutcome]:
    if kind == LedgerKind.OWNER:
        specs = [
            OwnerSpec(
                key=e.key,
                contact_id=e.contact_id,
                owner_id=str((e.spec or {})["owner_id"]),
                kind=_contact_kind(str((e.spec or {}).get("contact_kind"))),
            )
            for e in entries
        ]
        answers = connector.set_owners(specs)
    elif kind == LedgerKind.DEAL:
        answers = connector.create_deals(
            [deal_from_ledger(e, first_attempt=e.key in fresh) for e in entries]
        )
    else:
        answers = connector.create_tasks(
            [task_from_ledger(e, first_attempt=e.key in fresh) for e in entries]
        )
    if len(answers) != len(entries):
        raise CRMResponseError(f"{kind} batch: {len(answers)} answers for {len(entries)} inputs")
    return answers


def safe_error(exc: BaseException, redactor: Callable[[str], str] = redact) -> str:
    """One line, secrets masked (by the host's redactor when given), at most 500 chars."""
    text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ConnectorError) else str(exc)
    return redactor(text.splitlines()[0] if text else type(exc).__name__)[:500]
