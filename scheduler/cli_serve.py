"""``leadsync serve``: the real-time service (CRM webhooks and product events).

The service answers pushes within milliseconds and leaves the scoring to its worker,
which drains the inbox through a :class:`~scheduler.serve.worker.Processor`. Problems
the user can fix (configuration, database, port) print one line and exit 2.
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from connectors.base import ConnectorError
from connectors.runtime import Redactor
from scheduler.cli_common import EXIT_USAGE
from scheduler.cli_sync import UsageError
from scheduler.config import ConfigError, SyncConfig, redact
from scheduler.serve.config import load_serve_config
from scheduler.serve.inbox import InboxError
from scheduler.serve.runner import build_service, serve_on
from scheduler.serve.settings import ServeConfig
from scheduler.serve.worker import Processor, RecordingProcessor
from scheduler.state import StateError

__all__ = ["processor_for", "register", "serve_command"]


def processor_for(
    sync: SyncConfig,
    serve: ServeConfig,
    *,
    record_to: Path | None,
    redactor: Redactor | None = None,
) -> Processor:
    """The processor the worker calls: the sync's per-contact pass over the
    configuration's connector, models and state store (``SyncProcessor``). With
    ``record_to`` it only records what it would process (JSON lines), touching no CRM:
    a dry rehearsal of the wiring."""
    del serve
    if record_to is not None:
        return RecordingProcessor(record_to=record_to)
    from scheduler.cli_sync import (
        check_band_fields,
        host_redactor,
        load_model_files,
        make_connector,
        open_store,
    )
    from scheduler.cli_train import run_models
    from scheduler.serve.processor import SyncProcessor
    from scheduler.sync import Sync
    from scheduler.writeback import crash_from_env

    redactor = redactor if redactor is not None else host_redactor(sync)
    loaded, scorer, notes = run_models(sync.model_paths(), load_model_files(sync.model_paths()))
    for note in notes:
        sys.stderr.write(redact(f"warning: {note}") + "\n")
    check_band_fields(sync, loaded)
    store = open_store(sync)
    connector = make_connector(sync, redactor=redactor)
    # The crash-safety tests kill the worker at a chosen point, as for ``leadsync run``.
    crash = crash_from_env()
    return SyncProcessor(
        Sync(sync, connector, store, loaded, scorer=scorer, redactor=redactor, crash=crash)
    )


def _fail(line: str) -> None:
    sys.stderr.write(redact(line).rstrip("\n") + "\n")
    raise typer.Exit(EXIT_USAGE)


def serve_command(
    config: str, host: str, port: int, *, worker: bool, record_to: Path | None
) -> None:
    """Load, open the inbox, bind, serve until SIGINT/SIGTERM."""
    try:
        sync, serve = load_serve_config(config)
    except ConfigError as exc:
        for line in exc.problems:
            sys.stderr.write(redact(line) + "\n")
        raise typer.Exit(EXIT_USAGE) from None
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    # The port first: a taken port is said before anything is opened or read.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        _fail(f"error: --port: cannot listen on {host}:{port}: {exc.strerror or exc}")
        return

    redactor = Redactor(serve.secrets())
    try:
        service = build_service(
            sync,
            serve,
            processor=(
                processor_for(sync, serve, record_to=record_to, redactor=redactor)
                if worker
                else None
            ),
            worker=worker,
            redactor=redactor,
        )
    except UsageError as exc:
        sock.close()
        for line in exc.lines:
            sys.stderr.write(redact(line) + "\n")
        raise typer.Exit(EXIT_USAGE) from None
    except (InboxError, StateError, ConnectorError) as exc:
        sock.close()
        _fail(f"error: {exc}")
        return

    def started(h: str, p: int) -> None:
        # One parseable line: scripts (and tests) read the port from it with --port 0.
        sys.stdout.write(f"leadsync serve: listening on http://{h}:{p}\n")
        sys.stdout.flush()

    try:
        serve_on(service, sock, on_start=started)
    finally:
        service.inbox.close()


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the ``leadsync`` app."""

    @app.command()
    def serve(
        config: Annotated[str, typer.Option("--config", help="leadsync.yaml with a serve section")],
        host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", help="Port; 0 picks a free one.")] = 8080,
        worker: Annotated[
            bool,
            typer.Option(
                "--worker/--no-worker",
                help="Also drain the inbox here (--no-worker: only take requests in).",
            ),
        ] = True,
        record_to: Annotated[
            Path | None,
            typer.Option("--record-to", help="Append what the worker processed as JSON lines."),
        ] = None,
    ) -> None:
        """Take CRM webhooks and product events in real time (see docs/realtime.md).

        HubSpot webhooks (POST /webhooks/hubspot), Salesforce Outbound Messages
        (POST /webhooks/salesforce/TOKEN), product events (POST /v1/events),
        GET /healthz and GET /metrics. Every accepted request is stored before it is
        answered; the scheduled sync stays on as the safety net."""
        if not 0 <= port <= 65535:
            _fail(f"error: --port: expected a port between 0 and 65535, got {port}")
        serve_command(config, host, port, worker=worker, record_to=record_to)
