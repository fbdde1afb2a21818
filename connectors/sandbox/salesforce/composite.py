"""``POST /composite``: up to 25 subrequests in one API call, for :class:`SalesforceSandbox`.

Shapes follow the REST API Developer Guide ("Send Multiple Requests Using Composite",
"Composite Response Body"):

- The body is ``{"allOrNone": bool, "compositeRequest": [{"method", "url",
  "referenceId", "body"?, "httpHeaders"?}]}``; a malformed body (no array, a
  subrequest without ``method``, ``url`` or ``referenceId``, a repeated reference id)
  is refused as a whole with 400 and nothing runs.
- At most 25 subrequests, of which at most 5 are query operations (query, queryAll
  and the "query more" of a ``nextRecordsUrl``).
- The answer is ``{"compositeResponse": [{"body", "httpHeaders", "httpStatusCode",
  "referenceId"}]}`` in the order of the request; an error's body is the usual list
  of ``{"errorCode", "message", "fields"?}``.
- **The whole request counts as one call** against the org's API allowance: the
  subrequests spend nothing of their own.
- ``@{ref.field.sub[0]}`` in a later subrequest's url or body is replaced by that
  field of an earlier answer; a reference to a failed subrequest, or to a field that
  is not there, fails the subrequest with ``PROCESSING_HALTED``.
- ``allOrNone: true`` with a failing subrequest answers every other subrequest with
  400 ``PROCESSING_HALTED``. The sandbox does not roll back writes made before the
  failure, so it refuses ``allOrNone: true`` when a subrequest writes (a client that
  needs the rollback gets a clear 400 here rather than a false success).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from connectors.sandbox.framework import Request, Response

MAX_SUBREQUESTS = 25
MAX_QUERIES = 5
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_QUERY_URL = re.compile(r"^/services/data/v\d+\.\d/(query|queryAll)(/|\?|$)")


class _Unresolved(ValueError):
    """A reference names a failed subrequest or a field its answer lacks."""


def _error(status: int, code: str, message: str) -> Response:
    return Response.json(status, [{"errorCode": code, "message": message}])


def _halted(reference: str, why: str) -> dict[str, Any]:
    return {
        "body": [{"errorCode": "PROCESSING_HALTED", "message": why}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": reference,
    }


def _lookup(answers: Mapping[str, Any], ref: str, path: str) -> Any:
    if ref not in answers:
        raise _Unresolved(f"Invalid reference specified. No value for {ref} found")
    value = answers[ref]
    for name, index in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        if name and isinstance(value, Mapping) and name in value:
            value = value[name]
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            raise _Unresolved(f"Invalid reference specified. No value for {ref}{path} found")
    if value is None:
        raise _Unresolved(f"Invalid reference specified. No value for {ref}{path} found")
    return value


def _resolve(value: Any, answers: Mapping[str, Any]) -> Any:
    """``value`` with every ``@{...}`` reference replaced (strings inside lists and
    objects too); a string that is one whole reference takes the referenced value."""
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        if whole:
            return _lookup(answers, whole.group(1), whole.group(2))
        return _REFERENCE.sub(lambda m: str(_lookup(answers, m.group(1), m.group(2))), value)
    if isinstance(value, list):
        return [_resolve(v, answers) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, answers) for k, v in value.items()}
    return value


def _is_query(method: str, url: str) -> bool:
    return method.upper() == "GET" and bool(_QUERY_URL.match(url))


def writes(request: Request) -> bool:
    """Whether a ``/composite`` request holds a subrequest other than a GET (an
    unreadable body counts as a write: it may be one)."""
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return True
    subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(subrequests, list):
        return True
    return any(
        not isinstance(sub, dict) or str(sub.get("method", "")).upper() != "GET"
        for sub in subrequests
    )


def composite(
    request: Request,
    dispatch: Callable[[Request], Response],
    allow: Callable[[str, tuple[str, ...]], Response | None],
) -> Response:
    """The ``/composite`` resource. ``dispatch`` runs one subrequest as the same user
    without spending an API call (the caller has spent the one this request costs)."""
    if refused := allow(request.method, ("POST",)):
        return refused
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, "JSON_PARSER_ERROR", f"Unexpected character in request body: {exc}")
    subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(subrequests, list) or not subrequests:
        return _error(400, "JSON_PARSER_ERROR", "compositeRequest: expected a non-empty array")
    if len(subrequests) > MAX_SUBREQUESTS:
        return _error(
            400,
            "INVALID_BATCH_REQUEST",
            f"Composite requests cannot have more than {MAX_SUBREQUESTS} subrequests",
        )
    seen: set[str] = set()
    queries = 0
    writes = False
    for sub in subrequests:
        if not isinstance(sub, dict) or not all(
            isinstance(sub.get(k), str) and sub.get(k) for k in ("method", "url", "referenceId")
        ):
            return _error(
                400, "JSON_PARSER_ERROR", "compositeRequest: each needs method, url and referenceId"
            )
        if sub["referenceId"] in seen:
            return _error(
                400, "INVALID_INPUT", f"Duplicate referenceId provided: {sub['referenceId']}"
            )
        seen.add(sub["referenceId"])
        queries += _is_query(sub["method"], sub["url"])
        writes = writes or sub["method"].upper() != "GET"
    if queries > MAX_QUERIES:
        return _error(
            400,
            "INVALID_BATCH_REQUEST",
            f"Composite requests cannot have more than {MAX_QUERIES} query operations",
        )
    all_or_none = bool(body.get("allOrNone", False))
    if all_or_none and writes:
        return _error(
            400,
            "INVALID_BATCH_REQUEST",
            "the sandbox does not roll back composite writes: send allOrNone false",
        )
    answers: dict[str, Any] = {}
    results: list[dict[str, Any]] = []
    for sub in subrequests:
        ref = str(sub["referenceId"])
        try:
            url = str(_resolve(sub["url"], answers))
            payload = _resolve(sub.get("body"), answers)
        except _Unresolved as exc:
            results.append(_halted(ref, str(exc)))
            continue
        headers = {
            "authorization": request.headers.get("authorization", ""),
            **{str(k).lower(): str(v) for k, v in (sub.get("httpHeaders") or {}).items()},
        }
        inner = Request.from_url(
            str(sub["method"]),
            url if url.startswith("/") else "/" + url,
            headers,
            json.dumps(payload).encode() if payload is not None else b"",
        )
        answer = dispatch(inner)
        try:
            parsed = json.loads(answer.body) if answer.body else None
        except ValueError:
            parsed = answer.body.decode("utf-8", "replace")
        if answer.status < 400:
            answers[ref] = parsed
        results.append(
            {
                "body": parsed,
                "httpHeaders": {
                    k: v
                    for k, v in answer.headers.items()
                    if k.lower() not in ("content-length", "content-type")
                },
                "httpStatusCode": answer.status,
                "referenceId": ref,
            }
        )
    if all_or_none and any(r["httpStatusCode"] >= 400 for r in results):
        results = [
            r if r["httpStatusCode"] >= 400 else _halted(r["referenceId"], "allOrNone: rolled back")
            for r in results
        ]
    return Response.json(200, {"compositeResponse": results})


__all__ = ["MAX_QUERIES", "MAX_SUBREQUESTS", "composite", "writes"]
