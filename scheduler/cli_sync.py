"""Commands of the sync: ``run``, ``schedule``, ``status``, ``purge``, ``demo``, plus the
``--config`` forms of ``check`` and ``explain`` (which ``cli_scoring`` delegates here).

Every command turns a user-fixable problem into one line on stderr and an exit status
from :mod:`scheduler.cli_common`; nothing prints a secret (output passes through
:func:`scheduler.config.redact`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from connectors.base import (
    CallLimiter,
    ChecksDealSettings,
    Connector,
    Redactor,
    RuntimeContext,
)
from scheduler.cli_common import ExitCode, label_for, stop_for
from scheduler.config import (
    ConfigError,
    DealConfig,
    SyncConfig,
    load_config,
    parse_duration,
    redact,
)
from scheduler.state import StateError, StateStore
from scheduler.sync import RunOptions, RunSummary, Scorer, Sync, SyncModel
from scheduler.writeback import CrashHook, crash_from_env, no_crash
from scoring.model import ModelSet

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_STOPPED, EXIT_LOCKED = (
    ExitCode.OK,
    ExitCode.REJECTED,
    ExitCode.USAGE,
    ExitCode.STOPPED,
    ExitCode.LOCKED,
)
log = logging.getLogger("leadsync")


class UsageError(Exception):
    """A problem the user fixes in a file or on the command line (exit 2)."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


def _err(text: str) -> None:
    sys.stderr.write(redact(text).rstrip("\n") + "\n")


def _out(text: str) -> None:
    sys.stdout.write(redact(text).rstrip("\n") + "\n")


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is when a record is emitted, not as it was when
    the handler was made: whoever ran the command (a test runner, a supervisor) may
    have replaced and closed the stream it had, and a thread still running (serve's
    server, a worker) must not log into a closed stream."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass  # always the current sys.stderr


def setup_logging(level: int = logging.WARNING) -> None:
    root = logging.getLogger("leadsync")
    if not any(isinstance(f, _RedactingFilter) for f in root.filters):
        root.addFilter(_RedactingFilter())
    if not root.handlers:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(_RedactingFilter())
        root.addHandler(handler)
    root.setLevel(level)


# ------------------------------------------------------------------- pipeline


def read_model_files(paths: Sequence[Path]) -> list[tuple[Path, ModelSet]]:
    """Each file's models; every problem of every file is collected (one line each,
    ``FILE:LINE: path: message``) and raised together as a :class:`UsageError`."""
    from scoring.model import ModelFileError, load_models

    out: list[tuple[Path, ModelSet]] = []
    problems: list[str] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(f"{path}:1: (file): cannot read model file: {exc.strerror}")
            continue
        try:
            out.append((path, load_models(text, str(path))))
        except ModelFileError as exc:
            problems.extend(exc.problems)
    if problems:
        raise UsageError(problems)
    return out


def option_duration(value: str, option: str) -> timedelta:
    """A positive duration given on the command line (``7d``, ``90d``)."""
    try:
        out = parse_duration(value)
    except ValueError as exc:
        raise UsageError([f"{option}: {exc}"]) from None
    if out <= timedelta(0):
        raise UsageError([f"{option}: must be positive, got {value!r}"])
    return out


def load_model_files(paths: Sequence[Path]) -> list[Any]:
    """Every model of every file. Names must be unique across files, and so must score
    fields: two models writing one CRM field would overwrite each other's score on
    every run (``load_models`` catches both within one file; this catches them across
    files)."""
    models: list[Any] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    fields: dict[str, tuple[str, str]] = {}
    for path, ms in read_model_files(paths):
        for m in ms.models:
            if m.name in seen:
                problems.append(
                    f"{path}:1: models: model {m.name!r} is also defined in {seen[m.name]}"
                )
            seen[m.name] = str(path)
            other = fields.get(m.score_field)
            if other is not None and other[0] != str(path):
                problems.append(
                    f"{path}:1: models: score_field {m.score_field!r} of model {m.name!r} "
                    f"is also written by model {other[1]!r} in {other[0]}"
                )
            fields.setdefault(m.score_field, (str(path), m.name))
            models.append(m)
    if problems:
        raise UsageError(problems)
    return models


