"""Bulk API 2.0 (query and ingest jobs), Bulk API 1.0 query jobs, ``composite/batch``,
list views, and upserts by a standard ``idLookup`` field, for :class:`SalesforceSandbox`.

Shapes follow the Bulk API 2.0 and Bulk API developer guides and the REST API guide:

- Bulk 2.0 query: ``POST jobs/query`` answers 200 with the job (``UploadComplete``);
  ``GET jobs/query/{id}`` reports ``JobComplete`` once processed (the sandbox processes
  at once); ``GET jobs/query/{id}/results`` answers CSV pages of ``maxRecords`` with
  ``Sforce-Locator`` (``null`` on the last page) and ``Sforce-NumberOfRecords``.
- Bulk 2.0 ingest: ``POST jobs/ingest`` (``Open``), ``PUT .../batches`` with CSV (201),
  ``PATCH`` ``{"state": "UploadComplete"}`` processes the rows; ``successfulResults``
  (``sf__Id``, ``sf__Created``), ``failedResults`` (``sf__Id``, ``sf__Error``) and
  ``unprocessedrecords`` answer CSV.
- Bulk 1.0 (``/services/async/{version}/job``): JSON jobs, XML ``batchInfo`` for CSV
  jobs, ``X-SFDC-Session`` authentication; errors as ``{"exceptionCode",
  "exceptionMessage"}``.
- ``composite/batch``: up to 25 independent subrequests, ``{"hasErrors", "results":
  [{"statusCode", "result"}]}``.

A query runs against the store when its job is created, so a job's rows are a
snapshot, as a real job's are once processed.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from connectors.sandbox.framework import BadRequestBody, Request, Response

from . import soql
from .ids import make_id
from .schema import BASE
from .store import RecordError
from .table import fmt_datetime

if TYPE_CHECKING:
    from .sandbox import SalesforceSandbox

MAX_COMPOSITE_BATCH = 25
DEFAULT_MAX_RECORDS = 50_000  # simple-salesforce's page; Salesforce caps nothing below 1 GB
_SELECT = re.compile(r"^\s*select\s+(.*?)\s+from\s", re.IGNORECASE | re.DOTALL)
_DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "SEMICOLON": ";",
    "PIPE": "|",
    "CARET": "^",
    "BACKQUOTE": "`",
}
_INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
_ASYNC_NS = "http://www.force.com/2009/06/asyncapi/dataload"


def mint(prefix: str, seq: int) -> str:
    """An 18-character id with key prefix ``prefix`` (``750`` jobs, ``751`` batches,
    ``00B`` list views). The prefixes have the same upper-case pattern as ``00D``, so
    the checksum of an Organization-style id carries over."""
    return prefix + make_id("Organization", seq)[3:]


def is_minted(text: str) -> bool:
    """A job, batch, result or list-view id made by :func:`mint` (for stats keys)."""
    return len(text) >= 18 and text[:3] in ("750", "751", "00B") and text[3:6] == "8c0"


@dataclass
class Job:
    id: str
    kind: str  # "query", "ingest" or "v1"
    operation: str
    sobject: str | None
    created: float
    version: str
    state: str
    query: str | None = None
    external_id: str | None = None
    delimiter: str = ","
    line_ending: str = "LF"
    rows: list[dict[str, str]] = field(default_factory=list)  # query results, flattened
    columns: list[str] = field(default_factory=list)
    upload: list[str] = field(default_factory=list)  # ingest CSV as uploaded
    successes: list[dict[str, str]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)  # Bulk 1.0 batch ids
    batch_rows: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    batch_error: dict[str, str] = field(default_factory=dict)


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A REST record as Bulk's CSV columns: ``Owner.Name``, no ``attributes``, null
    as the empty string, booleans as ``true``/``false``."""
    out: dict[str, str] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        elif value is None:
            out[name] = ""
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = str(value)
    return out


def _selected_columns(query: str) -> list[str]:
    match = _SELECT.match(query)
    if not match:
        return []
    return [c.strip() for c in match.group(1).split(",") if c.strip()]


