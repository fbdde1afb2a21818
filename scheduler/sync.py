"""One sync run: read changes, keep the local copy, re-score, write back, act, commit.

The order of the steps is what makes a run safe to kill at any point; they are
numbered once, in ``docs/sync.md`` (section "One run"), with the reasoning behind
each rule. The step numbers in this module's comments refer to that list.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from connectors.base import (
    AuthError,
    Connector,
    ConnectorConfigError,
    ConnectorError,
    ConnectorState,
    CountsOrphanEvents,
    FieldCheck,
    FieldSpec,
    QuotaExhausted,
    ReadBatch,
    Redactor,
    ReportsRejected,
    ScoreUpdate,
    SharesOwnWrites,
)
from scheduler.cli_common import ExitCode, stop_for
from scheduler.config import SyncConfig, WritebackConfig, redact
from scheduler.state import (
    LedgerEntry,
    LedgerKind,
    LedgerStatus,
    LockHeld,
    ModelState,
    StateStore,
    StoredContact,
)
from scheduler.writeback import (
    JUDGED_AFTER,
    Action,
    CrashHook,
    EntryOutcome,
    OwnerPool,
    TooManyRejected,
    band_field_for,
    event_token,
    execute_groups,
    field_specs,
    needs_write,
    no_crash,
    plan_entries,
    reason_kind,
    retry_delay,
    safe_error,
)
from scoring.vocabulary import STAGE_DATE_FIELDS, UPDATED_AT

if TYPE_CHECKING:
    from scheduler.alerts.hook import AlertsHook

log = logging.getLogger("leadsync.sync")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ATTEMPTS = 5  # CRM calls of one ledger entry before it is given up
# Fields the write-back itself needs besides what the models read (templates, routing).
BASE_FIELDS = frozenset({"owner_id", "first_name", "last_name", "email", "company", "created_at"})
# A dry run lists at most this many writes and actions in its summary (and says how
# many it left out): a baseline of 100,000 contacts would otherwise be one huge object.
DRY_RUN_LIST_MAX = 1000
# The state store's record of each model's band field, so that a changed band field
# re-writes that model's bands to the new field (without being a model change).
BAND_FIELDS_KEY = "band_fields"
# leadsync serve's connector-level score writes (``SharesOwnWrites.own_writes``), per
# pipeline: the next run's read skips their echoes before reading any engagement.
SERVE_OWN_WRITES_KEY = "serve_own_writes:{pipeline}"
# The digest of the fields last ensured: a real run checks (and creates) fields on a
# baseline and whenever the set of fields it writes changed.
FIELDS_KEY = "fields_ensured"


class SyncModel(Protocol):
    """What the sync needs of a model: ``scoring.model.ScoringModel`` and the
    predictive models beside it (``scheduler.cli_train.RunModel``)."""

    @property
    def name(self) -> str: ...
    @property
    def score_field(self) -> str: ...
    @property
    def threshold(self) -> float: ...
    @property
    def rearm_below(self) -> float: ...
    @property
    def content_hash(self) -> str: ...
    @property
    def fields_used(self) -> frozenset[str]: ...
    @property
    def history_days(self) -> float | None: ...


class ScoredRow(Protocol):
    """What the sync reads of a score (``scoring.engine.ScoreResult``)."""

    @property
    def contact_id(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def band(self) -> str: ...
    @property
    def immediate(self) -> bool: ...
    @property
    def immediate_event(self) -> object | None: ...
    @property
    def reasons(self) -> Sequence[object]: ...


class Scorer(Protocol):
    """``scoring.engine.score`` or one with its signature (with predictive models)."""

    def __call__(
        self,
        models: Any,
        contacts: Iterable[Mapping[str, Any]],
        events: Iterable[Mapping[str, Any]],
        *,
        as_of: datetime,
    ) -> Sequence[ScoredRow]: ...


@dataclass
class RunOptions:
    dry_run: bool = False
    full: bool = False
    act_on_baseline: bool = False


@dataclass
class RunSummary:
    """What the run did; printed as a table or, with ``--json``, as one object."""

    run_id: str = ""
    exit_code: int = ExitCode.OK
    status: str = "ok"
    error: str | None = None
    dry_run: bool = False
    full: bool = False
    act_on_baseline: bool = False
    baseline_models: list[str] = field(default_factory=list)
    baseline_above_threshold: int = 0
    contacts_read: int = 0
    events_read: int = 0
    merges: int = 0
    deletions: int = 0
    contacts_scored: int = 0
    scores_written: int = 0
    crossings: int = 0
    immediate: int = 0
    deals: int = 0
    tasks: int = 0
    owners_assigned: int = 0
    actions_resumed: int = 0
    actions_failed: int = 0
    skipped_open_deal: int = 0
    skipped_converted: int = 0
    actions_waiting: int = 0
    rejected: int = 0
    # Records refused on an earlier run whose back-off has not ended (no call made).
    rejected_waiting: int = 0
    # The commonest refusals of this run: [kind, count, first contact id, its reason];
    # printed on stderr, kept out of the JSON summary.
    rejected_reasons: list[list[Any]] = field(default_factory=list)
    # Rows of the CRM's data that could not be read (``FILE:LINE: field: problem``);
    # counted in ``rejected``, printed on stderr, kept out of the JSON summary.
    bad_rows: list[str] = field(default_factory=list)
    orphan_events: int = 0
    # Contacts read back whose only change was a score write of ``leadsync serve``.
    serve_echoes: int = 0
    outcomes_read: int = 0
    outcomes_error: str | None = (
        None  # the outcome read failed; the run went on  # deals and Lead conversions read into the outcome tables
    )
    api_calls: int = 0
    budget: dict[str, Any] = field(default_factory=dict)
    cursor_committed: bool = False
    # Alerts delivered at the end of the run (docs/alerts.md): sent, digests, failed...
    alerts: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    # A dry run's decisions: at most DRY_RUN_LIST_MAX of each, and how many were left out.
    would_write: list[dict[str, Any]] = field(default_factory=list)
    would_write_omitted: int = 0
    would_act: list[dict[str, Any]] = field(default_factory=list)
    would_act_omitted: int = 0
    # Fields absent from the CRM that a real run would create (a dry run creates none).
    fields_to_create: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def baseline_advice(self) -> bool:
        """Whether "N contacts already above the threshold (run with --act-on-baseline)"
        holds: a baseline that scored and committed, did not act, and was no dry run."""
        return bool(
            self.baseline_models
            and not self.dry_run
            and not self.act_on_baseline
            and self.exit_code in (ExitCode.OK, ExitCode.REJECTED)
            and self.scores_written
        )


@dataclass(frozen=True, slots=True)
class _Decided:
    """What ``_decide`` made of one chunk's candidates."""

    groups: list[tuple[list[LedgerEntry], Action]]  # each action's ledger entries
    taken: int  # actions taken this run so far, these included
    rr_next: int | None  # the owner rotation's next position, when it moved


