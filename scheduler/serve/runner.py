"""Running the service on uvicorn: in the foreground (the CLI) or in a thread (tests,
the demo), and building it from a loaded configuration.

uvicorn's access log writes every request path, and a Salesforce Outbound Message's
path holds its secret token: every uvicorn log record passes the redactor first.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn

from connectors.runtime import RedactingLogger, Redactor
from scheduler.config import SyncConfig
from scheduler.serve.app import Service, create_app
from scheduler.serve.inbox import Inbox
from scheduler.serve.metrics import Metrics
from scheduler.serve.settings import ServeConfig
from scheduler.serve.worker import Drainer, Processor, RecordingProcessor

__all__ = ["RedactingFilter", "RunningService", "build_service", "serve_on", "start_in_thread"]

_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")

#: Seconds an idle kept-alive connection stays open: a slow client cannot hold one
#: for ever. A client reusing connections must drop its idle ones before this.
KEEP_ALIVE_S = 5


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RedactingFilter(logging.Filter):
    """Scrubs secrets from a record's message and text arguments before any handler
    sees it (the arguments stay arguments: uvicorn's access formatter unpacks them)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        # Every service started in this process adds its redactor: uvicorn's loggers
        # are process-wide, and a second service (tests, the demo) has other secrets.
        self.redactors: list[Redactor] = [redactor]

    def add(self, redactor: Redactor) -> None:
        if all(r is not redactor for r in self.redactors):
            self.redactors.append(redactor)

    def redactor(self, text: str) -> str:
        for r in self.redactors:
            text = r(text)
        return text

    def _clean(self, value: object) -> object:
        return self.redactor(value) if isinstance(value, str) else value

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.redactor(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._clean(v) for k, v in record.args.items()}
        return True


def redact_uvicorn_logs(redactor: Redactor) -> None:
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        found = [f for f in logger.filters if isinstance(f, RedactingFilter)]
        if found:
            found[0].add(redactor)
        else:
            logger.addFilter(RedactingFilter(redactor))


def build_service(
    sync: SyncConfig,
    serve: ServeConfig,
    *,
    processor: Processor | None = None,
    worker: bool = True,
    now: Callable[[], datetime] = _utcnow,
    redactor: Redactor | None = None,
    schema: str | None = None,
    record_to: Path | None = None,
) -> Service:
    """The service for a configuration: the inbox on the state store's database, the
    metrics, and (``worker``) a drainer calling ``processor``."""
    redactor = redactor or Redactor()
    for secret in serve.secrets():
        redactor.add(secret)
    log = RedactingLogger(logging.getLogger("leadsync.serve"), redactor)
    inbox = Inbox(sync.state_url(), now=now, schema=schema)
    inbox.create()
    metrics = Metrics(depth=inbox.depth)
    drainer = None
    if worker:
        drainer = Drainer(
            inbox,
            processor or RecordingProcessor(record_to=record_to, log=log),
            now=now,
            settings=serve.worker,
            metrics=metrics,
            log=log,
        )
    return Service(serve, inbox, now, metrics, redactor, drainer=drainer)


class _Server(uvicorn.Server):
    """A uvicorn server that says where it listens once it does (``--port 0``)."""

    def __init__(self, config: uvicorn.Config, on_start: Callable[[str, int], None]) -> None:
        super().__init__(config)
        self.on_start = on_start

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.servers:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            self.on_start(str(host), int(port))


def _config(service: Service, host: str, port: int, log_level: str) -> uvicorn.Config:
    config = uvicorn.Config(
        create_app(service),
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        proxy_headers=False,
    )
    redact_uvicorn_logs(service.redactor)  # after uvicorn configured its loggers
    return config


def serve_on(
    service: Service,
    sock: socket.socket,
    *,
    on_start: Callable[[str, int], None],
    log_level: str = "info",
) -> None:
    """Serve on a bound socket in the foreground until SIGINT/SIGTERM (uvicorn's own
    handling). Binding first lets the caller report a taken port in one line."""
    host, port = sock.getsockname()[:2]
    server = _Server(_config(service, str(host), int(port), log_level), on_start)
    server.run(sockets=[sock])


@dataclass
class RunningService:
    service: Service
    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server and wait for its thread: a server left running outlives its
        caller (a test, the demo) and logs into streams that are closed by then. Past
        ``timeout`` the open connections are dropped (uvicorn's ``force_exit``); a
        thread that still does not end is an error. Stopping twice is harmless."""
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(5)
        if self.thread.is_alive():
            raise RuntimeError(f"the service on {self.url} did not stop")
        self.service.inbox.close()

    def __enter__(self) -> RunningService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(
    service: Service, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
) -> RunningService:
    """Start the real server on an ephemeral port in a thread; returns once it listens."""
    bound: dict[str, Any] = {}
    ready = threading.Event()

    def on_start(h: str, p: int) -> None:
        bound["url"] = f"http://{h}:{p}"
        ready.set()

    server = _Server(_config(service, host, port, log_level), on_start)
    # (uvicorn listens to signals only from the main thread: none are taken here)

    def run() -> None:
        asyncio.run(server.serve())
        ready.set()

    thread = threading.Thread(target=run, name="leadsync-serve", daemon=True)
    thread.start()
    ready.wait(30)
    if "url" not in bound:
        server.should_exit = server.force_exit = True
        thread.join(30)
        raise RuntimeError("the service did not start")
    return RunningService(service, server, thread, bound["url"])