def check_band_fields(config: SyncConfig, models: Sequence[Any]) -> None:
    """A ``writeback.band_field`` mapping must name models the model files define."""
    from scheduler.writeback import band_field_problems

    problems = band_field_problems(config.writeback.band_field, models, config.source)
    if problems:
        raise UsageError(problems)


def host_redactor(config: SyncConfig) -> Redactor:
    """The run's redactor, owned by the host: the configuration's secrets, to which
    the connector adds the tokens it obtains."""
    return Redactor(config.secrets())


def make_connector(
    config: SyncConfig,
    *,
    redactor: Redactor | None = None,
    limiter: CallLimiter | None = None,
) -> Connector:
    from connectors import registry

    context = RuntimeContext(
        now=lambda: datetime.now(UTC),
        sleep=time.sleep,
        redactor=redactor if redactor is not None else host_redactor(config),
        limiter=limiter,
    )
    settings = config.crm.settings()
    if config.crm.type == "files" and "base_dir" not in settings:
        # Export paths are relative to the config file, like model and SQLite paths,
        # not to wherever the scheduler happens to be started.
        settings = {**settings, "base_dir": config.base_dir}
    return registry.create(config.crm.type, settings, context=context)


def open_store(config: SyncConfig) -> StateStore:
    store = StateStore(config.state_url())
    try:
        store.migrate()
    except StateError:
        store.close()
        raise
    return store


def _load(config_path: str) -> SyncConfig:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise UsageError(exc.problems) from None


@contextlib.contextmanager
def _guard() -> Iterator[None]:
    """Turn the errors a user can act on into one line and an exit status."""
    try:
        yield
    except UsageError as exc:
        for line in exc.lines:
            _err(line)
        raise typer.Exit(EXIT_USAGE) from None
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as exc:
        stop = stop_for(exc)
        if stop is not None:
            _err(f"{stop.label}: {_one_line(str(exc))}")
            raise typer.Exit(stop.code) from None
        # A bug, not a user error: one line by default, the traceback on request.
        if os.environ.get("LEADSYNC_DEBUG"):
            raise
        where = exc.__traceback__
        while where is not None and where.tb_next is not None:
            where = where.tb_next
        at = (
            f" at {Path(where.tb_frame.f_code.co_filename).name}:{where.tb_lineno}" if where else ""
        )
        _err(
            f"error: unexpected {type(exc).__name__}{at}: {exc} (LEADSYNC_DEBUG=1 shows the traceback)"
        )
        raise typer.Exit(EXIT_STOPPED) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ------------------------------------------------------------------- printing


