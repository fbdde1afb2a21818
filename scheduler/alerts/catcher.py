"""A local webhook catcher: a threaded HTTP server on loopback that records every
POST and answers as scripted. The tests stand it in for Slack and Teams, and
``leadsync demo`` shows the alerts it would send through one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Caught:
    path: str
    headers: dict[str, str]
    body: Any


class Catcher:
    """Records POSTs; ``script`` holds replies for the next requests (then 200 ok)."""

    def __init__(self, default: Reply | None = None) -> None:
        self.requests: list[Caught] = []
        self.script: list[Reply] = []
        self.default = default or Reply()
        self._lock = threading.Lock()
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with catcher._lock:
                    catcher.requests.append(Caught(self.path, dict(self.headers), body))
                    reply = catcher.script.pop(0) if catcher.script else catcher.default
                data = reply.body.encode()
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Catcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self, path: str | None = None) -> list[Any]:
        with self._lock:
            return [r.body for r in self.requests if path is None or r.path == path]


@contextmanager
def catching(default: Reply | None = None) -> Iterator[Catcher]:
    c = Catcher(default).start()
    try:
        yield c
    finally:
        c.stop()
