"""HubSpot's response → action table, its rate-limit tiers and header reading.

Sources: ``docs/crm-api-notes.md`` (HubSpot: status codes, 429 bodies, rate limits).
The SDK raises one ``ApiException`` class per sub-package with no shared base, so a
failure is recognised by its attributes (``status``, ``body``, ``headers``), not its
class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import urllib3

from connectors.runtime import Action, Failure, ResponseTable, Rule, no_answer

TABLE_RULES: tuple[Rule, ...] = (
    # daily quota: a 429 whose policy is DAILY; waiting seconds will not help
    Rule(Action.STOP_FOR_DAY, status=429, contains='"DAILY"', reason="daily limit reached"),
    Rule(Action.STOP_FOR_DAY, status=429, contains="daily limit", reason="daily limit reached"),
    # ten-secondly and search's secondly limits; Retry-After is not always sent
    Rule(Action.RATE_LIMITED, status=429, reason="rate limited"),
    Rule(Action.REFRESH_AUTH, status=401, reason="access token refused"),
    Rule(Action.FAIL, status=403, reason="forbidden (missing scopes?)"),
    # one object that is gone or already exists: the caller reports that record
    Rule(Action.REPORT_RECORD, status=404, reason="not found"),
    Rule(Action.REPORT_RECORD, status=409, reason="conflict"),
    Rule(Action.RETRY, status=(408, 423, 500, 502, 503, 504), reason="HubSpot unavailable"),
    Rule(Action.RETRY, status=range(505, 600), reason="HubSpot server error"),
    # a server certificate this machine does not trust: no retry makes it trusted
    Rule(
        Action.FAIL_SETUP,
        transport=True,
        contains="certificate verify failed",
        reason="TLS certificate verification failed",
        hint="the server's certificate is not trusted here (behind a proxy that re-signs "
        "traffic, add its CA to the system's trust store)",
    ),
    Rule(Action.RETRY, transport=True, reason="HubSpot unreachable"),
    Rule(Action.FAIL, status=400, reason="request refused"),
)


def make_table(now: Any = None) -> ResponseTable:
    return ResponseTable(TABLE_RULES, default=Action.FAIL, now=now)


class HubSpotHttpError(Exception):
    """A response the connector could not use: a non-2xx from a call that does not go
    through the generated SDK (legacy v1 endpoints), or a status the endpoint does not
    document (the SDK would have returned ``None`` for it)."""

    def __init__(self, status: int, body: str, headers: Mapping[str, str]) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = dict(headers)


def _text(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return str(body)


def to_failure(exc: BaseException) -> Failure | None:
    """The CRM-neutral view of anything the SDK, urllib3 or requests raised."""
    import requests

    status = getattr(exc, "status", None)
    if isinstance(status, int) and hasattr(exc, "body"):
        headers = dict(getattr(exc, "headers", None) or {})
        if status == 0:  # the SDK's wrapper for TLS and request-building errors
            return no_answer(exc)
        return Failure(status, _text(exc.body), headers, type(exc).__name__)
    if isinstance(exc, urllib3.exceptions.HTTPError | requests.exceptions.RequestException):
        return no_answer(exc)
    if isinstance(exc, ConnectionError | TimeoutError):
        return no_answer(exc)
    return None


def record_reason(body: str) -> str | None:
    """``CODE property: message`` for each property a batch write refused (``;``
    between them), from a ``VALIDATION_ERROR`` body; None for any other body.
    The code first lets the sync tell one cause from another across records whose
    messages differ only in the value (``0.08 was not one of the allowed options``)."""
    import json

    try:
        payload = json.loads(body) if body.strip() else None
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    items: list[tuple[str, str, str]] = []
    for err in payload.get("errors") or []:
        if not isinstance(err, dict) or not err.get("code"):
            continue
        names = (err.get("context") or {}).get("propertyName") or [""]
        items.append((str(err["code"]), str(names[0]), str(err.get("message") or "")))
    message = str(payload.get("message") or "")
    prefix = "Property values were not valid: "
    if not items and message.startswith(prefix):
        try:
            listed = json.loads(message[len(prefix) :])
        except ValueError:
            listed = []
        for err in listed if isinstance(listed, list) else []:
            if isinstance(err, dict) and err.get("error"):
                items.append(
                    (str(err["error"]), str(err.get("name") or ""), str(err.get("message") or ""))
                )
    parts = [f"{code} {name}: {text}" if name else f"{code}: {text}" for code, name, text in items]
    return "; ".join(" ".join(p.split()) for p in parts) or None


@dataclass(frozen=True, slots=True)
class Tier:
    per_ten_seconds: int
    per_day: int | None


# private apps; a public OAuth app gets 110 per 10 s per account and no daily cap
TIERS: dict[str, Tier] = {
    "free": Tier(100, 250_000),
    "starter": Tier(100, 250_000),
    "pro": Tier(190, 650_000),
    "professional": Tier(190, 650_000),
    "enterprise": Tier(190, 1_000_000),
}
OAUTH_APP = Tier(110, None)
SEARCH_PER_SECOND = 5


def header_int(headers: Mapping[str, str], name: str) -> int | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            try:
                return int(str(value).strip())
            except ValueError:
                return None
    return None


def rate_headers(headers: Mapping[str, str]) -> dict[str, int | None]:
    """The ``X-HubSpot-RateLimit-*`` values (each may be absent: search and OAuth)."""
    return {
        "window_remaining": header_int(headers, "X-HubSpot-RateLimit-Remaining"),
        "window_limit": header_int(headers, "X-HubSpot-RateLimit-Max"),
        "daily_remaining": header_int(headers, "X-HubSpot-RateLimit-Daily-Remaining"),
        "daily_limit": header_int(headers, "X-HubSpot-RateLimit-Daily"),
    }
