"""``leadsync status``: what the last runs did, what waits, what the CRM refused."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from scheduler.cli_sync import _guard, _load, _out, open_store
from scheduler.state import StateStore


def status_data(store: StateStore, pipeline: str) -> dict[str, Any]:
    runs = store.last_runs(5)
    counts = store.ledger_counts()
    pending = sum(v for k, v in counts.items() if k.endswith(":intent") or k.endswith(":failed"))
    rejected = store.rejected()
    last = runs[0]["summary"] if runs else {}
    return {
        "pipeline": pipeline,
        "cursor": store.get_cursor(pipeline),
        "contacts_kept": store.count_contacts(),
        "runs": [
            {
                "started_at": r["started_at"].isoformat() if r["started_at"] else None,
                "exit_code": r["exit_code"],
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
        "rejected": [
            {"contact_id": r["contact_id"], "reason": r["reason"], "attempts": r["attempts"]}
            for r in rejected
        ],
        "budget": last.get("budget", {}),
    }


def _cursor_text(cursor: Any, limit: int = 160) -> str:
    """A connector's cursor can carry thousands of ids (boundary de-duplication): the
    text status shows its start; ``--json`` has all of it."""
    if not cursor:
        return "none (next run reads everything)"
    text = json.dumps(cursor, default=str, sort_keys=True)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def print_status(data: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        _out(json.dumps(data, default=str, separators=(",", ":")))
        return
    con = Console(soft_wrap=True)
    with con.capture() as cap:
        con.print(
            f"pipeline {data['pipeline']}: {data['contacts_kept']} contact(s) in the local copy"
        )
        con.print(f"cursor: {_cursor_text(data['cursor'])}")
        table = Table(title="last runs")
        for col in ("started", "exit", "written", "deals", "tasks", "API calls", "seconds"):
            table.add_column(col)
        for r in data["runs"]:
            table.add_row(
                *(
                    str(r[k])
                    for k in (
                        "started_at",
                        "exit_code",
                        "scores_written",
                        "deals",
                        "tasks",
                        "api_calls",
                        "seconds",
                    )
                )
            )
        con.print(table)
        con.print(
            f"actions pending: {data['actions_pending']}; waiting for a later run: {data['actions_waiting']}"
        )
        con.print(f"rejected records: {len(data['rejected'])}")
        for r in data["rejected"][:10]:
            con.print(f"  {r['contact_id']}: {r['reason']} ({r['attempts']} attempt(s))")
        b = data["budget"]
        if b:
            con.print(
                f"API budget: {b.get('daily_remaining')} of {b.get('daily_limit')} left today; "
                f"{b.get('window_remaining')} of {b.get('window_limit')} in the current window"
            )
    _out(cap.get())


def register(app: typer.Typer) -> None:
    """Add ``status`` to the ``leadsync`` app."""

    @app.command()
    def status(
        config: str = typer.Option(..., "--config", help="leadsync.yaml"),
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Last runs, cursor, pending and rejected records, actions waiting, API budget."""
        with _guard():
            cfg = _load(config)
            store = open_store(cfg)
            try:
                print_status(status_data(store, cfg.pipeline), as_json=as_json)
            finally:
                store.close()
