"""Plumbing shared by the fake CRMs: requests in, responses out, faults, stats, clocks.

Each CRM flavour (``hubspot``, ``salesforce``) implements :class:`Flavour`: it only
turns a :class:`Request` into a :class:`Response`. :class:`SandboxApp` wraps a flavour
with what is the same for every CRM: the ``/__sandbox/`` control routes, fault
injection, and call statistics. The app then has two front doors that behave the
same: :func:`serve`, a real HTTP(S) server on loopback (the official HubSpot client
speaks urllib3, which ``responses`` cannot intercept), and :func:`mount_responses`, for
requests-based unit tests that should not open sockets.

The sandbox never imports the connectors: it is built from the CRMs' published
behaviour so that it catches connector bugs instead of mirroring them.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    NotRequired,
    Protocol,
    TypeAlias,
    TypedDict,
    runtime_checkable,
)
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from connectors.sandbox.tls import SandboxCA

# What a fake CRM answers: JSON built from dicts, lists and scalars. Read-only
# containers, so that a ``dict[str, str]`` or a list of records is a value as it is.
JSONValue: TypeAlias = (
    bool | int | float | str | Sequence["JSONValue"] | Mapping[str, "JSONValue"] | None
)

# --------------------------------------------------------------------------- clocks


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (UTC)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told, so tests of expiry, lag and rate windows
    never sleep. ``sleep`` advances it, which makes it usable as a client's sleeper."""

    def __init__(self, start: float | datetime | None = None) -> None:
        if start is None:
            start = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
        self._t = start.timestamp() if isinstance(start, datetime) else float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=UTC)


# ------------------------------------------------------------------ request/response


class BadRequestBody(ValueError):
    """The body is not the JSON the route expects."""


@dataclass
class Request:
    method: str
    path: str  # percent-encoded path without the query string, e.g. /crm/v3/objects/contacts
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # keys lower-cased
    body: bytes = b""

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequestBody(str(exc)) from exc

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def params(self, name: str) -> list[str]:
        """Every value of a repeated or comma-separated parameter (``properties=a,b&properties=c``)."""
        out: list[str] = []
        for value in self.query.get(name, []):
            out.extend(v for v in value.split(",") if v)
        return out

    @classmethod
    def from_url(
        cls, method: str, url: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Request:
        parts = urlsplit(url)
        return cls(
            method=method.upper(),
            path=parts.path or "/",
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in (headers or {}).items()},
            body=body,
        )


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection instead of answering (the write stays applied)

    @classmethod
    def json(cls, status: int, payload: object, headers: dict[str, str] | None = None) -> Response:
        """``payload`` as compact JSON; it is only handed to ``json.dumps``."""
        h = {"Content-Type": "application/json;charset=utf-8"}
        h.update(headers or {})
        return cls(status, json.dumps(payload, separators=(",", ":")).encode(), h)

    @classmethod
    def empty(cls, status: int = 204, headers: dict[str, str] | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))


class Flavour(Protocol):
    """One fake CRM. Implementations are thread-safe: the server is multi-threaded."""

    name: str

    def handle(self, request: Request) -> Response: ...

    def route_key(self, request: Request) -> str:
        """The key under which ``/__sandbox/stats`` counts this request (``METHOD /path``)."""
        ...

    def is_write(self, request: Request) -> bool: ...

    def error_response(self, request: Request, status: int) -> Response:
        """The CRM's own error shape for an injected ``status``."""
        ...

    def rate_limited_response(self, request: Request) -> Response:
        """The CRM's own answer when its rate limit is hit (for ``rate_limit_storm``)."""
        ...

    def expire_credentials(self) -> None:
        """Make every token or session issued so far stop working (``expire_token_after``)."""
        ...

    def reset(self) -> None:
        """Back to the seeded state (``POST /__sandbox/reset``)."""
        ...


# ------------------------------------------------------------------------- the app


class Stats(TypedDict):
    """``GET /__sandbox/stats``: requests served, by route and by status; and, for a
    flavour with requests that carry others (Salesforce's ``/composite``), those
    subrequests by route (they are not in ``total``: the API counts the carrier)."""

    total: int
    by_route: dict[str, int]
    by_status: dict[str, int]
    subrequests: NotRequired[dict[str, int]]


@runtime_checkable
class CountsSubrequests(Protocol):
    """A flavour that serves requests inside other requests and counts them."""

    def subrequest_counts(self) -> dict[str, int]: ...

    def reset_subrequest_counts(self) -> None: ...


