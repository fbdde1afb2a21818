"""Sandbox-only routes that play the people around the API: an admin adding a custom
field (``POST /__sandbox/fields``) and the world going on (``POST /__sandbox/simulate``).

Neither exists in the real CRMs. They are kept out of the flavours' API code: the
framework's control door hands them here, and this module reaches each flavour
through what it already offers (``simulate_activity``, Salesforce's custom-field
hook, HubSpot's own property creation).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.sandbox.framework import Request, Response

__all__ = ["add_field", "leadsync_salesforce_fields", "simulate"]

# A HubSpot property type -> the form field an admin would pick for it.
_HS_FIELD_TYPE = {
    "string": "text",
    "number": "number",
    "date": "date",
    "datetime": "date",
    "bool": "booleancheckbox",
    "enumeration": "select",
}


def leadsync_salesforce_fields(
    score_fields: Sequence[str], key_field: str = "leadsync_key__c"
) -> dict[str, list[dict[str, Any]]]:
    """The custom fields an admin creates for leadsync in a Salesforce org (the
    connector never creates fields itself): a number per score field on Leads and
    Contacts, and the unique external id that makes its writes idempotent on
    Opportunities and Tasks. In the ``custom_fields`` shape of ``SalesforceSandbox``."""
    scores = [{"name": _sf_name(f), "type": "double"} for f in score_fields]
    key = {"name": key_field, "type": "string", "externalId": True, "unique": True}
    return {"Lead": scores, "Contact": [dict(s) for s in scores], "Opportunity": [key],
            "Task": [dict(key)]}  # fmt: skip


def _sf_name(field: str) -> str:
    return field if field.endswith("__c") else f"{field}__c"


def _bad(message: str, status: int = 400) -> Response:
    return Response.json(status, {"error": message})


def simulate(flavour: Any, payload: Any, next_seed: int) -> Response:
    """``{"count": N, "seed": S}`` (seed optional: each call then picks new people)."""
    if payload is None:
        payload = {}
    if not isinstance(payload, Mapping):
        return _bad('expected a JSON object such as {"count": 20}')
    unknown = sorted(set(payload) - {"count", "seed"})
    if unknown:
        return _bad(f"unknown key(s): {', '.join(unknown)}")
    count = payload.get("count", 20)
    seed = payload.get("seed", next_seed)
    for name, value in (("count", count), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return _bad(f"{name}: expected a non-negative integer, got {value!r}")
    active = flavour.simulate_activity(count, seed=seed)
    return Response.json(200, {"count": len(active), "seed": seed, "active": active})


def add_field(flavour: Any, payload: Any) -> Response:
    """Add a custom field as an admin would in the CRM's settings.

    Salesforce: ``{"object": "Lead", "name": "leadsync_score__c", "type": "double",
    "externalId": false, "unique": false}``. HubSpot: ``{"object": "contacts",
    "name": "leadsync_score", "type": "number", "label": "..."}``.
    """
    if not isinstance(payload, Mapping):
        return _bad('expected a JSON object such as {"object": "Lead", "name": "x__c"}')
    obj = payload.get("object")
    if not isinstance(obj, str) or not obj:
        return _bad("object: the object type to add the field to is missing")
    if not isinstance(payload.get("name"), str) or not payload["name"]:
        return _bad("name: the field's name is missing")
    if flavour.name == "salesforce":
        return _salesforce_field(flavour, obj, payload)
    if flavour.name == "hubspot":
        return _hubspot_property(flavour, obj, payload)
    return _bad(f"{flavour.name}: custom fields are not supported", 404)


def _salesforce_field(flavour: Any, obj: str, payload: Mapping[str, Any]) -> Response:
    from connectors.sandbox.salesforce.schema import custom_field_from_mapping

    fields = {k: v for k, v in payload.items() if k != "object"}
    unknown = sorted(set(fields) - {"name", "type", "externalId", "unique", "label", "length"})
    if unknown:
        return _bad(f"unknown key(s): {', '.join(unknown)}")
    try:
        spec = custom_field_from_mapping(obj, fields)
        flavour.store.add_custom_field(obj, spec)
    except KeyError:
        return _bad(f"object: no sObject named {obj!r}", 404)
    except ValueError as exc:
        status = 409 if "already exists" in str(exc) else 400
        return _bad(str(exc), status)
    return Response.json(201, {"object": obj, "name": spec.name, "type": spec.type})


def _hubspot_property(flavour: Any, obj: str, payload: Mapping[str, Any]) -> Response:
    from connectors.sandbox.hubspot.errors import HsError

    type_ = payload.get("type", "string")
    body = {
        "name": payload["name"],
        "label": payload.get("label") or str(payload["name"]).replace("_", " "),
        "type": type_,
        "fieldType": payload.get("fieldType") or _HS_FIELD_TYPE.get(str(type_), "text"),
        "groupName": payload.get("groupName") or f"{obj.rstrip('s')}information",
    }
    for key in ("options", "hasUniqueValue", "description"):
        if key in payload:
            body[key] = payload[key]
    request = Request("POST", f"/crm/v3/properties/{obj}", body=json.dumps(body).encode())
    # The portal's own property creation, minus the token: an admin in the settings.
    with flavour._lock:
        try:
            response: Response = flavour._create_property(request, [obj])
        except HsError as err:
            response = flavour._error(err)
        except KeyError:
            response = _bad(f"object: no object type named {obj!r}", 404)
    return response
