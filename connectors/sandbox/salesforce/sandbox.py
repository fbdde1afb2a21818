"""``SalesforceSandbox``: the Salesforce REST API (every version from 31.0 to 64.0, one
store) as a sandbox flavour.

HTTP concerns live here (routing, sessions, the daily allocation, OAuth grants, error
shapes); records and SOQL live in :mod:`.store`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from connectors.sandbox.framework import BadRequestBody, Clock, Request, Response, SystemClock

from . import composite, soql, versions
from .bulk import Bulk, is_minted
from .ids import make_id, parse_id
from .schema import API_VERSION, BASE, custom_field
from .store import QUERY_PAGE, PreparedWrite, RecordError, Store, parse_datetime_value
from .table import fmt_datetime

if TYPE_CHECKING:
    from connectors.sandbox.world import World

MAX_COLLECTION = 200
DAY = 86_400.0
ORG_ID = make_id("Organization", 1)
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
_ERROR_CODES = {
    400: ("BAD_REQUEST", "Bad request"),
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    403: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    404: ("NOT_FOUND", "The requested resource does not exist"),
    500: ("UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you "
          "contact support: 1234567890-12345 (-1234567890)"),
    502: ("SERVER_UNAVAILABLE", "Bad gateway"),
    503: ("SERVER_UNAVAILABLE", "Service Unavailable"),
}  # fmt: skip
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
    "fields": [],
}


# (operation, sObject type or None, the record, upsert target (type, external id field))
Job = tuple[str, str | None, Any, tuple[str, str] | None]


class SalesforceSandbox:
    """A fake Salesforce org built from a seeded world; a ``framework.Flavour``.

    Sessions expire after ``session_ttl_seconds`` without use (Salesforce's inactivity
    timeout), measured on ``clock``. Every API call counts against ``daily_limit`` over
    a rolling 24 hours; the count is in ``Sforce-Limit-Info`` on every response.
    """

    name = "salesforce"

    def __init__(
        self,
        *,
        world: World | None = None,
        contacts: int = 2000,
        seed: int = 7,
        session_ids: Sequence[str] = ("sandbox-session",),
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",
        refresh_token: str = "sandbox-refresh",
        username: str = "sandbox@example.com",
        daily_limit: int = 100_000,
        session_ttl_seconds: float = 7200,
        clock: Clock | None = None,
        custom_fields: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        instance_url: str | None = None,
        days: int = 180,
    ) -> None:
        if daily_limit < 1:
            raise ValueError(f"daily_limit: expected a positive integer, got {daily_limit!r}")
        if session_ttl_seconds <= 0:
            raise ValueError(f"session_ttl_seconds: expected > 0, got {session_ttl_seconds!r}")
        self.clock: Clock = clock or SystemClock()
        if world is None:
            from connectors.sandbox.world import generate_world

            # A world of its own is drawn relative to the sandbox's clock.
            world = generate_world(contacts, seed=seed, now=self.clock.now(), days=days)
        self.world = world
        self.client_id = client_id
        self.username = username
        self.daily_limit = daily_limit
        self.session_ttl_seconds = float(session_ttl_seconds)
        self.instance_url = instance_url
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._configured_sessions = tuple(session_ids)
        self._lock = threading.Lock()
        self._subrequests: Counter[str] = Counter()  # served inside /composite, by route
        self._sessions: dict[str, float] = {}  # session id -> last use
        self._calls: deque[float] = deque()
        self._key_pem: bytes | None = None
        self._public_pem: bytes | None = None
        self.store = Store(world, clock=self.clock, username=username, custom_fields=custom_fields)
        self.bulk = Bulk(self)
        self._restore_sessions()

    # ---------------------------------------------------------------- public helpers
    @property
    def jwt_private_key_pem(self) -> bytes:
        """PEM of the RSA key whose public half verifies JWT bearer assertions.

        Generated on first use (RSA generation is slow, and most tests never sign)."""
        self._ensure_key()
        assert self._key_pem is not None
        return self._key_pem

    @property
    def jwt_public_key_pem(self) -> bytes:
        self._ensure_key()
        assert self._public_pem is not None
        return self._public_pem

    def _ensure_key(self) -> None:
        with self._lock:
            if self._key_pem is not None:
                return
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self._key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            self._public_pem = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )

    def add_custom_field(
        self,
        sobject: str,
        name: str,
        type: str = "string",
        external_id: bool = False,
        unique: bool = False,
    ) -> None:
        """What creating a field through the Metadata API would do (tests only)."""
        self.store.add_custom_field(
            sobject, custom_field(name, type, external_id=external_id, unique=unique)
        )

    def simulate_activity(self, count: int, *, seed: int = 0) -> list[str]:
        """Fresh engagement "now" for ``count`` people active, continuing the world's
        story: e-mail replies as Tasks, booked meetings as Events, e-mail clicks and
        forms (now and then a demo request) as CampaignMember responses; page views and
        opens stay in the marketing tool, whose sync touches the record. Each person's
        Lead or Contact gets a new ``SystemModstamp``. Returns their ids."""
        return self.store.simulate_activity(count, seed=seed)

    def api_usage(self) -> tuple[int, int]:
        """``(used, max)`` over the last 24 hours."""
        with self._lock:
            self._prune(self.clock.now())
            return len(self._calls), self.daily_limit

    def issue_session(self) -> str:
        """A fresh session id, as a successful OAuth grant would give."""
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
        with self._lock:
            self._sessions[token] = self.clock.now()
        return token

    # ---------------------------------------------------------------- Flavour
    def expire_credentials(self) -> None:
        with self._lock:
            self._sessions.clear()

    def reset(self) -> None:
        """Seeded records, no query cursors, a fresh allocation and the configured
        sessions back. Custom fields added at runtime stay: they are metadata."""
        self.store.reset()
        self.bulk.reset()
        with self._lock:
            self._calls.clear()
        self._restore_sessions()

    def _restore_sessions(self) -> None:
        now = self.clock.now()
        with self._lock:
            for token in self._configured_sessions:
                self._sessions[token] = now

    def route_key(self, request: Request) -> str:
        parts = [p for p in request.path.split("/") if p]
        out: list[str] = []
        for i, part in enumerate(parts):
            text = unquote(part)
            if (
                parse_id(text) is not None
                or (text.startswith("01g") and "-" in text)
                or is_minted(text)
            ):
                out.append("{id}")
            elif (
                len(parts) == 7
                and i == 6
                and parts[3] == "sobjects"
                and parts[5].lower() != "describe"
            ):
                out.append("{value}")  # sobjects/{type}/{externalIdField}/{value}
            else:
                out.append(part)
        return f"{request.method} /" + "/".join(out)

    def is_write(self, request: Request) -> bool:
        if request.method not in ("POST", "PATCH", "PUT", "DELETE"):
            return False
        if request.path.startswith("/services/oauth2"):
            return False
        if request.method == "POST" and request.path.rstrip("/").endswith("/composite"):
            return composite.writes(request)  # reads carried in a POST are still reads
        return True

    def error_response(self, request: Request, status: int) -> Response:
        code, message = _ERROR_CODES.get(status, ("UNKNOWN_EXCEPTION", "Unexpected error"))
        return self._json(status, [{"message": message, "errorCode": code}])

    def rate_limited_response(self, request: Request) -> Response:
        return self._json(
            403,
            [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
        )

    # ---------------------------------------------------------------- plumbing
    def _prune(self, now: float) -> None:
        while self._calls and self._calls[0] <= now - DAY:
            self._calls.popleft()

    def _limit_header(self) -> dict[str, str]:
        with self._lock:
            self._prune(self.clock.now())
            used = len(self._calls)
        return {"Sforce-Limit-Info": f"api-usage={used}/{self.daily_limit}"}

    def _json(
        self, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> Response:
        return Response.json(status, payload, {**self._limit_header(), **(headers or {})})

    def _empty(self, status: int = 204) -> Response:
        return Response.empty(status, self._limit_header())

    def _error(self, status: int, code: str, message: str) -> Response:
        return self._json(status, [{"message": message, "errorCode": code}])

    def _authenticate(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not token.strip():
            return False
        token = token.strip()
        now = self.clock.now()
        with self._lock:
            last = self._sessions.get(token)
            if last is None:
                return False
            if now - last > self.session_ttl_seconds:
                del self._sessions[token]
                return False
            self._sessions[token] = now
            return True

    def _spend_call(self) -> bool:
        now = self.clock.now()
        with self._lock:
            self._prune(now)
            if len(self._calls) >= self.daily_limit:
                return False
            self._calls.append(now)
            return True

    # ---------------------------------------------------------------- dispatch
    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path == "/services/oauth2/token":
            if request.method != "POST":
                return self._error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed. Allowed are POST")  # fmt: skip
            return self._token(request)
        if path == "/services/data":
            return self._json(200, versions.listing())
        if (bulk_v1 := versions.split_async_path(path)) is not None:
            if not versions.is_supported(bulk_v1[0]):
                return self._error(404, "NOT_FOUND", "The requested resource does not exist")
            return self.bulk.route_v1(request, *bulk_v1)
        split = versions.split_data_path(path)
        if split is None or not versions.is_supported(split[0]):
            return self._error(404, "NOT_FOUND", "The requested resource does not exist")
        if not self._authenticate(request):
            return self._error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if not self._spend_call():
            return self._error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        return self._data(request, *split)

    def subrequest_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._subrequests)

    def reset_subrequest_counts(self) -> None:
        with self._lock:
            self._subrequests.clear()

    def _subrequest(self, request: Request) -> Response:
        """One subrequest of ``/composite``: the same user, no call of its own."""
        with self._lock:
            self._subrequests[self.route_key(request)] += 1
        split = versions.split_data_path(request.path.rstrip("/") or "/")
        if split is None or not versions.is_supported(split[0]):
            return self._error(404, "NOT_FOUND", "The requested resource does not exist")
        if not self._authenticate(request):
            return self._error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return self._data(request, *split)

    def _data(self, request: Request, version: str, rest: str) -> Response:
        request = versions.rebase(request, rest)
        path = request.path.rstrip("/") or "/"
        parts = [unquote(p) for p in path[len(BASE) :].split("/") if p]
        try:
            return versions.restamp(self._route(request, parts, version), version)
        except RecordError as exc:
            return self._json(exc.status, [exc.as_rest()])
        except soql.SoqlError as exc:
            return self._error(400, exc.code, exc.message)
        except BadRequestBody as exc:
            return self._error(
                400, "JSON_PARSER_ERROR", f"Unexpected character in request body: {exc}"
            )

    def _route(self, request: Request, parts: list[str], version: str = API_VERSION) -> Response:
        method = request.method
        if not parts:
            return self._allow(method, ("GET",)) or self._json(200, {
                "sobjects": f"{BASE}/sobjects", "query": f"{BASE}/query",
                "queryAll": f"{BASE}/queryAll", "limits": f"{BASE}/limits",
                "composite": f"{BASE}/composite",
                "jobs": f"{BASE}/jobs"})  # fmt: skip
        head = parts[0]
        if head in ("query", "queryAll"):
            if refused := self._allow(method, ("GET",)):
                return refused
            if len(parts) == 2:
                return self._json(200, self.store.query_more(parts[1]))
            if len(parts) != 1:
                return self._not_found()
            source = request.param("q")
            if source is None:
                return self._error(400, "MALFORMED_QUERY", "A query string has to be specified")
            return self._json(
                200, self.store.query(source, all_rows=head == "queryAll", page_size=self._batch_size(request))
            )  # fmt: skip
        if head == "limits" and len(parts) == 1:
            return self._allow(method, ("GET",)) or self._limits()
        if head == "sobjects":
            return self._sobjects(request, parts[1:])
        if head == "composite" and len(parts) >= 2 and parts[1] == "sobjects":
            return self._collections(request, parts[2:])
        if head == "composite" and len(parts) == 1:
            answer = composite.composite(request, self._subrequest, self._allow)
            answer.headers.update(self._limit_header())  # the usage after the whole request
            return answer
        if head == "composite" and parts[1:] == ["batch"]:
            return self.bulk.composite_batch(request, version, self.handle)
        if head == "jobs":
            return self.bulk.route_v2(request, parts[1:], version)
        return self._not_found()

    def _not_found(self) -> Response:
        return self._error(404, "NOT_FOUND", "The requested resource does not exist")

    def _allow(self, method: str, allowed: Sequence[str]) -> Response | None:
        if method in allowed or (method == "HEAD" and "GET" in allowed):
            return None
        return self._error(
            405,
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}",
        )

    @staticmethod
    def _batch_size(request: Request) -> int:
        options = request.headers.get("sforce-query-options", "")
        for part in options.split(","):
            key, _, value = part.strip().partition("=")
            if key.lower() == "batchsize" and value.strip().isdigit():
                return max(200, min(QUERY_PAGE, int(value)))
        return QUERY_PAGE

    def _limits(self) -> Response:
        used, limit = self.api_usage()
        return self._json(200, {
            "DailyApiRequests": {"Max": limit, "Remaining": max(0, limit - used)},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "ConcurrentSyncLongRunningRequests": {"Max": 25, "Remaining": 25},
            "DataStorageMB": {"Max": 1024, "Remaining": 1000},
        })  # fmt: skip

    def _sobject_name(self, text: str) -> str | None:
        try:
            return self.store.object_spec(text).name
        except KeyError:
            return None

    # ---------------------------------------------------------------- sObject rows
    def _sobjects(self, request: Request, parts: list[str]) -> Response:
        method = request.method
        store = self.store
        if not parts:
            if refused := self._allow(method, ("GET",)):
                return refused
            with store.lock:
                summaries = [store.schema[name].summary() for name in store.schema]
            return self._json(
                200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": summaries}
            )
        sobject = self._sobject_name(parts[0])
        if sobject is None:
            return self._not_found()
        if len(parts) == 1:
            if refused := self._allow(method, ("GET", "POST")):
                return refused
            if method == "POST":
                body = self._body_object(request)
                record_id = store.create(sobject, body)
                return self._json(201, {"id": record_id, "success": True, "errors": []})
            with store.lock:
                summary = store.schema[sobject].summary()
            return self._json(200, {"objectDescribe": summary, "recentItems": []})
        if len(parts) == 2 and parts[1] == "describe":
            if refused := self._allow(method, ("GET",)):
                return refused
            with store.lock:
                return self._json(200, store.schema[sobject].describe())
        if len(parts) == 2 and parts[1] in ("updated", "deleted"):
            if refused := self._allow(method, ("GET",)):
                return refused
            return self._replication(request, sobject, deleted=parts[1] == "deleted")
        if len(parts) == 2 and parts[1] == "listviews":
            return self.bulk.listviews(request, sobject)
        if len(parts) == 2:
            return self._record(request, sobject, parts[1])
        if len(parts) == 3:
            return self.bulk.rest_upsert(request, sobject, parts[1], parts[2]) or self._external(
                request, sobject, parts[1], parts[2]
            )
        return self._not_found()

    def _replication(self, request: Request, sobject: str, *, deleted: bool) -> Response:
        """``sobjects/{T}/updated`` and ``deleted``: ids changed in ``[start, end)``,
        both rounded down to the minute as Salesforce does."""
        bounds: list[float] = []
        for name in ("start", "end"):
            text = request.param(name)
            if not text:
                return self._error(400, "MISSING_ARGUMENT", f"{name} parameter is required")
            try:
                bounds.append((parse_datetime_value(text) // 60) * 60)
            except ValueError:
                return self._error(
                    400, "INVALID_REPLICATION_DATE", f"{name}: invalid date time {text}"
                )
        start, end = bounds
        if end <= start:
            return self._error(
                400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate"
            )
        now = self.clock.now()
        covered = fmt_datetime(min(end, (now // 60) * 60))
        rows = self.store.replication(sobject, start, end, deleted=deleted)
        if deleted:
            return self._json(200, {
                "deletedRecords": [{"id": i, "deletedDate": fmt_datetime(t)} for i, t in rows],
                "earliestDateAvailable": fmt_datetime(self.store.seed.world.now - 15 * DAY),
                "latestDateCovered": covered,
            })  # fmt: skip
        return self._json(200, {"ids": [i for i, _ in rows], "latestDateCovered": covered})

    def _body_object(self, request: Request) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict):
            raise RecordError(
                "JSON_PARSER_ERROR",
                "Cannot deserialize instance of SObject from a non-object value",
            )
        return body

    def _fields_param(self, request: Request) -> list[str] | None:
        fields = request.params("fields")
        return [f.strip() for f in fields if f.strip()] or None

    def _record(self, request: Request, sobject: str, record_id: str) -> Response:
        method = request.method
        if refused := self._allow(method, ("GET", "PATCH", "DELETE")):
            return refused
        store = self.store
        if parse_id(record_id) is None:
            # Not an id: Salesforce reads the segment as an external id field name.
            raise RecordError(
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {record_id}",
                status=404,
            )
        if method == "GET":
            return self._json(200, store.get(sobject, record_id, self._fields_param(request)))
        if method == "PATCH":
            store.update(sobject, record_id, self._body_object(request))
            return self._empty(204)
        store.delete(sobject, record_id)
        return self._empty(204)

    def _external(self, request: Request, sobject: str, field_name: str, value: str) -> Response:
        method = request.method
        if refused := self._allow(method, ("GET", "PATCH", "DELETE")):
            return refused
        store = self.store
        with store.lock:
            matches = store.find_by(sobject, field_name, value)
            if len(matches) > 1:
                return self._json(300, store.matching_urls(sobject, field_name, value))
            if method == "PATCH":
                body = self._body_object(request)
                # REST guide, "sObject Rows by External ID": "Do not specify Id or an
                # external ID field in the request body or an error is generated."
                spec = store.schema[sobject].get(field_name)
                named = {"id", spec.name.lower() if spec else field_name.lower()}
                if given := [k for k in body if k.lower() in named]:
                    raise RecordError(
                        "INVALID_FIELD",
                        f"{given[0]}: do not specify Id or the external ID field in the body "
                        "of an upsert",
                        given[:1],
                    )
                record_id, created = store.upsert(sobject, field_name, value, body)
                return self._json(
                    201 if created else 200,
                    {"id": record_id, "success": True, "errors": [], "created": created},
                )
            if not matches:
                return self._not_found()
            record_id = store.tables[sobject].id_of(matches[0])
            if method == "GET":
                return self._json(200, store.get(sobject, record_id, self._fields_param(request)))
            store.delete(sobject, record_id)
            return self._empty(204)

    # ---------------------------------------------------------------- collections
    def _collections(self, request: Request, parts: list[str]) -> Response:
        method = request.method
        store = self.store
        if not parts:
            if refused := self._allow(method, ("POST", "PATCH", "DELETE")):
                return refused
            if method == "DELETE":
                ids = [i for i in request.params("ids") if i]
                if len(ids) > MAX_COLLECTION:
                    return self._too_many()
                all_or_none = (request.param("allOrNone") or "false").lower() == "true"
                return self._run_collection(
                    [("delete", None, {"Id": i}, None) for i in ids], all_or_none, upsert=False
                )
            body = self._body_object(request)
            records = body.get("records")
            if not isinstance(records, list):
                return self._error(
                    400, "JSON_PARSER_ERROR", "records: expected an array of sObjects"
                )
            if len(records) > MAX_COLLECTION:
                return self._too_many()
            op = "create" if method == "POST" else "update"
            jobs: list[Job] = [(op, self._record_type(r), r, None) for r in records]
            return self._run_collection(jobs, bool(body.get("allOrNone", False)), upsert=False)
        sobject = self._sobject_name(parts[0])
        if sobject is None:
            return self._not_found()
        if len(parts) == 1:
            if refused := self._allow(method, ("GET",)):
                return refused
            ids = [i for i in request.params("ids") if i]
            if len(ids) > 2000:
                return self._too_many()
            fields = self._fields_param(request)
            if not fields:
                return self._error(400, "MISSING_ARGUMENT", "fields parameter is required")
            out: list[Any] = []
            for record_id in ids:
                try:
                    out.append(store.get(sobject, record_id, fields))
                except RecordError as exc:
                    if exc.code == "INVALID_FIELD":
                        raise
                    out.append(None)
            return self._json(200, out)
        if len(parts) == 2:
            if refused := self._allow(method, ("PATCH",)):
                return refused
            body = self._body_object(request)
            records = body.get("records")
            if not isinstance(records, list):
                return self._error(
                    400, "JSON_PARSER_ERROR", "records: expected an array of sObjects"
                )
            if len(records) > MAX_COLLECTION:
                return self._too_many()
            spec = store.schema[sobject].get(parts[1])
            # "Only external ids are supported. Don't use record ids." (sObject Collections upsert)
            if spec is None or not spec.external_id:
                raise RecordError(
                    "NOT_FOUND",
                    f"Provided external ID field does not exist or is not accessible: {parts[1]}",
                    status=404,
                )
            target = (sobject, spec.name)
            upserts: list[Job] = [("upsert", self._record_type(r), r, target) for r in records]
            return self._run_collection(upserts, bool(body.get("allOrNone", False)), upsert=True)
        return self._not_found()

    def _too_many(self) -> Response:
        return self._error(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COLLECTION} records into this call",
        )

    def _record_type(self, record: Any) -> str | None:
        if not isinstance(record, dict):
            return None
        attributes = record.get("attributes")
        if not isinstance(attributes, dict) or not isinstance(attributes.get("type"), str):
            return None
        return self._sobject_name(attributes["type"]) or f"?{attributes['type']}"

    def _prepare(
        self, op: str, sobject: str | None, record: Any, target: tuple[str, str] | None
    ) -> PreparedWrite:
        store = self.store
        if op == "delete":
            record_id = str(record["Id"])
            parsed = parse_id(record_id)
            if parsed is None:
                raise RecordError("MALFORMED_ID", f"malformed id {record_id}")
            return store.prepare_delete(parsed[0], record_id)
        if sobject is None:
            raise RecordError("INVALID_TYPE", "Must send a concrete entity type.")
        if sobject.startswith("?"):
            raise RecordError("INVALID_TYPE", f"sObject type '{sobject[1:]}' is not supported.")
        body = {k: v for k, v in record.items() if k != "attributes"}
        if op == "create":
            return store.prepare_create(sobject, body)
        if op == "update":
            given = next((v for k, v in body.items() if k.lower() == "id"), None)
            if not given:
                raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            parsed = parse_id(str(given))
            table = store.tables[sobject]
            if (
                parsed is None
                or parsed[0] != sobject
                or not table.has(parsed[1], include_deleted=True)
            ):
                raise RecordError(
                    "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["Id"]
                )
            if table.is_deleted(parsed[1]):
                raise RecordError("ENTITY_IS_DELETED", "entity is deleted", ["Id"])
            return store.prepare_update(sobject, parsed[1], body)
        assert target is not None
        target_type, field_name = target
        if sobject != target_type:
            raise RecordError("INVALID_TYPE", f"Record type {sobject} does not match {target_type}")
        value = next((v for k, v in body.items() if k.lower() == field_name.lower()), None)
        if value is None:
            raise RecordError("MISSING_ARGUMENT", f"{field_name} not specified", [field_name])
        try:
            return store.prepare_upsert(sobject, field_name, str(value), body)
        except RecordError as exc:
            if exc.status == 300:  # one record's problem in a collection, not the request's
                raise RecordError("DUPLICATE_EXTERNAL_ID", exc.message, [field_name]) from None
            raise

    def _run_collection(
        self,
        jobs: Sequence[Job],
        all_or_none: bool,
        *,
        upsert: bool,
    ) -> Response:
        store = self.store
        results: list[dict[str, Any]] = []
        undo: list[tuple[str, int, dict[str, Any] | None]] = []
        failed = False
        with store.lock:
            for op, sobject, record, target in jobs:
                try:
                    write = self._prepare(op, sobject, record, target)
                except RecordError as exc:
                    if exc.status == 404 and "external ID" in exc.message:
                        self._rollback(undo)
                        raise
                    failed = True
                    results.append({"success": False, "errors": [exc.as_collection()]})
                    continue
                table = store.tables[write.sobject]
                previous = None if write.seq is None else dict(table.row(write.seq))
                record_id = store.commit(write)
                assert write.seq is not None
                undo.append((write.sobject, write.seq, previous))
                undo.extend(write.touched)  # undone first: rollback walks undo backwards
                result: dict[str, Any] = {"id": record_id, "success": True, "errors": []}
                if upsert:
                    result["created"] = write.created
                results.append(result)
            if all_or_none and failed:
                self._rollback(undo)
                results = [
                    r if not r["success"] else {"success": False, "errors": [dict(ROLLED_BACK)]}
                    for r in results
                ]
        return self._json(200, results)

    def _rollback(self, undo: list[tuple[str, int, dict[str, Any] | None]]) -> None:
        for sobject, seq, previous in reversed(undo):
            table = self.store.tables[sobject]
            if previous is None:
                table.overlay.pop(seq, None)
                table.n -= 1  # creations are undone newest first, so seq is the last row
            else:
                table.put(seq, previous)

    # ---------------------------------------------------------------- OAuth
    def _token(self, request: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        for key, values in request.query.items():
            form.setdefault(key, values[-1])
        grant = form.get("grant_type", "")

        def refuse(error: str, description: str, status: int = 400) -> Response:
            return self._json(status, {"error": error, "error_description": description})

        if grant == JWT_GRANT:
            problem = self._check_assertion(form.get("assertion", ""), request)
            if problem is not None:
                return refuse(*problem)
        elif grant == "refresh_token":
            if form.get("client_id") != self.client_id:
                return refuse("invalid_client_id", "client identifier invalid")
            secret = form.get("client_secret")
            if secret is not None and not hmac.compare_digest(secret, self._client_secret):
                return refuse("invalid_client", "invalid client credentials")
            if not hmac.compare_digest(form.get("refresh_token", ""), self._refresh_token):
                return refuse("invalid_grant", "expired access/refresh token")
        elif grant == "client_credentials":
            client_id, secret = form.get("client_id"), form.get("client_secret")
            auth = request.headers.get("authorization", "")
            if auth.lower().startswith("basic "):
                try:
                    client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    return refuse("invalid_client", "invalid client credentials")
            if client_id != self.client_id:
                return refuse("invalid_client_id", "client identifier invalid")
            if not hmac.compare_digest(secret or "", self._client_secret):
                return refuse("invalid_client", "invalid client credentials")
        else:
            return refuse("unsupported_grant_type", "grant type not supported")
        token = self.issue_session()
        issued_at = str(int(self.clock.now() * 1000))
        identity = f"https://login.salesforce.com/id/{ORG_ID}/{make_id('User', 0)}"
        signature = base64.b64encode(
            hmac.new(
                self._client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
        ).decode()
        return self._json(200, {
            "access_token": token, "signature": signature, "scope": "api",
            "instance_url": self._instance_url(request), "id": identity,
            "token_type": "Bearer", "issued_at": issued_at,
        })  # fmt: skip

    def _instance_url(self, request: Request) -> str:
        host = request.headers.get("host")
        if host:
            return f"https://{host}"
        return self.instance_url or "https://127.0.0.1"

    def _check_assertion(self, assertion: str, request: Request) -> tuple[str, str] | None:
        import jwt

        audiences = [*JWT_AUDIENCES, self._instance_url(request)]
        if self.instance_url:
            audiences.append(self.instance_url)
        try:
            claims = jwt.decode(
                assertion,
                self.jwt_public_key_pem,
                algorithms=["RS256"],
                audience=audiences,
                options={
                    "require": ["iss", "sub", "aud", "exp"],
                    "verify_exp": False,  # checked below on the sandbox clock
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidAudienceError:
            return "invalid_grant", "audience is invalid"
        except jwt.MissingRequiredClaimError as exc:
            return "invalid_grant", f"invalid assertion: missing claim {exc.claim}"
        except jwt.PyJWTError:
            return "invalid_grant", "invalid assertion"
        if claims.get("iss") != self.client_id:
            return "invalid_client_id", "client identifier invalid"
        if claims.get("sub") != self.username:
            return "invalid_grant", "user hasn't approved this consumer"
        try:
            expires = float(claims["exp"])
        except (TypeError, ValueError):
            return "invalid_grant", "invalid assertion"
        if expires <= self.clock.now():
            return "invalid_grant", "expired authorization code"
        return None


__all__ = ["SalesforceSandbox"]