def _csv(columns: list[str], rows: list[dict[str, str]], delimiter: str, line_ending: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(
        buffer,
        delimiter=delimiter,
        lineterminator="\r\n" if line_ending == "CRLF" else "\n",
        quoting=csv.QUOTE_ALL,
    )
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return buffer.getvalue().encode()


class Bulk:
    """The asynchronous and batch surface of one sandbox org. Thread-safe."""

    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.sandbox = sandbox
        self._jobs: dict[str, Job] = {}
        self._seq = 0
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._jobs.clear()

    # ------------------------------------------------------------------ helpers
    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._seq += 1
            return mint(prefix, self._seq)

    def _all_rows(self, query: str, *, all_rows: bool) -> list[dict[str, Any]]:
        page = self.sandbox.store.query(query, all_rows=all_rows, page_size=10**9)
        return list(page["records"])

    def _error(self, status: int, code: str, message: str) -> Response:
        return self.sandbox._error(status, code, message)

    def _job(self, job_id: str, kind: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.kind == kind else None

    # ------------------------------------------------------------ Bulk API 2.0
    def route_v2(self, request: Request, parts: list[str], version: str) -> Response:
        """``parts`` after ``jobs``: ``[query|ingest, id?, results|batches|...]``."""
        if not parts or parts[0] not in ("query", "ingest"):
            return self.sandbox._not_found()
        kind, rest = parts[0], parts[1:]
        method = request.method
        if not rest:
            if method == "POST":
                return self._create_v2(request, kind, version)
            if method == "GET":
                return self._list_v2(kind)
            return self.sandbox._allow(method, ("GET", "POST")) or self.sandbox._not_found()
        job = self._job(rest[0], kind)
        if job is None:
            return self._error(404, "NOT_FOUND", "The requested resource does not exist")
        if len(rest) == 1:
            if method == "GET":
                return self.sandbox._json(200, self._info_v2(job))
            if method == "PATCH":
                return self._set_state_v2(request, job)
            if method == "DELETE":
                with self._lock:
                    self._jobs.pop(job.id, None)
                return self.sandbox._empty(204)
            return (
                self.sandbox._allow(method, ("GET", "PATCH", "DELETE")) or self.sandbox._not_found()
            )
        tail = rest[1]
        if kind == "query" and tail == "results" and method == "GET":
            return self._results_v2(request, job)
        if kind == "ingest" and tail == "batches" and method == "PUT":
            if job.state != "Open":
                return self._error(
                    400, "INVALIDJOBSTATE", f"Job {job.id} is not open for data upload"
                )
            job.upload.append(request.body.decode("utf-8-sig"))
            return self.sandbox._empty(201)
        if kind == "ingest" and method == "GET":
            if tail == "successfulResults":
                cols = ["sf__Id", "sf__Created", *self._upload_columns(job)]
                return self._csv_response(cols, job.successes, job)
            if tail == "failedResults":
                cols = ["sf__Id", "sf__Error", *self._upload_columns(job)]
                return self._csv_response(cols, job.failures, job)
            if tail == "unprocessedrecords":
                rows = list(self._upload_rows(job)) if job.state != "JobComplete" else []
                return self._csv_response(self._upload_columns(job), rows, job)
        return self.sandbox._not_found()

    def _create_v2(self, request: Request, kind: str, version: str) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise BadRequestBody("expected a JSON object")
        operation = str(body.get("operation", ""))
        delimiter_name = str(body.get("columnDelimiter", "COMMA"))
        line_ending = str(body.get("lineEnding", "LF"))
        if delimiter_name not in _DELIMITERS or line_ending not in ("LF", "CRLF"):
            return self._error(400, "INVALIDJOB", "InvalidJob : columnDelimiter or lineEnding is invalid")  # fmt: skip
        now = self.sandbox.clock.now()
        if kind == "query":
            if operation not in ("query", "queryAll"):
                return self._error(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")  # fmt: skip
            query = body.get("query")
            if not isinstance(query, str) or not query.strip():
                return self._error(400, "INVALIDJOB", "InvalidJob : query is required")
            records = self._all_rows(query, all_rows=operation == "queryAll")
            rows = [_flatten(r) for r in records]
            columns = list(rows[0]) if rows else _selected_columns(query)
            job = Job(
                self._next_id("750"), "query", operation, soql.parse(query).sobject, now,
                version, "UploadComplete", query=query, delimiter=_DELIMITERS[delimiter_name],
                line_ending=line_ending, rows=rows, columns=columns,
            )  # fmt: skip
            with self._lock:
                self._jobs[job.id] = job
            created = self._info_v2(job)
            job.state = "JobComplete"  # processed at once: the first status check sees it done
            return self.sandbox._json(200, created)
        else:
            if operation not in _INGEST_OPERATIONS:
                return self._error(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")  # fmt: skip
            sobject = self.sandbox._sobject_name(str(body.get("object", "")))
            if sobject is None:
                return self._error(400, "INVALIDJOB", f"InvalidJob : Unable to find object: {body.get('object')}")  # fmt: skip
            external = body.get("externalIdFieldName")
            if operation == "upsert":
                if not isinstance(external, str) or not external:
                    return self._error(400, "INVALIDJOB", "InvalidJob : External ID was blank for upsert operation")  # fmt: skip
                if not self.sandbox_lookup_field(sobject, external):
                    return self._error(400, "INVALIDJOB", f"InvalidJob : Field name provided, {external} does not match an External ID, Salesforce Id, or indexed field for {sobject}")  # fmt: skip
            job = Job(
                self._next_id("750"), "ingest", operation, sobject, now, version, "Open",
                external_id=external if operation == "upsert" else None,
                delimiter=_DELIMITERS[delimiter_name], line_ending=line_ending,
            )  # fmt: skip
        with self._lock:
            self._jobs[job.id] = job
        return self.sandbox._json(200, self._info_v2(job))

    def sandbox_lookup_field(self, sobject: str, name: str) -> bool:
        spec = self.sandbox.store.schema[sobject].get(name)
        return spec is not None and bool(spec.describe().get("idLookup"))

    def _info_v2(self, job: Job) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": job.id,
            "operation": job.operation,
            "object": job.sobject,
            "createdById": make_id("User", 0),
            "createdDate": fmt_datetime(job.created).replace("Z", "+0000"),
            "systemModstamp": fmt_datetime(job.created).replace("Z", "+0000"),
            "state": job.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(job.version),
            "lineEnding": job.line_ending,
            "columnDelimiter": next(k for k, v in _DELIMITERS.items() if v == job.delimiter),
        }
        if job.kind == "ingest":
            info["jobType"] = "V2Ingest"
            if job.external_id:
                info["externalIdFieldName"] = job.external_id
            info["contentUrl"] = f"services/data/v{job.version}/jobs/ingest/{job.id}/batches"
            info["numberRecordsProcessed"] = len(job.successes) + len(job.failures)
            info["numberRecordsFailed"] = len(job.failures)
        else:
            info["jobType"] = "V2Query"
            info["numberRecordsProcessed"] = len(job.rows) if job.state == "JobComplete" else 0
        info["retries"] = 0
        info["totalProcessingTime"] = 0
        return info

    def _list_v2(self, kind: str) -> Response:
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.kind == kind]
        return self.sandbox._json(
            200,
            {"done": True, "records": [self._info_v2(j) for j in jobs], "nextRecordsUrl": None},
        )

    def _set_state_v2(self, request: Request, job: Job) -> Response:
        body = request.json()
        state = body.get("state") if isinstance(body, dict) else None
        if state == "Aborted":
            job.state = "Aborted"
        elif state == "UploadComplete" and job.kind == "ingest" and job.state == "Open":
            self._process_ingest(job)
        else:
            return self._error(400, "INVALIDJOBSTATE", f"InvalidJobState : cannot set state {state!r} on a {job.state} job")  # fmt: skip
        return self.sandbox._json(200, self._info_v2(job))

    def _results_v2(self, request: Request, job: Job) -> Response:
        if job.state != "JobComplete":
            return self._error(400, "INVALIDJOBSTATE", f"InvalidJobState : Job {job.id} is not complete")  # fmt: skip
        try:
            limit = int(request.param("maxRecords") or DEFAULT_MAX_RECORDS)
            start = int(request.param("locator") or 0)
        except ValueError:
            return self._error(400, "INVALIDLOCATOR", "Invalid locator or maxRecords")
        limit = max(1, limit)
        chunk = job.rows[start : start + limit]
        end = start + len(chunk)
        response = self._csv_response(job.columns, chunk, job)
        response.headers["Sforce-Locator"] = str(end) if end < len(job.rows) else "null"
        response.headers["Sforce-NumberOfRecords"] = str(len(chunk))
        return response

    def _csv_response(self, columns: list[str], rows: list[dict[str, str]], job: Job) -> Response:
        body = _csv(columns, rows, job.delimiter, job.line_ending)
        return Response(
            200,
            body,
            {**self.sandbox._limit_header(), "Content-Type": "text/csv"},
        )

    # ------------------------------------------------------------------ ingest
    def _upload_columns(self, job: Job) -> list[str]:
        for chunk in job.upload:
            reader = csv.reader(io.StringIO(chunk), delimiter=job.delimiter)
            for header in reader:
                return header
        return []

    def _upload_rows(self, job: Job) -> Iterator[dict[str, str]]:
        for chunk in job.upload:
            yield from csv.DictReader(io.StringIO(chunk), delimiter=job.delimiter)

    def _process_ingest(self, job: Job) -> None:
        assert job.sobject is not None
        job.state = "UploadComplete"
        for row in self._upload_rows(job):
            # An empty cell leaves the field as it is; #N/A clears it (Bulk API 2.0 guide,
            # "Prepare CSV Files").
            body: dict[str, Any] = {
                k: (None if v == "#N/A" else v) for k, v in row.items() if k and v != ""
            }
            try:
                record_id, created = self._ingest_one(job, job.sobject, body)
            except RecordError as exc:
                job.failures.append(
                    {
                        "sf__Id": "",
                        "sf__Error": f"{exc.code}:{exc.message}:{','.join(exc.fields)}",
                        **row,
                    }
                )
                continue
            job.successes.append(
                {"sf__Id": record_id, "sf__Created": "true" if created else "false", **row}
            )
        job.state = "JobComplete"

    def _ingest_one(self, job: Job, sobject: str, body: dict[str, Any]) -> tuple[str, bool]:
        store = self.sandbox.store
        given_id = next((v for k, v in body.items() if k.lower() == "id"), None)
        fields = {k: v for k, v in body.items() if k.lower() != "id"}
        if job.operation == "insert":
            return store.create(sobject, fields), True
        if job.operation in ("delete", "hardDelete"):
            if not given_id:
                raise RecordError("MISSING_ARGUMENT", "Id not specified", ["Id"])
            store.delete(sobject, str(given_id))
            return str(given_id), False
        if job.operation == "update":
            if not given_id:
                raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            store.update(sobject, str(given_id), fields)
            return str(given_id), False
        assert job.external_id is not None
        key = job.external_id
        value = next((v for k, v in body.items() if k.lower() == key.lower()), None)
        if key.lower() == "id":
            if not value:  # Bulk upsert on Id with a blank Id inserts
                return store.create(sobject, fields), True
            store.update(sobject, str(value), fields)
            return str(value), False
        if value is None:
            raise RecordError("MISSING_ARGUMENT", f"{key} not specified", [key])
        return self.upsert_by_lookup(sobject, key, str(value), body)

    # ---------------------------------------------------- upsert by idLookup field
    def upsert_by_lookup(
        self, sobject: str, field_name: str, value: str, body: dict[str, Any]
    ) -> tuple[str, bool]:
        """Upsert on an external id or a standard ``idLookup`` field (SOAP ``upsert()``
        reference: "On standard objects, this call can use the name of any field with
        the idLookup instead of the external ID"). Several matches are refused as 300."""
        store = self.sandbox.store
        spec = store.schema[sobject].get(field_name)
        assert spec is not None
        if spec.external_id:
            return store.upsert(sobject, spec.name, value, body)
        with store.lock:
            literal = value.replace("\\", "\\\\").replace("'", "\\'")
            matches = [
                r["Id"]
                for r in self._all_rows(
                    f"SELECT Id FROM {sobject} WHERE {spec.name} = '{literal}'", all_rows=False
                )
            ]
            if len(matches) > 1:
                raise RecordError(
                    "MULTIPLE_CHOICES",
                    f"More than 1 record found for external id field: [{', '.join(matches)}]",
                    status=300,
                )
            fields = {k: v for k, v in body.items() if k.lower() not in ("id", spec.name.lower())}
            if matches:
                store.update(sobject, matches[0], fields)
                return matches[0], False
            return store.create(sobject, {**fields, spec.name: value}), True

    def rest_upsert(
        self, request: Request, sobject: str, field_name: str, value: str
    ) -> Response | None:
        """``PATCH sobjects/{T}/{idLookupField}/{value}`` for a standard idLookup field
        that is not an external id (``Email``); None leaves other cases to the caller."""
        spec = self.sandbox.store.schema[sobject].get(field_name)
        if (
            request.method != "PATCH"
            or spec is None
            or spec.external_id
            or spec.name == "Id"
            or not spec.describe().get("idLookup")
        ):
            return None
        body = self.sandbox._body_object(request)
        if given := [k for k in body if k.lower() in ("id", spec.name.lower())]:
            raise RecordError(
                "INVALID_FIELD",
                f"{given[0]}: do not specify Id or the external ID field in the body of an upsert",
                given[:1],
            )
        try:
            record_id, created = self.upsert_by_lookup(sobject, spec.name, value, body)
        except RecordError as exc:
            if exc.status == 300:
                return self.sandbox._json(300, [
                    f"{BASE}/sobjects/{sobject}/{i}" for i in re.findall(r"[0-9A-Za-z]{18}", exc.message)
                ])  # fmt: skip
            raise
        return self.sandbox._json(
            201 if created else 200,
            {"id": record_id, "success": True, "errors": [], "created": created},
        )

    # --------------------------------------------------------------- list views
    def listviews(self, request: Request, sobject: str) -> Response:
        """``GET sobjects/{T}/listviews``: the standard views a new org has."""
        if refused := self.sandbox._allow(request.method, ("GET",)):
            return refused
        names = {
            "Lead": [("AllOpenLeads", "All Open Leads"), ("MyUnreadLeads", "My Unread Leads"),
                     ("TodaysLeads", "Today's Leads"), ("RecentlyViewedLeads", "Recently Viewed Leads")],
        }.get(sobject, [(f"All{sobject}s", f"All {sobject}s"),
                        (f"RecentlyViewed{sobject}s", f"Recently Viewed {sobject}s")])  # fmt: skip
        base = sum(ord(c) for c in sobject) * 10
        views = []
        for i, (developer_name, label) in enumerate(names):
            view_id = mint("00B", base + i)
            url = f"{BASE}/sobjects/{sobject}/listviews/{view_id}"
            views.append({
                "describeUrl": f"{url}/describe", "developerName": developer_name,
                "id": view_id, "label": label, "resultsUrl": f"{url}/results",
                "soqlCompatible": True, "url": url,
            })  # fmt: skip
        return self.sandbox._json(200, {
            "done": True, "listviews": views, "nextRecordsUrl": None,
            "size": len(views), "sobjectType": sobject,
        })  # fmt: skip

    # ---------------------------------------------------------- composite/batch
    def composite_batch(
        self, request: Request, version: str, dispatch: Callable[[Request], Response]
    ) -> Response:
        if refused := self.sandbox._allow(request.method, ("POST",)):
            return refused
        body = self.sandbox._body_object(request)
        subrequests = body.get("batchRequests")
        if not isinstance(subrequests, list):
            return self._error(400, "JSON_PARSER_ERROR", "batchRequests: expected an array")
        if len(subrequests) > MAX_COMPOSITE_BATCH:
            return self._error(400, "INVALID_BATCH_REQUEST", f"A batch cannot contain more than {MAX_COMPOSITE_BATCH} requests")  # fmt: skip
        halt = bool(body.get("haltOnError", False))
        results: list[dict[str, Any]] = []
        has_errors = False
        halted = False
        for sub in subrequests:
            if halted:
                results.append({"statusCode": 412, "result": [{
                    "errorCode": "BATCH_PROCESSING_HALTED",
                    "message": "Batch processing halted per request"}]})  # fmt: skip
                continue
            if not isinstance(sub, dict) or not isinstance(sub.get("url"), str):
                return self._error(400, "JSON_PARSER_ERROR", "batchRequests: each needs method and url")  # fmt: skip
            url = sub["url"].lstrip("/")
            if not url.startswith("services/data/"):
                url = "services/data/" + url
            payload = sub.get("richInput")
            inner = Request.from_url(
                str(sub.get("method", "GET")),
                "/" + url,
                {"authorization": request.headers.get("authorization", "")},
                json.dumps(payload).encode() if payload is not None else b"",
            )
            answer = dispatch(inner)
            try:
                result = json.loads(answer.body) if answer.body else None
            except ValueError:
                result = answer.body.decode("utf-8", "replace")
            results.append({"statusCode": answer.status, "result": result})
            if answer.status >= 400:
                has_errors = True
                halted = halt
        return self.sandbox._json(200, {"hasErrors": has_errors, "results": results})

    # ------------------------------------------------------------ Bulk API 1.0
    def route_v1(self, request: Request, version: str, rest: str) -> Response:
        """``/services/async/{version}/job...``: authenticated by ``X-SFDC-Session``."""
        session = request.headers.get("x-sfdc-session", "")
        authed = replace(request, headers={**request.headers, "authorization": f"Bearer {session}"})
        if not session or not self.sandbox._authenticate(authed):
            return self._v1_error(400, "InvalidSessionId", "Invalid session id")
        if not self.sandbox._spend_call():
            return self._v1_error(400, "ExceededQuota", "TotalRequests Limit exceeded.")
        parts = [p for p in rest.split("/") if p]
        method = request.method
        if parts == ["job"] and method == "POST":
            return self._create_v1(request, version)
        if len(parts) >= 2 and parts[0] == "job":
            job = self._job(parts[1], "v1")
            if job is None:
                return self._v1_error(400, "InvalidJob", f"Unable to find job id: {parts[1]}")
            tail = parts[2:]
            if not tail and method == "GET":
                return self._v1_json(self._info_v1(job))
            if not tail and method == "POST":
                body = request.json()
                state = body.get("state") if isinstance(body, dict) else None
                if state in ("Closed", "Aborted"):
                    job.state = str(state)
                    return self._v1_json(self._info_v1(job))
                return self._v1_error(400, "InvalidJobState", f"Invalid state: {state}")
            if tail == ["batch"] and method == "POST":
                return self._add_batch_v1(request, job)
            if tail == ["batch"] and method == "GET":
                infos = "".join(self._batch_xml(job, b, root=False) for b in job.batches)
                return self._v1_xml(f'<batchInfoList xmlns="{_ASYNC_NS}">{infos}</batchInfoList>')
            if len(tail) >= 2 and tail[0] == "batch" and tail[1] in job.batches:
                batch = tail[1]
                if len(tail) == 2 and method == "GET":
                    return self._v1_xml(self._batch_xml(job, batch, root=True))
                if tail[2:] == ["result"] and method == "GET":
                    return self._v1_xml(
                        f'<result-list xmlns="{_ASYNC_NS}"><result>{batch}-r</result></result-list>'
                    )
                if tail[2:] == ["result", f"{batch}-r"] and method == "GET":
                    rows = job.batch_rows.get(batch, [])
                    columns = list(rows[0]) if rows else _selected_columns(job.query or "")
                    return Response(200, _csv(columns, rows, ",", "LF"), {"Content-Type": "text/csv"})  # fmt: skip
            return self._v1_error(404, "InvalidUrl", "unknown resource")
        return self._v1_error(404, "InvalidUrl", "unknown resource")

    def _v1_json(self, payload: Any, status: int = 200) -> Response:
        return Response.json(status, payload)

    def _v1_xml(self, text: str, status: int = 200) -> Response:
        return Response(status, (_XML_HEAD + text).encode(), {"Content-Type": "application/xml"})

    def _v1_error(self, status: int, code: str, message: str) -> Response:
        return Response.json(status, {"exceptionCode": code, "exceptionMessage": message})

    def _create_v1(self, request: Request, version: str) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            return self._v1_error(400, "InvalidJob", "expected a JSON jobInfo")
        operation = str(body.get("operation", ""))
        sobject = self.sandbox._sobject_name(str(body.get("object", "")))
        if operation not in ("query", "queryAll"):
            return self._v1_error(400, "InvalidJob", f"Operation not supported by the sandbox: {operation}")  # fmt: skip
        if sobject is None:
            return self._v1_error(400, "InvalidJob", f"Unable to find object: {body.get('object')}")  # fmt: skip
        job = Job(
            self._next_id("750"), "v1", operation, sobject, self.sandbox.clock.now(), version,
            "Open",
        )  # fmt: skip
        with self._lock:
            self._jobs[job.id] = job
        return self._v1_json(self._info_v1(job), 201)

    def _info_v1(self, job: Job) -> dict[str, Any]:
        done = sum(1 for b in job.batches if b not in job.batch_error)
        return {
            "apexProcessingTime": 0, "apiActiveProcessingTime": 0, "apiVersion": float(job.version),
            "concurrencyMode": "Parallel", "contentType": "CSV",
            "createdById": make_id("User", 0), "createdDate": fmt_datetime(job.created),
            "id": job.id, "numberBatchesCompleted": done, "numberBatchesFailed": len(job.batch_error),
            "numberBatchesInProgress": 0, "numberBatchesQueued": 0,
            "numberBatchesTotal": len(job.batches),
            "numberRecordsFailed": 0,
            "numberRecordsProcessed": sum(len(r) for r in job.batch_rows.values()),
            "numberRetries": 0, "object": job.sobject, "operation": job.operation,
            "state": job.state, "systemModstamp": fmt_datetime(job.created),
            "totalProcessingTime": 0,
        }  # fmt: skip

    def _add_batch_v1(self, request: Request, job: Job) -> Response:
        if job.state != "Open":
            return self._v1_error(400, "InvalidJobState", f"Job {job.id} is not open")
        batch = self._next_id("751")
        query = request.body.decode("utf-8-sig").strip()
        job.query = query
        job.batches.append(batch)
        try:
            records = self._all_rows(query, all_rows=job.operation == "queryAll")
            job.batch_rows[batch] = [_flatten(r) for r in records]
        except soql.SoqlError as exc:
            job.batch_error[batch] = f"InvalidBatch : {exc.code}: {exc.message}"
        except RecordError as exc:
            job.batch_error[batch] = f"InvalidBatch : {exc.code}: {exc.message}"
        return self._v1_xml(self._batch_xml(job, batch, root=True, state="Queued"), 201)

    def _batch_xml(self, job: Job, batch: str, *, root: bool, state: str | None = None) -> str:
        failed = job.batch_error.get(batch)
        state = state or ("Failed" if failed else "Completed")
        ns = f' xmlns="{_ASYNC_NS}"' if root else ""
        message = (
            f"<stateMessage>{escape(failed)}</stateMessage>" if failed and state == "Failed" else ""
        )
        stamp = fmt_datetime(job.created)
        return (
            f"<batchInfo{ns}><id>{batch}</id><jobId>{job.id}</jobId><state>{state}</state>"
            f"{message}<createdDate>{stamp}</createdDate><systemModstamp>{stamp}</systemModstamp>"
            f"<numberRecordsProcessed>{len(job.batch_rows.get(batch, []))}</numberRecordsProcessed>"
            "<numberRecordsFailed>0</numberRecordsFailed><totalProcessingTime>0</totalProcessingTime>"
            "<apiActiveProcessingTime>0</apiActiveProcessingTime>"
            "<apexProcessingTime>0</apexProcessingTime></batchInfo>"
        )


__all__ = ["MAX_COMPOSITE_BATCH", "Bulk", "mint"]
