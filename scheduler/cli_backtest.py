"""``leadsync backtest`` and ``leadsync report``: evidence that the scores predict deals.

Semantics in docs/backtest.md. Both read the history through a
:class:`scheduler.backtest.HistorySource`: the exports of a ``files`` configuration
(contacts, events and ``outcomes``) or, for a CRM, the sync's state store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from scheduler.backtest import (
    BacktestOptions,
    BacktestResult,
    HistoryData,
    run_backtest,
)
from scheduler.cli_common import EXIT_OK, EXIT_REJECTED
from scheduler.cli_sync import (
    UsageError,
    _err,
    _guard,
    _load,
    _out,
    load_model_files,
    option_duration,
    read_model_files,
)
from scheduler.config import SyncConfig
from scoring.model import ScoringModel
from scoring.timeutil import parse_timestamp

__all__ = ["load_history", "named_models", "register"]


def named_models(paths: Sequence[Path]) -> list[tuple[str, ScoringModel]]:
    """Every model of every file, named by its own name, or ``FILE-STEM/NAME`` when two
    files share a name (a current and a candidate version of one model)."""
    loaded = [(path, m) for path, ms in read_model_files(paths) for m in ms.models]
    names = [m.name for _, m in loaded]
    out: list[tuple[str, ScoringModel]] = []
    for path, model in loaded:
        name = model.name if names.count(model.name) == 1 else f"{path.stem}/{model.name}"
        if any(name == other for other, _ in out):
            raise UsageError([f"{path}:1: models: model {name!r} is given twice"])
        out.append((name, model))
    return out


def load_history(
    config: SyncConfig, models: Sequence[ScoringModel]
) -> tuple[HistoryData, list[str]]:
    """The history and the rows that could not be read (``FILE:LINE: field: problem``)."""
    if config.crm.type == "files":
        from connectors.files import FilesConnector
        from scheduler.cli_sync import make_connector
        from scheduler.history import FilesHistory

        connector = make_connector(config)
        assert isinstance(connector, FilesConnector)
        source = FilesHistory(connector)
        return source.load(models), source.rejected
    return _store_history(config, models), []


def _store_history(config: SyncConfig, models: Sequence[ScoringModel]) -> HistoryData:
    """Contacts and events from the sync's local copy; outcomes read from the CRM into
    the store first (incrementally), so that the backtest sees the latest deals."""
    from scheduler.cli_sync import make_connector, open_store
    from scheduler.outcomes import StoreHistory, sync_outcomes

    store = open_store(config)
    try:
        if store.count_contacts() == 0:
            raise UsageError(
                [
                    f"{config.source}: the state store holds no contacts yet; "
                    f"run `leadsync run --config {config.source}` first"
                ]
            )
        connector = make_connector(config)
        started = datetime.now(UTC)
        try:
            sync_outcomes(store, connector, pipeline=config.pipeline, started=started)
        finally:
            connector.close()
        history = StoreHistory(
            store,
            source=config.crm.type,
            read_at=started,
            kept_since=_kept_since(config, started),
        )
        return history.load(models)
    finally:
        store.close()


def _date(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        if len(value) == 10:
            return datetime.strptime(value + "+0000", "%Y-%m-%d%z").astimezone(UTC)
        return parse_timestamp(value)
    except ValueError:
        raise UsageError([f"{option}: expected a date such as 2026-01-31, got {value!r}"]) from None


def _print_text(result: BacktestResult) -> None:
    doc = result.to_json()
    # Wide enough for the table in a CI log or a redirected file.
    con = Console(soft_wrap=True, width=160)
    with con.capture() as cap:
        w = doc["window"]
        con.print(
            f"backtest of {doc['source']}: {len(doc['snapshots'])} snapshot(s) from "
            f"{w['from'][:10]} to {w['to'][:10]}, every {w['every_days']:g} d, "
            f"horizon {w['horizon_days']:g} d, milestone {w['milestone']}; "
            f"data ends {w['data_end']}"
        )
        table = Table(title="models")
        for col in (
            "model",
            "pairs",
            "converted",
            "AUC",
            "hot lift",
            "precision",
            "recall",
            "leads/week",
            "median days to deal",
        ):
            table.add_column(col)
        for name, f in doc["models"].items():
            hot = f["bands"][0]
            table.add_row(
                name,
                str(f["pairs"]),
                str(f["positives"]),
                _n(f["auc"], 3),
                _n(hot["lift"], 2),
                _n(f["precision_at_threshold"], 3),
                _n(f["recall_at_threshold"], 3),
                _n(f["leads_per_week"], 1),
                _n(f["median_days_to_deal"], 1),
            )
        con.print(table)
        if doc["comparison"]:
            c = doc["comparison"]
            ci = c["ci95"]
            con.print(
                f"{c['models'][1]} - {c['models'][0]}: AUC difference {_n(c['auc_diff'], 3)}, "
                f"95% interval {'n/a' if ci is None else f'[{ci[0]:.3f}, {ci[1]:.3f}]'}"
            )
        advice = doc["threshold_advice"]
        if advice:
            f1 = advice["f1"]
            con.print(
                f"threshold advice: max F1 at {_n(f1['threshold'], 2)} "
                f"(precision {_n(f1['precision'], 3)}, recall {_n(f1['recall'], 3)})"
            )
            cap_ = advice.get("capacity")
            if cap_:
                con.print(
                    f"threshold advice: {cap_['capacity']:g} per week at "
                    f"{_n(cap_['threshold'], 2)} ({_n(cap_['crossings_per_week'], 1)} per week, "
                    f"precision {_n(cap_['precision'], 3)}, recall {_n(cap_['recall'], 3)})"
                )
        for line in doc["caveats"]:
            con.print(f"caveat: {line}")
        for note in doc["left_out_fields"]:
            con.print(f"left out: model {note['model']}, field {note['field']}: {note['reason']}")
    _out(cap.get().rstrip("\n"))


def _n(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _write(path: str, text: str) -> None:
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError([f"{path}: cannot write the report: {exc.strerror or exc}"]) from None


def execute_backtest(
    config_path: str,
    *,
    model_files: Sequence[str],
    start: str | None,
    end: str | None,
    every: str,
    horizon: str,
    milestone: Literal["won", "deal"],
    capacity: float | None,
    as_json: bool,
    report: str | None,
) -> int:
    config = _load(config_path)
    paths = [Path(p) for p in model_files] if model_files else config.model_paths()
    if not model_files:
        load_model_files(paths)  # the same checks as a run
    models = named_models(paths)
    options = BacktestOptions(
        start=_date(start, "--from"),
        end=_date(end, "--to"),
        every=option_duration(every, "--every"),
        horizon=option_duration(horizon, "--horizon"),
        milestone=milestone,
        capacity=capacity,
    )
    data, rejected = load_history(config, [m for _, m in models])
    try:
        result = run_backtest(models, data, options)
    except ValueError as exc:
        raise UsageError([f"backtest: {exc}"]) from None
    if as_json:
        _out(json.dumps(result.to_json(), separators=(",", ":"), allow_nan=False))
    else:
        _print_text(result)
    if report:
        from scheduler.report import backtest_report

        _write(report, backtest_report(result, _predictive_beside(config, data, result)))
        if not as_json:
            _out(f"report: {report}")
    return _report_rejected(rejected)


def _predictive_beside(config: SyncConfig, data: HistoryData, result: Any) -> list[dict[str, Any]]:
    """Each predictive model of the configuration whose artifact fits, beside its rules
    model on the backtest's own snapshots (none without scikit-learn's extra: training's
    feature code lives beside it, and the report then shows the rules models only)."""
    from scheduler.cli_train import load_artifacts
    from scoring.model import ModelFileError, load_models

    try:
        from scheduler.train import beside_rules
    except ImportError:  # pragma: no cover - the extra is installed in tests
        return []
    out: list[dict[str, Any]] = []
    for path in config.model_paths():
        try:
            models = load_models(path.read_text(encoding="utf-8"), str(path))
        except (OSError, ModelFileError):
            continue
        if not models.predictive:
            continue
        artifacts, _ = load_artifacts(path, models)
        for spec in models.predictive:
            if spec.name in artifacts:
                out.append(
                    beside_rules(
                        data,
                        spec,
                        models.get(spec.base_model),
                        artifacts[spec.name],
                        result.snapshots,
                        horizon=result.options.horizon,
                        milestone=result.options.milestone,
                    )
                )
    return out


def _report_rejected(rejected: Sequence[str]) -> int:
    for line in rejected[:20]:
        _err(line)
    if len(rejected) > 20:
        _err(f"... and {len(rejected) - 20} more rejected row(s)")
    return EXIT_REJECTED if rejected else EXIT_OK


def execute_report(config_path: str, out: str) -> int:
    """The current state's report (see :func:`scheduler.report.state_report`)."""
    config = _load(config_path)
    paths = config.model_paths()
    load_model_files(paths)
    models = named_models(paths)
    data, rejected = load_history(config, [m for _, m in models])
    _write(out, state_report_text(data, models))
    _out(f"report: {out}")
    return _report_rejected(rejected)


