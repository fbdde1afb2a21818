"""Every REST API version a real org serves at once, answered by one store.

A Salesforce org answers all supported versions side by side (``/services/data/``
lists them); ELT tools pin their own (v60 to v62 in the Singer and Airbyte sources)
while simple-salesforce defaults to 59.0. The sandbox's records and describes are the
same for every version, so a request for ``vNN.0`` is served by the one store and
the URLs in the answer (``nextRecordsUrl``, ``attributes.url``) carry the version
the client asked for, as a real org's do.
"""

from __future__ import annotations

import re
from dataclasses import replace

from connectors.sandbox.framework import Request, Response

from .schema import API_VERSION, BASE

OLDEST = 31  # Summer '14: the oldest version Salesforce still serves after the 2025 retirement
NEWEST = 64  # Summer '25
_SEASONS = ("Winter", "Spring", "Summer")
_DATA = re.compile(r"^/services/data/v(\d+\.\d)(/.*)?$")
_ASYNC = re.compile(r"^/services/async/(\d+\.\d)(/.*)?$")


def label(version: int) -> str:
    """Release name of API version ``version`` (59 -> "Winter '24"); three a year."""
    offset = version - 59
    return f"{_SEASONS[offset % 3]} '{24 + offset // 3:02d}"


def supported() -> list[str]:
    return [f"{v}.0" for v in range(OLDEST, NEWEST + 1)]


def listing() -> list[dict[str, str]]:
    """The body of ``GET /services/data/``: oldest first, as Salesforce lists them."""
    return [
        {"label": label(v), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
        for v in range(OLDEST, NEWEST + 1)
    ]


def is_supported(version: str) -> bool:
    major, _, minor = version.partition(".")
    return minor == "0" and major.isdigit() and OLDEST <= int(major) <= NEWEST


def split_data_path(path: str) -> tuple[str, str] | None:
    """``/services/data/v62.0/query`` -> ``("62.0", "/query")``; None for other paths."""
    match = _DATA.match(path)
    return (match.group(1), match.group(2) or "") if match else None


def split_async_path(path: str) -> tuple[str, str] | None:
    """``/services/async/61.0/job/X`` (Bulk API 1.0) -> ``("61.0", "/job/X")``."""
    match = _ASYNC.match(path)
    return (match.group(1), match.group(2) or "") if match else None


def rebase(request: Request, rest: str) -> Request:
    """The request as if it had been sent to the store's own version."""
    return replace(request, path=BASE + rest)


def restamp(response: Response, version: str) -> Response:
    """Put the requested version back into the URLs of an answer."""
    if version == API_VERSION or not response.body:
        return response
    response.body = response.body.replace(
        f"/services/data/v{API_VERSION}/".encode(), f"/services/data/v{version}/".encode()
    ).replace(f'/services/data/v{API_VERSION}"'.encode(), f'/services/data/v{version}"'.encode())
    return response


__all__ = [
    "NEWEST",
    "OLDEST",
    "is_supported",
    "label",
    "listing",
    "rebase",
    "restamp",
    "split_async_path",
    "split_data_path",
    "supported",
]
