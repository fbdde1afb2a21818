"""The HubSpot endpoints ELT connectors call beyond leadsync's own: object types the
sandbox does not model, custom-object schemas, v2 properties, the v1 engagements
feed, users, subscription types, marketing e-mails, and the v3 associations API.

What the sandbox does not model answers as a real portal does when it holds none of
it: reads of a standard object type the sandbox has no records of (tickets, line
items, products, quotes, communications, postal mail, goal targets, feedback
submissions, leads, ...) are 200 with no results, their properties are the few every
portal has; writes to them are 403 ``MISSING_SCOPES``, as for an app without the
object's write scope. A route neither modelled nor listed here stays a 404, which is
what HubSpot answers for a path it does not know.

Shapes: the HubSpot v3 CRM reference, the legacy v1/v2 references (engagements,
properties, e-mail subscriptions) as connectors still call them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from connectors.sandbox.framework import JSONValue, Request, Response, iso_ms
from connectors.sandbox.hubspot.errors import HsError, validation
from connectors.sandbox.hubspot.legacy import PORTAL_ID
from connectors.sandbox.hubspot.schema import (
    ASSOCIATION_TYPE_IDS,
    OBJECT_TYPES,
    association_type_name,
    normalise_object_type,
)

if TYPE_CHECKING:
    from connectors.sandbox.hubspot.app import HubSpotSandbox

Handler = Callable[[Request, list[str]], Response]

# Standard object types a portal has, that the sandbox holds no records of:
# name -> (singular, objectTypeId, read scope).
UNMODELLED: dict[str, tuple[str, str, str]] = {
    "tickets": ("ticket", "0-5", "tickets"),
    "line_items": ("line_item", "0-8", "e-commerce"),
    "products": ("product", "0-7", "e-commerce"),
    "quotes": ("quote", "0-14", "crm.objects.quotes.read"),
    "communications": ("communication", "0-18", "crm.objects.contacts.read"),
    "postal_mail": ("postal_mail", "0-116", "crm.objects.contacts.read"),
    "goal_targets": ("goal_target", "0-74", "crm.objects.goals.read"),
    "feedback_submissions": (
        "feedback_submission",
        "0-19",
        "crm.objects.feedback_submissions.read",
    ),
    "leads": ("lead", "0-136", "crm.objects.leads.read"),
    "invoices": ("invoice", "0-53", "crm.objects.invoices.read"),
    "orders": ("order", "0-123", "crm.objects.orders.read"),
    "carts": ("cart", "0-142", "crm.objects.carts.read"),
    "discounts": ("discount", "0-84", "crm.objects.line_items.read"),
    "fees": ("fee", "0-85", "crm.objects.line_items.read"),
    "taxes": ("tax", "0-86", "crm.objects.line_items.read"),
    "users": ("user", "0-115", "crm.objects.users.read"),
    "appointments": ("appointment", "0-421", "crm.objects.appointments.read"),
    "courses": ("course", "0-410", "crm.objects.courses.read"),
    "listings": ("listing", "0-420", "crm.objects.listings.read"),
    "services": ("service", "0-162", "crm.objects.services.read"),
    "subscriptions": ("subscription", "0-69", "crm.objects.subscriptions.read"),
    "partner_clients": ("partner_client", "", "crm.objects.partner-clients.read"),
    "deal_splits": ("deal_split", "", "crm.objects.deals.read"),
}
_UNMODELLED_ALIASES: dict[str, str] = {}
for _plural, (_singular, _type_id, _scope) in UNMODELLED.items():
    _UNMODELLED_ALIASES[_plural] = _UNMODELLED_ALIASES[_singular] = _plural
    if _type_id:  # type ids the sandbox is unsure of are left out
        _UNMODELLED_ALIASES[_type_id] = _plural
# legacy v2 names -> v3 object type
_V2_OBJECTS = {"contact": "contacts", "deal": "deals", "company": "companies"}
_ENGAGEMENT_KINDS = {
    "calls": "CALL",
    "emails": "EMAIL",
    "meetings": "MEETING",
    "notes": "NOTE",
    "tasks": "TASK",
}
_EPOCH_ISO = "2019-01-01T00:00:00.000Z"
MAX_ENGAGEMENTS_PAGE = 250
SUBSCRIPTION_TYPES = (  # the first is the one the e-mail events' unsubscribes name
    (4_100_001, "Marketing Information", "Marketing offers and updates."),
    (4_100_002, "One to One", "One to one e-mails."),
    (4_100_003, "Customer Service Communication", "Feedback requests and service e-mails."),
)
MAX_TIMELINE_PAGE = 1000


def unmodelled_type(name: str) -> str | None:
    """``ticket``, ``tickets`` and ``0-5`` name the same unmodelled type."""
    if normalise_object_type(name) is not None:
        return None
    return _UNMODELLED_ALIASES.get(name.lower())


def _ms(iso: str | None) -> int | None:
    if not iso:
        return None
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


# ``GET /account-info/v3/details`` as HubSpot answers it for a standard account.
ACCOUNT_DETAILS: dict[str, JSONValue] = {
    "portalId": PORTAL_ID,
    "accountType": "STANDARD",
    "timeZone": "US/Eastern",
    "companyCurrency": "USD",
    "additionalCurrencies": [],
    "utcOffset": "-05:00",
    "utcOffsetMilliseconds": -18000000,
    "uiDomain": "app.hubspot.com",
    "dataHostingLocation": "na1",
}


class Surface:
    """Routes the sandbox serves for connectors' sake; ``route`` is tried first."""

    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.sandbox = sandbox

    # ---------------------------------------------------------------- routing
    def route(self, method: str, parts: list[str]) -> Handler | None:
        n = len(parts)
        if n >= 4 and parts[:3] == ["crm", "v3", "objects"]:
            obj = unmodelled_type(parts[3])
            if obj is None:
                return self.route_object_associations(method, parts)
            return self._unmodelled_object(method, obj, parts[4:])
        if n >= 4 and parts[:3] == ["crm", "v3", "properties"]:
            obj = unmodelled_type(parts[3])
            if obj is None or method != "GET":
                return None
            return lambda request, _a: self._unmodelled_properties(obj, parts[4:])
        if n >= 5 and parts[:3] == ["crm", "v4", "associations"]:
            a, b = normalise_object_type(parts[3]), normalise_object_type(parts[4])
            if (a is None or b is None) and unmodelled_type(parts[3] if a is None else parts[4]):
                return self._unmodelled_associations(method, parts[5:])
            return None
        if parts == ["account-info", "v3", "details"] and method == "GET":
            # The account's identity: record links in the HubSpot app need the portal id.
            return lambda request, _a: self._ok(ACCOUNT_DETAILS)
        if parts == ["crm", "v3", "lists", "search"] and method == "POST":
            return lambda request, _a: self._ok({"lists": [], "hasMore": False, "offset": 0, "total": 0})  # fmt: skip
        if parts == ["crm-pipelines", "v1", "pipelines", "deals"] and method == "GET":
            return self._pipelines_v1
        if parts[:3] == ["automation", "v3", "workflows"] and method == "GET" and n == 3:
            return lambda request, _a: self._ok({"workflows": []})
        if n >= 4 and parts[:3] == ["crm", "v3", "pipelines"] and method == "GET":
            if parts[3].lower() != "deals" and parts[3].lower() != "0-3":
                return lambda request, _a: self._ok({"results": []} if n == 4 else None, n == 4)
            return None
        if parts[:3] == ["crm", "v3", "schemas"] and method == "GET":
            if n == 3:
                return lambda request, _a: self._ok({"results": []})
            return lambda request, _a: self._not_found(f"Unable to find object schema {parts[3]}")
        if n == 4 and parts[:2] == ["properties", "v2"] and parts[3] == "properties":
            return self._properties_v2(method, parts[2])
        if parts[:3] == ["engagements", "v1", "engagements"] and method == "GET":
            if n == 4 and parts[3] == "paged":
                return self._engagements_paged
            if parts[3:] == ["recent", "modified"]:
                return self._engagements_recent
        if parts[:3] == ["settings", "v3", "users"] and method == "GET":
            if n == 3:
                return self._users
            if parts[3:] in (["roles"], ["teams"]):
                return self._teams if parts[3] == "teams" else self._empty_results
        if parts[:3] == ["email", "public", "v1"] and method == "GET":
            if parts[3:] == ["subscriptions"]:
                return self._subscription_types
            if parts[3:] == ["subscriptions", "timeline"]:
                return self._subscription_timeline
            if parts[3:] == ["campaigns", "by-id"] or parts[3:] == ["campaigns"]:
                return self._campaigns
            if n == 5 and parts[3] == "campaigns":
                return lambda request, _a: self._campaign(parts[4])
        if parts[:3] == ["marketing-emails", "v1", "emails"] and method == "GET":
            return lambda request, _a: self._ok(
                {"objects": [], "limit": 250, "offset": 0, "total": 0, "totalCount": 0}
            )
        if n == 7 and parts[:3] == ["crm", "v3", "associations"] and parts[5] == "batch":
            a, b = normalise_object_type(parts[3]), normalise_object_type(parts[4])
            if a is None or b is None or method != "POST":
                return None
            if parts[6] == "read":
                return lambda request, _a: self._assoc_v3_read(request, a, b)
            if parts[6] in ("create", "archive"):
                return lambda request, _a: self._assoc_v3_write(request, a, b, parts[6])
        return self.route_object_associations(method, parts)

    def route_object_associations(self, method: str, parts: list[str]) -> Handler | None:
        """``GET /crm/v3/objects/{type}/{id}/associations/{toType}`` (v3 shape)."""
        if method != "GET" or len(parts) != 7 or parts[:3] != ["crm", "v3", "objects"]:
            return None
        if parts[5] != "associations":
            return None
        a, b = normalise_object_type(parts[3]), normalise_object_type(parts[6])
        if a is None:
            return None
        raw = parts[4]
        return lambda request, _a: self._assoc_v3_page(request, a, raw, b, parts[6])

    # ---------------------------------------------------------------- helpers
    def _ok(self, payload: object, found: bool = True) -> Response:
        if not found:
            raise HsError(404, "OBJECT_NOT_FOUND", "Unable to find pipeline")
        return Response.json(200, payload, {"X-HubSpot-Correlation-Id": str(uuid.uuid4())})

    def _not_found(self, message: str) -> Response:
        raise HsError(404, "OBJECT_NOT_FOUND", message)

    def _empty_results(self, request: Request, _args: list[str]) -> Response:
        return self._ok({"results": []})

    # -------------------------------------------------------- unmodelled objects
    def _unmodelled_object(self, method: str, obj: str, rest: list[str]) -> Handler | None:
        singular, _type_id, scope = UNMODELLED[obj]
        if method == "GET" and not rest:
            return lambda r, a: self._ok({"results": []})
        if method == "POST" and rest == ["search"]:
            return lambda r, a: self._ok({"total": 0, "results": []})
        if method == "POST" and rest == ["batch", "read"]:
            return lambda r, a: self._batch_read_missing(r, singular)
        if method == "GET" and len(rest) == 1:
            return lambda r, a: self._not_found(
                f"Object not found.  objectId are usually numeric. ({singular} {rest[0]})"
            )
        if method in ("POST", "PATCH", "PUT", "DELETE"):
            return lambda r, a: self._missing_scopes(f"{scope.split('.read')[0]}.write")
        return None

    def _missing_scopes(self, scope: str) -> Response:
        raise HsError(
            403,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call. Read more "
            "about required scopes here: https://developers.hubspot.com/scopes.",
            errors=[{"message": "One or more of the following scopes are required.",
                     "context": {"requiredGranularScopes": [scope]}}],
        )  # fmt: skip

    def _batch_read_missing(self, request: Request, singular: str) -> Response:
        body = request.json()
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list):
            raise validation("Invalid input JSON: inputs must be a list")
        now = iso_ms(self.sandbox.clock.now())
        ids = [str(i.get("id")) for i in inputs if isinstance(i, dict)]
        payload: dict[str, JSONValue] = {"status": "COMPLETE", "results": [], "startedAt": now, "completedAt": now}  # fmt: skip
        if not ids:
            return self._ok(payload)
        payload["numErrors"] = 1
        payload["errors"] = [{
            "status": "error", "category": "OBJECT_NOT_FOUND",
            "message": f"Could not get some {singular.upper()} objects, they may be deleted or not exist. Check that ids are valid.",
            "context": {"ids": ids}, "links": {}, "errors": [],
        }]  # fmt: skip
        return Response.json(207, payload, {"X-HubSpot-Correlation-Id": str(uuid.uuid4())})

    def _base_properties(self, obj: str) -> list[dict[str, Any]]:
        """The properties every object type has, even in an empty portal."""
        group = f"{UNMODELLED[obj][0]}information" if obj in UNMODELLED else "information"
        out = []
        for order, (name, label, kind, field) in enumerate((
            ("hs_object_id", "Record ID", "number", "number"),
            ("hs_createdate", "Create Date", "datetime", "date"),
            ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date"),
            ("hubspot_owner_id", "Owner", "enumeration", "select"),
        )):  # fmt: skip
            out.append({
                "name": name, "label": label, "type": kind, "fieldType": field,
                "description": "", "groupName": group, "options": [],
                "displayOrder": order, "calculated": False, "externalOptions": name == "hubspot_owner_id",
                "hasUniqueValue": False, "hidden": False, "hubspotDefined": True,
                "modificationMetadata": {"archivable": True, "readOnlyDefinition": True, "readOnlyValue": name != "hubspot_owner_id"},
                "formField": False, "createdAt": _EPOCH_ISO, "updatedAt": _EPOCH_ISO, "archived": False,
            })  # fmt: skip
        return out

    def _unmodelled_properties(self, obj: str, rest: list[str]) -> Response:
        props = self._base_properties(obj)
        if not rest:
            return self._ok({"results": props})
        for p in props:
            if p["name"] == rest[0]:
                return self._ok(p)
        return self._not_found(f"Unable to find property {rest[0]} for object type {obj}")

    # ---------------------------------------------------------- v2 properties
    def _properties_v2(self, method: str, name: str) -> Handler | None:
        if method != "GET":
            return None
        key = name.lower()
        obj = normalise_object_type(_V2_OBJECTS.get(key, key))
        if obj is not None:
            return lambda request, _a: self._v2_from_v3(obj)
        # Every other object type (deal splits, forms, ...) has at least the properties
        # every portal has; the sandbox holds no records of them.
        other = unmodelled_type(key) or key
        return lambda request, _a: self._ok(
            [self._v2_shape(p) for p in self._base_properties(other)]
        )

    def _v2_from_v3(self, obj: str) -> Response:
        table = self.sandbox.store.tables[obj]
        return self._ok([self._v2_shape(d.to_json(iso_ms)) for d in table.defs.values()])

    @staticmethod
    def _v2_shape(p: dict[str, Any]) -> dict[str, Any]:
        meta = p.get("modificationMetadata") or {}
        return {
            "name": p["name"],
            "label": p.get("label", p["name"]),
            "description": p.get("description", ""),
            "groupName": p.get("groupName", ""),
            "type": p.get("type", "string"),
            "fieldType": p.get("fieldType", "text"),
            "options": [
                {
                    "label": o.get("label"),
                    "value": o.get("value"),
                    "displayOrder": o.get("displayOrder", i),
                    "hidden": bool(o.get("hidden", False)),
                    "description": o.get("description", ""),
                    "readOnly": False,
                    "doubleData": None,
                }
                for i, o in enumerate(p.get("options") or [])
            ],
            "displayOrder": p.get("displayOrder", -1),
            "hidden": bool(p.get("hidden", False)),
            "calculated": bool(p.get("calculated", False)),
            "externalOptions": bool(p.get("externalOptions", False)),
            "hasUniqueValue": bool(p.get("hasUniqueValue", False)),
            "hubspotDefined": bool(p.get("hubspotDefined", True)),
            "readOnlyValue": bool(meta.get("readOnlyValue", False)),
            "readOnlyDefinition": bool(meta.get("readOnlyDefinition", True)),
            "mutableDefinitionNotDeletable": True,
            "formField": bool(p.get("formField", False)),
            "favorited": False,
            "favoritedOrder": -1,
            "deleted": False,
            "createdAt": _ms(p.get("createdAt")),
            "updatedAt": _ms(p.get("updatedAt")),
            "createdUserId": None,
            "updatedUserId": None,
            "textDisplayHint": None,
            "numberDisplayHint": None,
            "optionsAreMutable": None,
            "referencedObjectType": None,
            "searchableInGlobalSearch": False,
            "isCustomizedDefault": False,
            "currencyPropertyName": None,
            "showCurrencySymbol": None,
            "optionSortStrategy": None,
            "searchTextAnalysisMode": None,
        }

    # ------------------------------------------------------- v1 engagements
    def _engagement_ids(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Every live engagement in a fixed order: (kind per block, ids, block index)."""
        kinds = list(_ENGAGEMENT_KINDS)
        id_blocks = []
        kind_blocks = []
        for i, name in enumerate(kinds):
            ids = self.sandbox.store.tables[name].listable_ids(archived=False)
            id_blocks.append(np.asarray(ids, dtype=np.int64))
            kind_blocks.append(np.full(len(ids), i, dtype=np.int8))
        return kinds, np.concatenate(id_blocks), np.concatenate(kind_blocks)

    def _engagement_json(self, kind: str, object_id: int) -> dict[str, JSONValue]:
        store = self.sandbox.store
        table = store.tables[kind]
        slot = table.slot_of(object_id)
        assert slot is not None
        props: dict[str, Any] = table.record_json(slot, list(table.defs), [])["properties"]
        owner = props.get("hubspot_owner_id")
        engagement: dict[str, JSONValue] = {
            "id": object_id,
            "portalId": PORTAL_ID,
            "active": True,
            "createdAt": _ms(props.get("hs_createdate")),
            "lastUpdated": _ms(props.get("hs_lastmodifieddate")),
            "ownerId": int(owner) if owner else None,
            "type": _ENGAGEMENT_KINDS[kind],
            "timestamp": _ms(props.get("hs_timestamp")),
            "source": "CRM_UI",
            "allAccessibleTeamIds": [],
        }
        associations = {
            "contactIds": store.associated(kind, object_id, "contacts"),
            "companyIds": [],
            "dealIds": store.associated(kind, object_id, "deals"),
            "ownerIds": [],
            "workflowIds": [],
            "ticketIds": [],
            "contentIds": [],
            "quoteIds": [],
            "marketingEventIds": [],
        }
        metadata: dict[str, JSONValue]
        if kind == "calls":
            metadata = {"body": props.get("hs_call_body"), "title": props.get("hs_call_title"),
                        "status": props.get("hs_call_status"),
                        "durationMilliseconds": int(props["hs_call_duration"]) if props.get("hs_call_duration") else None,
                        "direction": props.get("hs_call_direction")}  # fmt: skip
        elif kind == "emails":
            metadata = {"subject": props.get("hs_email_subject"), "text": props.get("hs_email_text"),
                        "status": props.get("hs_email_status"), "from": {}, "to": [], "cc": [], "bcc": []}  # fmt: skip
        elif kind == "meetings":
            metadata = {"body": props.get("hs_meeting_body"), "title": props.get("hs_meeting_title"),
                        "startTime": _ms(props.get("hs_meeting_start_time")),
                        "endTime": _ms(props.get("hs_meeting_end_time")),
                        "meetingOutcome": props.get("hs_meeting_outcome")}  # fmt: skip
        elif kind == "notes":
            metadata = {"body": props.get("hs_note_body")}
        else:
            metadata = {"body": props.get("hs_task_body"), "subject": props.get("hs_task_subject"),
                        "status": props.get("hs_task_status"), "taskType": props.get("hs_task_type"),
                        "priority": props.get("hs_task_priority"), "forObjectType": "CONTACT"}  # fmt: skip
        return {
            "engagement": engagement,
            "associations": associations,
            "attachments": [],
            "metadata": {k: v for k, v in metadata.items() if v is not None},
        }

    def _engagements_paged(self, request: Request, _args: list[str]) -> Response:
        """``limit`` up to 250, ``offset`` from the previous answer; oldest id first."""
        limit = max(1, min(_int(request, "limit", 100), MAX_ENGAGEMENTS_PAGE))
        offset = max(0, _int(request, "offset", 0))
        kinds, ids, blocks = self._engagement_ids()
        page = range(offset, min(offset + limit, len(ids)))
        results = [self._engagement_json(kinds[int(blocks[i])], int(ids[i])) for i in page]
        end = offset + len(results)
        return self._ok({"results": results, "hasMore": end < len(ids), "offset": end})

    def _engagements_recent(self, request: Request, _args: list[str]) -> Response:
        """``/engagements/v1/engagements/recent/modified``: changed since ``since`` (ms),
        newest first, ``count`` up to 100 (the v1 reference caps the feed at 10,000)."""
        limit = max(1, min(_int(request, "count", 100), 100))
        offset = max(0, _int(request, "offset", 0))
        since = _int(request, "since", 0)
        kinds = list(_ENGAGEMENT_KINDS)
        stamps, ids, blocks = [], [], []
        for i, name in enumerate(kinds):
            table = self.sandbox.store.tables[name]
            slots = table.listable(archived=False)
            stamps.append(table.updated_ms[slots])
            ids.append(table.ids[slots])
            blocks.append(np.full(len(slots), i, dtype=np.int8))
        stamp, ident, block = np.concatenate(stamps), np.concatenate(ids), np.concatenate(blocks)
        keep = np.flatnonzero(stamp >= since)
        order = keep[np.lexsort((ident[keep], -stamp[keep]))][:10_000]  # newest first
        chunk = order[offset : offset + limit]
        results = [self._engagement_json(kinds[int(block[i])], int(ident[i])) for i in chunk]
        end = offset + len(results)
        return self._ok({"results": results, "hasMore": end < len(order), "offset": end, "total": len(order)})  # fmt: skip

    # ------------------------------------------------------------- users
    def _users(self, request: Request, _args: list[str]) -> Response:
        limit = max(1, min(_int(request, "limit", 100), 100))
        users = [o for o in self.sandbox.store.owners if o.user_id is not None and not o.archived]
        users.sort(key=lambda o: int(o.user_id or 0))
        after = request.param("after")
        start = 0
        if after:
            if not after.isdigit():
                raise validation(f"Invalid after: {after!r}")
            start = next(
                (i for i, o in enumerate(users) if int(o.user_id or 0) >= int(after)), len(users)
            )
        page = users[start : start + limit]
        payload: dict[str, JSONValue] = {
            "results": [
                {
                    "id": str(o.user_id),
                    "email": o.email,
                    "firstName": o.first_name,
                    "lastName": o.last_name,
                    "roleIds": [],
                    "primaryTeamId": "5100001",
                    "secondaryTeamIds": [],
                    "superAdmin": False,
                }
                for o in page
            ]
        }
        if start + limit < len(users):
            nxt = str(users[start + limit].user_id)
            payload["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
        return self._ok(payload)

    def _teams(self, request: Request, _args: list[str]) -> Response:
        users = [str(o.user_id) for o in self.sandbox.store.owners if o.user_id is not None]
        return self._ok({"results": [{"id": "5100001", "name": "Sales", "userIds": users, "secondaryUserIds": []}]})  # fmt: skip

    # ------------------------------------------------------- e-mail legacy
    def _subscription_types(self, request: Request, _args: list[str]) -> Response:
        return self._ok({
            "subscriptionDefinitions": [
                {"id": i, "portalId": PORTAL_ID, "name": name, "description": text, "active": True,
                 "internal": False, "category": "Marketing", "channel": "Email",
                 "businessUnitId": 0, "order": n, "internalName": name.upper().replace(" ", "_"),
                 "updatedAt": 1_546_300_800_000, "createdAt": 1_546_300_800_000}
                for n, (i, name, text) in enumerate(SUBSCRIPTION_TYPES)
            ]
        })  # fmt: skip

    def _subscription_timeline(self, request: Request, _args: list[str]) -> Response:
        """Subscription changes: the unsubscribes the e-mail events report, oldest
        first, within ``startTimestamp``/``endTimestamp`` (ms), ``offset`` from the
        previous answer, ``limit`` up to 1,000."""
        from connectors.sandbox.hubspot.legacy import _K

        legacy = self.sandbox.legacy
        idx = legacy._index((_K["unsubscribe"],))
        start = _int(request, "startTimestamp", 0)
        end = _int(request, "endTimestamp", 2**62)
        limit = max(1, min(_int(request, "limit", 100), MAX_TIMELINE_PAGE))
        offset = max(0, _int(request, "offset", 0))
        ms = idx.ts * 1000.0
        lo = max(int(np.searchsorted(ms, start, side="left")), offset)
        hi = int(np.searchsorted(ms, end, side="left"))
        timeline = []
        for pos in range(lo, min(hi, lo + limit)):
            stamp = round(float(idx.ts[pos]) * 1000.0)
            event = legacy._email_event(idx, pos)
            change = {
                "change": "UNSUBSCRIBED", "changeType": "SUBSCRIPTION_STATUS",
                "subscriptionId": SUBSCRIPTION_TYPES[0][0], "source": "SOURCE_RECIPIENT",
                "portalId": PORTAL_ID, "timestamp": stamp,
                "causedByEvent": {"id": event["id"], "created": stamp},
            }  # fmt: skip
            timeline.append({
                "portalId": PORTAL_ID, "recipient": event["recipient"], "timestamp": stamp,
                "changes": [change],
            })  # fmt: skip
        after = lo + len(timeline)
        return self._ok({"timeline": timeline, "hasMore": after < hi, "offset": str(after)})

    def _campaigns(self, request: Request, _args: list[str]) -> Response:
        from connectors.sandbox.hubspot.legacy import CAMPAIGN_BASE
        from connectors.sandbox.world import CAMPAIGNS

        campaigns = [
            {"id": CAMPAIGN_BASE + i, "appId": 113, "appName": "Batch",
             "lastUpdatedTime": 1_546_300_800_000, "lastProcessingFinishedAt": 1_546_300_800_000}
            for i in range(len(CAMPAIGNS))
        ]  # fmt: skip
        return self._ok({"campaigns": campaigns, "hasMore": False, "offset": str(len(campaigns))})

    def _campaign(self, raw: str) -> Response:
        from connectors.sandbox.hubspot.legacy import CAMPAIGN_BASE
        from connectors.sandbox.world import CAMPAIGNS

        index = int(raw) - CAMPAIGN_BASE if raw.isdigit() else -1
        if not 0 <= index < len(CAMPAIGNS):
            return self._not_found(f"Campaign {raw} not found")
        name = str(CAMPAIGNS[index])
        return self._ok({
            "id": CAMPAIGN_BASE + index, "appId": 113, "appName": "Batch", "contentId": 5_000_000 + index,
            "name": name, "subject": name, "type": "BATCH_EMAIL", "subType": "",
            "counters": {}, "numIncluded": 0, "numQueued": 0,
            "lastProcessingFinishedAt": 1_546_300_800_000, "lastUpdatedTime": 1_546_300_800_000,
        })  # fmt: skip

    def _pipelines_v1(self, request: Request, _args: list[str]) -> Response:
        """The legacy CRM pipelines API: the same default pipeline in the v1 shape."""
        from connectors.sandbox.hubspot import pipelines

        v3 = pipelines.pipeline_json()
        stages = [
            {"stageId": st["id"], "label": st["label"], "displayOrder": st["displayOrder"],
             "active": True, "probability": float(st["metadata"]["probability"]),
             "closedWon": st["metadata"]["probability"] == "1.0"}
            for st in v3["stages"]
        ]  # fmt: skip
        return self._ok({"results": [{
            "pipelineId": v3["id"], "label": v3["label"], "displayOrder": v3["displayOrder"],
            "active": True, "objectType": "DEAL", "objectTypeId": "0-3", "default": True,
            "stages": stages, "createdAt": _ms(v3.get("createdAt")), "updatedAt": _ms(v3.get("updatedAt")),
        }]})  # fmt: skip

    def _unmodelled_associations(self, method: str, rest: list[str]) -> Handler | None:
        """v4 associations to or from a type the sandbox holds no records of: none."""
        if method == "GET" and rest == ["labels"]:
            return self._empty_results
        if method == "POST" and rest == ["batch", "read"]:
            now = iso_ms(self.sandbox.clock.now())
            return lambda request, _a: self._ok(
                {"status": "COMPLETE", "results": [], "startedAt": now, "completedAt": now}
            )
        return None

    # ---------------------------------------------------------- v3 associations
    def _assoc_v3_read(self, request: Request, a: str, b: str) -> Response:
        """v3 batch read: ``to`` as ``{"id", "type"}``; ids without links are 207
        errors (``NO_ASSOCIATIONS_FOUND``), as in the v4 API it shares a backend with."""
        answer = self.sandbox._assoc_read(request, [a, b])
        payload: dict[str, Any] = json.loads(answer.body)
        kind = association_type_name(a, b) if (a, b) in ASSOCIATION_TYPE_IDS else f"{OBJECT_TYPES[a][0]}_to_{OBJECT_TYPES[b][0]}"  # fmt: skip
        payload["results"] = [
            {"from": {"id": str(r["from"]["id"])},
             "to": [{"id": str(t["toObjectId"]), "type": kind} for t in r["to"]]}
            for r in payload.get("results", [])
        ]  # fmt: skip
        return replace(answer, body=json.dumps(payload, separators=(",", ":")).encode())  # fmt: skip

    def _assoc_v3_write(self, request: Request, a: str, b: str, op: str) -> Response:
        """v3 batch create/archive: ``{"inputs": [{"from": {"id"}, "to": {"id"}, "type"}]}``."""
        body = request.json()
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list):
            raise validation("Invalid input JSON: inputs must be a list")
        if op == "archive":
            raise HsError(
                400, "VALIDATION_ERROR", "Removing associations is not modelled by the sandbox"
            )
        type_id = ASSOCIATION_TYPE_IDS.get((a, b))
        if type_id is None:
            raise validation(f"{OBJECT_TYPES[a][0]} to {OBJECT_TYPES[b][0]} is not a valid association type")  # fmt: skip
        v4 = {"inputs": [
            {"from": {"id": str(i["from"]["id"])}, "to": {"id": str(i["to"]["id"])},
             "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}
            for i in inputs if isinstance(i, dict)
        ]}  # fmt: skip
        inner = replace(request, body=json.dumps(v4).encode())
        answer = self.sandbox._assoc_create(inner, [a, b])
        payload = json.loads(answer.body)
        kind = association_type_name(a, b)
        payload["results"] = [
            {
                "from": {"id": str(r["fromObjectId"])},
                "to": [{"id": str(r["toObjectId"]), "type": kind}],
            }
            for r in payload.get("results", [])
        ]
        status = 207 if payload.get("errors") else 201
        return Response.json(status, payload, {"X-HubSpot-Correlation-Id": str(uuid.uuid4())})

    def _assoc_v3_page(
        self, request: Request, a: str, raw: str, b: str | None, other: str
    ) -> Response:
        if b is None:
            if unmodelled_type(other) is not None:
                return self._ok({"results": []})
            raise HsError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {other}")
        answer = self.sandbox._assoc_page(request, [a, raw, b])
        payload = json.loads(answer.body)
        kind = association_type_name(a, b) if (a, b) in ASSOCIATION_TYPE_IDS else ""
        return self._ok(
            {"results": [{"id": str(r["toObjectId"]), "type": kind} for r in payload["results"]]}
        )


def _int(request: Request, name: str, default: int) -> int:
    raw = request.param(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise validation(f"Invalid {name}: {raw!r} is not an integer") from exc


__all__ = ["UNMODELLED", "Surface", "unmodelled_type"]