def state_report_text(data: HistoryData, models: Sequence[tuple[str, ScoringModel]]) -> str:
    """Score everyone as of the data end; replay the last 26 weeks' crossings."""
    from scheduler import backtest as bt
    from scheduler.report import state_report
    from scoring.engine import score_columns

    as_of = data.data_end
    renamed = [m.model_copy(update={"name": name}) for name, m in models]
    columns = score_columns(renamed, data.contacts, data.events, as_of=as_of)
    end = bt._midnight(as_of)
    start = end - timedelta(weeks=26)
    contacts = bt._prepare_contacts(data)
    usable = [(m.name, m, m) for m in renamed]
    observations = bt._daily_observations(contacts, data, usable, start, end)
    parts = []
    for name, m, _ in usable:
        crossed = bt._crossings(observations[name], m, m.threshold)
        parts.append(
            crossed.select(
                (pl.lit(start, dtype=bt._UTC_DT) + pl.col("day") * timedelta(days=1)).alias("at")
            )
        )
    crossings = pl.concat(parts) if parts else pl.DataFrame(schema={"at": bt._UTC_DT})
    won = data.deals.filter(pl.col("outcome") == "won").get_column("contact_id").to_list()
    return state_report(
        source=data.source,
        as_of=as_of,
        scores=columns.scores,
        reasons=columns.reasons,
        crossings=crossings,
        deals=data.deals,
        converted=set(won),
        window=(start, end),
    )


