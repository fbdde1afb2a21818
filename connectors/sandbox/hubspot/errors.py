"""HubSpot's error bodies (``status, message, correlationId, category`` and friends)."""

from __future__ import annotations

import json
import uuid
from typing import Any


class HsError(Exception):
    """Raised inside a handler; becomes HubSpot's JSON error answer."""

    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        out.update(self.extra)
        return out


def validation(message: str, **extra: Any) -> HsError:
    return HsError(400, "VALIDATION_ERROR", message, **extra)


def property_errors(problems: list[tuple[str, str, str]]) -> HsError:
    """``Property values were not valid: [...]``: HubSpot serialises the list of
    per-property problems into the message string itself."""
    items = [
        {
            "isValid": False,
            "message": message,
            "error": code,
            "name": name,
            "localizedErrorMessage": message,
        }
        for name, code, message in problems
    ]
    return validation(
        "Property values were not valid: " + json.dumps(items, separators=(",", ":")),
        errors=[
            {"message": message, "code": code, "context": {"propertyName": [name]}}
            for name, code, message in problems
        ],
    )


def not_found_entry(singular: str, ids: list[str]) -> dict[str, Any]:
    """One entry of a 207's ``errors``: the shape the SDK's StandardError requires."""
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": f"Could not get some {singular.upper()} objects, they may be deleted or not exist. Check that ids are valid.",
        "context": {"ids": ids},
        "links": {},
        "errors": [],
    }
