"""Salesforce's responses mapped to actions: the one table to review against the docs.

Sources: status → exception in ``simple_salesforce/util.py``; error codes in the REST
API developer guide ("Status Codes and Error Responses") and
``docs/crm-api-notes.md``. Salesforce has no short-window rate limit; a 429
or 503 can still come from its edge, so they are treated as back-off-and-retry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import requests
from simple_salesforce.exceptions import SalesforceError

from connectors.runtime import Action, Failure, ResponseTable, Rule, no_answer
from connectors.salesforce.auth import TokenEndpointBusy

RULES: tuple[Rule, ...] = (
    Rule(Action.REFRESH_AUTH, status=401, reason="session expired or invalid"),
    Rule(Action.STOP_FOR_DAY, status=403, contains="REQUEST_LIMIT_EXCEEDED",
         reason="Salesforce API request limit exceeded"),
    Rule(Action.FAIL, status=403, reason="request refused (permissions or licence)"),
    Rule(Action.RATE_LIMITED, status=429, reason="rate limited"),
    Rule(Action.RETRY, status=400, contains="UNABLE_TO_LOCK_ROW", reason="record locked"),
    Rule(Action.RETRY, status=(408, 500, 502, 503, 504), reason="Salesforce unavailable"),
    Rule(Action.RETRY, status=range(500, 600), reason="Salesforce server error"),
    Rule(Action.FAIL_SETUP, transport=True, contains="certificate verify failed",
         reason="TLS certificate verification failed",
         hint="the server's certificate is not trusted here; set ca_bundle to the CA "
         "file that signed it"),
    Rule(Action.RETRY, transport=True, reason="Salesforce unreachable"),
    Rule(Action.FAIL, status=300, reason="external id matches more than one record"),
    Rule(Action.FAIL, status=400, contains="INVALID_FIELD", reason="unknown field"),
    Rule(Action.FAIL, status=400, reason="malformed request"),
    Rule(Action.FAIL, status=404, reason="not found"),
)  # fmt: skip

# Per-record errors in sObject Collections results that a later attempt may clear.
RETRIABLE_RECORD_ERRORS = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})


def table(now: Callable[[], float] | None = None) -> ResponseTable:
    return ResponseTable(RULES, default=Action.FAIL, now=now)


def _body_text(content: Any) -> str:
    if isinstance(content, bytes):
        return content.decode("utf-8", "replace")
    if isinstance(content, str):
        return content
    try:
        return json.dumps(content)
    except (TypeError, ValueError):
        return repr(content)


def make_to_failure(
    last_headers: Callable[[], Mapping[str, str]],
) -> Callable[[BaseException], Failure | None]:
    """``to_failure`` for ``ResponseTable.classifier``. Only the status and the error
    body are kept: simple-salesforce's own message embeds the URL and full content.
    ``last_headers`` gives the headers of the latest response (for ``Retry-After``)."""

    def to_failure(exc: BaseException) -> Failure | None:
        if isinstance(exc, SalesforceError):
            return Failure(
                status=int(exc.status),
                body=_body_text(exc.content),
                headers=dict(last_headers()),
                detail=type(exc).__name__,
            )
        if isinstance(exc, TokenEndpointBusy):
            return Failure(status=exc.status, body=exc.body, headers=exc.headers, detail="token")
        if isinstance(exc, requests.ConnectionError | requests.Timeout):
            return no_answer(exc)
        return None

    return to_failure


def error_codes(content: Any) -> list[str]:
    """The ``errorCode``s of a Salesforce error body (a JSON array of errors)."""
    items = content if isinstance(content, list) else [content]
    return [str(i.get("errorCode")) for i in items if isinstance(i, dict) and i.get("errorCode")]