def store_report(
    config: SyncConfig,
    store: Any,
    connector: Any,
    models: Sequence[ScoringModel],
    *,
    now: datetime,
    path: Path,
) -> Path:
    """A report of a running pipeline's own world (``leadsync demo`` ends with one):
    outcomes read into the store, then the backtest report when the history covers at
    least one snapshot and its horizon, else the report of the current state."""
    from scheduler.outcomes import StoreHistory, sync_outcomes
    from scheduler.report import backtest_report

    sync_outcomes(store, connector, pipeline=config.pipeline, started=now)
    named = [(m.name, m) for m in models]
    data = StoreHistory(
        store, source=config.crm.type, read_at=now, kept_since=_kept_since(config, now)
    ).load(models)
    text: str | None = None
    try:
        result = run_backtest(named, data, BacktestOptions(resamples=200))
        if result.snapshots and any(run.figures["pairs"] for run in result.runs):
            text = backtest_report(result)
    except ValueError:
        text = None
    path.write_text(text or state_report_text(data, named), encoding="utf-8")
    return path


def register(app: typer.Typer) -> None:
    """Add ``backtest`` and ``report`` to the ``leadsync`` app."""

    @app.command()
    def backtest(
        config: Annotated[str, typer.Option("--config", help="leadsync.yaml")],
        model: Annotated[
            list[str] | None,
            typer.Option("--model", help="Model file; repeat to compare (default: the config's)."),
        ] = None,
        start: Annotated[
            str | None,
            typer.Option("--from", help="First snapshot (default: --to minus 26 weeks)."),
        ] = None,
        end: Annotated[
            str | None,
            typer.Option(
                "--to", help="Last snapshot (default: latest whose horizon the data covers)."
            ),
        ] = None,
        every: Annotated[str, typer.Option("--every", help="Time between snapshots.")] = "7d",
        horizon: Annotated[
            str, typer.Option("--horizon", help="How long after a snapshot a deal counts.")
        ] = "90d",
        milestone: Annotated[
            str, typer.Option("--milestone", help="won: a deal created and won; deal: created.")
        ] = "won",
        capacity: Annotated[
            float | None,
            typer.Option("--capacity", help="Leads sales can take per week (threshold advice)."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
        report: Annotated[
            str | None, typer.Option("--report", help="Write an HTML report to this file.")
        ] = None,
    ) -> None:
        """How the models would have scored past snapshots, judged against the deals."""
        with _guard():
            if milestone not in ("won", "deal"):
                raise UsageError([f"--milestone: expected won or deal, got {milestone!r}"])
            if capacity is not None and not (capacity > 0 and math.isfinite(capacity)):
                raise UsageError([f"--capacity: expected a positive number, got {capacity:g}"])
            code = execute_backtest(
                config,
                model_files=model or [],
                start=start,
                end=end,
                every=every,
                horizon=horizon,
                milestone=milestone,  # type: ignore[arg-type]
                capacity=capacity,
                as_json=as_json,
                report=report,
            )
        raise typer.Exit(code)

    @app.command("report")
    def report_command(
        config: Annotated[str, typer.Option("--config", help="leadsync.yaml")],
        out: Annotated[
            str, typer.Option("--out", help="Where to write the HTML report.")
        ] = "leadsync-report.html",
    ) -> None:
        """An HTML report of the current state: bands, scores, crossings, deals, rules."""
        with _guard():
            code = execute_report(config, out)
        raise typer.Exit(code)


def _kept_since(config: SyncConfig, now: datetime) -> datetime | None:
    """The oldest event the sync keeps: runs read and prune events at this horizon,
    which the configured models set (a candidate model passed to ``backtest`` does
    not change what the sync kept)."""
    from scheduler.sync import events_kept

    kept = events_kept(load_model_files(config.model_paths()), config.retain_events)
    return None if kept is None else now - kept
