"""Whether an existing CRM field can hold what leadsync writes into it.

``leadsync check`` asks this of the CRM's own metadata, so that a score field that
exists but cannot take a number (``score_fields: {leadsync_score: lifecyclestage}``)
is caught before a run sends thousands of writes that are each refused. Pure
functions over the metadata as the CRMs send it (HubSpot's properties API,
Salesforce's describe).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import FieldSpec
from scoring.model import BAND_NAMES

_SALESFORCE_NUMBERS = ("double", "int", "percent", "currency")
_SALESFORCE_TEXT = ("string", "textarea")


def _options(values: Any) -> set[str]:
    out: set[str] = set()
    for option in values if isinstance(values, list) else []:
        if not isinstance(option, Mapping):
            continue
        if option.get("active", True) is not False and not option.get("hidden", False):
            out.add(str(option.get("value")))
    return out


def _missing_bands(values: set[str]) -> list[str]:
    return [band for band in BAND_NAMES if band not in values]


def hubspot_property_problem(spec: FieldSpec, prop: Mapping[str, Any]) -> str | None:
    """Why a HubSpot property cannot take ``spec``'s values, or None when it can."""
    meta = prop.get("modificationMetadata") or {}
    if prop.get("calculated") is True:
        return "is a calculated property: HubSpot computes it and refuses writes"
    if isinstance(meta, Mapping) and meta.get("readOnlyValue") is True:
        return "is read-only: HubSpot refuses writes to it"
    kind = str(prop.get("type") or "?")
    field_type = str(prop.get("fieldType") or "?")
    if spec.type == "number":
        if kind != "number":
            return f"is of type {kind} ({field_type}); a score needs a number property"
        return None
    if kind == "string":
        return None
    if kind == "enumeration":
        missing = _missing_bands(_options(prop.get("options")))
        if not missing:
            return None
        return f"is an enumeration without the option(s) {', '.join(missing)}"
    return (
        f"is of type {kind} ({field_type}); the band needs a text property or an "
        "enumeration with the options hot, warm and cold"
    )


def salesforce_field_problem(spec: FieldSpec, field: Mapping[str, Any]) -> str | None:
    """Why a Salesforce field (a describe entry) cannot take ``spec``'s values."""
    kind = str(field.get("type") or "?")
    if field.get("calculated") is True:
        return "is a formula (calculated) field: Salesforce refuses writes to it"
    if field.get("updateable") is False:
        return "is not editable (updateable is false for the integration user)"
    if spec.type == "number":
        if kind not in _SALESFORCE_NUMBERS:
            return (
                f"is of type {kind}; a score needs a Number, Percent or Currency field "
                f"({'/'.join(_SALESFORCE_NUMBERS)})"
            )
        return None
    if kind in _SALESFORCE_TEXT:
        return None
    if kind in ("picklist", "multipicklist"):
        missing = _missing_bands(_options(field.get("picklistValues")))
        if not missing:
            return None
        return f"is a picklist without the active value(s) {', '.join(missing)}"
    return f"is of type {kind}; the band needs a Text field or a hot/warm/cold picklist"
