"""The ASGI application of ``leadsync serve`` (Starlette, served by uvicorn).

Every intake route follows the same order, so that nothing unauthenticated is ever
parsed into the inbox and nothing is answered 2xx before it is durable:

1. the body is read with a hard limit, enforced while it streams in (413);
2. the signature (or, for Salesforce, path token then organization id) is checked (401);
3. the body is parsed, all or nothing (400);
4. the items are committed to the inbox (503 if the database fails);
5. only then the 2xx answer.

Client input never yields a 5xx: the only 5xx is 503, when the database is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.runtime import RedactingLogger, Redactor
from scheduler.serve.inbox import Inbox, InboxError
from scheduler.serve.intake import (
    BadPayload,
    Incoming,
    parse_events,
    parse_hubspot,
    parse_outbound,
    soap_ack,
    soap_fault,
)
from scheduler.serve.metrics import CONTENT_TYPE, Metrics
from scheduler.serve.settings import ServeConfig
from scheduler.serve.signatures import Refusal, verify_event, verify_hubspot
from scheduler.serve.worker import Drainer

__all__ = ["Service", "create_app"]

SOAP_TYPE = "text/xml; charset=utf-8"


class _Refused(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


class GroupCommit:
    """Commits the items of concurrent requests together: one transaction (one disk
    sync) for every request that arrived while the previous commit ran. Each request
    still waits for its own items to be committed before it is answered."""

    def __init__(self, inbox: Inbox, keep_unknown: timedelta | None, max_items: int = 2000):
        self.inbox = inbox
        self.keep_unknown = keep_unknown
        self.max_items = max_items
        self.queue: asyncio.Queue[tuple[Sequence[Incoming], asyncio.Future[tuple[int, int]]]]
        self.queue = asyncio.Queue()

    async def submit(self, items: Sequence[Incoming]) -> tuple[int, int]:
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        await self.queue.put((items, future))
        return await future

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            size = len(batch[0][0])
            while not self.queue.empty() and size < self.max_items:
                batch.append(self.queue.get_nowait())
                size += len(batch[-1][0])
            try:
                results = await run_in_threadpool(
                    self.inbox.add_groups, [b[0] for b in batch], keep_unknown=self.keep_unknown
                )
            except Exception as exc:  # the requests fail (503 or, for a bug, 500), not the writer
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # its client may have gone
                    future.set_result(result)


@dataclass
class Service:
    """What the routes share. ``now`` is injected (aware UTC) for signature windows."""

    config: ServeConfig
    inbox: Inbox
    now: Callable[[], datetime]
    metrics: Metrics
    redactor: Redactor
    drainer: Drainer | None = None

    def __post_init__(self) -> None:
        for secret in self.config.secrets():
            self.redactor.add(secret)
        self.log = RedactingLogger(logging.getLogger("leadsync.serve"), self.redactor)
        self.committer: GroupCommit | None = None  # set while the app runs

    # ------------------------------------------------------------------ helpers
    async def body(self, request: Request) -> bytes:
        """The raw body, refused (413) as soon as it passes ``max_body``: a declared
        length is checked before reading, a streamed body chunk by chunk."""
        limit = self.config.max_body
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise _Refused(400, "malformed", "bad Content-Length")
            if int(declared) > limit:
                raise _Refused(413, "too_large", f"body of {declared} bytes over {limit}")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _Refused(413, "too_large", f"body over {limit} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            raise _Refused(400, "disconnected", "the client went away mid-body") from None
        return b"".join(chunks)

    def refuse(self, refusal: Refusal, status: int = 401) -> _Refused:
        return _Refused(status, refusal.reason, refusal.detail)

    async def store(self, items: Sequence[Incoming], source: str) -> tuple[int, int]:
        if self.committer is not None:
            new, duplicates = await self.committer.submit(items)
        else:
            keep = self.config.events.keep_unknown if self.config.events is not None else None
            new, duplicates = await run_in_threadpool(self.inbox.add, items, keep_unknown=keep)
        if new:
            self.metrics.received.labels(source).inc(new)
        if duplicates:
            self.metrics.duplicates.labels(source).inc(duplicates)
        return new, duplicates

    def refused(self, route: str, exc: _Refused) -> None:
        self.metrics.refused.labels(exc.reason).inc()
        self.log.info("%s: refused %d (%s): %s", route, exc.status, exc.reason, exc.detail)


def _json_error(exc: _Refused) -> Response:
    return JSONResponse({"error": exc.reason, "detail": exc.detail}, status_code=exc.status)


def _unavailable(service: Service, route: str, exc: InboxError) -> None:
    service.metrics.refused.labels("unavailable").inc()
    service.log.warning("%s: answered 503: %s", route, exc)


# ---------------------------------------------------------------------- routes


async def hubspot(request: Request) -> Response:
    service: Service = request.app.state.service
    settings = service.config.hubspot
    if settings is None:
        return JSONResponse({"error": "not_configured"}, status_code=404)
    try:
        body = await service.body(request)
        # The path as sent (escapes intact): HubSpot signs it so, bar its own decoding.
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        uri = service.config.public_url + raw_path.decode("latin-1")
        query = request.scope.get("query_string", b"")
        if query:
            uri += "?" + query.decode("latin-1")
        refusal = verify_hubspot(
            settings.client_secret.get_secret_value(),
            method=request.method,
            uri=uri,
            body=body,
            signature=request.headers.get("x-hubspot-signature-v3"),
            timestamp=request.headers.get("x-hubspot-request-timestamp"),
            now=service.now(),
        )
        if refusal is not None:
            raise service.refuse(refusal)
        try:
            items = parse_hubspot(body)
        except BadPayload as exc:
            raise _Refused(400, "malformed", str(exc)) from None
    except _Refused as exc:
        service.refused("hubspot", exc)
        return _json_error(exc)
    try:
        new, duplicates = await service.store(items, "hubspot")
    except InboxError as exc:
        _unavailable(service, "hubspot", exc)
        return JSONResponse({"error": "unavailable"}, status_code=503)
    return JSONResponse({"accepted": new, "duplicates": duplicates})


async def salesforce(request: Request) -> Response:
    service: Service = request.app.state.service
    settings = service.config.salesforce
    if settings is None:
        return JSONResponse({"error": "not_configured"}, status_code=404)
    token = str(request.path_params.get("path_token", ""))
    try:
        if not hmac.compare_digest(
            token.encode("utf-8"), settings.path_token.get_secret_value().encode("utf-8")
        ):
            raise _Refused(401, "bad_token", "unknown path token")
        body = await service.body(request)
        try:
            message = parse_outbound(body, received=service.now())
        except BadPayload as exc:
            raise _Refused(400, "malformed", str(exc)) from None
        # Compare 15-character ids: the message carries the 18-character form.
        if message.organization_id[:15] != settings.organization_id[:15]:
            raise _Refused(401, "unknown_org", "OrganizationId is not the configured org")
    except _Refused as exc:
        service.refused("salesforce", exc)
        return Response(soap_fault(exc.reason), status_code=exc.status, media_type=SOAP_TYPE)
    try:
        await service.store(message.items, "salesforce")
    except InboxError as exc:
        _unavailable(service, "salesforce", exc)
        return Response(soap_fault("unavailable"), status_code=503, media_type=SOAP_TYPE)
    return Response(soap_ack(), media_type=SOAP_TYPE)


async def events(request: Request) -> Response:
    service: Service = request.app.state.service
    settings = service.config.events
    if settings is None:
        return JSONResponse({"error": "not_configured"}, status_code=404)
    try:
        body = await service.body(request)
        refusal = verify_event(
            settings.secret.get_secret_value(),
            body=body,
            signature=request.headers.get("x-leadsync-signature"),
            timestamp=request.headers.get("x-leadsync-timestamp"),
            now=service.now(),
        )
        if refusal is not None:
            raise service.refuse(refusal)
        try:
            items = parse_events(body)
        except BadPayload as exc:
            raise _Refused(400, "malformed", str(exc)) from None
    except _Refused as exc:
        service.refused("events", exc)
        return _json_error(exc)
    try:
        new, duplicates = await service.store(items, "events")
    except InboxError as exc:
        _unavailable(service, "events", exc)
        return JSONResponse({"error": "unavailable"}, status_code=503)
    return JSONResponse({"accepted": new, "duplicates": duplicates}, status_code=202)


async def healthz(request: Request) -> Response:
    service: Service = request.app.state.service
    try:
        depth = await run_in_threadpool(service.inbox.depth)
    except InboxError:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok", "inbox_depth": depth})


async def metrics(request: Request) -> Response:
    service: Service = request.app.state.service
    text = await run_in_threadpool(service.metrics.render)
    return Response(text, media_type=CONTENT_TYPE)


def create_app(service: Service) -> Starlette:
    """The application; its lifespan starts and stops the drainer thread, if any."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = threading.Event()
        keep = service.config.events.keep_unknown if service.config.events is not None else None
        service.committer = GroupCommit(service.inbox, keep)
        writer = asyncio.create_task(service.committer.run())
        thread: threading.Thread | None = None
        if service.drainer is not None:
            drainer = service.drainer
            thread = threading.Thread(
                target=drainer.run, args=(stop,), name="leadsync-drainer", daemon=True
            )
            thread.start()
        try:
            yield
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            service.committer = None
            stop.set()
            if thread is not None:
                await run_in_threadpool(thread.join, 30)

    app = Starlette(
        routes=[
            Route("/webhooks/hubspot", hubspot, methods=["POST"]),
            Route("/webhooks/salesforce/{path_token}", salesforce, methods=["POST"]),
            Route("/v1/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.service = service
    return app
