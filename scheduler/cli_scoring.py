"""``leadsync score``, ``check`` and ``explain``: the scoring core on files, offline.

These commands are the marketer's loop: edit a model, ``check`` it, ``score`` an export,
``explain`` one lead. Input problems never end in a traceback: a bad model or a missing
file prints one line and exits 2; bad data rows are listed as ``FILE:LINE: field:
problem`` on stderr while every other row is scored, and the exit status is 1
(statuses in :mod:`scheduler.cli_common`). ``as_of`` defaults to the current time,
read here: the scoring core never looks at the clock.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from scheduler.cli_common import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, error_line, fail, stdout
from scoring.model import (
    BehaviorRule,
    FitRule,
    Match,
    ModelFileError,
    ModelSet,
    ScoringModel,
    check_warnings,
    name_warnings,
)
from scoring.model import load_models as parse_models
from scoring.readers import (
    Contact,
    Event,
    Format,
    RowError,
    collect,
    format_for,
    read_contacts,
    read_events,
)
from scoring.timeutil import parse_timestamp, to_iso

if TYPE_CHECKING:
    # The engine (polars, numpy) is imported when a command scores, not at start-up.
    from scoring.engine import ScoreResult

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model file (YAML).", metavar="FILE", show_default=False),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        metavar="FILE",
        help="Sync configuration file (instead of --model).",
        show_default=False,
    ),
]
ContactsOpt = Annotated[
    str | None,
    typer.Option(
        "--contacts", metavar="FILE", help="Contacts file (.csv or .jsonl).", show_default=False
    ),
]
EventsOpt = Annotated[
    str | None,
    typer.Option(
        "--events", metavar="FILE", help="Events file (.csv or .jsonl).", show_default=False
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        metavar="TIME",
        help="Score as of this ISO 8601 time (later events are ignored). Default: now.",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``leadsync`` app."""
    app.command("score")(score_command)
    app.command("check")(check_command)
    app.command("explain")(explain_command)


# --- commands -------------------------------------------------------------------------


def score_command(
    model: ModelOpt = None,
    contacts: ContactsOpt = None,
    events: EventsOpt = None,
    as_of: AsOfOpt = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help="Write the JSON lines here instead of stdout.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Score contacts from files: one JSON line per contact and model."""
    model_path = _required(model, "--model")
    contacts_path = _required(contacts, "--contacts")
    events_path = _required(events, "--events")
    models = _load_model_file(model_path)
    moment = _as_of(as_of)
    errors: list[RowError] = []
    results = _score_files(models, contacts_path, events_path, moment, errors)
    try:
        with ExitStack() as stack:
            sink: IO[str] = sys.stdout
            if out is not None:
                sink = stack.enter_context(open(out, "w", encoding="utf-8"))
            for result in results:
                sink.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
            sink.flush()
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as other Unix tools do.
        _silence_stdout()
        raise typer.Exit(_report_rows(errors)) from None
    except OSError as exc:
        fail(f"{out or 'stdout'}: cannot write: {exc.strerror or exc}")
    raise typer.Exit(_report_rows(errors))


def check_command(model: ModelOpt = None, config: ConfigOpt = None) -> None:
    """Validate a model file (or a sync configuration): exit 0 when usable."""
    if (model is None) == (config is None):
        fail("give exactly one of --model or --config")
    if config is not None:
        raise typer.Exit(_delegate("check_config", config))
    assert model is not None
    models = _load_model_file(model, strict_artifacts=True)
    # near misses of canonical names only: a file may carry columns of its own
    warnings = check_warnings(models) + name_warnings(models)
    for line in warnings:
        error_line(f"warning: {line}")
    names = ", ".join(models.names)
    count = len(models.names)
    summary = f"{model}: valid, {count} model{'s' if count != 1 else ''} ({names})"
    if warnings:
        summary += f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}"
    typer.echo(summary)
    raise typer.Exit(EXIT_OK)


