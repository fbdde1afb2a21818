"""``leadsync status``: what the last runs did, what waits, what the CRM refused."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, NotRequired, TypedDict

import typer
from rich.table import Table

from scheduler.alerts.deliver import AlertsStatus, alerts_status
from scheduler.cli_common import EXIT_USAGE, error_line, stdout
from scheduler.cli_leads import short_time
from scheduler.cli_sync import _guard, _load, _out, open_store
from scheduler.state import StateStore, from_epoch

# Cursor keys that say where the next read starts, not what it remembers.
_POSITION_KEYS = frozenset({"since", "until"})
_VERSION_KEYS = frozenset({"v", "version"})


class CursorSummary(TypedDict):
    """Where the next read starts, how much the cursor remembers, its stored size."""

    since: str | None
    entries: int
    bytes: int


class RunRow(TypedDict):
    """One of the last runs. Values other than the start time come from the stored
    run summary as written and are only printed, so they stay ``object``."""

    started_at: str | None
    exit_code: object
    status: object
    dry_run: bool
    error: object
    scores_written: object
    deals: object
    tasks: object
    api_calls: object
    seconds: object


class RejectedRow(TypedDict):
    """A record the CRM refused, as the store keeps it (printed, never computed on)."""

    contact_id: object
    reason: object
    attempts: object
    next_attempt_at: NotRequired[str | None]


class StatusData(TypedDict):
    """What ``leadsync status --json`` prints."""

    pipeline: str
    cursor_summary: CursorSummary
    contacts_kept: int
    runs: list[RunRow]
    actions_pending: int
    actions_waiting: object
    ledger: dict[str, int]
    rejected: list[RejectedRow]
    budget: Mapping[str, object]
    alerts: AlertsStatus
    cursor: NotRequired[Mapping[str, object] | None]


def _when(value: object) -> datetime | None:
    """A cursor's position as a time: epoch seconds or milliseconds (HubSpot keeps
    milliseconds as text), or an ISO 8601 stamp (Salesforce)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _positions(node: object, depth: int = 0) -> list[datetime]:
    if not isinstance(node, Mapping) or depth > 3:
        return []
    found: list[datetime] = []
    for key, value in node.items():
        if key in _POSITION_KEYS:
            when = _when(value)
            if when is not None:
                found.append(when)
        elif isinstance(value, Mapping):
            found.extend(_positions(value, depth + 1))
    return found


def _entries(node: object, *, top: bool = True) -> int:
    """What the cursor remembers (ids and stamps for de-duplication, own writes):
    every value below the top level, a comma-separated list counting each item."""
    if isinstance(node, Mapping):
        return sum(
            _entries(v, top=False)
            for k, v in node.items()
            if not (k in _POSITION_KEYS or k in _VERSION_KEYS)
            and (not top or isinstance(v, Mapping | list))
        )
    if isinstance(node, list | tuple):
        return sum(_entries(v, top=False) for v in node)
    if isinstance(node, str):
        return len([part for part in node.split(",") if part]) or 1
    return 1


def cursor_summary(cursor: Mapping[str, object] | None) -> CursorSummary:
    """``{since, entries, bytes}``: where the next read starts (the earliest position
    the cursor names), how many ids or stamps it remembers, and its stored size. A
    cursor can carry tens of thousands of ids; ``--cursor`` prints all of it."""
    if not cursor:
        return {"since": None, "entries": 0, "bytes": 0}
    positions = _positions(cursor)
    return {
        "since": min(positions).isoformat() if positions else None,
        "entries": _entries(cursor),
        "bytes": len(json.dumps(cursor, default=str, sort_keys=True).encode()),
    }


def _iso(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int | float):
        at = from_epoch(float(value))
        return at.isoformat() if at else None
    return str(value)


def status_data(store: StateStore, pipeline: str, *, full_cursor: bool = False) -> StatusData:
    runs = store.last_runs(5)
    counts = store.ledger_counts()
    pending = sum(v for k, v in counts.items() if k.endswith(":intent") or k.endswith(":failed"))
    rejected = store.rejected()
    # The budget and waiting actions are what the last run that talked to the CRM saw.
    last = runs[0]["summary"] if runs else {}
    cursor = store.get_cursor(pipeline)
    data: StatusData = {
        "pipeline": pipeline,
        "cursor_summary": cursor_summary(cursor),
        "contacts_kept": store.count_contacts(),
        "runs": [
            {
                "started_at": r["started_at"].isoformat() if r["started_at"] else None,
                "exit_code": r["exit_code"],
                "status": r["summary"].get("status")
                or ("running" if r["exit_code"] is None else None),
                "dry_run": bool(r["summary"].get("dry_run")),
                "error": r["summary"].get("error"),
                "scores_written": r["summary"].get("scores_written"),
                "deals": r["summary"].get("deals"),
                "tasks": r["summary"].get("tasks"),
                "api_calls": r["summary"].get("api_calls"),
                "seconds": r["summary"].get("seconds"),
            }
            for r in runs
        ],
        "actions_pending": pending,
        "actions_waiting": last.get("actions_waiting", 0),
        "ledger": counts,
        "rejected": [_rejected(r) for r in rejected],
        "budget": last.get("budget", {}),
        "alerts": alerts_status(store),
    }
    if full_cursor:
        data["cursor"] = cursor
    return data