def print_summary(s: RunSummary, *, as_json: bool, console: Console | None = None) -> None:
    """The summary on stdout; rows of the data that could not be read go to stderr as
    ``FILE:LINE: field: problem``, one per line, so that ``--json`` stays one object."""
    for line in s.bad_rows:
        _err(line)
    if s.outcomes_error:
        _err(f"warning: deal outcomes not read (the backtest's history waits): {s.outcomes_error}")
    if s.orphan_events:
        _err(
            f"note: {s.orphan_events} event(s) name a contact that is not in the contacts "
            "data; they were not scored"
        )
    refused = s.rejected - len(s.bad_rows)
    if refused > 0:
        _err(
            f"rejected: the CRM refused {refused} record(s) (leadsync status lists them); "
            "each is tried again when it changes, or after a back-off:"
        )
        for kind, n, contact_id, reason in s.rejected_reasons:
            _err(f"  {n} × {kind}, e.g. {contact_id}: {_one_line(str(reason))}")
    if s.rejected_waiting:
        _err(
            f"note: {s.rejected_waiting} record(s) the CRM refused before wait for their "
            "next attempt (leadsync status shows when)"
        )
    if as_json:
        # One object; a failed run's error is its ``error`` (printed once, there).
        summary = s.to_dict()
        summary.pop("bad_rows", None)
        summary.pop("rejected_reasons", None)
        _out(json.dumps(summary, default=str, separators=(",", ":")))
        return
    if s.error:
        # A run that failed says why, once, on one line; its table would be mostly
        # zeros.
        _err(f"{label_for(s.exit_code)}: {_one_line(s.error)}")
        return
    con = console or Console(soft_wrap=True)
    title = "leadsync run" + (" (dry run: nothing written)" if s.dry_run else "")
    table = Table(title=title, show_header=False, box=None)
    rows = [
        ("contacts read", s.contacts_read),
        ("events read", s.events_read),
        ("merges / deletions", f"{s.merges} / {s.deletions}"),
        ("contacts scored", s.contacts_scored),
        ("scores written" if not s.dry_run else "scores to write", s.scores_written),
        ("crossings", s.crossings),
        ("immediate events", s.immediate),
        ("deals / tasks created", f"{s.deals} / {s.tasks}"),
        ("owners assigned", s.owners_assigned),
        ("skipped (open deal / converted)", f"{s.skipped_open_deal} / {s.skipped_converted}"),
        ("actions waiting (max per run)", s.actions_waiting),
        ("actions resumed / failed", f"{s.actions_resumed} / {s.actions_failed}"),
        ("rejected records", s.rejected),
        ("API calls", s.api_calls),
        ("time", f"{s.seconds:.1f}s"),
    ]
    for k, v in rows:
        table.add_row(k, str(v))
    with con.capture() as cap:
        con.print(table)
        if s.baseline_advice:
            con.print(
                f"Baseline for {', '.join(s.baseline_models)}: scores written, no actions; "
                f"{s.baseline_above_threshold} contact(s) already above the threshold "
                "(run with --act-on-baseline to act on them)."
            )
    text = cap.get()
    if s.dry_run:
        text += "\n".join(dry_run_lines(s)) + "\n"
    _out(text)


TEXT_LIST_MAX = 20  # lines of each kind a dry run's text output shows


def dry_run_lines(s: RunSummary, limit: int = TEXT_LIST_MAX) -> list[str]:
    """What a dry run would do, as totals and one JSON object per line (copied into
    ``jq`` or a ticket as they are), each list cut at ``limit`` with "and N more"."""
    lines = [
        f"would create {len(s.fields_to_create)} field(s) a real run creates itself: "
        + ", ".join(s.fields_to_create)
    ] if s.fields_to_create else []  # fmt: skip
    acts = len(s.would_act) + s.would_act_omitted
    for what, items, total in (
        ("write", s.would_write, s.scores_written),
        ("act", s.would_act, acts),
    ):
        noun = "score(s)" if what == "write" else "action(s)"
        lines.append(f"would {what} {total} {noun}" + (":" if total else ""))
        for item in items[:limit]:
            lines.append(f"  would {what} " + json.dumps(item, default=str, ensure_ascii=False))
        more = total - min(limit, len(items))
        if more > 0:
            lines.append(f"  ... and {more} more (run --dry-run --json to list them)")
    return lines


# Each phase's bar: its label and what it counts.
PHASE_LABELS = {
    "read": ("Reading changes", "contacts"),
    "score": ("Scoring", "contacts"),
    "write": ("Writing scores", "records"),
    "act": ("Creating deals and tasks", "actions"),
}


