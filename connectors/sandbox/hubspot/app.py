"""``HubSpotSandbox``: a fake HubSpot account that the official client cannot tell
from the real one on the calls leadsync makes, limits and failures included.

Built from the CRM's published behaviour (``docs/crm-api-notes.md``, HubSpot), never from what a
connector happens to need. Every request passes auth, then the rate limits, then
the route; every answer carries HubSpot's headers and error shapes.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

import numpy as np

from connectors.sandbox.framework import (
    BadRequestBody,
    Clock,
    Request,
    Response,
    SystemClock,
    iso_ms,
)
from connectors.sandbox.hubspot import legacy, pipelines, search
from connectors.sandbox.hubspot.errors import (
    HsError,
    not_found_entry,
    property_errors,
    validation,
)
from connectors.sandbox.hubspot.limits import Limits, Tokens
from connectors.sandbox.hubspot.schema import (
    ALWAYS_RETURNED,
    ASSOCIATION_TYPE_IDS,
    DEFAULT_PROPERTIES,
    OBJECT_TYPES,
    REQUIRED_ON_CREATE,
    TYPE_ID_TO_PAIR,
    PropertyDef,
    association_type_name,
    normalise_object_type,
)
from connectors.sandbox.hubspot.search import to_ms
from connectors.sandbox.hubspot.store import ExtraActivity, Store, build_store
from connectors.sandbox.hubspot.surface import Surface
from connectors.sandbox.hubspot.table import Props, Table
from connectors.sandbox.world import (
    ACTIVITY_TYPES,
    CAMPAIGNS,
    FORMS,
    SimulatedEvent,
    World,
    generate_world,
)

MAX_BATCH = 100
MAX_ASSOC_BATCH = 1000
MAX_LIST = 100
MAX_UNIQUE_PROPERTIES = 10
BATCH_LIMIT_MESSAGE = (
    "The maximum number of inputs supported in a batch is 100. "
    "Please reduce the number of items and try again"
)
_ID = re.compile(r"^\d+$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
_PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PROPERTY_TYPES = {"string", "number", "date", "datetime", "enumeration", "bool"}
_FIELD_TYPES = {
    "text",
    "textarea",
    "number",
    "select",
    "radio",
    "checkbox",
    "booleancheckbox",
    "date",
    "file",
    "phonenumber",
    "html",
    "calculation_equation",
}
_KIND = {name: i for i, name in enumerate(ACTIVITY_TYPES)}
_PRICING = tuple(i for i, url in enumerate(legacy.PAGES) if "/pricing" in url or "/plans" in url)

Handler = Callable[[Request, list[str]], Response]


def _str_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class HubSpotSandbox:
    """One fake HubSpot portal (a ``framework.Flavour``). Thread-safe."""

    name = "hubspot"

    def __init__(
        self,
        *,
        world: World | None = None,
        contacts: int = 2000,
        seed: int = 7,
        tier: str = "pro",
        tokens: Sequence[str] = ("sandbox-token",),
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",
        refresh_token: str = "sandbox-refresh",
        clock: Clock | None = None,
        search_lag_seconds: float = 3.0,
        days: int = 180,
    ) -> None:
        if search_lag_seconds < 0:
            raise ValueError("search_lag_seconds: must not be negative")
        self.clock: Clock = clock or SystemClock()
        # A world of its own is drawn relative to the sandbox's clock.
        self.world = (
            world
            if world is not None
            else generate_world(contacts, seed=seed, now=self.clock.now(), days=days)
        )
        self.seed = seed
        self.tier = tier
        self.search_lag_seconds = float(search_lag_seconds)
        self.limits = Limits(tier, seed=seed)
        self.tokens = Tokens(
            tuple(tokens),
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
        )
        self._lock = threading.RLock()
        self.store: Store = build_store(self.world, lag=self.search_lag_seconds, seed=seed)
        self.legacy = legacy.Legacy(self.store)
        self.surface = Surface(self)

    # ------------------------------------------------------------ Flavour API
    def reset(self) -> None:
        with self._lock:
            self.store = build_store(self.world, lag=self.search_lag_seconds, seed=self.seed)
            self.legacy = legacy.Legacy(self.store)
            self.limits.reset()
            self.tokens.reset()

    def expire_credentials(self) -> None:
        with self._lock:
            self.tokens.expire_all(self._now())

    def route_key(self, request: Request) -> str:
        parts = [p for p in request.path.split("/") if p]
        out: list[str] = []
        for i, part in enumerate(parts):
            by_property = (
                i == 4
                and parts[:3] == ["crm", "v3", "objects"]
                and part not in ("search", "batch", "merge")
            )
            if (
                by_property
                or _ID.match(part)
                or (i >= 1 and parts[i - 1] == "forms" and "-" in part)
            ):
                out.append("{id}")
            elif i == 4 and parts[:2] == ["crm", "v3"] and parts[2] == "properties":
                out.append("{name}")
            else:
                out.append(part)
        return f"{request.method} /" + "/".join(out)

    def is_write(self, request: Request) -> bool:
        if request.method not in ("POST", "PATCH", "PUT", "DELETE"):
            return False
        path = request.path.rstrip("/")
        return not (
            path.endswith("/search") or path.endswith("/batch/read") or path.startswith("/oauth/")
        )

    def error_response(self, request: Request, status: int) -> Response:
        category = "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR"
        messages = {
            502: "Bad Gateway",
            503: "Service Unavailable: the service is temporarily overloaded.",
            504: "Gateway Timeout",
        }
        err = HsError(status, category, messages.get(status, "internal error"))
        return self._error(err)

    def rate_limited_response(self, request: Request) -> Response:
        from connectors.sandbox.hubspot.limits import Verdict

        verdict = Verdict(
            allowed=False,
            policy="TEN_SECONDLY_ROLLING",
            message="You have reached your ten secondly limit.",
        )
        with self._lock:
            verdict.retry_after = self.limits._maybe_retry_after(1.0)
        return self._rate_limited(verdict)

    # --------------------------------------------------------------- entry
    def handle(self, request: Request) -> Response:
        with self._lock:
            try:
                return self._handle(request)
            except HsError as err:
                return self._error(err)
            except BadRequestBody as exc:
                return self._error(validation(f"Invalid input JSON on line 1: {exc}"))

    def _handle(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        parts = [unquote(p) for p in path.split("/") if p]
        if path == "/oauth/v1/token" and request.method == "POST":
            return self._oauth_token(request)
        now = self.clock.now()
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        caller = self.tokens.caller(token, now)
        if caller is None:
            expired = self.tokens.expired_at(token)
            if expired is not None:
                return self._error(_expired_token(expired, now))
            return self._error(
                HsError(
                    401,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                )
            )
        is_search = (
            request.method == "POST"
            and path.endswith("/search")
            and parts[:2]
            == [
                "crm",
                "v3",
            ]
        )
        verdict = self.limits.check(caller, now, search=is_search)
        if not verdict.allowed:
            return self._rate_limited(verdict)
        handler, args = self._route(request.method, parts)
        if handler is None:
            response = self._error(
                HsError(404, "OBJECT_NOT_FOUND", f"No route for {request.method} {request.path}")
            )
        else:
            try:
                response = handler(request, args)
            except HsError as err:
                response = self._error(err)
        if verdict.headers:
            response.headers.update(verdict.headers)
        return response

    def _route(self, method: str, parts: list[str]) -> tuple[Handler | None, list[str]]:
        if (extra := self.surface.route(method, parts)) is not None:
            return extra, []
        n = len(parts)
        if n >= 3 and parts[0] == "crm" and parts[1] == "v3":
            if parts[2] == "objects" and n >= 4:
                obj = normalise_object_type(parts[3])
                if obj is None:
                    return None, []
                rest = parts[4:]
                if not rest:
                    return {"GET": self._list, "POST": self._create}.get(method), [obj]
                if rest == ["search"] and method == "POST":
                    return self._search, [obj]
                if rest == ["merge"] and method == "POST" and obj == "contacts":
                    return self._merge, [obj]
                if len(rest) == 2 and rest[0] == "batch" and method == "POST":
                    op = {
                        "read": self._batch_read,
                        "create": self._batch_create,
                        "update": self._batch_update,
                        "upsert": self._batch_upsert,
                        "archive": self._batch_archive,
                    }.get(rest[1])
                    return op, [obj]
                if len(rest) == 1:
                    return {
                        "GET": self._get,
                        "PATCH": self._update,
                        "DELETE": self._archive,
                    }.get(method), [obj, rest[0]]
                return None, []
            if parts[2] == "properties" and n >= 4:
                obj = normalise_object_type(parts[3])
                if obj is None:
                    return None, []
                if n == 4:
                    return {"GET": self._properties, "POST": self._create_property}.get(method), [
                        obj
                    ]
                if n == 5 and method == "GET":
                    return self._property, [obj, parts[4]]
                return None, []
            if parts[2] == "pipelines" and n >= 4 and method == "GET":
                return self._pipelines, parts[3:]
            if parts[2] == "owners" and method == "GET":
                if n == 3:
                    return self._owners, []
                if n == 4:
                    return self._owner, [parts[3]]
            return None, []
        if n >= 5 and parts[:3] == ["crm", "v4", "associations"]:
            a, b = normalise_object_type(parts[3]), normalise_object_type(parts[4])
            if a is None or b is None:
                return None, []
            if parts[5:] == ["labels"] and method == "GET":
                return self._assoc_labels, [a, b]
            if method != "POST":
                return None, []
            if parts[5:] == ["batch", "read"]:
                return self._assoc_read, [a, b]
            if parts[5:] == ["batch", "create"]:
                return self._assoc_create, [a, b]
            return None, []
        if n >= 6 and parts[:3] == ["crm", "v4", "objects"] and parts[5] == "associations":
            a = normalise_object_type(parts[3])
            if a is None:
                return None, []
            if n == 7 and method == "GET":
                return self._assoc_page, [a, parts[4], parts[6]]
            if n == 8 and method == "PUT":
                return self._assoc_put, [a, parts[4], parts[6], parts[7]]
            if n == 9 and method == "PUT" and parts[6] == "default":
                return self._assoc_put_default, [a, parts[4], parts[7], parts[8]]
            return None, []
        return self.legacy.route(method, parts, self.tier), []

    # ------------------------------------------------------------- helpers
    def _error(self, err: HsError) -> Response:
        body = err.body()
        return Response.json(err.status, body, {"X-HubSpot-Correlation-Id": body["correlationId"]})

    def _rate_limited(self, verdict: Any) -> Response:
        cid = str(uuid.uuid4())
        headers = {"X-HubSpot-Correlation-Id": cid}
        if verdict.retry_after is not None:
            headers["Retry-After"] = str(int(verdict.retry_after))
        return Response.json(429, Limits.body(verdict, cid), headers)

    def _ok(self, status: int, payload: Any) -> Response:
        return Response.json(status, payload, {"X-HubSpot-Correlation-Id": str(uuid.uuid4())})

    def _table(self, obj: str) -> Table:
        return self.store.tables[obj]

    def _now(self) -> float:
        return self.clock.now()

    def _body(self, request: Request) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict):
            raise validation("Invalid input JSON: expected a JSON object")
        return body

    def _wanted(self, obj: str, names: list[str] | None) -> list[str]:
        if not names:
            return list(DEFAULT_PROPERTIES[obj])
        return names

    def _render(
        self,
        obj: str,
        slot: int,
        wanted: list[str],
        *,
        associations: list[str] | None = None,
        search_view: bool = False,
    ) -> dict[str, Any]:
        return self._render_many(
            obj, [slot], wanted, associations=associations, search_view=search_view
        )[0]

    def _render_many(
        self,
        obj: str,
        slots: Sequence[int] | np.ndarray,
        wanted: list[str],
        *,
        associations: list[str] | None = None,
        search_view: bool = False,
    ) -> list[dict[str, Any]]:
        table = self._table(obj)
        records = table.records_json(slots, wanted, ALWAYS_RETURNED[obj], search=search_view)
        if associations:
            for record in records:
                out: dict[str, Any] = {}
                object_id = int(record["id"])
                for name in associations:
                    other = normalise_object_type(name)
                    if other is None or (obj, other) not in ASSOCIATION_TYPE_IDS:
                        continue
                    ids = self.store.associated(obj, object_id, other)
                    if ids:
                        kind = association_type_name(obj, other)
                        out[other] = {"results": [{"id": str(i), "type": kind} for i in ids]}
                if out:
                    record["associations"] = out
        return records

    def _render_written(self, obj: str, written: list[tuple[int, Props]]) -> list[dict[str, Any]]:
        """The records of a batch write, each with the properties it wrote; one
        rendering pass when (as usual) every input wrote the same properties."""
        if not written:
            return []
        names = list(written[0][1])
        if all(list(props) == names for _, props in written):
            return self._render_many(obj, [slot for slot, _ in written], names)
        return [self._render(obj, slot, list(props)) for slot, props in written]

    def _batch_inputs(self, body: dict[str, Any], limit: int = MAX_BATCH) -> list[Any]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise validation("Invalid input JSON: 'inputs' must be a list")
        if len(inputs) > limit:
            if limit == MAX_BATCH:
                raise HsError(400, "VALIDATION_ERROR", BATCH_LIMIT_MESSAGE)
            raise HsError(
                400,
                "VALIDATION_ERROR",
                f"The maximum number of inputs supported in a batch is {limit}. "
                "Please reduce the number of items and try again",
            )
        return inputs

    def _batch_answer(
        self,
        ok_status: int,
        results: list[dict[str, Any]],
        errors: list[dict[str, Any]],
        started: float,
    ) -> Response:
        payload: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso_ms(started),
            "completedAt": iso_ms(self._now()),
        }
        if errors:
            payload["numErrors"] = len(errors)
            payload["errors"] = errors
            return self._ok(207, payload)
        return self._ok(ok_status, payload)

    def _slot_by_id(self, obj: str, raw: Any, *, archived: bool = False) -> int | None:
        text = str(raw).strip()
        if not _ID.match(text):
            return None
        table = self._table(obj)
        object_id = self.store.resolve(obj, int(text))
        slot = table.slot_of(object_id)
        if slot is None or table.gone[slot] or bool(table.archived[slot]) != archived:
            return None
        return slot

    def _slot_by_property(self, obj: str, prop: str, value: Any) -> int | None:
        table = self._table(obj)
        if prop == "hs_object_id":
            return self._slot_by_id(obj, value)
        if prop not in table.unique:
            raise validation(
                f"{prop} is not a unique property of {obj}: idProperty must name a property with unique values"
            )
        slot = table.owner_of(prop, _str_value(value))
        if slot is None or table.gone[slot] or table.archived[slot]:
            return None
        return slot

    # -------------------------------------------------------------- validation
    def _clean_properties(
        self, obj: str, raw: Any, *, creating: bool, slot: int | None = None
    ) -> Props:
        """Check a write's properties as HubSpot does; returns normalised strings."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise validation("Invalid input JSON: 'properties' must be an object")
        table = self._table(obj)
        problems: list[tuple[str, str, str]] = []
        out: Props = {}
        for name, value in raw.items():
            d = table.defs.get(name)
            if d is None:
                problems.append(
                    (name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if d.read_only:
                problems.append(
                    (
                        name,
                        "READ_ONLY_VALUE",
                        f'"{name}" is a read only property; its value cannot be set.',
                    )
                )
                continue
            text = _str_value(value)
            clean, problem = self._check_value(d, text)
            if problem:
                problems.append((name, problem[0], problem[1]))
                continue
            out[name] = clean
        if creating:
            for name in REQUIRED_ON_CREATE.get(obj, ()):
                if not out.get(name):
                    problems.append((name, "REQUIRED", f'Property "{name}" is required'))
        if problems:
            raise property_errors(problems)
        if obj == "deals":
            if creating and not out.get("pipeline"):
                out["pipeline"] = pipelines.DEFAULT_PIPELINE_ID  # as HubSpot does
            if "dealstage" in out:
                out.update(pipelines.deal_stage_properties(out["dealstage"]))
        for name in table.unique:
            value = out.get(name)
            if not value:
                continue
            holder = table.owner_of(name, value)
            if holder is not None and holder != slot:
                holder_id = int(table.ids[holder])
                if obj == "contacts" and name == "email":
                    raise HsError(
                        409, "CONFLICT", f"Contact already exists. Existing ID: {holder_id}"
                    )
                raise HsError(
                    409,
                    "CONFLICT",
                    f"A {OBJECT_TYPES[obj][0]} with {name}={value!r} already exists "
                    f"(the property has unique values). Existing ID: {holder_id}",
                )
        return out

    def _check_value(self, d: PropertyDef, text: str) -> tuple[str, tuple[str, str] | None]:
        if text == "":
            return "", None
        if d.type == "number":
            try:
                float(text)
            except ValueError:
                return text, ("INVALID_DECIMAL", f"{text} was not a valid number.")
            return text, None
        if d.type == "bool":
            low = text.lower()
            if low not in ("true", "false"):
                return text, ("INVALID_BOOLEAN", f"{text} was not a valid boolean (true/false).")
            return low, None
        if d.type in ("datetime", "date"):
            ms = to_ms(text)
            if ms is None and d.type == "date" and _DATE.match(text):
                ms = to_ms(text + "T00:00:00Z")
            if ms is None:
                return text, (
                    "INVALID_DATE",
                    f"{text} was not a valid long or ISO 8601 date-time.",
                )
            iso = iso_ms(ms / 1000.0)
            if d.type == "datetime":
                return iso, None
            # date properties hold midnight UTC only; HubSpot refuses any other time
            rest = round(ms) % 86_400_000
            if rest:
                hours, rest = divmod(rest, 3_600_000)
                minutes, rest = divmod(rest, 60_000)
                seconds, millis = divmod(rest, 1000)
                return text, (
                    "INVALID_DATE",
                    f"{text} is at {hours}:{minutes}:{seconds}.{millis} UTC, not midnight!",
                )
            return iso[:10], None
        if d.type == "enumeration" and d.options:
            values = text.split(";")
            bad = [v for v in values if v not in d.options]
            if bad:
                return text, (
                    "INVALID_OPTION",
                    f"{bad[0]} was not one of the allowed options: {', '.join(d.options[:20])}",
                )
        return text, None

    def _check_associations(self, obj: str, raw: Any) -> list[tuple[str, int]]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise validation("Invalid input JSON: 'associations' must be a list")
        links: list[tuple[str, int]] = []
        for item in raw:
            try:
                to_id = str(item["to"]["id"])
                types = item["types"]
                type_id = int(types[0]["associationTypeId"])
            except (KeyError, TypeError, IndexError, ValueError) as exc:
                raise validation(
                    "Invalid input JSON: an association needs to.id and types[].associationTypeId"
                ) from exc
            pair = TYPE_ID_TO_PAIR.get(type_id)
            if pair is None or pair[0] != obj:
                raise validation(
                    f"association type id {type_id} is not valid for {OBJECT_TYPES[obj][0]}",
                    subCategory="INVALID_ASSOCIATION_TYPE",
                )
            target = pair[1]
            if target not in self.store.tables or self._slot_by_id(target, to_id) is None:
                raise validation(
                    f"One or more associations are invalid: {OBJECT_TYPES[target][0]} {to_id} does not exist",
                    subCategory="INVALID_ASSOCIATION",
                )
            links.append((target, self.store.resolve(target, int(to_id))))
        return links

    def _do_create(self, obj: str, properties: Props, links: list[tuple[str, int]]) -> int:
        table = self._table(obj)
        slot = table.create(properties, self._now())
        object_id = int(table.ids[slot])
        for target, target_id in links:
            self.store.link(obj, object_id, target, target_id)
            self._activity_logged(obj, target, target_id)
        return slot

    def _activity_logged(self, a: str, b: str, b_id: int) -> None:
        """A call, e-mail, meeting or note now associated with a contact updates the
        contact's activity properties, as HubSpot's do ("Last activity date" for all,
        "Last contacted" and the sales-activity stamp for the ones that reach the
        person), so its ``lastmodifieddate`` moves and incremental reads see it.
        ``a`` is the engagement's type and ``b``/``b_id`` the other end. A deal
        associated with a contact raises the contact's calculated
        ``num_associated_deals``, which moves its ``lastmodifieddate`` as well."""
        if b != "contacts" or (a not in ACTIVITY_OBJECTS and a != "deals"):
            return
        table = self._table("contacts")
        slot = self._slot_by_id("contacts", str(b_id))
        if slot is None:
            return
        now = self._now()
        if a == "deals":
            deals = int(table.props(slot).get("num_associated_deals") or 0)
            table.update(slot, {"num_associated_deals": str(deals + 1)}, now)
            return
        stamp = iso_ms(now)
        changes: Props = {"notes_last_updated": stamp}
        if a != "notes":
            count = int(table.props(slot).get("num_contacted_notes") or 0)
            changes.update(
                notes_last_contacted=stamp,
                hs_last_sales_activity_timestamp=stamp,
                num_contacted_notes=str(count + 1),
            )
        table.update(slot, changes, now)

    # ------------------------------------------------------------- objects
    def _list(self, request: Request, args: list[str]) -> Response:
        obj = args[0]
        table = self._table(obj)
        limit = _int_param(request, "limit", 10)
        limit = max(1, min(limit, MAX_LIST))
        archived = (request.param("archived", "false") or "false").lower() == "true"
        after_raw = request.param("after")
        slots = table.listable(archived=archived)
        start = 0
        if after_raw:
            if not _ID.match(after_raw):
                raise validation(f"Invalid after: {after_raw!r}")
            start = int(np.searchsorted(table.listable_ids(archived=archived), int(after_raw)))
        page = slots[start : start + limit]
        wanted = self._wanted(obj, request.params("properties"))
        assoc = request.params("associations")
        payload: dict[str, Any] = {
            "results": self._render_many(obj, page, wanted, associations=assoc)
        }
        if request.params("propertiesWithHistory"):
            for slot, record in zip(page.tolist(), payload["results"], strict=True):
                record["propertiesWithHistory"] = table.history(
                    int(slot), request.params("propertiesWithHistory")
                )
        if start + limit < len(slots):
            nxt = str(int(table.ids[slots[start + limit]]))
            query = [(k, x) for k, v in request.query.items() if k != "after" for x in v]
            query.append(("after", nxt))
            payload["paging"] = {"next": {"after": nxt, "link": self._link(request, query)}}
        return self._ok(200, payload)

    def _link(self, request: Request, query: list[tuple[str, str]]) -> str:
        host = request.headers.get("host", "127.0.0.1")
        return f"http://{host}{request.path}?{urlencode(query)}"

    def _get(self, request: Request, args: list[str]) -> Response:
        obj, raw_id = args
        archived = (request.param("archived", "false") or "false").lower() == "true"
        id_property = request.param("idProperty")
        if id_property:
            slot = self._slot_by_property(obj, id_property, raw_id)
        else:
            slot = self._slot_by_id(obj, raw_id, archived=archived)
        if slot is None:
            raise HsError(
                404,
                "OBJECT_NOT_FOUND",
                "Object not found.  objectId are usually numeric.",
                context={"id": [raw_id]},
            )
        wanted = self._wanted(obj, request.params("properties"))
        record = self._render(obj, slot, wanted, associations=request.params("associations"))
        if request.params("propertiesWithHistory"):
            history = self._table(obj).history(slot, request.params("propertiesWithHistory"))
            record["propertiesWithHistory"] = history
        return self._ok(200, record)

    def _create(self, request: Request, args: list[str]) -> Response:
        obj = args[0]
        body = self._body(request)
        props = self._clean_properties(obj, body.get("properties"), creating=True)
        links = self._check_associations(obj, body.get("associations"))
        slot = self._do_create(obj, props, links)
        return self._ok(201, self._render(obj, slot, list(props)))

    def _update(self, request: Request, args: list[str]) -> Response:
        obj, raw_id = args
        body = self._body(request)
        id_property = request.param("idProperty")
        if id_property:
            slot = self._slot_by_property(obj, id_property, raw_id)
        else:
            slot = self._slot_by_id(obj, raw_id)
        if slot is None:
            raise HsError(
                404,
                "OBJECT_NOT_FOUND",
                "Object not found.  objectId are usually numeric.",
                context={"id": [raw_id]},
            )
        props = self._clean_properties(obj, body.get("properties"), creating=False, slot=slot)
        self._table(obj).update(slot, props, self._now())
        return self._ok(200, self._render(obj, slot, list(props)))

    def _archive(self, request: Request, args: list[str]) -> Response:
        obj, raw_id = args
        slot = self._slot_by_id(obj, raw_id)
        if slot is not None:
            self._table(obj).archive(slot, self._now())
        return Response.empty(204, {"X-HubSpot-Correlation-Id": str(uuid.uuid4())})

    def _search(self, request: Request, args: list[str]) -> Response:
        obj = args[0]
        table = self._table(obj)
        page = search.run(table, self._body(request), self._now())
        wanted = self._wanted(obj, page.properties)
        payload: dict[str, Any] = {
            "total": page.total,
            "results": self._render_many(obj, page.slots, wanted, search_view=True),
        }
        if page.next_after is not None:
            payload["paging"] = {"next": {"after": str(page.next_after)}}
        # search answers carry no rate-limit headers
        return Response.json(200, payload)

    # ---------------------------------------------------------------- batch
    def _batch_read(self, request: Request, args: list[str]) -> Response:
        obj = args[0]
        started = self._now()
        body = self._body(request)
        inputs = self._batch_inputs(body)
        archived = (request.param("archived", "false") or "false").lower() == "true"
        id_property = body.get("idProperty")
        props = body.get("properties")
        wanted = self._wanted(obj, props if isinstance(props, list) else None)
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        seen: set[int] = set()
        for item in inputs:
            raw = item.get("id") if isinstance(item, dict) else None
            if raw is None:
                raise validation("Invalid input JSON: each input needs an id")
            if id_property:
                slot = self._slot_by_property(obj, str(id_property), raw)
            else:
                slot = self._slot_by_id(obj, raw, archived=archived)
            if slot is None:
                missing.append(str(raw))
                continue
            if slot in seen:
                continue
            seen.add(slot)
            results.append(self._render(obj, slot, wanted))
            with_history = body.get("propertiesWithHistory")
            if isinstance(with_history, list) and with_history:
                results[-1]["propertiesWithHistory"] = self._table(obj).history(
                    slot, [str(n) for n in with_history]
                )
        errors = [not_found_entry(OBJECT_TYPES[obj][0], missing)] if missing else []
        return self._batch_answer(200, results, errors, started)

    def _batch_create(self, request: Request, args: list[str]) -> Response:
        """Batch create. An input that carries an ``objectWriteTraceId`` is judged on
        its own (multi-status): its invalid values or associations become an error of
        a 207 naming the trace id, and the other inputs are created; results echo the
        trace id. Without one, any bad input refuses the batch. A unique value that
        exists already (or twice in the batch) refuses the whole batch with a 409."""
        obj = args[0]
        started = self._now()
        inputs = self._batch_inputs(self._body(request))
        prepared: list[tuple[Props, list[tuple[str, int]], str | None]] = []
        errors: list[dict[str, Any]] = []
        table = self._table(obj)
        batch_unique: dict[str, set[str]] = {name: set() for name in table.unique}
        for item in inputs:
            if not isinstance(item, dict):
                raise validation("Invalid input JSON: each input must be an object")
            trace = item.get("objectWriteTraceId")
            trace = None if trace is None else str(trace)
            try:
                props = self._clean_properties(obj, item.get("properties"), creating=True)
                links = self._check_associations(obj, item.get("associations"))
            except HsError as err:
                if trace is None or err.status != 400:
                    raise
                entry = err.body()
                entry["context"] = {"objectWriteTraceId": [trace]}
                errors.append(entry)
                continue
            for name, seen in batch_unique.items():
                value = props.get(name, "").lower()
                if value and value in seen:
                    raise HsError(409, "CONFLICT", f"Duplicate {name} in batch input: {value}")
                if value:
                    seen.add(value)
            prepared.append((props, links, trace))
        results = []
        for props, links, trace in prepared:
            result = self._render(obj, self._do_create(obj, props, links), list(props))
            if trace is not None:
                result["objectWriteTraceId"] = trace
            results.append(result)
        return self._batch_answer(201, results, errors, started)

    def _batch_update(self, request: Request, args: list[str]) -> Response:
        obj = args[0]
        started = self._now()
        inputs = self._batch_inputs(self._body(request))
        table = self._table(obj)
        seen_ids: set[str] = set()
        dupes: list[str] = []
        plan: list[tuple[int, Props]] = []
        missing: list[str] = []
        for item in inputs:
            if not isinstance(item, dict) or item.get("id") is None:
                raise validation("Invalid input JSON: each input needs an id and properties")
            raw = str(item["id"])
            if raw in seen_ids:
                dupes.append(raw)
            seen_ids.add(raw)
            id_property = item.get("idProperty")
            if id_property:
                slot = self._slot_by_property(obj, str(id_property), raw)
            else:
                slot = self._slot_by_id(obj, raw)
            props = self._clean_properties(obj, item.get("properties"), creating=False, slot=slot)
            if slot is None:
                missing.append(raw)
                continue
            plan.append((slot, props))
        if dupes:
            raise validation(f"Duplicate IDs found in batch input: {sorted(set(dupes))}")
        now = self._now()
        for slot, props in plan:
            table.update(slot, props, now)
        results = self._render_written(obj, plan)
        errors = [not_found_entry(OBJECT_TYPES[obj][0], missing)] if missing else []
        return self._batch_answer(200, results, errors, started)

    def _batch_upsert(self, request: Request, args: list[str]) -> Response:
        obj = args[0]
        started = self._now()
        inputs = self._batch_inputs(self._body(request))
        table = self._table(obj)
        plan: list[tuple[int | None, Props, str, str]] = []
        seen: set[tuple[str, str]] = set()
        for item in inputs:
            if not isinstance(item, dict) or item.get("id") is None or not item.get("idProperty"):
                raise validation("Invalid input JSON: each upsert input needs id and idProperty")
            id_property = str(item["idProperty"])
            value = _str_value(item["id"])
            if id_property not in table.unique:
                raise validation(
                    f"{id_property} is not a unique property of {obj}: upsert needs a property with unique values"
                )
            key = (id_property, value.lower())
            if key in seen:
                raise validation(f"Duplicate IDs found in batch input: [{value!r}]")
            seen.add(key)
            slot = self._slot_by_property(obj, id_property, value)
            props = self._clean_properties(
                obj, item.get("properties"), creating=slot is None, slot=slot
            )
            if slot is None:
                props.setdefault(id_property, value)
            plan.append((slot, props, id_property, value))
        now = self._now()
        results = []
        for slot, props, _, _ in plan:
            created = slot is None
            if slot is None:
                slot = table.create(props, now)
            else:
                table.update(slot, props, now)
            record = self._render(obj, slot, list(props))
            record["new"] = created
            results.append(record)
        return self._batch_answer(200, results, [], started)

    def _batch_archive(self, request: Request, args: list[str]) -> Response:
        obj = args[0]
        inputs = self._batch_inputs(self._body(request))
        now = self._now()
        for item in inputs:
            raw = item.get("id") if isinstance(item, dict) else None
            slot = self._slot_by_id(obj, raw) if raw is not None else None
            if slot is not None:
                self._table(obj).archive(slot, now)
        return Response.empty(204, {"X-HubSpot-Correlation-Id": str(uuid.uuid4())})

    def _merge(self, request: Request, args: list[str]) -> Response:
        """Merge two contacts into a *new* record with a new id, as HubSpot does since
        its 2024 change (developers.hubspot.com/changelog, "Updated merge
        functionality for contacts and companies"): the primary's values win, the
        other's fill the gaps, both old ids keep answering with the new record, and
        ``hs_merged_object_ids`` lists both."""
        body = self._body(request)
        primary_raw, merge_raw = body.get("primaryObjectId"), body.get("objectIdToMerge")
        if primary_raw is None or merge_raw is None:
            raise validation("Invalid input JSON: primaryObjectId and objectIdToMerge are required")
        primary = self._slot_by_id("contacts", primary_raw)
        other = self._slot_by_id("contacts", merge_raw)
        if primary is None or other is None:
            missing = primary_raw if primary is None else merge_raw
            raise validation(f"Object {missing} could not be found", subCategory="OBJECT_NOT_FOUND")
        if primary == other:
            raise validation("Cannot merge an object into itself")
        table = self._table("contacts")
        store = self.store
        now = self._now()
        primary_id, other_id = int(table.ids[primary]), int(table.ids[other])
        survivor = dict(table.props(primary))
        dup = dict(table.props(other))
        props: Props = dict(survivor)
        for key, value in dup.items():
            if key not in props and key not in table.unique:
                props[key] = value
        merged = [v for v in survivor.get("hs_merged_object_ids", "").split(";") if v]
        merged += [v for v in dup.get("hs_merged_object_ids", "").split(";") if v]
        merged += [str(primary_id), str(other_id)]
        props["hs_merged_object_ids"] = ";".join(dict.fromkeys(merged))
        props.update(_combined_aggregates(survivor, dup))
        emails = [v for v in survivor.get("hs_additional_emails", "").split(";") if v]
        emails += [v for v in dup.get("hs_additional_emails", "").split(";") if v]
        if dup.get("email") and dup["email"].lower() != survivor.get("email", "").lower():
            emails.append(dup["email"])
        if emails:
            props["hs_additional_emails"] = ";".join(dict.fromkeys(emails))
        created_ms = min(float(table.created_ms[primary]), float(table.created_ms[other]))
        table.archive(primary, now, gone=True)
        table.archive(other, now, gone=True)
        slot = table.create(props, now)
        table.created_ms[slot] = created_ms
        new_id = int(table.ids[slot])
        for email in (survivor.get("email"), dup.get("email")):
            if email:  # the old addresses find the merged record, as in HubSpot
                table.unique["email"][email.lower()] = slot
        for old_id in (primary_id, other_id):
            for other_type, other_end in store.unlink_all("contacts", old_id):
                store.link("contacts", new_id, other_type, other_end)
            store.merged_into[old_id] = new_id
        persons = store.persons_of.setdefault(new_id, [])
        for old_id in (primary_id, other_id):
            persons.extend(store._seed_person(old_id))
            persons.extend(store.persons_of.pop(old_id, []))
        return self._ok(200, self._render("contacts", slot, list(DEFAULT_PROPERTIES["contacts"])))

    # ------------------------------------------------------------ properties
    def _properties(self, request: Request, args: list[str]) -> Response:
        table = self._table(args[0])
        return self._ok(200, {"results": [d.to_json(iso_ms) for d in table.defs.values()]})

    def _property(self, request: Request, args: list[str]) -> Response:
        obj, name = args
        d = self._table(obj).defs.get(name)
        if d is None:
            raise HsError(
                404,
                "OBJECT_NOT_FOUND",
                f"Unable to find property {name} for object type {obj}",
            )
        return self._ok(200, d.to_json(iso_ms))

    def _create_property(self, request: Request, args: list[str]) -> Response:
        obj = args[0]
        body = self._body(request)
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise validation(f"Missing required field(s): {', '.join(missing)}")
        name = str(body["name"])
        if not _PROPERTY_NAME.match(name):
            raise validation(
                f"Property name {name!r} must start with a lowercase letter and hold only lowercase letters, digits and underscores"
            )
        if body["type"] not in _PROPERTY_TYPES:
            raise validation(f"Invalid property type {body['type']!r}")
        if body["fieldType"] not in _FIELD_TYPES:
            raise validation(f"Invalid fieldType {body['fieldType']!r}")
        table = self._table(obj)
        if name in table.defs:
            raise HsError(409, "OBJECT_ALREADY_EXISTS", f"Property named '{name}' already exists.")
        unique = bool(body.get("hasUniqueValue", False))
        if (
            unique
            and sum(1 for d in table.defs.values() if d.has_unique_value) >= MAX_UNIQUE_PROPERTIES
        ):
            raise validation(
                f"An object can have at most {MAX_UNIQUE_PROPERTIES} properties with unique values"
            )
        options = [str(o.get("value")) for o in body.get("options") or [] if isinstance(o, dict)]
        d = PropertyDef(
            name=name,
            label=str(body["label"]),
            type=str(body["type"]),
            field_type=str(body["fieldType"]),
            group_name=str(body["groupName"]),
            options=options,
            has_unique_value=unique,
            hubspot_defined=False,
            description=str(body.get("description") or ""),
            created_at=self._now(),
        )
        table.defs[name] = d
        if unique:
            table.unique[name] = {}
            table.s_unique[name] = {}
        return self._ok(201, d.to_json(iso_ms))

    # ------------------------------------------------------------ pipelines
    def _pipelines(self, request: Request, args: list[str]) -> Response:
        return self._ok(200, pipelines.answer(args))

    # --------------------------------------------------------------- owners
    def _owner_json(self, owner: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(owner.id),
            "email": owner.email,
            "type": owner.kind,
            "firstName": owner.first_name,
            "lastName": owner.last_name,
            "createdAt": iso_ms(owner.created_at),
            "updatedAt": iso_ms(owner.created_at),
            "archived": owner.archived,
            "teams": [{"id": "5100001", "name": "Sales", "primary": True}]
            if owner.kind == "PERSON"
            else [],
        }
        if owner.user_id is not None:
            out["userId"] = owner.user_id
            out["userIdIncludingInactive"] = owner.user_id
        return out

    def _owners(self, request: Request, args: list[str]) -> Response:
        archived = (request.param("archived", "false") or "false").lower() == "true"
        email = request.param("email")
        limit = max(1, min(_int_param(request, "limit", 100), 500))
        owners = [o for o in self.store.owners if o.archived == archived]
        if email:
            owners = [o for o in owners if o.email.lower() == email.lower()]
        after = request.param("after")
        start = 0
        if after:
            if not _ID.match(after):
                raise validation(f"Invalid after: {after!r}")
            start = next((i for i, o in enumerate(owners) if o.id >= int(after)), len(owners))
        page = owners[start : start + limit]
        payload: dict[str, Any] = {"results": [self._owner_json(o) for o in page]}
        if start + limit < len(owners):
            nxt = str(owners[start + limit].id)
            query = [(k, x) for k, v in request.query.items() if k != "after" for x in v]
            query.append(("after", nxt))
            payload["paging"] = {"next": {"after": nxt, "link": self._link(request, query)}}
        return self._ok(200, payload)

    def _owner(self, request: Request, args: list[str]) -> Response:
        raw = args[0]
        by_user = (request.param("idProperty") or "id") == "userId"
        for o in self.store.owners:
            key = o.user_id if by_user else o.id
            if key is not None and str(key) == raw:
                return self._ok(200, self._owner_json(o))
        raise HsError(404, "OBJECT_NOT_FOUND", f"Owner {raw} not found")

    # ---------------------------------------------------------- associations
    def _assoc_read(self, request: Request, args: list[str]) -> Response:
        a, b = args
        started = self._now()
        inputs = self._batch_inputs(self._body(request), MAX_ASSOC_BATCH)
        type_id = ASSOCIATION_TYPE_IDS.get((a, b))
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            raw = str(item.get("id")) if isinstance(item, dict) else ""
            slot = self._slot_by_id(a, raw)
            ids = (
                self.store.associated(a, self.store.resolve(a, int(raw)), b)
                if slot is not None and type_id is not None
                else []
            )
            if not ids:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                        "message": f"No {OBJECT_TYPES[b][0]} is associated with {OBJECT_TYPES[a][0]} {raw}.",
                        "context": {
                            "fromObjectId": [raw],
                            "fromObjectType": [OBJECT_TYPES[a][0]],
                            "toObjectType": [OBJECT_TYPES[b][0]],
                        },
                        "links": {},
                        "errors": [],
                    }
                )
                continue
            results.append(
                {
                    "from": {"id": raw},
                    "to": [
                        {
                            "toObjectId": i,
                            "associationTypes": [
                                {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}
                            ],
                        }
                        for i in ids
                    ],
                }
            )
        return self._batch_answer(200, results, errors, started)

    def _assoc_labels(self, request: Request, args: list[str]) -> Response:
        """The association types between two object types (v4 schema), so clients
        can look type ids up instead of hard-coding them."""
        a, b = args
        results = [
            {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}
            for type_id, pair in TYPE_ID_TO_PAIR.items()
            if pair == (a, b) and type_id == ASSOCIATION_TYPE_IDS[pair]
        ]
        if (a, b) in (("contacts", "companies"), ("companies", "contacts")):
            primary = 1 if a == "contacts" else 2
            results.insert(
                0, {"category": "HUBSPOT_DEFINED", "typeId": primary, "label": "Primary"}
            )
        return self._ok(200, {"results": results})

    def _assoc_create(self, request: Request, args: list[str]) -> Response:
        a, b = args
        started = self._now()
        inputs = self._batch_inputs(self._body(request), MAX_ASSOC_BATCH)
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        plan: list[tuple[int, int]] = []
        for item in inputs:
            try:
                from_raw = str(item["from"]["id"])
                to_raw = str(item["to"]["id"])
                types = item.get("types") or []
            except (KeyError, TypeError) as exc:
                raise validation("Invalid input JSON: each input needs from.id and to.id") from exc
            for t in types:
                type_id = int(t.get("associationTypeId", -1))
                if TYPE_ID_TO_PAIR.get(type_id) != (a, b):
                    raise validation(
                        f"association type id {type_id} is not valid from {OBJECT_TYPES[a][0]} to {OBJECT_TYPES[b][0]}"
                    )
            fs, ts = self._slot_by_id(a, from_raw), self._slot_by_id(b, to_raw)
            if fs is None or ts is None:
                missing.append(from_raw if fs is None else to_raw)
                continue
            plan.append((self.store.resolve(a, int(from_raw)), self.store.resolve(b, int(to_raw))))
        for from_id, to_id in plan:
            self.store.link(a, from_id, b, to_id)
            self._activity_logged(a, b, to_id)
            self._activity_logged(b, a, from_id)
            results.append(self._pair_json(a, from_id, b, to_id))
        errors = [not_found_entry(OBJECT_TYPES[b][0], missing)] if missing else []
        return self._batch_answer(201, results, errors, started)

    def _pair_json(self, a: str, from_id: int, b: str, to_id: int) -> dict[str, Any]:
        return {
            "fromObjectTypeId": OBJECT_TYPES[a][1],
            "fromObjectId": from_id,
            "toObjectTypeId": OBJECT_TYPES[b][1],
            "toObjectId": to_id,
            "labels": [],
        }

    def _assoc_page(self, request: Request, args: list[str]) -> Response:
        a, raw, other = args
        b = normalise_object_type(other)
        slot = self._slot_by_id(a, raw)
        if b is None or slot is None:
            raise HsError(404, "OBJECT_NOT_FOUND", f"Object {raw} not found")
        type_id = ASSOCIATION_TYPE_IDS.get((a, b))
        ids = self.store.associated(a, self.store.resolve(a, int(raw)), b) if type_id else []
        return self._ok(
            200,
            {
                "results": [
                    {
                        "toObjectId": i,
                        "associationTypes": [
                            {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}
                        ],
                    }
                    for i in ids
                ]
            },
        )

    def _assoc_put(self, request: Request, args: list[str]) -> Response:
        a, raw, other, to_raw = args
        body = request.json()
        if not isinstance(body, list) or not body:
            raise validation("Invalid input JSON: expected a list of association types")
        return self._assoc_link(a, raw, other, to_raw, 201)

    def _assoc_put_default(self, request: Request, args: list[str]) -> Response:
        a, raw, other, to_raw = args
        response = self._assoc_link(a, raw, other, to_raw, 200)
        return response

    def _assoc_link(self, a: str, raw: str, other: str, to_raw: str, status: int) -> Response:
        b = normalise_object_type(other)
        if b is None or (a, b) not in ASSOCIATION_TYPE_IDS:
            raise validation(f"Cannot associate {a} with {other}")
        if self._slot_by_id(a, raw) is None or self._slot_by_id(b, to_raw) is None:
            raise HsError(404, "OBJECT_NOT_FOUND", f"Object {raw} or {to_raw} not found")
        from_id, to_id = self.store.resolve(a, int(raw)), self.store.resolve(b, int(to_raw))
        self.store.link(a, from_id, b, to_id)
        self._activity_logged(a, b, to_id)
        self._activity_logged(b, a, from_id)
        if status == 201:
            return self._ok(201, self._pair_json(a, from_id, b, to_id))
        now = self._now()
        return self._ok(
            200,
            {
                "status": "COMPLETE",
                "results": [
                    {
                        "from": {"id": str(from_id)},
                        "to": {"id": str(to_id)},
                        "associationSpec": {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": ASSOCIATION_TYPE_IDS[(a, b)],
                        },
                    }
                ],
                "startedAt": iso_ms(now),
                "completedAt": iso_ms(now),
            },
        )

    # ----------------------------------------------------------------- oauth
    def _oauth_token(self, request: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        cid = str(uuid.uuid4())

        def bad(status: str, message: str) -> Response:
            return Response.json(400, {"status": status, "message": message, "correlationId": cid})

        if form.get("grant_type") != "refresh_token":
            return bad("BAD_GRANT_TYPE", "missing or unsupported grant_type (use refresh_token)")
        if form.get("client_id") != self.tokens.client_id:
            return bad("BAD_CLIENT_ID", "missing or unknown client_id")
        if form.get("client_secret") != self.tokens.client_secret:
            return bad("BAD_CLIENT_SECRET", "missing or invalid client_secret")
        if form.get("refresh_token") != self.tokens.refresh_token:
            return bad("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
        token = self.tokens.issue(self._now())
        return Response.json(
            200,
            {
                "token_type": "bearer",
                "refresh_token": self.tokens.refresh_token,
                "access_token": token,
                "expires_in": 1800,
            },
            {"Cache-Control": "no-store"},
        )

    # -------------------------------------------------------------- activity
    def simulate_activity(self, count: int, *, seed: int = 0) -> list[str]:
        """Fresh engagement "now" for ``count`` existing contacts; bumps their stamps.

        Who is active and what they do continue the world's story
        (:meth:`~connectors.sandbox.world.World.simulate`): people in a buying cycle
        come back day after day, a few ask for a demo.
        """
        if count < 0:
            raise ValueError("count: must not be negative")
        with self._lock:
            table = self._table("contacts")
            eligible = [
                s for s in range(table.seeded) if not table.gone[s] and not table.archived[s]
            ]
            now = self._now()
            events = self.world.simulate(count, at=now, seed=seed, among=eligible)
            by_person: dict[int, list[SimulatedEvent]] = {}
            for event in events:
                by_person.setdefault(event.person, []).append(event)
            ids: list[str] = []
            for slot, mine in sorted(by_person.items()):
                self._simulate_one(table, slot, mine, now)
                ids.append(str(int(table.ids[slot])))
            return ids

    def _simulate_one(
        self, table: Table, slot: int, events: list[SimulatedEvent], now: float
    ) -> None:
        props = table.props(slot)
        changes: Props = {}
        contact_id = int(table.ids[slot])

        def bump(name: str, by: int = 1) -> None:
            changes[name] = str(int(changes.get(name) or props.get(name) or 0) + by)

        for event in events:
            stamp = iso_ms(event.ts)
            kind = event.kind
            if kind in ("page_view", "email_open", "email_click", "form_submit"):
                self.store.extra.append(ExtraActivity(slot, _KIND[kind], event.ts, event.detail))
            if kind == "page_view":
                bump("hs_analytics_num_page_views")
                changes["hs_analytics_last_visit_timestamp"] = stamp
                if not props.get("hs_analytics_first_visit_timestamp"):
                    changes.setdefault("hs_analytics_first_visit_timestamp", stamp)
            elif kind == "email_open":
                bump("hs_email_open")
                changes["hs_email_last_open_date"] = stamp
            elif kind == "email_click":
                bump("hs_email_click")
                changes["hs_email_last_click_date"] = stamp
            elif kind == "form_submit":
                name = FORMS[event.detail]
                bump("num_conversion_events")
                changes["recent_conversion_event_name"] = name
                changes["recent_conversion_date"] = stamp
                if not props.get("first_conversion_event_name"):
                    changes.setdefault("first_conversion_event_name", name)
                    changes.setdefault("first_conversion_date", stamp)
            elif kind == "email_reply":
                campaign = CAMPAIGNS[event.detail] if 0 <= event.detail < len(CAMPAIGNS) else ""
                self._simulate_engagement("emails", contact_id, event.ts, {
                    "hs_email_direction": "INCOMING_EMAIL", "hs_email_status": "SENT",
                    "hs_email_subject": f"Re: {campaign or 'your e-mail'}",
                })  # fmt: skip
                bump("hs_email_replied")
                changes["hs_email_last_reply_date"] = stamp
                changes["notes_last_contacted"] = stamp
            elif kind == "meeting_booked":
                self._simulate_engagement("meetings", contact_id, event.ts, {
                    "hs_meeting_title": "Demo call", "hs_meeting_start_time": iso_ms(event.ts + 86_400.0),
                    "hs_meeting_end_time": iso_ms(event.ts + 88_200.0), "hs_meeting_outcome": "SCHEDULED",
                })  # fmt: skip
                changes["notes_last_contacted"] = stamp
        if any(e.kind == "page_view" for e in events):
            bump("hs_analytics_num_visits")
        table.update(slot, changes, now)

    def _simulate_engagement(
        self, object_type: str, contact_id: int, ts: float, props: Props
    ) -> None:
        table = self._table(object_type)
        slot = table.create({"hs_timestamp": iso_ms(ts), **props}, ts)
        self.store.link(object_type, int(table.ids[slot]), "contacts", contact_id)


# Engagements that update a contact's activity properties when associated with it.
ACTIVITY_OBJECTS = frozenset({"calls", "emails", "meetings", "notes"})

_SUMMED = (
    "hs_analytics_num_page_views",
    "hs_analytics_num_visits",
    "num_conversion_events",
    "num_unique_conversion_events",
    "hs_email_delivered",
    "hs_email_open",
    "hs_email_click",
    "hs_email_replied",
    "num_contacted_notes",
    "num_associated_deals",
)
_LATEST = (
    "hs_analytics_last_visit_timestamp",
    "hs_email_last_send_date",
    "hs_email_last_open_date",
    "hs_email_last_click_date",
    "hs_email_last_reply_date",
    "notes_last_contacted",
)
_EARLIEST = ("hs_analytics_first_visit_timestamp",)


def _combined_aggregates(survivor: Props, dup: Props) -> Props:
    """A merged contact's activity counts for the survivor, as after a HubSpot merge.
    ISO strings with milliseconds compare in time order."""
    out: Props = {}
    for name in _SUMMED:
        if name in survivor or name in dup:
            out[name] = str(int(survivor.get(name) or 0) + int(dup.get(name) or 0))
    for names, pick in ((_LATEST, max), (_EARLIEST, min)):
        for name in names:
            values = [v for v in (survivor.get(name), dup.get(name)) if v]
            if values:
                out[name] = pick(values)
    for prefix, pick in (("recent", max), ("first", min)):
        dates = [
            (p[f"{prefix}_conversion_date"], p.get(f"{prefix}_conversion_event_name", ""))
            for p in (survivor, dup)
            if p.get(f"{prefix}_conversion_date")
        ]
        if dates:
            date, name = pick(dates)
            out[f"{prefix}_conversion_date"] = date
            if name:
                out[f"{prefix}_conversion_event_name"] = name
    if dup.get("hs_email_optout") == "true":
        out["hs_email_optout"] = "true"
    return out


def _expired_token(expired: float, now: float) -> HsError:
    """HubSpot's answer to an OAuth access token past its 30 minutes: its own
    category, so clients can tell "refresh" from "bad credentials"."""
    ago = max(0, int(now - expired))
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if ago >= size:
            amount = f"{ago // size} {unit}(s)"
            break
    else:
        amount = f"{ago} second(s)"
    return HsError(
        401,
        "EXPIRED_AUTHENTICATION",
        f"The OAuth token used to make this call expired {amount} ago.",
        context={"expire time": [iso_ms(expired)]},
    )


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.param(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise validation(f"Invalid {name}: {raw!r} is not an integer") from exc