def explain_command(
    contact: Annotated[
        str,
        typer.Option(
            "--contact", metavar="ID", help="Id of the contact to explain.", show_default=False
        ),
    ],
    model: ModelOpt = None,
    config: ConfigOpt = None,
    contacts: ContactsOpt = None,
    events: EventsOpt = None,
    as_of: AsOfOpt = None,
) -> None:
    """Show how one contact's score is made up: rule by rule, decay, band."""
    if (model is None) == (config is None):
        fail("give exactly one of --model or --config")
    if config is not None:
        if contacts is not None or events is not None or as_of is not None:
            fail("--contacts, --events and --as-of go with --model, not --config")
        raise typer.Exit(_delegate("explain_state", config, contact))
    assert model is not None
    contacts_path = _required(contacts, "--contacts")
    events_path = _required(events, "--events")
    models = _load_model_file(model)
    moment = _as_of(as_of)
    errors: list[RowError] = []
    found: list[Contact] = []

    def only_this_contact(rows: Iterable[Contact]) -> Iterator[Contact]:
        for row in rows:
            if row["id"] == contact:
                found.append(row)
                yield row

    results = _score_files(
        models,
        contacts_path,
        events_path,
        moment,
        errors,
        contact_filter=only_this_contact,
        event_filter=lambda rows: (row for row in rows if row["contact_id"] == contact),
    )
    code = _report_rows(errors)
    if not found:
        fail(f"{contacts_path}: no contact with id {contact!r}")
    by_model = {result.model: result for result in results}
    for scoring_model in models.models:
        result = by_model.get(scoring_model.name)
        if result is None:
            stdout.print(
                f"Model [bold]{escape(scoring_model.name)}[/]: contact {escape(repr(contact))} "
                "is not scored by this model (an applies_to condition does not hold)."
            )
            continue
        stdout.print(_explain_table(scoring_model, result, moment))
    raise typer.Exit(code)


# --- helpers --------------------------------------------------------------------------


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (tests); nothing will be flushed to it anyway


def _required(value: str | None, option: str) -> str:
    if value is None:
        fail(f"missing option {option}")
    return value


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except IsADirectoryError:
        fail(f"{path}: is a directory, not a file")
    except UnicodeDecodeError as exc:
        fail(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})")
    except OSError as exc:
        fail(f"{path}: cannot read: {exc.strerror or exc}")


def _load_model_file(path: str, *, strict_artifacts: bool = False) -> ModelSet:
    text = _read_text(path)
    try:
        models = parse_models(text, path)
    except ModelFileError as exc:
        for problem in exc.problems:
            error_line(problem)
        raise typer.Exit(EXIT_USAGE) from None
    if not models.predictive:
        return models
    return _with_artifacts(path, models, strict=strict_artifacts)


def _with_artifacts(path: str, models: ModelSet, *, strict: bool) -> ModelSet:
    """Predictive models score with their artifacts; one that is missing or refused is
    left out with a warning and its rules model scores as before. ``check`` (strict)
    fails on an artifact that exists but does not fit its model."""
    from scheduler.cli_train import load_artifacts
    from scoring.predictive import attach_artifacts

    artifacts, problems = load_artifacts(Path(path), models)
    broken = [line for line in problems if "no artifact yet" not in line]
    for line in problems:
        if strict and line in broken:
            error_line(line)
        else:
            error_line(f"warning: {line}")
    if strict and broken:
        raise typer.Exit(EXIT_USAGE)
    return attach_artifacts(models, artifacts)


