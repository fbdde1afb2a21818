"""HubSpot's older and marketing endpoints, answered from the world's activity columns:
marketing e-mail events (``/email/public/v1/events``), forms and their submissions
(``/form-integrations/v1``), and web analytics events (``/events/v3/events``, which
needs an Enterprise hub).

Events are never stored as Python objects: a time-sorted index over the activity
rows is built on first use and rebuilt only when simulated activity is added.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import numpy as np

from connectors.sandbox.framework import JSONValue, Request, Response, iso_ms
from connectors.sandbox.hubspot.errors import HsError, validation
from connectors.sandbox.hubspot.search import to_ms
from connectors.sandbox.hubspot.store import Store
from connectors.sandbox.world import ACTIVITY_TYPES, CAMPAIGNS, FORMS, PAGES, SITE

__all__ = ["PAGES", "Legacy"]

PORTAL_ID = 24_600_007
CAMPAIGN_BASE = 310_000_100
_K = {name: i for i, name in enumerate(ACTIVITY_TYPES)}
_EMAIL_TYPES = {
    _K["email_send"]: "SENT",
    _K["email_open"]: "OPEN",
    _K["email_click"]: "CLICK",
    _K["unsubscribe"]: "STATUSCHANGE",
}
_WEB_TYPES = {_K["page_view"]: "e_visited_page", _K["form_submit"]: "e_submitted_form"}
_NS = uuid.UUID("6f1c1e59-3c55-4d1e-9a53-3a7cf0f1e001")
FORM_IDS = {name: str(uuid.uuid5(_NS, "form:" + name)) for name in FORMS}
_FORM_BY_ID = {v: k for k, v in FORM_IDS.items()}

Handler = Callable[[Request, list[str]], Response]


class _Index:
    """Activity rows of some kinds, base world plus simulated, sorted by time."""

    def __init__(self, store: Store, kinds: tuple[int, ...]) -> None:
        acts = store.world.activities
        rows = np.flatnonzero(np.isin(acts.kind, kinds))
        extra = [e for e in store.extra if e.kind in kinds]
        self.person = np.concatenate(
            [acts.person[rows], np.array([e.person for e in extra], dtype=np.int32)]
        )
        self.kind = np.concatenate(
            [acts.kind[rows], np.array([e.kind for e in extra], dtype=np.uint8)]
        )
        self.ts = np.concatenate([acts.ts[rows], np.array([e.ts for e in extra], dtype=np.float64)])
        self.detail = np.concatenate(
            [acts.detail[rows], np.array([e.detail for e in extra], dtype=np.int32)]
        )
        self.key = np.concatenate(
            [rows.astype(np.int64), -1 - np.arange(len(extra), dtype=np.int64)]
        )
        order = np.argsort(self.ts, kind="stable")
        for name in ("person", "kind", "ts", "detail", "key"):
            setattr(self, name, getattr(self, name)[order])
        self.size = len(store.extra)


class Legacy:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._indexes: dict[tuple[int, ...], _Index] = {}

    def _index(self, kinds: tuple[int, ...]) -> _Index:
        idx = self._indexes.get(kinds)
        if idx is None or idx.size != len(self.store.extra):
            idx = _Index(self.store, kinds)
            self._indexes[kinds] = idx
        return idx

    def route(self, method: str, parts: list[str], tier: str) -> Handler | None:
        if method != "GET":
            return None
        if parts == ["email", "public", "v1", "events"]:
            return self._email_events
        if parts in (["marketing", "v3", "forms"], ["forms", "v2", "forms"]):
            return self._forms_v3 if parts[0] == "marketing" else self._forms_v2
        if parts[:4] == ["form-integrations", "v1", "submissions", "forms"] and len(parts) == 5:
            form_id = parts[4]
            return lambda request, _args: self._submissions(request, form_id)
        if parts[:3] == ["events", "v3", "events"]:
            if tier != "enterprise":
                return self._not_enterprise
            if len(parts) == 3:
                return self._web_events
            if parts[3:] == ["event-types"]:
                return self._event_types
        return None

    # ------------------------------------------------------------ helpers
    def _email_of(self, person: int) -> str:
        return self.store.world.people[person].email

    def _ok(self, payload: object) -> Response:
        return Response.json(200, payload, {"X-HubSpot-Correlation-Id": str(uuid.uuid4())})

    @staticmethod
    def _int(
        request: Request, name: str, default: int, *, low: int = 0, high: int | None = None
    ) -> int:
        raw = request.param(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError as exc:
            raise validation(f"Invalid {name}: {raw!r} is not an integer") from exc
        if value < low:
            raise validation(f"Invalid {name}: must be at least {low}")
        return min(value, high) if high is not None else value

    # ---------------------------------------------------------- e-mail events
    def _email_events(self, request: Request, _args: list[str]) -> Response:
        idx = self._index(tuple(sorted(_EMAIL_TYPES)))
        start = self._int(request, "startTimestamp", 0)
        end = self._int(request, "endTimestamp", 2**62)
        limit = max(1, self._int(request, "limit", 100, high=1000))
        offset = self._int(request, "offset", -1, low=-1)
        event_type = (request.param("eventType") or "").upper()
        recipient = (request.param("recipient") or "").lower()
        campaign = request.param("campaignId")
        lo = int(np.searchsorted(idx.ts * 1000.0, start, side="left"))
        hi = int(np.searchsorted(idx.ts * 1000.0, end, side="left"))
        pos = max(lo, offset + 1) if offset >= 0 else lo
        events: list[dict[str, JSONValue]] = []
        last = pos - 1
        while pos < hi and len(events) < limit:
            kind = int(idx.kind[pos])
            person = int(idx.person[pos])
            detail = int(idx.detail[pos])
            ok = True
            if (
                (event_type and _EMAIL_TYPES[kind] != event_type)
                or (recipient and self._email_of(person).lower() != recipient)
                or (campaign and str(CAMPAIGN_BASE + max(detail, 0)) != campaign)
            ):
                ok = False
            if ok:
                events.append(self._email_event(idx, pos))
            last = pos
            pos += 1
        payload = {"hasMore": pos < hi, "offset": str(last), "events": events}
        return self._ok(payload)

    def _email_event(self, idx: _Index, pos: int) -> dict[str, JSONValue]:
        kind = int(idx.kind[pos])
        person = int(idx.person[pos])
        detail = max(int(idx.detail[pos]), 0)
        created = round(float(idx.ts[pos]) * 1000.0)
        key = int(idx.key[pos])
        event: dict[str, JSONValue] = {
            "id": str(uuid.uuid5(_NS, f"email-event:{key}:{created}")),
            "appId": 113,
            "appName": "BatchEmail",
            "portalId": PORTAL_ID,
            "created": created,
            "type": _EMAIL_TYPES[kind],
            "recipient": self._email_of(person),
            "emailCampaignId": CAMPAIGN_BASE + detail,
            "sentBy": {"id": str(uuid.uuid5(_NS, f"send:{person}:{detail}")), "created": created},
        }
        if kind == _K["email_click"]:
            event["url"] = SITE + "/pricing"
        elif kind == _K["email_open"]:
            event["browser"] = {"name": "Microsoft Outlook", "family": "Outlook"}
        elif kind == _K["unsubscribe"]:
            event["subscriptions"] = [{"id": 4_100_001, "status": "UNSUBSCRIBED"}]
            event["source"] = "SOURCE_RECIPIENT"
        if kind == _K["email_open"] or kind == _K["email_click"]:
            event["subject"] = CAMPAIGNS[detail] if detail < len(CAMPAIGNS) else ""
        return event

    # ------------------------------------------------------------------ forms
    def _form_json(self, name: str) -> dict[str, Any]:
        created = self.store.world.now - self.store.world.days * 86_400.0 - 30 * 86_400.0
        return {
            "id": FORM_IDS[name],
            "name": name.replace("-", " ").capitalize(),
            "formType": "hubspot",
            "createdAt": iso_ms(created),
            "updatedAt": iso_ms(created),
            "archived": False,
            "fieldGroups": [
                {
                    "groupType": "default_group",
                    "richTextType": "text",
                    "fields": [
                        {
                            "objectTypeId": "0-1",
                            "name": f,
                            "label": f.capitalize(),
                            "required": f == "email",
                            "hidden": False,
                            "fieldType": "single_line_text",
                        }
                        for f in ("email", "firstname", "lastname")
                    ],
                }
            ],
        }

    def _forms_v3(self, request: Request, _args: list[str]) -> Response:
        return self._ok({"results": [self._form_json(n) for n in FORMS]})

    def _forms_v2(self, request: Request, _args: list[str]) -> Response:
        out = []
        for name in FORMS:
            j = self._form_json(name)
            created = round(to_ms(j["createdAt"]) or 0)
            out.append(
                {
                    "portalId": PORTAL_ID,
                    "guid": j["id"],
                    "name": j["name"],
                    "createdAt": created,
                    "updatedAt": created,
                    "formFieldGroups": [],
                }
            )
        return Response.json(200, out, {"X-HubSpot-Correlation-Id": str(uuid.uuid4())})

    def _submissions(self, request: Request, form_id: str) -> Response:
        name = _FORM_BY_ID.get(form_id)
        if name is None:
            raise HsError(404, "OBJECT_NOT_FOUND", f"Form {form_id} does not exist")
        form = FORMS.index(name)
        idx = self._index((_K["form_submit"],))
        rows = np.flatnonzero(idx.detail == form)[::-1]  # newest first
        limit = max(1, self._int(request, "limit", 20, high=50))
        after = self._int(request, "after", 0)
        page = rows[after : after + limit]
        people = self.store.world.people
        results: list[JSONValue] = []
        for pos in page:
            p = people[int(idx.person[pos])]
            submitted = round(float(idx.ts[pos]) * 1000.0)
            results.append(
                {
                    "conversionId": str(
                        uuid.uuid5(_NS, f"conversion:{int(idx.key[pos])}:{submitted}")
                    ),
                    "submittedAt": submitted,
                    "pageUrl": f"{SITE}/{name}",
                    "values": [
                        {"name": "email", "value": p.email},
                        {"name": "firstname", "value": p.first_name},
                        {"name": "lastname", "value": p.last_name},
                    ],
                }
            )
        payload: dict[str, JSONValue] = {"results": results}
        if after + limit < len(rows):
            nxt = str(after + limit)
            host = request.headers.get("host", "127.0.0.1")
            query = [(k, x) for k, v in request.query.items() if k != "after" for x in v]
            query.append(("after", nxt))
            payload["paging"] = {
                "next": {"after": nxt, "link": f"http://{host}{request.path}?{urlencode(query)}"}
            }
        return self._ok(payload)

    # ------------------------------------------------------- web analytics
    def _not_enterprise(self, request: Request, _args: list[str]) -> Response:
        raise HsError(
            403,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call. "
            "Web analytics events need a Marketing Hub Enterprise account.",
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredScopes": ["analytics.behavioral_events.read"]},
                }
            ],
        )

    def _event_types(self, request: Request, _args: list[str]) -> Response:
        return self._ok({"eventTypes": sorted(_WEB_TYPES.values())})

    def _web_events(self, request: Request, _args: list[str]) -> Response:
        object_type = (request.param("objectType") or "contact").lower()
        if object_type not in ("contact", "contacts", "0-1"):
            return self._ok({"results": []})
        event_type = request.param("eventType")
        kinds = tuple(sorted(k for k, v in _WEB_TYPES.items() if event_type in (None, v)))
        if not kinds:
            return self._ok({"results": []})
        idx = self._index(kinds)
        after_ms = to_ms(request.param("occurredAfter") or "0") or 0.0
        before_raw = request.param("occurredBefore")
        before_ms = to_ms(before_raw) if before_raw else None
        limit = max(1, self._int(request, "limit", 100, high=1000))
        start = self._int(request, "after", 0)
        ts_ms = idx.ts * 1000.0
        mask = (
            ts_ms > after_ms if request.param("occurredAfter") else np.ones(len(ts_ms), dtype=bool)
        )
        if before_ms is not None:
            mask &= ts_ms < before_ms
        object_id = request.param("objectId")
        email = request.param("objectProperty.email")
        if object_id or email:
            persons = self._persons_for(object_id, email)
            mask &= np.isin(idx.person, persons)
        positions = np.flatnonzero(mask)
        sort = (request.param("sort") or "ASCENDING").upper()
        if sort.startswith("DESC") or sort.startswith("-"):
            positions = positions[::-1]
        page = positions[start : start + limit]
        results: list[JSONValue] = []
        for pos in page:
            kind = int(idx.kind[pos])
            person = int(idx.person[pos])
            detail = int(idx.detail[pos])
            occurred = float(idx.ts[pos])
            props: dict[str, str] = {}
            if kind == _K["page_view"]:
                url = PAGES[detail] if 0 <= detail < len(PAGES) else SITE
                props = {"hs_url": url, "hs_page_title": url.rsplit("/", 1)[-1] or "Home"}
            else:
                form = FORMS[detail] if 0 <= detail < len(FORMS) else ""
                props = {"hs_form_id": FORM_IDS.get(form, ""), "hs_form_title": form}
            results.append(
                {
                    "objectType": "CONTACT",
                    "objectId": str(self.store.contact_id_of_person(person)),
                    "eventType": _WEB_TYPES[kind],
                    "occurredAt": iso_ms(occurred),
                    "id": str(uuid.uuid5(_NS, f"web:{int(idx.key[pos])}:{occurred}")),
                    "properties": props,
                }
            )
        payload: dict[str, JSONValue] = {"results": results}
        if start + limit < len(positions):
            payload["paging"] = {"next": {"after": str(start + limit)}}
        return self._ok(payload)

    def _persons_for(self, object_id: str | None, email: str | None) -> list[int]:
        store = self.store
        table = store.tables["contacts"]
        slot: int | None = None
        if object_id and object_id.isdigit():
            slot = table.slot_of(store.resolve("contacts", int(object_id)))
        elif email:
            slot = table.owner_of("email", email)
        if slot is None:
            return []
        contact_id = int(table.ids[slot])
        return [*store._seed_person(contact_id), *store.persons_of.get(contact_id, [])]