@dataclass
class Faults:
    error_rate: float = 0.0
    error_status: int = 503
    latency_ms: float = 0.0
    rate_limit_storm: bool = False
    expire_token_after: int | None = None
    commit_then_drop: float = 0.0

    @classmethod
    def parse(cls, payload: object) -> Faults:
        if not isinstance(payload, dict):
            raise ValueError("faults must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = set(payload) - known
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        f = cls()
        for key, value in payload.items():
            if key == "rate_limit_storm":
                if not isinstance(value, bool):
                    raise ValueError("rate_limit_storm must be true or false")
                f.rate_limit_storm = value
            elif key in ("error_status", "expire_token_after"):
                if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                    raise ValueError(f"{key} must be an integer")
                setattr(f, key, value)
            else:
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ValueError(f"{key} must be a number")
                if key in ("error_rate", "commit_then_drop") and not 0 <= value <= 1:
                    raise ValueError(f"{key} must be between 0 and 1")
                setattr(f, key, float(value))
        return f


class SandboxApp:
    """A flavour plus faults and stats; callable as ``app(request) -> response``."""

    def __init__(
        self,
        flavour: Flavour,
        *,
        seed: int = 0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.flavour = flavour
        self.faults = Faults()
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._calls_until_expiry: int | None = None
        self._simulations = 0  # seeds of successive POST /__sandbox/simulate
        self.by_route: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()

    # control routes -------------------------------------------------------------
    def _control(self, request: Request) -> Response:
        route = request.path.rstrip("/")
        if route == "/__sandbox/faults" and request.method == "POST":
            try:
                faults = Faults.parse(request.json())
            except (ValueError, BadRequestBody) as exc:
                return Response.json(400, {"error": str(exc)})
            with self._lock:
                self.faults = faults
                self._calls_until_expiry = faults.expire_token_after
            return Response.json(200, {"faults": faults.__dict__})
        if route == "/__sandbox/faults" and request.method == "GET":
            return Response.json(200, {"faults": self.faults.__dict__})
        if route == "/__sandbox/stats" and request.method == "GET":
            return Response.json(200, self.stats())
        if route == "/__sandbox/stats" and request.method == "DELETE":
            self.reset_stats()
            return Response.empty(204)
        if route in ("/__sandbox/fields", "/__sandbox/simulate") and request.method == "POST":
            from connectors.sandbox import control

            try:
                payload = request.json()
            except BadRequestBody as exc:
                return Response.json(400, {"error": f"body is not JSON: {exc}"})
            if route == "/__sandbox/fields":
                return control.add_field(self.flavour, payload)
            with self._lock:
                self._simulations += 1
                next_seed = self._simulations
            return control.simulate(self.flavour, payload, next_seed)
        if route == "/__sandbox/reset" and request.method == "POST":
            self.flavour.reset()
            with self._lock:
                self.faults = Faults()
                self._calls_until_expiry = None
            self.reset_stats()
            return Response.json(200, {"reset": True})
        return Response.json(404, {"error": f"no sandbox route {request.method} {request.path}"})

    def stats(self) -> Stats:
        with self._lock:
            stats: Stats = {
                "total": sum(self.by_route.values()),
                "by_route": dict(self.by_route),
                "by_status": dict(self.by_status),
            }
        if isinstance(self.flavour, CountsSubrequests):
            stats["subrequests"] = self.flavour.subrequest_counts()
        return stats

    def reset_stats(self) -> None:
        with self._lock:
            self.by_route.clear()
            self.by_status.clear()
        if isinstance(self.flavour, CountsSubrequests):
            self.flavour.reset_subrequest_counts()

    # the request path -------------------------------------------------------------
    def __call__(self, request: Request) -> Response:
        if request.path.startswith("/__sandbox/"):
            return self._control(request)
        with self._lock:
            faults = self.faults
            self.by_route[self.flavour.route_key(request)] += 1
            expire_now = False
            if self._calls_until_expiry is not None:
                self._calls_until_expiry -= 1
                if self._calls_until_expiry < 0:
                    expire_now = True
                    self._calls_until_expiry = None
            inject_error = faults.error_rate > 0 and self._rng.random() < faults.error_rate
            drop = faults.commit_then_drop > 0 and self._rng.random() < faults.commit_then_drop
        if expire_now:
            self.flavour.expire_credentials()
        if faults.latency_ms:
            self._sleep(faults.latency_ms / 1000.0)
        if faults.rate_limit_storm:
            response = self.flavour.rate_limited_response(request)
        elif inject_error:
            response = self.flavour.error_response(request, faults.error_status)
        else:
            response = self.flavour.handle(request)
            if drop and 200 <= response.status < 300 and self.flavour.is_write(request):
                response.drop = True
        with self._lock:
            self.by_status["dropped" if response.drop else str(response.status)] += 1
        return response


# ------------------------------------------------------------------ HTTP front door


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections as with the real APIs
    server_version = "leadsync-sandbox"
    # Headers and body go out in two writes; with Nagle on, the second waits for the
    # client's delayed ACK (~40 ms a request on loopback).
    disable_nagle_algorithm = True
    app: SandboxApp  # set on the subclass made per server

    def log_message(self, format: str, *args: object) -> None:
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        request = Request.from_url(self.command, self.path, dict(self.headers.items()), body)
        try:
            response = self.app(request)
        except Exception as exc:  # a sandbox bug must look like a 500, not hang the client
            response = Response.json(500, {"error": f"sandbox error: {type(exc).__name__}: {exc}"})
        if response.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body and self.command != "HEAD":
            self.wfile.write(response.body)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


@dataclass
class RunningServer:
    base_url: str
    host: str
    port: int
    ca_path: Path | None
    _server: _Server
    _thread: threading.Thread

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(
    app: SandboxApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: bool = False,
    ca_out: str | Path | None = None,
    tls_hostnames: Sequence[str] = (),
    ca: SandboxCA | None = None,
) -> RunningServer:
    """Serve ``app`` on loopback in a background thread; ``port=0`` picks a free port.

    With ``tls`` a throw-away CA is generated (trustme) and its certificate written to
    ``ca_out`` (or a temporary file): clients pass that path as ``verify=``.
    ``tls_hostnames`` (which imply ``tls``) adds real names such as ``api.hubapi.com``
    to the certificate, for tools reached through a hosts-file entry; ``ca`` signs
    with a given (e.g. kept) CA instead of a fresh one.
    """
    from connectors.sandbox.tls import SandboxCA, parse_hostnames

    hostnames = parse_hostnames(tls_hostnames)
    tls = tls or bool(hostnames) or ca is not None
    handler = type("Handler", (_Handler,), {"app": app})
    server = _Server((host, port), handler)
    ca_path: Path | None = None
    if tls:
        authority = ca or SandboxCA.create()
        context = authority.server_context(hostnames, host)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        if ca_out is not None:
            ca_path = authority.write_cert(ca_out)
        elif authority.cert_path is not None:
            ca_path = authority.cert_path
        else:
            fd, name = tempfile.mkstemp(prefix="leadsync-sandbox-ca-", suffix=".pem")
            with open(fd, "wb") as fh:
                fh.write(authority.cert_pem)
            ca_path = Path(name)
    real_port = server.server_address[1]
    scheme = "https" if tls else "http"
    url_host = f"[{host}]" if ":" in host else host
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},  # close() waits up to one poll interval
        name=f"sandbox-{app.flavour.name}",
    )
    thread.daemon = True
    thread.start()
    return RunningServer(
        f"{scheme}://{url_host}:{real_port}", host, real_port, ca_path, server, thread
    )


# -------------------------------------------------------------- responses front door


def mount_responses(app: SandboxApp, rsps: Any, base_url: str) -> None:
    """Route every request under ``base_url`` through ``app`` inside a
    ``responses.RequestsMock``, so requests-based tests need no socket. A dropped
    answer becomes the ``ConnectionError`` a client would see."""
    import requests

    pattern = re.compile(re.escape(base_url.rstrip("/")) + r"(/.*)?$")

    def callback(prepared: Any) -> Any:
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode()
        request = Request.from_url(prepared.method, prepared.url, dict(prepared.headers), body)
        response = app(request)
        if response.drop:
            return requests.exceptions.ConnectionError("Connection aborted: remote end closed")
        return (response.status, response.headers, response.body)

    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
        rsps.add_callback(method, pattern, callback=callback)


def iso_ms(epoch_seconds: float) -> str:
    """``2019-10-30T03:30:17.883Z``: HubSpot's timestamp format (milliseconds, Z)."""
    dt = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