def _as_of(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        fail(f"--as-of: {exc}")


def _score_files(
    models: ModelSet,
    contacts_path: str,
    events_path: str,
    as_of: datetime,
    errors: list[RowError],
    *,
    contact_filter: Callable[[Iterable[Contact]], Iterable[Contact]] | None = None,
    event_filter: Callable[[Iterable[Event]], Iterable[Event]] | None = None,
) -> list[ScoreResult]:
    from scoring.engine import score

    contact_format = _format(contacts_path)
    event_format = _format(events_path)
    with ExitStack() as stack:
        contacts_file = _open(stack, contacts_path)
        events_file = _open(stack, events_path)
        contact_rows: Iterable[Contact] = collect(
            read_contacts(
                _lines(contacts_file, contacts_path), contacts_path, format=contact_format
            ),
            errors,
        )
        event_rows: Iterable[Event] = collect(
            read_events(_lines(events_file, events_path), events_path, format=event_format),
            errors,
        )
        if contact_filter is not None:
            contact_rows = contact_filter(contact_rows)
        if event_filter is not None:
            event_rows = event_filter(event_rows)
        try:
            return list(score(models, contact_rows, event_rows, as_of=as_of))
        except _Unreadable as exc:
            fail(str(exc))


class _Unreadable(Exception):
    """A data file that stopped being readable part-way (encoding, disk)."""


def _lines(handle: IO[str], path: str) -> Iterator[str]:
    # The decoder reads ahead in blocks and does not know which file it serves; wrapping
    # each file's lines lets the error name the file.
    try:
        yield from handle
    except UnicodeDecodeError as exc:
        raise _Unreadable(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise _Unreadable(f"{path}: cannot read: {exc.strerror or exc}") from None


def _format(path: str) -> Format:
    try:
        return format_for(path)
    except ValueError as exc:
        fail(str(exc))


def _open(stack: ExitStack, path: str) -> IO[str]:
    try:
        return stack.enter_context(open(path, encoding="utf-8", newline=""))
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except IsADirectoryError:
        fail(f"{path}: is a directory, not a file")
    except OSError as exc:
        fail(f"{path}: cannot read: {exc.strerror or exc}")


def _report_rows(errors: list[RowError]) -> int:
    for error in errors:
        error_line(str(error))
    if errors:
        count = len(errors)
        error_line(f"{count} row{'s' if count != 1 else ''} rejected; the other rows were scored")
        return EXIT_REJECTED
    return EXIT_OK


def _delegate(name: str, *args: str) -> int:
    """``--config`` forms live with the sync, which owns configuration and state."""
    try:
        from scheduler import cli_sync

        function = getattr(cli_sync, name)
    except (ImportError, AttributeError):
        fail(f"this build of leadsync cannot {name.replace('_', ' ')} (sync support missing)")
    code = function(*args)
    return int(code) if isinstance(code, int) else EXIT_OK


# --- explain --------------------------------------------------------------------------


def _fmt(value: float) -> str:
    text = f"{value:+.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("+0", "-0") else text


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(_show(item) for item in value)
    return str(value)


def _describe_match(match: Match) -> str:
    parts = []
    for name, value in match.operators():
        parts.append(f"= {_show(value)}" if name == "equals" else f"{name} {_show(value)}")
    return " and ".join(parts)


def _describe_rule(rule: FitRule | BehaviorRule) -> str:
    if isinstance(rule, FitRule):
        return f"{rule.field} {_describe_match(rule.match)}"
    text = rule.event
    if rule.match:
        text += " where " + ", ".join(
            f"{attr} {_describe_match(match)}" for attr, match in rule.match.items()
        )
    limits = []
    if rule.max_per_day is not None:
        limits.append(f"max {rule.max_per_day}/day")
    if rule.max_points is not None:
        limits.append(f"cap ±{rule.max_points:g}")
    if rule.window_days is not None:
        limits.append(f"last {rule.window_days:g} days")
    if rule.half_life_days is not None:
        limits.append(f"half-life {rule.half_life_days:g} days")
    if rule.immediate:
        limits.append("immediate")
    if limits:
        text += f" ({'; '.join(limits)})"
    return text


def _explain_table(model: ScoringModel, result: ScoreResult, as_of: datetime) -> Table:
    reasons = {reason.rule: reason for reason in result.reasons}
    table = Table(
        title=escape(f"{result.contact_id} · model {model.name} · as of {to_iso(as_of)}"),
        title_justify="left",
    )
    table.add_column("rule")
    table.add_column("kind")
    table.add_column("matches")
    table.add_column("events", justify="right")
    table.add_column("points", justify="right")
    groups_seen: set[tuple[str, str]] = set()
    for rule in model.rules:
        reason = reasons.pop(rule.id, None)
        label = (
            escape(rule.id)
            if rule.group is None
            else f"{escape(rule.id)} [dim]({escape(rule.group)})[/]"
        )
        if reason is None:
            note = "—"
            if rule.group is not None and (rule.kind, rule.group) in groups_seen:
                note = "— (group taken)"
            table.add_row(label, rule.kind, escape(_describe_rule(rule)), "", note, style="dim")
            continue
        if rule.group is not None:
            groups_seen.add((rule.kind, rule.group))
        events = "" if reason.events is None else str(reason.events)
        table.add_row(label, rule.kind, escape(_describe_rule(rule)), events, _fmt(reason.points))
    last = result.last_activity_at
    for reason in reasons.values():  # decay (and anything the engine adds later)
        detail = "inactive since " + (to_iso(last) if last is not None else "ever")
        table.add_row(escape(reason.rule), reason.kind, detail, "", _fmt(reason.points))
    table.add_section()
    band = {"hot": "[bold red]hot[/]", "warm": "[yellow]warm[/]", "cold": "[blue]cold[/]"}
    table.add_row(
        "score",
        "",
        f"band {band.get(result.band, result.band)}; scale {model.scale.min:g}..{model.scale.max:g}",
        "",
        f"[bold]{result.score:g}[/]",
    )
    if result.immediate and result.immediate_event is not None:
        event = result.immediate_event
        table.add_row(
            "immediate",
            "",
            escape(
                f"{event.type} at {to_iso(event.occurred_at)}"
                + (f" (id {event.id})" if event.id else "")
            ),
            "",
            "yes",
        )
    table.add_row("last activity", "", to_iso(last) if last is not None else "none", "", "")
    return table
