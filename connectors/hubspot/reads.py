"""Reading contacts, their changes and their engagement from HubSpot.

Incremental reads follow the rules learnt the hard way by other HubSpot readers
(``docs/crm-api-notes.md``, "Search" and "What peers got wrong"):

* ``lastmodifieddate >= cursor - look_back`` (the search index lags writes by
  seconds; a contact indexed late is caught by the next run's look-back) and
  ``<= until`` (the sync's start: the cursor never passes it);
* no ``after`` paging at all: every request is "ids greater than the last one seen,
  sorted by ``hs_object_id`` ascending, 200 at a time". The 10,000-result cap of one
  query never applies, thousands of contacts sharing one timestamp are read in id
  order, and because the last id strictly increases the run cannot loop;
* contacts re-read because of the look-back are skipped when the cursor's boundary
  map says this exact version was already delivered (``id → lastmodifieddate``), and
  so are echoes of our own score writes (``own_writes.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import CRMResponseError, EventRecord
from connectors.hubspot.transport import HubSpotTransport
from connectors.hubspot.values import to_datetime, to_epoch_ms, to_number, to_text
from connectors.runtime import RecordRejected

LIST_PAGE = 100
SEARCH_PAGE = 200
BATCH_READ = 100
ASSOC_BATCH = 1000
EMAIL_EVENTS_PAGE = 1000
FORM_PAGE = 50

Raw = Mapping[str, Any]

ENGAGEMENT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "calls": ("hs_timestamp", "hs_call_direction", "hs_call_status", "hs_call_duration"),
    "emails": ("hs_timestamp", "hs_email_direction", "hs_email_status", "hs_email_subject"),
    "meetings": ("hs_timestamp", "hs_meeting_outcome", "hs_meeting_title"),
    "notes": ("hs_timestamp",),
}

MARKETING_EMAIL_TYPES = {
    "SENT": "email_send",
    "OPEN": "email_open",
    "CLICK": "email_click",
    "UNSUBSCRIBED": "unsubscribe",
    "STATUSCHANGE": "unsubscribe",  # a subscription status change by the recipient
}


def page_results(data: Any) -> tuple[list[Raw], str | None]:
    if not isinstance(data, Mapping):
        raise CRMResponseError("hubspot: expected a JSON object with results")
    results = data.get("results")
    if not isinstance(results, list):
        raise CRMResponseError("hubspot: the answer has no results list")
    paging = data.get("paging")
    after = None
    if isinstance(paging, Mapping):
        nxt = paging.get("next")
        if isinstance(nxt, Mapping) and nxt.get("after") not in (None, ""):
            after = str(nxt["after"])
    return [r for r in results if isinstance(r, Mapping)], after


def list_all(
    t: HubSpotTransport, object_type: str, properties: Sequence[str]
) -> Iterator[list[Raw]]:
    """Every live object of a type through the list endpoint, 100 per page."""
    api = t.api("crm.objects.basic_api")
    after: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "limit": LIST_PAGE,
            "properties": list(properties),
            "archived": False,
        }
        if after is not None:
            kwargs["after"] = after
        reply = t.call(f"list {object_type}", api.get_page, object_type, **kwargs)
        results, after = page_results(reply.data)
        t.rows_read[f"list {object_type}"] += len(results)
        yield results
        if after is None:
            return


def list_archived(t: HubSpotTransport, object_type: str) -> Iterator[Raw]:
    api = t.api("crm.objects.basic_api")
    after: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": LIST_PAGE, "archived": True}
        if after is not None:
            kwargs["after"] = after
        reply = t.call(f"list archived {object_type}", api.get_page, object_type, **kwargs)
        results, after = page_results(reply.data)
        t.rows_read[f"list archived {object_type}"] += len(results)
        yield from results
        if after is None:
            return


def search_window(
    t: HubSpotTransport,
    object_type: str,
    *,
    modified_prop: str,
    since: datetime,
    until: datetime | None,
    properties: Sequence[str],
) -> Iterator[list[Raw]]:
    """Objects with ``since <= modified <= until``, windowed on ``hs_object_id``."""
    api = t.api("crm.objects.search_api")
    last_id = 0
    while True:
        filters: list[dict[str, Any]] = [
            {"propertyName": modified_prop, "operator": "GTE", "value": to_epoch_ms(since)}
        ]
        if until is not None:
            filters.append(
                {"propertyName": modified_prop, "operator": "LTE", "value": to_epoch_ms(until)}
            )
        filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)})
        body = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": list(properties),
            "limit": SEARCH_PAGE,
        }
        reply = t.call(f"search {object_type}", api.do_search, object_type, body, search=True)
        results, _ = page_results(reply.data)
        t.rows_read[f"search {object_type}"] += len(results)
        ids = [_object_id(r) for r in results]
        if ids and min(ids) <= last_id:
            # never loop: a search that does not move forward is a broken answer
            raise CRMResponseError(
                f"hubspot search {object_type}: ids did not increase past {last_id}"
            )
        if results:
            yield results
        total = reply.data.get("total") if isinstance(reply.data, Mapping) else None
        if len(results) < SEARCH_PAGE or (isinstance(total, int) and total <= len(results)):
            return
        last_id = max(ids)


def newest(
    t: HubSpotTransport,
    object_type: str,
    *,
    modified_prop: str,
    since: datetime,
    properties: Sequence[str] = (),
    limit: int = 1,
) -> tuple[int, list[Raw]]:
    """How many objects the index holds with ``modified >= since`` (search's
    ``total``), and the ``limit`` most recently modified of them, newest first: one
    search call."""
    api = t.api("crm.objects.search_api")
    body = {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": modified_prop, "operator": "GTE", "value": to_epoch_ms(since)}
                ]
            }
        ],
        "sorts": [{"propertyName": modified_prop, "direction": "DESCENDING"}],
        "properties": list(dict.fromkeys([modified_prop, *properties])),
        "limit": limit,
    }
    reply = t.call(f"count {object_type}", api.do_search, object_type, body, search=True)
    results, _ = page_results(reply.data)
    total = reply.data.get("total") if isinstance(reply.data, Mapping) else None
    if not isinstance(total, int) or isinstance(total, bool):
        raise CRMResponseError(f"hubspot search {object_type}: the answer has no total")
    t.rows_read[f"count {object_type}"] += len(results)
    return total, results


def _object_id(raw: Raw) -> int:
    try:
        return int(str(raw.get("id")))
    except ValueError:
        raise CRMResponseError(f"hubspot: object id {raw.get('id')!r} is not a number") from None


def batch_read(
    t: HubSpotTransport,
    object_type: str,
    ids: Sequence[str],
    properties: Sequence[str],
    *,
    id_property: str | None = None,
) -> list[Raw]:
    """Objects by id (100 per call); unknown ids (a 207) are left out."""
    api = t.api("crm.objects.batch_api")
    out: list[Raw] = []
    for start in range(0, len(ids), BATCH_READ):
        chunk = ids[start : start + BATCH_READ]
        body: dict[str, Any] = {
            "properties": list(properties),
            "propertiesWithHistory": [],
            "inputs": [{"id": i} for i in chunk],
        }
        if id_property:
            body["idProperty"] = id_property
        reply = t.call(f"batch read {object_type}", api.read, object_type, body, expect=(200, 207))
        results, _ = page_results(reply.data)
        t.rows_read[f"batch read {object_type}"] += len(results)
        out.extend(results)
    return out


def associations(
    t: HubSpotTransport, from_type: str, to_type: str, ids: Sequence[str]
) -> dict[str, list[str]]:
    """``from id → [to ids]`` through v4 batch associations (1,000 ids per call)."""
    api = t.api("crm.associations.v4.batch_api")
    out: dict[str, list[str]] = defaultdict(list)
    pending: list[dict[str, Any]] = [{"id": i} for i in dict.fromkeys(ids)]
    while pending:
        chunk, pending = pending[:ASSOC_BATCH], pending[ASSOC_BATCH:]
        reply = t.call(
            f"associations {from_type}->{to_type}",
            api.get_page,
            from_type,
            to_type,
            {"inputs": chunk},
            expect=(200, 207),
        )
        results, _ = page_results(reply.data)
        t.rows_read[f"associations {from_type}->{to_type}"] += len(chunk)
        for result in results:
            source = result.get("from")
            from_id = str(source.get("id")) if isinstance(source, Mapping) else None
            if from_id is None:
                continue
            for link in result.get("to") or []:
                if isinstance(link, Mapping) and link.get("toObjectId") is not None:
                    out[from_id].append(str(link["toObjectId"]))
            _, after = page_results({"results": [], "paging": result.get("paging")})
            if after is not None:  # more than one page of links for this object
                pending.append({"id": from_id, "after": after})
    return {k: list(dict.fromkeys(v)) for k, v in out.items()}


# ------------------------------------------------------------------------ engagement


def engagement_event(object_type: str, raw: Raw, contact_id: str) -> EventRecord | None:
    props = raw.get("properties") or {}
    occurred = to_datetime(props.get("hs_timestamp")) or to_datetime(props.get("hs_createdate"))
    if occurred is None:
        return None
    attrs: dict[str, Any] = {"source": f"hubspot_{object_type}"}
    if object_type == "calls":
        type_ = "call"
        for key, prop in (("direction", "hs_call_direction"), ("status", "hs_call_status")):
            value = to_text(props.get(prop))
            if value:
                attrs[key] = value.lower()
        duration = to_number(props.get("hs_call_duration"))
        if duration is not None:
            attrs["duration_ms"] = duration
    elif object_type == "emails":
        direction = to_text(props.get("hs_email_direction")) or "EMAIL"
        type_ = "email_reply" if direction == "INCOMING_EMAIL" else "email_send"
        subject = to_text(props.get("hs_email_subject"))
        if subject:
            attrs["subject"] = subject
    elif object_type == "meetings":
        outcome = (to_text(props.get("hs_meeting_outcome")) or "").upper()
        type_ = "meeting_cancelled" if outcome in ("CANCELED", "CANCELLED") else "meeting_booked"
        if outcome:
            attrs["outcome"] = outcome.lower()
    else:
        type_ = "note"
    object_id = str(raw.get("id"))
    return EventRecord(
        id=f"hs-{object_type}:{object_id}:{contact_id}",
        contact_id=contact_id,
        type=type_,
        occurred_at=occurred,
        attributes=attrs,
    )


def engagement_events(
    t: HubSpotTransport, contact_ids: Sequence[str], *, since: datetime
) -> list[EventRecord]:
    events: list[EventRecord] = []
    for object_type, properties in ENGAGEMENT_PROPERTIES.items():
        links = associations(t, "contacts", object_type, contact_ids)
        wanted = list(dict.fromkeys(i for ids in links.values() for i in ids))
        if not wanted:
            continue
        objects = {str(r.get("id")): r for r in batch_read(t, object_type, wanted, properties)}
        for contact_id, ids in links.items():
            for object_id in ids:
                raw = objects.get(object_id)
                if raw is None:
                    continue
                event = engagement_event(object_type, raw, contact_id)
                if event is not None and event.occurred_at >= since:
                    events.append(event)
    return events


class SourceUnavailable(Exception):
    """An optional event source answered 403/404 (not on this portal or tier)."""


# (canonical type, created epoch ms, event id, campaign id, url)
_MailEvent = tuple[str, Any, str, Any, Any]


@dataclass
class EmailEvents:
    """Marketing e-mail events of one time window, by recipient, read once per run.

    A full read holds the whole window's events (about ten per contact) until their
    contacts come by, so each is kept as a small tuple of what ``events_for`` needs
    (event type, created ms, id, campaign id, url), not as the parsed JSON object,
    which is several times larger."""

    by_recipient: dict[str, list[_MailEvent]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def read(cls, t: HubSpotTransport, since: datetime, until: datetime | None) -> EmailEvents:
        out = cls()
        offset: str | None = None
        while True:
            query: dict[str, Any] = {
                "startTimestamp": to_epoch_ms(since),
                "limit": EMAIL_EVENTS_PAGE,
            }
            if until is not None:
                query["endTimestamp"] = to_epoch_ms(until)
            if offset is not None:
                query["offset"] = offset
            reply = optional_get(t, "marketing e-mail events", "/email/public/v1/events", query)
            data = reply if isinstance(reply, Mapping) else {}
            t.rows_read["marketing e-mail events"] += len(data.get("events") or [])
            for event in data.get("events") or []:
                if not (isinstance(event, Mapping) and isinstance(event.get("recipient"), str)):
                    continue
                type_ = MARKETING_EMAIL_TYPES.get(str(event.get("type", "")).upper())
                if type_ is None:
                    continue  # a type no model scores (deferred, dropped, ...)
                out.by_recipient[event["recipient"].strip().lower()].append(
                    (
                        type_,
                        event.get("created"),
                        str(event.get("id")),
                        event.get("emailCampaignId"),
                        event.get("url"),
                    )
                )
            offset = to_text(data.get("offset"))
            if not data.get("hasMore") or offset is None:
                return out

    def events_for(self, contact_id: str, email: str | None, since: datetime) -> list[EventRecord]:
        if not email:
            return []
        out: list[EventRecord] = []
        for type_, created, event_id, campaign_id, url in self.by_recipient.get(
            email.strip().lower(), ()
        ):
            occurred = _ms_datetime(created)
            if occurred is None or occurred < since:
                continue
            attrs: dict[str, Any] = {"source": "hubspot_marketing_email"}
            if campaign_id not in (None, ""):
                attrs["campaign_id"] = campaign_id
            if url not in (None, ""):
                attrs["url"] = url
            out.append(
                EventRecord(
                    id=f"hs-mkt-email:{event_id}",
                    contact_id=contact_id,
                    type=type_,
                    occurred_at=occurred,
                    attributes=attrs,
                )
            )
        return out


@dataclass
class FormSubmissions:
    """Form submissions newer than ``since``, by submitter e-mail, read once per run."""

    by_email: dict[str, list[tuple[str, str, Raw]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    @classmethod
    def read(cls, t: HubSpotTransport, since: datetime) -> FormSubmissions:
        out = cls()
        for form_id, form_name in _forms(t):
            after: str | None = None
            while True:
                query: dict[str, Any] = {"limit": FORM_PAGE}
                if after is not None:
                    query["after"] = after
                data = optional_get(
                    t,
                    "form submissions",
                    f"/form-integrations/v1/submissions/forms/{form_id}",
                    query,
                )
                results, after = page_results(data)
                older = False
                t.rows_read[f"form submissions {form_id}"] += sum(
                    1 for sub in results if (_ms_datetime(sub.get("submittedAt")) or since) >= since
                )
                for sub in results:
                    when = _ms_datetime(sub.get("submittedAt"))
                    if when is None or when < since:
                        older = True  # newest first: the rest are older still
                        continue
                    email = _submission_email(sub)
                    if email:
                        out.by_email[email].append((form_id, form_name, sub))
                if older or after is None:
                    break
        return out

    def events_for(self, contact_id: str, email: str | None) -> list[EventRecord]:
        if not email:
            return []
        out: list[EventRecord] = []
        for form_id, form_name, sub in self.by_email.get(email.strip().lower(), ()):
            when = _ms_datetime(sub.get("submittedAt"))
            if when is None:
                continue
            attrs: dict[str, Any] = {"source": "hubspot_forms", "form": form_name}
            if sub.get("pageUrl"):
                attrs["page_url"] = sub["pageUrl"]
            out.append(
                EventRecord(
                    id=f"hs-form:{form_id}:{sub.get('conversionId') or sub.get('submittedAt')}",
                    contact_id=contact_id,
                    type="form_submit",
                    occurred_at=when,
                    attributes=attrs,
                )
            )
        return out


def _forms(t: HubSpotTransport) -> list[tuple[str, str]]:
    api = t.api("marketing.forms.forms_api")
    forms: list[tuple[str, str]] = []
    after: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": 100}
        if after is not None:
            kwargs["after"] = after
        try:
            reply = t.call("list forms", api.get_page, **kwargs)
        except RecordRejected as exc:  # 404: no forms API on this portal
            raise SourceUnavailable(str(exc)) from None
        results, after = page_results(reply.data)
        for form in results:
            if form.get("id") is not None:
                forms.append((str(form["id"]), str(form.get("name") or form["id"])))
        if after is None:
            return forms


def optional_get(t: HubSpotTransport, what: str, path: str, query: Mapping[str, Any]) -> Any:
    try:
        return t.legacy_get(what, path, query).data
    except RecordRejected as exc:
        raise SourceUnavailable(str(exc)) from None
    except CRMResponseError as exc:
        if "forbidden" in str(exc):
            raise SourceUnavailable(str(exc)) from None
        raise


def web_analytics_events(
    t: HubSpotTransport, contact_ids: Iterable[str], *, since: datetime
) -> list[EventRecord]:
    """Page views from ``/events/v3/events`` (Enterprise): one paged call per contact."""
    api = t.api("events.events_api")
    out: list[EventRecord] = []
    for contact_id in contact_ids:
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "object_type": "contact",
                "object_id": int(contact_id),
                "occurred_after": since,
                "limit": 100,
            }
            if after is not None:
                kwargs["after"] = after
            reply = t.call("web analytics events", api.get_page, **kwargs)
            results, after = page_results(reply.data)
            for raw in results:
                occurred = to_datetime(raw.get("occurredAt"))
                if occurred is None or occurred < since:
                    continue
                name = str(raw.get("eventType") or "")
                props = raw.get("properties") or {}
                attrs: dict[str, Any] = {"source": "hubspot_web_analytics", "event_type": name}
                url = props.get("hs_url") if isinstance(props, Mapping) else None
                if url:
                    attrs["url"] = url
                out.append(
                    EventRecord(
                        id=f"hs-web:{raw.get('id')}",
                        contact_id=contact_id,
                        type="page_view" if "visited_page" in name or url else name,
                        occurred_at=occurred,
                        attributes=attrs,
                    )
                )
            if after is None:
                break
    return out


def _ms_datetime(value: Any) -> datetime | None:
    number = to_number(value)
    if number is None:
        return to_datetime(value)
    return datetime.fromtimestamp(float(number) / 1000, tz=UTC)


def _submission_email(sub: Raw) -> str | None:
    for item in sub.get("values") or []:
        if isinstance(item, Mapping) and str(item.get("name", "")).lower() == "email":
            value = to_text(item.get("value"))
            return value.lower() if value else None
    return None


def look_back(moment: datetime, seconds: float) -> datetime:
    return moment - timedelta(seconds=seconds)
