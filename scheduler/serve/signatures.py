"""Request signatures: HubSpot's v3 and leadsync's own for product events.

Both are HMAC-SHA256 over the request with a timestamp inside the signed text, checked
against a five-minute window in either direction (a far-future stamp would otherwise
make a captured request replayable later) and compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "HUBSPOT_DECODED",
    "WINDOW_SECONDS",
    "Refusal",
    "event_signature",
    "hubspot_signature",
    "hubspot_signed_uri",
    "verify_event",
    "verify_hubspot",
]

WINDOW_SECONDS = 300

# HubSpot's recipe for v3 decodes exactly these escapes in the URI before signing
# (developers.hubspot.com, "Validating requests", v3); every other escape stays as sent.
HUBSPOT_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_ESCAPES = re.compile("|".join(HUBSPOT_DECODED), re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused: ``reason`` labels the metric, ``detail`` is logged."""

    reason: str
    detail: str


def hubspot_signed_uri(uri: str) -> str:
    """The URI as HubSpot signs it: its listed escapes decoded (in either case)."""
    return _ESCAPES.sub(lambda m: HUBSPOT_DECODED[m.group(0).upper()], uri)


def hubspot_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """``X-HubSpot-Signature-v3`` for a request (``uri`` as sent: it is decoded here)."""
    message = (
        method.encode("utf-8")
        + hubspot_signed_uri(uri).encode("utf-8")
        + body
        + timestamp.encode("utf-8")
    )
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _stamp(text: str | None, now: datetime, *, unit: float) -> Refusal | None:
    if not text:
        return Refusal("missing_signature", "no timestamp header")
    if not re.fullmatch(r"\d{1,16}", text.strip()):
        return Refusal("bad_timestamp", "the timestamp is not a whole number")
    age = now.timestamp() - int(text) / unit
    if abs(age) > WINDOW_SECONDS:
        return Refusal("stale", f"timestamp {age:+.0f}s from now, outside the 5-minute window")
    return None


def verify_hubspot(
    secret: str,
    *,
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now: datetime,
) -> Refusal | None:
    """None when the request carries a valid v3 signature made in the last 5 minutes.
    ``uri`` is the public URI (scheme, host, path and query as the sender used them)."""
    if not signature:
        return Refusal("missing_signature", "no X-HubSpot-Signature-v3 header")
    refused = _stamp(timestamp, now, unit=1000.0)  # HubSpot stamps in milliseconds
    if refused is not None:
        return refused
    assert timestamp is not None
    expected = hubspot_signature(secret, method, uri, body, timestamp.strip())
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8")):
        return Refusal("bad_signature", "X-HubSpot-Signature-v3 does not match")
    return None


def event_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Leadsync-Signature``: ``sha256=`` and the hex HMAC of ``timestamp.body``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_event(
    secret: str,
    *,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now: datetime,
) -> Refusal | None:
    """None when ``X-Leadsync-Signature`` is valid and ``X-Leadsync-Timestamp`` (Unix
    seconds) lies within 5 minutes of now."""
    if not signature:
        return Refusal("missing_signature", "no X-Leadsync-Signature header")
    refused = _stamp(timestamp, now, unit=1.0)
    if refused is not None:
        return refused
    assert timestamp is not None
    expected = event_signature(secret, timestamp.strip(), body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8")):
        return Refusal("bad_signature", "X-Leadsync-Signature does not match")
    return None