@dataclass
class _Pending:
    """Score updates waiting to fill a batch."""

    updates: dict[str, ScoreUpdate] = field(default_factory=dict)
    written: dict[str, list[tuple[str, str, float, str]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.updates)


ProgressHook = Callable[[str, int], None]


class PhaseProgress(Protocol):
    """What a run tells a progress display, phase by phase (``read``, ``score``,
    ``write``, ``act``). ``start`` gives a phase's total as far as it is known (None:
    unknown, as for reading, whose size the CRM does not tell in advance) and is
    called again when it grows (writes and actions are decided chunk by chunk);
    ``advance`` counts work done. A dry run has no ``write`` or ``act`` phase."""

    def start(self, phase: str, total: int | None) -> None: ...

    def advance(self, phase: str, n: int) -> None: ...


class _PlainHook:
    """A bare ``(phase, n)`` callable as a :class:`PhaseProgress` (totals ignored)."""

    def __init__(self, hook: ProgressHook) -> None:
        self.hook = hook

    def start(self, phase: str, total: int | None) -> None:
        return None

    def advance(self, phase: str, n: int) -> None:
        self.hook(phase, n)


class _NoProgress:
    def start(self, phase: str, total: int | None) -> None:
        return None

    def advance(self, phase: str, n: int) -> None:
        return None


def _as_progress(progress: ProgressHook | PhaseProgress | None) -> PhaseProgress:
    if progress is None:
        return _NoProgress()
    if hasattr(progress, "start") and hasattr(progress, "advance"):
        return progress
    return _PlainHook(progress)


def _accepts(fn: Callable[..., Any], keyword: str) -> bool:
    """Whether a connector's method takes ``keyword`` (a plug-in written before
    ``ensure_fields`` had ``create`` and ``actions`` may not)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return keyword in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def events_kept(models: Sequence[SyncModel], retain: timedelta) -> timedelta | None:
    """How far back the local copy keeps events: what the models read (the longest
    window plus the decay horizon), and at least ``state.retain_events``, so that a
    backtest can replay past snapshots. ``None`` when a model reads all of history."""
    days: list[float] = []
    for m in models:
        h = m.history_days
        if h is None:
            return None
        days.append(float(h))
    return max(timedelta(days=max(days, default=0.0) + 1), retain)


class Sync:
    """A pipeline: one connector, one model set, one state store."""

    def __init__(
        self,
        config: SyncConfig,
        connector: Connector,
        store: StateStore,
        models: Sequence[SyncModel],
        *,
        scorer: Scorer | None = None,
        now: Callable[[], datetime] | None = None,
        chunk_size: int = 5000,
        progress: ProgressHook | PhaseProgress | None = None,
        heartbeat: bool = True,
        crash: CrashHook = no_crash,
        redactor: Redactor | None = None,
        alerts: AlertsHook | None = None,
    ) -> None:
        """``crash``: called at each point where a kill is worth testing (the crash
        tests pass one that kills the process); ``redactor``: the host's, which masks
        the configuration's secrets in errors the run records (one is built from the
        configuration when none is given)."""
        self.config = config
        self.crash = crash
        self.redactor = redactor if redactor is not None else Redactor(config.secrets())
        if alerts is None and config.alerts is not None and config.alerts.destinations:
            from scheduler.alerts.hook import AlertsHook

            alerts = AlertsHook(
                config.alerts,
                connector=connector,
                now=now or (lambda: datetime.now(UTC)),
                pipeline=config.pipeline,
                heartbeat=heartbeat,
                redactor=self.redactor,
                crash=crash,
            )
        self.alerts = alerts
        self.connector = connector
        self.store = store
        self.models = list(models)
        if scorer is None:
            from scoring.engine import score as engine_score

            scorer = engine_score
        self.scorer = scorer
        self.now = now or (lambda: datetime.now(UTC))
        self.chunk_size = chunk_size
        self.progress = _as_progress(progress)
        self.heartbeat = heartbeat
        self.wb = config.writeback
        self.pipeline = config.pipeline
        self.keep_fields = set(BASE_FIELDS)
        for m in self.models:
            self.keep_fields |= set(m.fields_used)
        self.keep_fields |= config.template_fields()
        self.keep_fields |= STAGE_DATE_FIELDS  # the backtest's lifecycle history

    # ---------------------------------------------------------------- helpers
    def _redact(self, text: str) -> str:
        """The host's redactor, then the secrets registered process-wide by callers
        that have not moved to a host-owned redactor yet."""
        return redact(self.redactor(text))

    def history(self) -> timedelta | None:
        """How far back events are read and kept (``None``: all of them)."""
        return events_kept(self.models, self.config.retain_events)

    def _outcomes_due(self, started: datetime) -> bool:
        from scheduler.outcomes import OutcomeStore

        last = self.store.kv_get(OutcomeStore(self.store).cursor_key(self.pipeline))
        if not isinstance(last, str):
            return True
        return started - datetime.fromisoformat(last) >= self.config.outcomes_every

    def _calls(self) -> int:
        try:
            return int(self.connector.budget().calls)
        except Exception:  # budget is informative; never let it fail a run
            return 0

    # -------------------------------------------------------------------- run
    def run(self, options: RunOptions | None = None) -> RunSummary:
        opts = options or RunOptions()
        self._changed_ids: set[str] = set()  # new or changed in the CRM this run
        self._attempts = 0  # score writes sent this run
        self._refusals: Counter[str] = Counter()  # by reason_kind
        self._totals: dict[str, int] = {}  # write and act: decided so far
        self._first_refusal: dict[str, tuple[str, str, bool]] = {}
        s = RunSummary(
            run_id=uuid.uuid4().hex[:16],
            dry_run=opts.dry_run,
            full=opts.full,
            act_on_baseline=opts.act_on_baseline,
        )
        t0 = time.monotonic()
        ttl = self.config.lock_ttl.total_seconds()
        try:
            with self.store.run_lock(self.pipeline, ttl=ttl, heartbeat=self.heartbeat):
                self.store.start_run(s.run_id)
                calls0 = self._calls()
                try:
                    self._run_locked(opts, s)
                except Exception as exc:
                    stop = stop_for(exc)
                    if stop is None:
                        raise  # a bug: the command reports it
                    s.exit_code, s.status, s.error = (
                        stop.code,
                        stop.status,
                        safe_error(exc, self._redact),
                    )
                s.rejected_reasons = [
                    [kind, n, *self._first_refusal[kind][:2]]
                    for kind, n in self._refusals.most_common(3)
                ]
                s.api_calls = self._calls() - calls0
                try:
                    b = self.connector.budget()
                    s.budget = {
                        "calls": b.calls,
                        "window_remaining": b.window_remaining,
                        "window_limit": b.window_limit,
                        "daily_remaining": b.daily_remaining,
                        "daily_limit": b.daily_limit,
                    }
                except Exception:
                    s.budget = {}
                if s.exit_code == ExitCode.OK and s.rejected:
                    s.exit_code, s.status = ExitCode.REJECTED, "rejected"
                s.seconds = round(time.monotonic() - t0, 3)
                summary = s.to_dict()
                summary.pop("would_write", None)
                summary.pop("would_act", None)
                summary.pop("bad_rows", None)
                summary.pop("rejected_reasons", None)
                self.store.finish_run(s.run_id, s.exit_code, summary)
        except LockHeld as exc:
            s.exit_code, s.status, s.error = ExitCode.LOCKED, "locked", str(exc)
        s.seconds = round(time.monotonic() - t0, 3)
        if s.error:
            # The command prints the error (once, on one line); the log has it for
            # the scheduler, whose level shows INFO.
            log.info("run %s: %s", s.run_id, self._redact(s.error))
        log.info(
            "run %s: exit %s, read %s, written %s, deals %s, tasks %s, calls %s",
            s.run_id,
            s.exit_code,
            s.contacts_read,
            s.scores_written,
            s.deals,
            s.tasks,
            s.api_calls,
        )
        return s

    def _run_locked(self, opts: RunOptions, s: RunSummary) -> None:
        started = self.now()
        hashes = self.store.model_hashes()
        baseline = {m.name for m in self.models if hashes.get(m.name) != m.content_hash}
        s.baseline_models = sorted(baseline)
        # Steps as numbered in docs/sync.md, "One run" (1, the lock, is taken by run()).
        # 2: check (and create) the fields written
        if opts.dry_run:
            self._check_fields(s)
        elif baseline or self.store.kv_get(FIELDS_KEY) != self._fields_key():
            self._ensure_fields()
        # 3: finish what an earlier run began
        if not opts.dry_run:
            self._resume_pending(s)

        # 4: read changes into the local copy ----------------------------------
        stored = None if opts.full else self.store.get_cursor(self.pipeline)
        state = self.connector.load_state(stored)
        if isinstance(self.connector, SharesOwnWrites):
            shared = self.store.kv_get(SERVE_OWN_WRITES_KEY.format(pipeline=self.pipeline))
            if isinstance(shared, dict) and shared:
                state = self.connector.with_own_writes(state, shared)
        hist = self.history()
        events_since = EPOCH if hist is None else started - hist
        read_state = self._read(state, started, events_since, s)
        if not opts.dry_run and self._outcomes_due(started):
            # Won and lost deals (and Lead conversions) feed the backtest and report; an
            # incremental read of its own, with its own cursor (docs/backtest.md). They
            # move on sales' time scale, so a 15-minute schedule reads them at most every
            # `outcomes_every` and an idle run stays at its two or three calls.
            from scheduler.outcomes import sync_outcomes

            try:
                read = sync_outcomes(
                    self.store, self.connector, pipeline=self.pipeline, started=started
                )
                s.outcomes_read = read.deals + read.conversions
            except (AuthError, QuotaExhausted):
                raise
            except ConnectorError as exc:
                # Scoring and acting do not depend on outcomes: a deal query the
                # integration user may not run (field security, a missing scope) is
                # said once and read again at the next due run, from the same cursor.
                s.outcomes_error = self._redact(str(exc))

        # 5-8: re-score locally, decide, act, write back ----------------------
        acting_baseline = set() if opts.act_on_baseline else baseline
        self._rescore(started, acting_baseline, opts, s)

        # 9: commit the state and the model hashes, now that the writes are done
        if opts.dry_run:
            return
        self.crash("before_cursor")
        # The state after the writes: the connector's own writes are in it, so that
        # the next read does not take them for changes.
        new_state = None if read_state is None else (self.connector.checkpoint() or read_state)
        with self.store.tx() as conn:
            if new_state is not None:
                self.store.set_cursor(conn, self.pipeline, new_state.to_json())
                s.cursor_committed = True
            for m in self.models:
                if m.name in baseline:
                    self.store.set_model_hash(conn, m.name, m.content_hash)
            self.store.kv_set(conn, BAND_FIELDS_KEY, self._band_fields())
            if hist is not None:
                self.store.prune_events(conn, started - hist)
            self._forget_serve_writes(conn, started)
        if self.alerts is not None:
            s.alerts = self.alerts.deliver(self.store).to_dict()

    def _field_specs(self) -> list[FieldSpec]:
        return field_specs(self.models, self.wb.band_field)

    def _fields_key(self) -> str:
        payload = json.dumps(
            [
                self.config.crm.type,
                _without_secrets(self.config.crm.settings()),
                sorted((f.name, f.type) for f in self._field_specs()),
            ],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def _band_fields(self) -> dict[str, str | None]:
        return {m.name: band_field_for(self.wb.band_field, m.name) for m in self.models}

    def _ensure_fields(self) -> None:
        check = self.connector.ensure_fields(
            self._field_specs(), **actions_kw(self.connector, self.wb)
        )
        _raise_missing(check)
        with self.store.tx() as conn:
            self.store.kv_set(conn, FIELDS_KEY, self._fields_key())

    def _check_fields(self, s: RunSummary) -> None:
        """A dry run's field check: what a real run would stop on stops it too (exit
        2, with what to create); what a real run would create itself is listed."""
        ensure = self.connector.ensure_fields
        if not _accepts(ensure, "create"):
            log.info(
                "dry run: connector %s cannot check fields without creating them",
                self.connector.name,
            )
            return
        check = ensure(self._field_specs(), create=False, **actions_kw(self.connector, self.wb))
        _raise_missing(check)
        s.fields_to_create = list(check.would_create)

    # ----------------------------------------------------------------- reading
    def _read(
        self,
        state: ConnectorState | None,
        started: datetime,
        events_since: datetime,
        s: RunSummary,
    ) -> ConnectorState | None:
        """Apply every batch to the local copy; then collect the rows the connector
        skipped. A connector that reads files (``files``) cannot stop at a bad row: it
        skips it, keeps the others and lists it in ``connector.rejected`` as
        ``FILE:LINE: field: problem`` (``ReportsRejected``; and counts events of
        contacts it never saw, ``CountsOrphanEvents``). Both are read once the reading
        is exhausted, from connectors that have them; each bad row counts as a
        rejected record, so the run exits 1 while the good rows are still scored."""
        new_state: ConnectorState | None = None
        self._echo_check = self.store.has_serve_writes()
        self.progress.start("read", None)  # the CRM does not say how many changed
        for batch in self.connector.read_changes(state, until=started, events_since=events_since):
            self._apply(batch, s)
            self.crash("after_read_batch")
            if batch.state is not None:
                new_state = batch.state
            self.progress.advance("read", len(batch.contacts))
        if isinstance(self.connector, ReportsRejected):
            bad_rows = [str(line) for line in self.connector.rejected]
            s.bad_rows.extend(bad_rows)
            s.rejected += len(bad_rows)
        if isinstance(self.connector, CountsOrphanEvents):
            s.orphan_events += self.connector.orphan_events
        return new_state

    def _apply(self, batch: ReadBatch, s: RunSummary) -> None:
        if getattr(self, "_echo_check", False):
            batch = self._without_echoes(batch, s)
        contacts = [
            StoredContact(
                id=c.id,
                kind=c.kind,
                converted=c.converted,
                fields={
                    k: v for k, v in c.fields.items() if k in self.keep_fields and v is not None
                }
                # The CRM's modification stamp, kept so that a record read again
                # unchanged (after a stopped run, or by --full) is told from a changed one.
                | ({UPDATED_AT: c.updated_at} if c.updated_at is not None else {}),
            )
            for c in batch.contacts
        ]
        events = [
            {
                "event_id": e.id,
                "contact_id": e.contact_id,
                "type": e.type,
                "occurred_at": e.occurred_at,
                "attributes": dict(e.attributes),
            }
            for e in batch.events
        ]
        with self.store.tx() as conn:
            for m in batch.merges:
                if m.merged_id != m.into_id:
                    self.store.merge_contact(conn, m.merged_id, m.into_id)
            for cid in batch.deletions:
                self.store.purge_contact(conn, cid)
            changed = self.store.upsert_contacts(conn, contacts)
            changed |= self.store.upsert_events(conn, events)
        # A change in the CRM ends a refused record's back-off; a record read again
        # unchanged waits it out.
        self._changed_ids.update(changed)
        s.contacts_read += len(contacts)
        s.events_read += len(events)
        s.merges += len(batch.merges)
        s.deletions += len(batch.deletions)

    # -------------------------------------------------------------- re-scoring
    def _rescore(
        self, as_of: datetime, baseline: set[str], opts: RunOptions, s: RunSummary
    ) -> None:
        by_name = {m.name: m for m in self.models}
        pending = _Pending()
        pool = OwnerPool(self.wb.on_cross.owners.pool, self.connector.list_owners)
        waiting = self._rejected_waiting(as_of, opts)
        waited: set[str] = set()
        rewrite = self._band_fields_changed()
        taken = 0  # actions taken this run, against writeback.max_actions_per_run
        acting: list[list[LedgerEntry]] = []  # the run's actions, executed together
        self.progress.start("score", self.store.count_contacts())
        for contacts, events in self.store.iter_chunks(self.chunk_size):
            self.store.renew(self.pipeline, ttl=self.config.lock_ttl.total_seconds())
            by_id = {c.id: c for c in contacts}
            results = self.scorer(
                self.models, [{"id": c.id, **c.fields} for c in contacts], events, as_of=as_of
            )
            s.contacts_scored += len(contacts)
            states = self.store.model_states(list(by_id))
            acted = self.store.acted_on(list(by_id)) if baseline else set()
            changed: dict[tuple[str, str], ModelState] = {}
            candidates: list[tuple[Action, ModelState, bool, str | None]] = []
            for r in results:
                model = by_name[r.model]
                c = by_id[r.contact_id]
                old = states.get((r.contact_id, r.model))
                st = old or ModelState(
                    r.contact_id, r.model, None, None, armed=True, crossings=0, last_event=None
                )
                token = event_token(r.immediate_event) if r.immediate else None
                if r.model in baseline:
                    # No action on a baseline; who is already hot is remembered, so
                    # that a later ``--act-on-baseline`` can act on them after all.
                    armed, held = st.armed, st.baseline_hot
                    if r.score >= model.threshold:
                        never_acted = st.crossings == 0 and (r.contact_id, r.model) not in acted
                        held = held or (armed and never_acted)
                        armed = False
                        s.baseline_above_threshold += 1 if held else 0
                    elif r.score < model.rearm_below:
                        armed, held = True, False
                    st = _replace(
                        st, armed=armed, baseline_hot=held, last_event=token or st.last_event
                    )
                else:
                    if st.baseline_hot and opts.act_on_baseline and r.score >= model.threshold:
                        # Hot since a baseline and never acted on: a crossing now,
                        # which (like any) waits for a later run beyond the budget.
                        st = _replace(st, armed=True, baseline_hot=False)
                    st, candidate = _crossing(st, r, model, c, token)
                    if candidate is not None:
                        candidates.append(candidate)
                if old is None or _state_key(st) != _state_key(old):
                    changed[(r.contact_id, r.model)] = st
                if needs_write(
                    None if r.model in rewrite else old,
                    float(r.score),
                    str(r.band),
                    self.wb.min_change,
                ):
                    if c.id in waiting:
                        waited.add(c.id)  # refused before: waits for its back-off
                    else:
                        self._queue_write(pending, c, model, float(r.score), str(r.band))
            decided = self._decide(candidates, by_id, changed, pool, as_of, s, taken)
            groups, taken = decided.groups, decided.taken
            if not opts.dry_run:
                alerts = self.alerts.plan(groups, now=as_of) if self.alerts else []
                with self.store.tx() as conn:
                    self.store.put_model_states(conn, changed.values())
                    for entries, _ in groups:
                        self.store.add_intents(conn, entries, s.run_id)
                    self.store.add_intents(conn, alerts, s.run_id)
                    if groups and decided.rr_next is not None:
                        self.store.kv_set(conn, "owner_rr", decided.rr_next)
                if groups:
                    self.crash("after_intents")
                    self._grow("act", len(groups))
                acting.extend(entries for entries, _ in groups)
            else:
                for entries, act in groups:
                    if len(s.would_act) < DRY_RUN_LIST_MAX:
                        s.would_act.append(_would_act(act, entries, pool))
                    else:
                        s.would_act_omitted += 1
            if not opts.dry_run:
                self._grow("write", self._attempts + len(pending) - self._totals.get("write", 0))
            if len(pending) >= self.wb.write_batch:
                self._flush(pending, s, opts, hold=_contacts_of(acting, self.wb.write_batch))
            self.progress.advance("score", len(contacts))
        self._execute(acting, s)
        self._flush(pending, s, opts)
        s.rejected_waiting = len(waited)

    # ------------------------------------------------ real time (leadsync serve)
    def score_now(
        self,
        batch: ReadBatch,
        contact_ids: Sequence[str],
        *,
        scores_written: Callable[[], object] | None = None,
    ) -> RunSummary:
        """The per-contact pass of ``leadsync serve``: apply ``batch`` (contacts read by
        id, their events, product events, merges and deletions) to the local copy,
        re-score ``contact_ids``, fire immediate rules and crossings through the same
        ledger as a run, write the scores, and deliver alerts.

        It never takes the pipeline lock (a scheduled run holds it for minutes). A
        crossing is consumed by a compare-and-set of its model state in the same
        transaction as its intents (``StateStore.swap_model_state``): a lost swap
        means another process (a run, another worker) took that crossing, and it is
        skipped. The ledger key makes a second attempt a no-op. Models whose baseline
        has not been committed yet are left to the scheduled run (no action on a
        baseline). Score writes are recorded (``StateStore.add_serve_writes``) so that the next
        run does not take them for changes. ``scores_written`` is called once the score
        write is acknowledged, before the deals and tasks (``leadsync serve`` times
        "receipt to score written" by it)."""
        self._changed_ids = set()
        self._attempts = 0
        self._refusals = Counter()
        self._totals = {}
        self._first_refusal = {}
        self._echo_check = False
        opts = RunOptions()
        s = RunSummary(run_id="serve-" + uuid.uuid4().hex[:10])
        as_of = self.now()
        self._apply(batch, s)
        hashes = self.store.model_hashes()
        live = {m.name for m in self.models if hashes.get(m.name) == m.content_hash}
        found, events = self.store.get_contacts(list(dict.fromkeys(contact_ids)))
        by_id = {c.id: c for c in found}
        ids = list(by_id)
        self._resume_for(ids, s)
        if not ids or not live:
            return s
        by_name = {m.name: m for m in self.models}
        results = self.scorer(
            self.models, [{"id": c.id, **c.fields} for c in by_id.values()], events, as_of=as_of
        )
        s.contacts_scored = len(ids)
        states = self.store.model_states(ids)
        waiting = self._rejected_waiting(as_of, opts)
        pending = _Pending()
        changed: dict[tuple[str, str], ModelState] = {}
        candidates: list[tuple[Action, ModelState, bool, str | None]] = []
        for r in results:
            if r.model not in live:
                continue
            model = by_name[r.model]
            c = by_id[r.contact_id]
            old = states.get((r.contact_id, r.model))
            st = old or ModelState(
                r.contact_id, r.model, None, None, armed=True, crossings=0, last_event=None
            )
            token = event_token(r.immediate_event) if r.immediate else None
            st, candidate = _crossing(st, r, model, c, token)
            if candidate is not None:
                candidates.append(candidate)
            if old is None or _state_key(st) != _state_key(old):
                changed[(r.contact_id, r.model)] = st
            if c.id not in waiting and needs_write(
                old, float(r.score), str(r.band), self.wb.min_change
            ):
                self._queue_write(pending, c, model, float(r.score), str(r.band))
        pool = OwnerPool(self.wb.on_cross.owners.pool, self.connector.list_owners)
        decided = self._decide(candidates, by_id, changed, pool, as_of, s, 0)
        alerts = self.alerts.plan(decided.groups, now=as_of) if self.alerts else []
        lost: set[tuple[str, str]] = set()
        with self.store.tx() as conn:
            for key, new in changed.items():
                if not self.store.swap_model_state(conn, states.get(key), new):
                    lost.add(key)  # another process moved this state first
            groups = [g for g in decided.groups if (g[1].contact_id, g[1].model) not in lost]
            self.store.add_intents(conn, [e for entries, _ in groups for e in entries], s.run_id)
            self.store.add_intents(
                conn, [a for a in alerts if (a.contact_id, a.model) not in lost], s.run_id
            )
            if groups and decided.rr_next is not None:
                self.store.kv_set(conn, "owner_rr", decided.rr_next)
        for _, act in decided.groups:
            if (act.contact_id, act.model) in lost:
                if act.kind == "crossing":
                    s.crossings -= 1
                else:
                    s.immediate -= 1
        if groups:
            self.crash("after_intents")
        # The score first (what a rep sees at once), then the actions, whose intents
        # are already in the ledger: a crash between them loses neither.
        queued, written = dict(pending.updates), dict(pending.written)
        self._flush(pending, s, opts)
        if scores_written is not None:
            scores_written()
        self._remember_serve_writes(written, queued, as_of)
        self._execute([entries for entries, _ in groups], s)
        if written or groups:  # after the actions: their deals move contacts' stamps too
            self._share_own_writes()
        if self.alerts is not None and (alerts or self.store.pending_actions()):
            s.alerts = self.alerts.deliver(self.store).to_dict()
        return s

    def _resume_for(self, contact_ids: Sequence[str], s: RunSummary) -> None:
        """Finish these contacts' intents left by an earlier attempt (a worker killed
        between the intent and the CRM call): the ledger key makes the CRM call once."""
        groups: dict[str, list[LedgerEntry]] = {}
        wanted = set(contact_ids)
        for e in self.store.pending_actions():
            if e.kind != LedgerKind.ALERT and e.contact_id in wanted:
                groups.setdefault(e.group_key, []).append(e)
        s.actions_resumed += len(groups)
        self._execute(list(groups.values()), s)

    def _remember_serve_writes(
        self,
        written: Mapping[str, list[tuple[str, str, float, str]]],
        values: Mapping[str, ScoreUpdate],
        at: datetime,
    ) -> None:
        """Record the score writes the CRM accepted (their written score is stored)."""
        states = self.store.model_states(list(written))
        done = {
            cid: dict(values[cid].values)
            for cid, rows in written.items()
            if any(
                (st := states.get((cid, model))) is not None and st.written_score == score
                for _, model, score, _band in rows
            )
        }
        if done:
            with self.store.tx() as conn:
                self.store.add_serve_writes(conn, done, at.timestamp())

    def _share_own_writes(self) -> None:
        """Hand serve's connector-level writes (stamps and digests) to the next run's
        read, which then skips their echoes as its own instead of re-reading them and
        their engagement; ``_without_echoes`` stays the check for the rest (a write
        this replaces before the run read it, another worker's)."""
        if isinstance(self.connector, SharesOwnWrites):
            shared = self.connector.own_writes()
            with self.store.tx() as conn:
                self.store.kv_set(conn, SERVE_OWN_WRITES_KEY.format(pipeline=self.pipeline), shared)

    def _forget_serve_writes(self, conn: Any, started: datetime) -> None:
        """After a committed run: serve's writes made before the run read are settled
        (read back as echoes, or never delivered); later ones wait for the next run."""
        self.store.forget_serve_writes(conn, started.timestamp())

    def _without_echoes(self, batch: ReadBatch, s: RunSummary) -> ReadBatch:
        """Contacts read back whose only change is ``leadsync serve``'s score write:
        the fields the sync keeps are as stored and the score fields hold what serve
        wrote. They are not applied again nor counted as read; everything else is."""
        serve_writes = self.store.serve_writes([c.id for c in batch.contacts])
        if not serve_writes:
            return batch
        kept = [
            c
            for c in batch.contacts
            if c.id not in serve_writes or not self._is_echo(c, serve_writes[c.id])
        ]
        s.serve_echoes += len(batch.contacts) - len(kept)
        return dataclasses.replace(batch, contacts=tuple(kept))

    def _is_echo(self, c: Any, values: Mapping[str, Any]) -> bool:
        stored, _ = self.store.get_contact(c.id)
        if stored is None:
            return False
        now = {k: v for k, v in c.fields.items() if k in self.keep_fields and v is not None}
        before = {k: v for k, v in stored.fields.items() if k != UPDATED_AT}
        if json.dumps(now, sort_keys=True, default=str) != json.dumps(
            before, sort_keys=True, default=str
        ):
            return False
        for name, value in values.items():
            got = c.fields.get(name)
            if got is None:
                continue  # the connector does not read this field back
            try:
                if abs(float(got) - float(value)) > 1e-6:
                    return False
            except (TypeError, ValueError):
                if str(got) != str(value):
                    return False
        return True

    def _grow(self, phase: str, n: int) -> None:
        """Raise a phase's known total by ``n`` (writes and actions are decided chunk
        by chunk, so their totals grow as the scoring goes on)."""
        if n <= 0:
            return
        self._totals[phase] = self._totals.get(phase, 0) + n
        self.progress.start(phase, self._totals[phase])

    def _band_fields_changed(self) -> set[str]:
        """Models whose band field changed since the last committed run: their bands
        are written again, to the new field. Not a model change: no baseline, no
        action held back. A store that never recorded band fields re-writes nothing."""
        stored = self.store.kv_get(BAND_FIELDS_KEY)
        if not isinstance(stored, dict):
            return set()
        now = self._band_fields()
        return {m for m, f in now.items() if f and m in stored and stored[m] != f}

    def _rejected_waiting(self, as_of: datetime, opts: RunOptions) -> set[str]:
        """Refused records not to write this run: their back-off has not ended, and
        this run did not find them changed (a new modification stamp or event). A changed write target (connector
        settings, score or band field, a model) ends every back-off at once: the
        user may just have fixed what the CRM refused."""
        target = self._write_target()
        if self.store.kv_get("write_target") != target:
            if not opts.dry_run:
                with self.store.tx() as conn:
                    self.store.clear_backoff(conn)
                    self.store.kv_set(conn, "write_target", target)
            return set()
        return self.store.rejected_waiting(as_of.timestamp()) - self._changed_ids

    def _write_target(self) -> str:
        """A digest of what decides where and how scores are written (secrets left
        out, so that a rotated token does not count as a change)."""
        payload = json.dumps(
            [
                self.config.crm.type,
                _without_secrets(self.config.crm.settings()),
                self.wb.band_field,
                sorted((m.name, m.score_field, m.content_hash) for m in self.models),
            ],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def _decide(
        self,
        candidates: list[tuple[Action, ModelState, bool, str | None]],
        contacts: Mapping[str, StoredContact],
        changed: dict[tuple[str, str], ModelState],
        pool: OwnerPool,
        as_of: datetime,
        s: RunSummary,
        taken: int,
    ) -> _Decided:
        """Which candidate crossings become actions: converted leads and contacts with
        an open deal are consumed without action; beyond the run's budget (``taken``
        actions so far) they wait."""
        rr_next: int | None = None
        if not candidates:
            return _Decided([], taken, None)
        open_ids: set[str] = set()
        live = [a.contact_id for a, *_ in candidates if not contacts[a.contact_id].converted]
        if live:
            deals = self.connector.open_deals(sorted(set(live)))
            for cid, items in deals.items():
                for d in items:
                    if not d.is_open:
                        continue
                    if self.wb.skip_if_open_deal == "any" or d.key:
                        open_ids.add(cid)
        rr = self.store.kv_get("owner_rr") or 0
        groups: list[tuple[list[LedgerEntry], Action]] = []
        acted_contacts: set[str] = set()
        for act, st, crossing, token in candidates:
            contact = contacts[act.contact_id]
            consumed = _replace(
                st,
                armed=False if crossing else st.armed,
                last_event=token or st.last_event,
                baseline_hot=False,
            )
            if contact.converted:
                changed[(act.contact_id, act.model)] = consumed
                s.skipped_converted += 1
                continue
            if act.contact_id in open_ids or act.contact_id in acted_contacts:
                changed[(act.contact_id, act.model)] = consumed
                s.skipped_open_deal += 1
                continue
            if taken >= self.wb.max_actions_per_run:
                s.actions_waiting += 1
                continue  # state untouched: the crossing is found again next run
            taken += 1
            crossings = st.crossings + (1 if crossing else 0)
            tok = f"c{crossings}" if crossing else (token or "")
            act = _action_with(act, tok)
            changed[(act.contact_id, act.model)] = _replace(consumed, crossings=crossings)
            owner = contact.fields.get("owner_id")
            assign = False
            if not owner or not pool.can_own(str(owner)):
                picked = pool.pick(rr)
                if picked is not None:
                    owner = picked
                    rr += 1
                    rr_next = rr
                    assign = True
            entries = plan_entries(
                act,
                on_cross=self.wb.on_cross,
                now=as_of,
                owner_id=str(owner) if owner else None,
                assign_owner=assign,
            )
            groups.append((entries, act))
            acted_contacts.add(act.contact_id)
            if crossing:
                s.crossings += 1
            else:
                s.immediate += 1
        return _Decided(groups, taken, rr_next)

    # ---------------------------------------------------------------- actions
    def _execute(self, groups: Sequence[Sequence[LedgerEntry]], s: RunSummary) -> None:
        """Run many actions' entries, in batches where the connector can; a group
        stops at its first failure (the rest stay as intents for the next run)."""
        if groups:
            execute_groups(
                self.connector,
                groups,
                record=lambda out: self._record(out, s),
                crash=self.crash,
                mark_sent=self.store.mark_sent,
            )
            self.progress.advance("act", len(groups))

    def _record(self, out: EntryOutcome, s: RunSummary) -> None:
        entry = out.entry
        if out.error is not None:
            # Retried on later runs under the same key; after MAX_ATTEMPTS it stays
            # in the ledger as given up (``leadsync status`` shows it).
            error = safe_error(out.error, self._redact)
            gave_up = entry.attempts + 1 >= MAX_ATTEMPTS
            status = LedgerStatus.GAVE_UP if gave_up else LedgerStatus.FAILED
            self.store.record_outcome(entry.key, status=status, error=error)
            if gave_up:
                for later in out.later:
                    self.store.record_outcome(
                        later.key, status=LedgerStatus.GAVE_UP, error=f"{entry.kind} was given up"
                    )
            s.actions_failed += 1
            log.warning("action %s failed: %s", entry.key, error)
            return
        self.store.record_outcome(entry.key, status=LedgerStatus.DONE, result_id=out.result_id)
        if entry.kind == LedgerKind.DEAL:
            s.deals += 1
        elif entry.kind == LedgerKind.TASK:
            s.tasks += 1
        elif entry.kind == LedgerKind.OWNER:
            s.owners_assigned += 1

    def _resume_pending(self, s: RunSummary) -> None:
        """Finish what an earlier run began: intents without an outcome, or failed calls."""
        groups: dict[str, list[LedgerEntry]] = {}
        for e in self.store.pending_actions():
            if e.kind == LedgerKind.ALERT:
                continue  # sent by self.alerts at the end of the run, never to the CRM
            groups.setdefault(e.group_key, []).append(e)
        s.actions_resumed += len(groups)
        self._grow("act", len(groups))
        self._execute(list(groups.values()), s)

    # ------------------------------------------------------------------ writes
    def _queue_write(
        self, pending: _Pending, c: StoredContact, model: Any, score: float, band: str
    ) -> None:
        upd = pending.updates.get(c.id)
        values: dict[str, Any] = dict(upd.values) if upd else {}
        values[model.score_field] = score
        band_field = band_field_for(self.wb.band_field, model.name)
        if band_field:
            values[band_field] = band
        pending.updates[c.id] = ScoreUpdate(c.id, values, kind=c.kind)  # type: ignore[arg-type]
        pending.written.setdefault(c.id, []).append((c.id, model.name, score, band))

    def _flush(
        self,
        pending: _Pending,
        s: RunSummary,
        opts: RunOptions,
        hold: frozenset[str] = frozenset(),
    ) -> None:
        """Write the pending scores, but those of ``hold`` (contacts with actions still
        to run), which stay pending: written after the actions, they answer with the
        stamps the actions moved (a HubSpot deal moves its contact's), which then
        need no read of their own."""
        if not pending.updates:
            return
        updates = [u for cid, u in pending.updates.items() if cid not in hold]
        written = {cid: w for cid, w in pending.written.items() if cid not in hold}
        pending.updates = {cid: u for cid, u in pending.updates.items() if cid in hold}
        pending.written = {cid: w for cid, w in pending.written.items() if cid in hold}
        if opts.dry_run:
            s.scores_written += len(updates)
            room = max(0, DRY_RUN_LIST_MAX - len(s.would_write))
            for u in updates[:room]:
                s.would_write.append({"contact_id": u.contact_id, **dict(u.values)})
            s.would_write_omitted += max(0, len(updates) - room)
            return
        start = 0
        while start < len(updates):
            # Until the run's refusals can be judged, no more than that many writes
            # go out: a wrong set-up then costs one batch, not every record's.
            size = self.wb.write_batch
            if self._attempts < JUDGED_AFTER:
                size = min(size, JUDGED_AFTER - self._attempts)
            self._write(updates[start : start + size], written, s)
            start += size
            self._judge_refusals()

    def _judge_refusals(self) -> None:
        if self._attempts < JUDGED_AFTER or not self._refusals:
            return
        kind, n = self._refusals.most_common(1)[0]
        share = self.wb.max_rejected_share
        if n <= share * self._attempts:
            return
        cid, reason, set_up = self._first_refusal[kind]
        what = (
            "fix the field in the CRM or the connector's score_fields; leadsync check tells which"
            if set_up
            else "the records stay rejected and are tried again later"
        )
        raise TooManyRejected(
            f"{n} of {self._attempts} score writes were refused for one reason ({kind}), "
            f"more than writeback.max_rejected_share ({share:g}): the run stopped to spare "
            f"the API allowance; {what}. First: {cid}: {reason}",
            config=set_up,
        )

    def _write(
        self,
        updates: list[ScoreUpdate],
        written: Mapping[str, list[tuple[str, str, float, str]]],
        s: RunSummary,
    ) -> None:
        self.crash("before_score_write")
        result = self.connector.write_scores(updates)
        self.crash("after_score_write")
        ok = set(result.succeeded)
        failed = {f.id: f.reason for f in result.failed}
        for u in updates:
            if u.contact_id not in ok and u.contact_id not in failed:
                failed[u.contact_id] = "the CRM returned no result for this record"
        with self.store.tx() as conn:
            self.store.set_written(conn, [w for cid in ok for w in written.get(cid, [])])
            self.store.clear_rejected(conn, sorted(ok))
            for cid, reason in failed.items():
                self.store.reject(conn, cid, self._redact(reason)[:500], backoff=retry_delay)
        self._attempts += len(updates)
        self.progress.advance("write", len(updates))
        for cid, reason in failed.items():
            kind, set_up = reason_kind(reason)
            self._refusals[kind] += 1
            self._first_refusal.setdefault(kind, (cid, self._redact(reason)[:300], set_up))
        s.scores_written += len(ok)
        s.rejected += len(failed)


_SECRET_KEY = re.compile(r"token|secret|password|private|session|assertion|jwt", re.I)


def _without_secrets(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            str(k): _without_secrets(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))
        }
    if isinstance(value, list | tuple):
        return [_without_secrets(v) for v in value]
    return value


class _ActionsKw(TypedDict, total=False):
    actions: tuple[str, ...]


def actions_kw(connector: Connector, wb: WritebackConfig) -> _ActionsKw:
    """``actions=`` for ``ensure_fields``: what the write-back creates (a run that
    creates no deals, or no tasks, needs no key field on them); nothing for a connector
    whose ``ensure_fields`` predates the keyword."""
    if not _accepts(connector.ensure_fields, "actions"):
        return {}
    on_cross = wb.on_cross
    return {"actions": tuple(k for k, v in (("deal", on_cross.deal), ("task", on_cross.task)) if v)}


def _contacts_of(groups: Sequence[Sequence[LedgerEntry]], limit: int) -> frozenset[str]:
    """The contacts of actions still to run, whose score writes wait for them; none
    when they fill a write batch on their own (the batch goes out)."""
    ids = frozenset(e.contact_id for entries in groups for e in entries)
    return ids if len(ids) < limit else frozenset()


def _raise_missing(check: FieldCheck) -> None:
    """Stop the run (exit 2) with what a human must create or fix in the CRM."""
    if check.missing:
        lines = list(check.instructions) or [f"missing field {f}" for f in check.missing]
        raise ConnectorConfigError("; ".join(lines))


def _would_act(act: Action, entries: Sequence[LedgerEntry], pool: OwnerPool) -> dict[str, Any]:
    """A dry run's action as the rep would see it: the deal (or Lead status) with its
    rendered name, the owner, the task's subject."""
    out: dict[str, Any] = {
        "contact_id": act.contact_id,
        "model": act.model,
        "kind": act.kind,
        "score": act.score,
        "band": act.band,
        "actions": [str(e.kind) for e in entries],
    }
    if act.kind == "immediate":
        out["event"] = act.token[2:]
    owner_id: str | None = None
    for e in entries:
        spec = e.spec or {}
        owner = spec.get("owner_id")
        owner_id = str(owner) if owner else owner_id
        if e.kind == LedgerKind.OWNER:
            out["assign_owner"] = True
        elif e.kind == LedgerKind.DEAL and spec.get("contact_kind") == "lead":
            out["lead_status"] = spec.get("lead_status")
        elif e.kind == LedgerKind.DEAL:
            out["deal"] = spec.get("name")
        elif e.kind == LedgerKind.TASK:
            out["task"] = spec.get("subject")
    out["owner_id"] = owner_id
    try:
        out["owner"] = pool.label(owner_id)
    except Exception:  # a name is a nicety: a dry run never fails for want of one
        out["owner"] = owner_id
    return out


def _crossing(
    st: ModelState, r: ScoredRow, model: SyncModel, c: StoredContact, token: str | None
) -> tuple[ModelState, tuple[Action, ModelState, bool, str | None] | None]:
    """One score's effect on its model state outside a baseline, for the scheduled
    pass and for ``serve`` alike: re-armed below ``rearm_below``, and a candidate
    action when an armed contact reaches the threshold or a new immediate event
    arrives (``_decide`` then says which candidates are acted on)."""
    crossing = st.armed and r.score >= model.threshold
    if not st.armed and r.score < model.rearm_below:
        st = _replace(st, armed=True, baseline_hot=False)
    if not crossing and (token is None or token == st.last_event):
        return st, None
    act = Action(
        contact_id=r.contact_id,
        model=r.model,
        kind="crossing" if crossing else "immediate",
        token="",
        score=float(r.score),
        band=str(r.band),
        contact_kind=c.kind,
        fields=c.fields,
        reasons=tuple(r.reasons),
    )
    return st, (act, st, crossing, token)


def _state_key(st: ModelState) -> tuple[Any, ...]:
    return (st.armed, st.crossings, st.last_event, st.baseline_hot)


def _replace(st: ModelState, **kw: Any) -> ModelState:
    return dataclasses.replace(st, **kw)


def _action_with(act: Action, token: str) -> Action:
    return dataclasses.replace(act, token=token)