class RichPhases:
    """The run's phases as Rich progress bars: a bar per phase, with its total where
    the run knows it (``n/total``), indeterminate where not (reading: ``n/?``)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def _task(self, phase: str) -> TaskID:
        if phase not in self.tasks:
            label, unit = PHASE_LABELS.get(phase, (phase, "items"))
            self.tasks[phase] = self.progress.add_task(label, total=None, unit=unit)
        return self.tasks[phase]

    def start(self, phase: str, total: int | None) -> None:
        self.progress.update(self._task(phase), total=total)

    def advance(self, phase: str, n: int) -> None:
        self.progress.advance(self._task(phase), n)


@contextlib.contextmanager
def _progress(enabled: bool, console: Console | None = None) -> Iterator[RichPhases | None]:
    if not enabled:
        yield None
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        transient=True,
        console=console,
    )
    with progress:
        yield RichPhases(progress)


def execute_run(
    config: SyncConfig,
    options: RunOptions,
    *,
    as_json: bool = False,
    connector: Connector | None = None,
    store: StateStore | None = None,
    models: Sequence[SyncModel] | None = None,
    now: Callable[[], datetime] | None = None,
    scorer: Scorer | None = None,
    progress: bool = False,
    redactor: Redactor | None = None,
    crash: CrashHook | None = None,
    limiter: CallLimiter | None = None,
) -> tuple[int, RunSummary]:
    """Perform one run for a loaded configuration (``leadsync run``, ``leadsync
    schedule``, workers); returns (exit code, summary).

    Parts can be passed in (tests, the demo); otherwise they come from the config.
    ``redactor``: the host's (one is built from the configuration's secrets);
    ``crash``: the crash-safety tests' hook (none by default); ``limiter``: an API
    budget shared with other processes, handed to the connector it builds."""
    redactor = redactor if redactor is not None else host_redactor(config)
    own_store = store is None
    own_conn = connector is None
    run_models_: list[SyncModel]
    if models is not None:
        run_models_ = list(models)
    else:
        loaded: list[Any] = load_model_files(config.model_paths())
        if scorer is None:
            # Predictive models score beside their rules models when their artifact
            # fits; one that does not is left out with a warning, and its rules model
            # keeps scoring (docs/predictive.md).
            from scheduler.cli_train import run_models

            loaded, scorer, notes = run_models(config.model_paths(), loaded)
            for note in notes:
                _err(f"warning: {note}")
        run_models_ = loaded
    check_band_fields(config, run_models_)
    store = store or open_store(config)
    try:
        connector = connector or make_connector(config, redactor=redactor, limiter=limiter)
        try:
            with _progress(progress) as hook:
                sync = Sync(
                    config,
                    connector,
                    store,
                    run_models_,
                    now=now,
                    scorer=scorer,
                    progress=hook,
                    crash=crash or no_crash,
                    redactor=redactor,
                )
                summary = sync.run(options)
        finally:
            if own_conn:
                with contextlib.suppress(Exception):
                    connector.close()
    finally:
        if own_store:
            store.close()
    print_summary(summary, as_json=as_json)
    return summary.exit_code, summary


# ------------------------------------------------------------------- check/explain


def check_config(config_path: str) -> int:
    """``leadsync check --config FILE``: validate, then connect and check the CRM set-up.

    The CRM's own failures (refused credentials, no answer) go to :func:`_guard`, so
    that ``check`` and ``run`` give the same exit status for the same failure."""
    try:
        config = _load(config_path)
        models = load_model_files(config.model_paths())
        check_band_fields(config, models)
    except UsageError as exc:
        for line in exc.lines:
            _err(line)
        return EXIT_USAGE
    _out(
        f"{config_path}: configuration is valid ({len(models)} model(s): "
        f"{', '.join(m.name for m in models)})"
    )
    from scheduler.lint import config_name_warnings

    for line in config_name_warnings(config):
        _err(f"warning: {line}")
    try:
        with _guard():
            return _check_crm(config, models)
    except typer.Exit as exc:  # _guard printed the line and chose the status
        return int(exc.exit_code)
    return EXIT_STOPPED  # not reached: _guard ends every failure with typer.Exit


def _check_crm(config: SyncConfig, models: Sequence[Any]) -> int:
    """The part of ``check_config`` that talks to the CRM; the number of problems
    decides the exit status."""
    problems = 0
    try:
        store = open_store(config)
        store.close()
        _out("ok: state store reachable")
    except StateError as exc:
        _err(f"missing: {exc}")
        problems += 1
    connector = make_connector(config)
    try:
        owners = list(connector.list_owners())
        _out(f"ok: credentials accepted; {len(owners)} owner(s) visible")
        pool = config.writeback.on_cross.owners.pool
        known = {o.id for o in owners} | {(o.email or "").lower() for o in owners}
        for item in pool:
            if item not in known and item.lower() not in known:
                _err(
                    f"missing: owner {item!r} of writeback.on_cross.owners.pool is not an "
                    "active owner in the CRM; fix the e-mail or id, or add the user"
                )
                problems += 1
        from scheduler.sync import actions_kw
        from scheduler.writeback import field_specs

        check = connector.ensure_fields(
            field_specs(models, config.writeback.band_field),
            **actions_kw(connector, config.writeback),
        )
        for name in check.present:
            _out(f"ok: field {name} exists")
        for name in check.created:
            _out(f"ok: field {name} created")
        for line in check.instructions or [f"field {f} is missing" for f in check.missing]:
            _err(f"missing: {line}")
            problems += 1
        problems += _check_deal_settings(connector, config.writeback.on_cross.deal)
        b = connector.budget()
        if b.daily_remaining is not None:
            _out(f"ok: API budget {b.daily_remaining} of {b.daily_limit} calls left today")
    finally:
        with contextlib.suppress(Exception):
            connector.close()
    return EXIT_USAGE if problems else EXIT_OK


def _check_deal_settings(connector: Connector, deal: DealConfig | None) -> int:
    """Print the connector's view of the deal pipeline, stage and Lead status; the
    number of problems. Connectors without the optional check, and configurations
    that create no deals, are skipped."""
    if deal is None or not isinstance(connector, ChecksDealSettings):
        return 0
    lines = connector.check_deal_settings(
        pipeline=deal.pipeline, stage=deal.stage, lead_status=deal.lead_status
    )
    for line in lines:
        _err(f"missing: {line}")
    if not lines:
        _out(f"ok: deal settings accepted (stage {deal.stage!r})")
    return len(lines)


def explain_state(config_path: str, contact_id: str) -> int:
    """``leadsync explain --config FILE --contact ID``: current scores and reasons,
    computed from the local copy (no API call), next to what was last written."""
    try:
        config = _load(config_path)
        models = load_model_files(config.model_paths())
        store = open_store(config)
    except UsageError as exc:
        for line in exc.lines:
            _err(line)
        return EXIT_USAGE
    except StateError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    try:
        return _explain(store, models, contact_id, datetime.now(UTC))
    finally:
        store.close()


def _explain(store: StateStore, models: Sequence[Any], contact_id: str, as_of: datetime) -> int:
    from scoring.engine import score

    contact, events = store.get_contact(contact_id)
    if contact is None:
        _err(f"contact {contact_id}: not in the state store (run a sync first, or it was purged)")
        return EXIT_USAGE
    results = score(list(models), [{"id": contact.id, **contact.fields}], events, as_of=as_of)
    states = store.model_states([contact_id])
    con = Console(soft_wrap=True)
    with con.capture() as cap:
        name = " ".join(str(contact.fields.get(k, "")) for k in ("first_name", "last_name")).strip()
        con.print(f"Contact {contact_id} {name} ({contact.kind}), {len(events)} event(s) kept")
        if not results:
            con.print("No model applies to this contact.")
        for r in results:
            st = states.get((contact_id, r.model))
            table = Table(title=f"{r.model}: {r.score} ({r.band})")
            table.add_column("rule")
            table.add_column("kind")
            table.add_column("points", justify="right")
            table.add_column("events", justify="right")
            for reason in r.reasons:
                table.add_row(
                    reason.rule,
                    reason.kind,
                    f"{reason.points:+.2f}",
                    "" if reason.events is None else str(reason.events),
                )
            con.print(table)
            if st is not None:
                con.print(
                    f"last written: {st.written_score} ({st.written_band}); "
                    f"crossings acted on: {st.crossings}; "
                    f"{'armed' if st.armed else 'waiting to fall below rearm_below'}"
                )
            if r.immediate and r.immediate_event is not None:
                con.print(f"immediate: {r.immediate_event.type} at {r.immediate_event.occurred_at}")
        for e in store.ledger_for(contact_id):
            con.print(f"action {e.key}: {e.status}" + (f" ({e.result_id})" if e.result_id else ""))
    _out(cap.get())
    return EXIT_OK


# ------------------------------------------------------------------- commands


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``leadsync`` app."""

    @app.command()
    def run(
        config: str = typer.Option(..., "--config", help="leadsync.yaml"),
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run",
                help="Check fields, read and score; list what would be written and done; "
                "change nothing in the CRM.",
            ),
        ] = False,
        full: Annotated[
            bool, typer.Option("--full", help="Read every contact, not only changes.")
        ] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the summary as one JSON object.")
        ] = False,
        act_on_baseline: Annotated[
            bool,
            typer.Option(
                "--act-on-baseline", help="Create deals and tasks for contacts already hot."
            ),
        ] = False,
    ) -> None:
        """Read changes, re-score, write back what changed, act on crossings."""
        setup_logging()
        with _guard():
            cfg = _load(config)
            code, _ = execute_run(
                cfg,
                RunOptions(dry_run=dry_run, full=full, act_on_baseline=act_on_baseline),
                as_json=as_json,
                progress=sys.stdout.isatty() and not as_json,
                # the crash-safety tests kill a run at a named point; nobody else does
                crash=crash_from_env(),
            )
        raise typer.Exit(code)

    @app.command()
    def schedule(config: str = typer.Option(..., "--config", help="leadsync.yaml")) -> None:
        """Run the pipeline on its interval or cron until stopped (SIGTERM, Ctrl-C)."""
        from scheduler.jobs import run_scheduled

        setup_logging(logging.INFO)
        with _guard():
            cfg = _load(config)
            check_band_fields(cfg, load_model_files(cfg.model_paths()))  # fail now, not later

            def once() -> int:
                fresh = _load(config)
                code, _ = execute_run(fresh, RunOptions(), as_json=True)
                return code

            retrain_every = cfg.schedule.retrain_every
            retrain = None
            if retrain_every is not None:
                from scheduler.cli_train import retrain_job

                retrain = retrain_job(config, retrain_every, lambda: datetime.now(UTC))
            raise typer.Exit(
                run_scheduled(cfg.schedule, once, retrain_every=retrain_every, retrain=retrain)
            )

    @app.command()
    def purge(
        config: str = typer.Option(..., "--config", help="leadsync.yaml"),
        contact: str = typer.Option(..., "--contact", help="The CRM id to erase."),
    ) -> None:
        """Erase a contact from the state store (erasure requests); the CRM is not touched."""
        with _guard():
            cfg = _load(config)
            store = open_store(cfg)
            try:
                with store.tx() as conn:
                    found = store.purge_contact(conn, contact)
            finally:
                store.close()
        if not found:
            _err(f"contact {contact}: not found in the state store; nothing purged")
            raise typer.Exit(EXIT_REJECTED)
        _out(f"purged contact {contact} from the state store (the CRM record is not changed)")
        _err(
            f"warning: while contact {contact} is still in the CRM, it is read again (and "
            "stored again) by the next run that sees it change, and by any --full run; "
            "erase it in the CRM as well"
        )