def _rejected(row: Mapping[str, object]) -> RejectedRow:
    out: RejectedRow = {
        "contact_id": row["contact_id"],
        "reason": row["reason"],
        "attempts": row["attempts"],
    }
    if "next_attempt_at" in row:  # stores that schedule retries say when
        out["next_attempt_at"] = _iso(row["next_attempt_at"])
    return out


def budget_text(b: Mapping[str, object]) -> str | None:
    """The API budget the last run saw, leaving out what the connector does not know
    (a files export has no budget; a connector may know only its rate window)."""
    parts = [f"{b['calls']} call(s) made"] if b.get("calls") is not None else []
    if b.get("daily_remaining") is not None:
        limit = b.get("daily_limit")
        parts.append(
            f"{b['daily_remaining']} of {limit} left today"
            if limit is not None
            else f"{b['daily_remaining']} left today"
        )
    if b.get("window_remaining") is not None:
        limit = b.get("window_limit")
        parts.append(
            f"{b['window_remaining']} of {limit} in the current window"
            if limit is not None
            else f"{b['window_remaining']} left in the current window"
        )
    return "API budget: " + "; ".join(parts) if parts else None


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def print_status(data: StatusData, *, as_json: bool) -> None:
    if as_json:
        _out(json.dumps(data, default=str, separators=(",", ":")))
        return
    con = stdout
    with con.capture() as cap:
        con.print(
            f"pipeline {data['pipeline']}: {data['contacts_kept']} contact(s) in the local copy",
            markup=False,
        )
        cs = data["cursor_summary"]
        if cs["bytes"]:
            con.print(
                f"cursor: next read from {short_time(cs['since']) or '(no time in it)'}; "
                f"{cs['entries']} remembered id(s) or stamp(s), {cs['bytes']} bytes "
                "(--cursor prints it)",
                markup=False,
            )
        else:
            con.print("cursor: none (next run reads everything)")
        if "cursor" in data:
            con.print(json.dumps(data["cursor"], default=str, sort_keys=True), markup=False)
        table = Table(title="last runs")
        for col in ("started", "kind", "exit", "written", "deals", "tasks", "API calls", "seconds"):
            table.add_column(col, overflow="fold", no_wrap=col == "kind")
        for r in data["runs"]:
            table.add_row(
                short_time(r["started_at"]),
                "dry run" if r["dry_run"] else "run",
                f"{_cell(r['exit_code'])} {r['status'] or ''}".strip(),
                _cell(r["scores_written"]) + (" would be" if r["dry_run"] else ""),
                _cell(r["deals"]),
                _cell(r["tasks"]),
                _cell(r["api_calls"]),
                _cell(r["seconds"]),
            )
        con.print(table)
        if any(r["dry_run"] for r in data["runs"]):
            con.print("a dry run writes nothing: its scores are the ones it would write")
        for r in data["runs"]:
            if r["error"]:
                con.print(
                    f"run of {short_time(r['started_at'])}: {r['status']}: {r['error']}",
                    markup=False,
                )
        con.print(
            f"actions pending: {data['actions_pending']}; "
            f"waiting for a later run: {data['actions_waiting']}"
        )
        con.print(f"rejected records: {len(data['rejected'])}")
        for rej in data["rejected"][:10]:
            retry = f", next attempt {rej['next_attempt_at']}" if rej.get("next_attempt_at") else ""
            con.print(
                f"  {rej['contact_id']}: {rej['reason']} ({rej['attempts']} attempt(s){retry})",
                markup=False,
            )
        alerts = data["alerts"]
        if alerts["owed"] or alerts["given_up"]:
            con.print(f"alerts owed: {alerts['owed']}; given up: {alerts['given_up']}")
        for a in alerts["given_up_recent"]:
            con.print(f"  {a['key']} to {a['destination']}: {a['error']}", markup=False)
        budget = budget_text(data["budget"] or {})
        if budget:
            con.print(budget, markup=False)
    _out(cap.get())


def register(app: typer.Typer) -> None:
    """Add ``status`` to the ``leadsync`` app."""

    @app.command()
    def status(
        config: Annotated[str | None, typer.Option("--config", help="leadsync.yaml")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
        cursor: Annotated[
            bool, typer.Option("--cursor", help="Also print the whole saved cursor.")
        ] = False,
        deployment: Annotated[
            str | None,
            typer.Option("--deployment", help="A deployment file: one row per tenant."),
        ] = None,
    ) -> None:
        """Last runs, cursor, pending and rejected records, actions waiting, API budget.

        Dry runs are marked, a failed run shows its error; ``--json`` summarises the
        cursor (``--cursor`` adds all of it). With ``--deployment``: per tenant, last
        and next run, lag, state, error and API budget (docs/scale-out.md)."""
        if (config is None) == (deployment is None):
            error_line("status: give exactly one of --config or --deployment")
            raise typer.Exit(EXIT_USAGE)
        if deployment is not None:
            from scheduler.cli_scale import deployment_status

            deployment_status(deployment, as_json=as_json)
            return
        assert config is not None
        with _guard():
            cfg = _load(config)
            store = open_store(cfg)
            try:
                data = status_data(store, cfg.pipeline, full_cursor=cursor)
            finally:
                store.close()
            print_status(data, as_json=as_json)
