"""The Salesforce core: tables, SOQL execution, validated writes. No HTTP here.

Every public method takes the store's lock, so the multi-threaded server can call it
from any thread. Errors are raised as :class:`RecordError` (one record) or
:class:`~.soql.SoqlError` (a query), carrying the ``errorCode`` Salesforce answers with.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import soql
from .ids import make_id, normalise_id, parse_id
from .outbound import OutboundMessenger
from .schema import (
    BASE,
    RESPONDED_STATUSES,
    STAGE_PROBABILITY,
    FieldSpec,
    SObjectSpec,
    standard_objects,
)
from .seed import INTEGRATION_USER, Seed, build_seed, build_tables
from .table import Row, Table, fmt_date, fmt_datetime, index_key, ms

if TYPE_CHECKING:
    from connectors.sandbox.framework import Clock
    from connectors.sandbox.world import SimulatedEvent, World

SERVED = (
    "Lead", "Contact", "Account", "Opportunity", "OpportunityContactRole", "Task", "Event",
    "Campaign", "CampaignMember", "User", "Group",
)  # fmt: skip
STAMP_FIELDS = {"systemmodstamp", "lastmodifieddate"}
QUERY_PAGE = 2000
# Since API 56.0 a query locator and its results stay available for two days after the
# query ran, and there is no limit on open cursors (Salesforce's "API Query Cursor
# Limits"); the cap below only bounds the sandbox's memory and evicts the oldest.
LOCATOR_LIFETIME_SECONDS = 2 * 86_400
MAX_LOCATORS = 200
_NUMERIC = ("double", "currency", "percent", "int")
_TEXT = ("string", "email", "phone", "url", "textarea", "picklist", "combobox")
_POLY_EXTRA = "type"  # polymorphic relationships (Who, What, Owner) also answer .Type
# What SOQL accepts as an id literal; anything else is "invalid ID field" (not 0 rows)
_ID_SHAPE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


class RecordError(Exception):
    """One record refused; ``status`` is the HTTP status of a single-record call."""

    def __init__(
        self, code: str, message: str, fields: Sequence[str] = (), status: int = 400
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = list(fields)
        self.status = status

    def as_rest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields:
            out["fields"] = self.fields
        return out

    def as_collection(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def not_found() -> RecordError:
    return RecordError("NOT_FOUND", "The requested resource does not exist", status=404)


def parse_datetime_value(value: str) -> float:
    """Datetimes in writes: ``2024-01-01T00:00:00Z``, ``...000+0000``, ``...+00:00``."""
    match = re.fullmatch(
        r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
        r"(Z|([+-])(\d{2}):?(\d{2}))?",
        value.strip(),
    )
    if match is None:
        raise ValueError(value)
    y, mo, d, h, mi = (int(g) for g in match.groups()[:5])
    sec = int(match.group(6) or 0)
    tz = UTC
    if match.group(8) and match.group(8) != "Z":
        sign = 1 if match.group(9) == "+" else -1
        tz = timezone(sign * timedelta(hours=int(match.group(10)), minutes=int(match.group(11))))
    moment = datetime(y, mo, d, h, mi, sec, tzinfo=tz)
    return ms(moment.timestamp() + float("0." + (match.group(7) or "0")))


def poly_type(sobject: str, row: Row) -> str:
    """``Owner.Type`` and ``Who.Type``: the object's name, but ``Queue`` for queues."""
    if sobject == "Group":
        return str(row.get("Type") or "Group")
    return sobject


# Parent-to-child relationships a sub-query may name (``FROM OpportunityContactRoles``):
# (parent, relationship) -> (child object, the child's field that points at the parent).
# The standard names, as ``describe`` lists them in ``childRelationships``.
CHILD_RELATIONSHIPS: dict[tuple[str, str], tuple[str, str]] = {
    ("Opportunity", "OpportunityContactRoles"): ("OpportunityContactRole", "OpportunityId"),
    ("Contact", "OpportunityContactRoles"): ("OpportunityContactRole", "ContactId"),
    ("Account", "Contacts"): ("Contact", "AccountId"),
    ("Account", "Opportunities"): ("Opportunity", "AccountId"),
    ("Contact", "Tasks"): ("Task", "WhoId"),
    ("Lead", "Tasks"): ("Task", "WhoId"),
    ("Account", "Tasks"): ("Task", "WhatId"),
    ("Opportunity", "Tasks"): ("Task", "WhatId"),
    ("Contact", "Events"): ("Event", "WhoId"),
    ("Lead", "Events"): ("Event", "WhoId"),
    ("Campaign", "CampaignMembers"): ("CampaignMember", "CampaignId"),
    ("Contact", "CampaignMembers"): ("CampaignMember", "ContactId"),
    ("Lead", "CampaignMembers"): ("CampaignMember", "LeadId"),
}

# ------------------------------------------------------------------ field paths


@dataclass(frozen=True, slots=True)
class Path:
    """A resolved ``Account.Owner.Name``: relationship steps, then a field."""

    steps: tuple[tuple[str, str, tuple[str, ...]], ...]  # (id field, relationship name, targets)
    spec: FieldSpec | None  # None for the polymorphic ``Type``
    name: str  # canonical last segment

    @property
    def sort_type(self) -> str:
        return self.spec.type if self.spec is not None else "string"


def render(spec: FieldSpec | None, value: Any) -> Any:
    if value is None or spec is None:
        return value
    if spec.type == "datetime":
        return fmt_datetime(float(value))
    if spec.type in ("double", "currency", "percent"):
        return float(value)
    return value


@dataclass(frozen=True, slots=True)
class Span:
    """A relative date literal resolved on the clock: ``[start, end)``."""

    start: Any
    end: Any


_DAY = 86_400.0


def relative_span(name: str, days: int, now: float) -> tuple[float, float]:
    """``TODAY``, ``LAST_N_DAYS:n`` ... as epoch seconds, days starting at 00:00 UTC."""
    today = (now // _DAY) * _DAY
    spans = {
        "TODAY": (today, today + _DAY),
        "YESTERDAY": (today - _DAY, today),
        "TOMORROW": (today + _DAY, today + 2 * _DAY),
        "LAST_N_DAYS": (today - days * _DAY, today + _DAY),
        "NEXT_N_DAYS": (today + _DAY, today + (days + 1) * _DAY),
    }
    return spans[name]


@dataclass
class Cursor:
    sobject: str
    seqs: npt.NDArray[np.int64]
    paths: list[Path]
    page: int
    created: float
    all_rows: bool
    # per sub-query: its relationship name, fields and each parent id's child rows
    children: tuple[tuple[str, str, list[Path], dict[str, list[int]]], ...] = ()


@dataclass
class PreparedWrite:
    sobject: str
    seq: int | None  # None: create
    row: Row
    created: bool = field(default=False)
    # rows the commit changed besides this one, as they were before: (sObject, seq, row)
    touched: list[tuple[str, int, Row]] = field(default_factory=list)


class Store:
    # Outbound Messages for Lead and Contact changes not made by the API user (the
    # record-triggered Flow of docs/realtime.md excludes the integration user): set by
    # ``leadsync sandbox --outbound-url``; None sends nothing.
    outbound: OutboundMessenger | None = None

    def __init__(
        self,
        world: World,
        *,
        clock: Clock,
        username: str,
        custom_fields: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    ) -> None:
        from .schema import custom_field_from_mapping

        self.clock = clock
        self.lock = threading.RLock()
        self.schema: dict[str, SObjectSpec] = standard_objects()
        self._custom: list[tuple[str, FieldSpec]] = []
        for sobject, specs in (custom_fields or {}).items():
            if sobject not in self.schema:
                raise ValueError(f"custom_fields: unknown sObject {sobject!r}")
            for mapping in specs:
                self._custom.append((sobject, custom_field_from_mapping(sobject, mapping)))
        for sobject, field_spec in self._custom:
            self.schema[sobject].add(field_spec)
        self.seed: Seed = build_seed(world, username)
        self.tables: dict[str, Table] = {}
        self.cursors: dict[str, Cursor] = {}
        self._locator_seq = 0
        self.reset()

    # ---------------------------------------------------------------- lifecycle
    def reset(self) -> None:
        with self.lock:
            self.tables = build_tables(self.seed, self.schema)
            for sobject, spec in self._custom:
                if spec.external_id or spec.unique:
                    self.tables[sobject].index_field(spec.name)
            self.cursors.clear()

    def add_custom_field(self, sobject: str, spec: FieldSpec) -> None:
        with self.lock:
            obj = self.object_spec(sobject)
            if obj.get(spec.name) is not None:
                raise ValueError(f"{sobject}.{spec.name} already exists")
            obj.add(spec)
            self._custom.append((obj.name, spec))
            if spec.external_id or spec.unique:
                self.tables[obj.name].index_field(spec.name)

    def object_spec(self, name: str) -> SObjectSpec:
        for key, spec in self.schema.items():
            if key.lower() == name.lower():
                return spec
        raise KeyError(name)

    def now(self) -> float:
        return ms(self.clock.now())

    # ------------------------------------------------------------------- paths
    def resolve(self, obj: SObjectSpec, ref: soql.FieldRef, source: str) -> Path:
        def invalid(message: str) -> soql.SoqlError:
            return soql.SoqlError("INVALID_FIELD", soql.located(source, ref.pos, message))

        steps: list[tuple[str, str, tuple[str, ...]]] = []
        targets: tuple[str, ...] = (obj.name,)
        for i, part in enumerate(ref.path):
            last = i == len(ref.path) - 1
            specs = [self.schema[t] for t in targets if t in self.schema]
            if last:
                if len(targets) > 1 and part.lower() == _POLY_EXTRA:
                    # ``What.Type`` is the object's name even when the object has a field
                    # called Type of its own (Account, Opportunity, Campaign, Group).
                    return Path(tuple(steps), None, "Type")
                found = [s.get(part) for s in specs]
                spec = next((f for f in found if f is not None), None)
                if spec is None:
                    entity = targets[0] if len(targets) == 1 else "Name"
                    raise invalid(
                        f"No such column '{part}' on entity '{entity}'. If you are attempting to "
                        "use a custom field, be sure to append the '__c' after the custom field "
                        "name. Please reference your WSDL or the describe call for the "
                        "appropriate names."
                    )
                return Path(tuple(steps), spec, spec.name)
            id_field = next((s.relationships.get(part.lower()) for s in specs if
                             s.relationships.get(part.lower())), None)  # fmt: skip
            if id_field is None or len(steps) >= 5:
                raise invalid(
                    f"Didn't understand relationship '{part}' in field path. If you are attempting "
                    "to use a custom relationship, be sure to append the '__r' after the custom "
                    "relationship name. Please reference your WSDL or the describe call for the "
                    "appropriate names."
                )
            spec = next(s.get(id_field) for s in specs if s.get(id_field) is not None)
            assert spec is not None and spec.relationship_name is not None
            steps.append((spec.name, spec.relationship_name, spec.reference_to))
            targets = spec.reference_to
        raise invalid("empty field path")  # pragma: no cover - the parser never yields one

    def parent(self, row: Row, id_field: str) -> tuple[str, Row] | None:
        value = row.get(id_field)
        if value is None:
            return None
        parsed = parse_id(str(value))
        if parsed is None or parsed[0] not in self.tables:
            return None
        sobject, seq = parsed
        table = self.tables[sobject]
        if not table.has(seq, include_deleted=True):
            return None
        return sobject, table.row(seq)

    def value(self, row: Row, sobject: str, path: Path) -> Any:
        for id_field, _rel, _targets in path.steps:
            found = self.parent(row, id_field)
            if found is None:
                return None
            sobject, row = found
        if path.spec is None:
            return poly_type(sobject, row)
        return row.get(path.spec.name)

    # ------------------------------------------------------------------- query
    def query(self, source: str, *, all_rows: bool, page_size: int = QUERY_PAGE) -> dict[str, Any]:
        parsed = soql.parse(source)
        with self.lock:
            try:
                obj = self.object_spec(parsed.sobject)
            except KeyError:
                raise soql.SoqlError(
                    "INVALID_TYPE",
                    soql.located(
                        source,
                        parsed.sobject_pos,
                        f"sObject type '{parsed.sobject}' is not supported. If you are attempting "
                        "to use a custom object, be sure to append the '__c' after the entity "
                        "name. Please reference your WSDL or the describe call for the "
                        "appropriate names.",
                    ),
                ) from None
            table = self.tables[obj.name]
            paths = [self.resolve(obj, ref, source) for ref in parsed.fields]
            predicate = (
                self._compile(obj, parsed.where, source) if parsed.where is not None else None
            )
            mask, exact = (
                self._plan(table, parsed.where) if parsed.where is not None else (None, True)
            )
            if mask is None:
                seqs = table.seqs(include_deleted=all_rows)
            else:
                if not all_rows:
                    mask &= ~table.deleted
                seqs = np.flatnonzero(mask).astype(np.int64)
            if predicate is not None and not exact:
                seqs = np.array(
                    [s for s in seqs.tolist() if predicate(table.row(s))], dtype=np.int64
                )
            if parsed.order:
                seqs = self._order(obj, table, seqs, parsed.order, source)
            if parsed.offset:
                seqs = seqs[parsed.offset :]
            if parsed.limit is not None:
                seqs = seqs[: parsed.limit]
            if parsed.count:
                return {"totalSize": len(seqs), "done": True, "records": []}
            children = tuple(
                self._children(obj, table, seqs, sub, source, all_rows=all_rows)
                for sub in parsed.children
            )
            cursor = Cursor(obj.name, seqs, paths, page_size, self.clock.now(), all_rows, children)
            return self._page(cursor, 0)

    def _children(
        self,
        obj: SObjectSpec,
        table: Table,
        seqs: npt.NDArray[np.int64],
        sub: soql.SubQuery,
        source: str,
        *,
        all_rows: bool,
    ) -> tuple[str, str, list[Path], dict[str, list[int]]]:
        """A sub-query's child rows per parent id, filtered, ordered and limited per
        parent as Salesforce does (the ``LIMIT`` applies to each parent's children)."""
        found = next(
            (
                (rel, target)
                for (parent, rel), target in CHILD_RELATIONSHIPS.items()
                if parent == obj.name and rel.lower() == sub.relationship.lower()
            ),
            None,
        )
        if found is None or found[1][0] not in self.tables:
            raise soql.SoqlError(
                "INVALID_TYPE",
                soql.located(
                    source,
                    sub.relationship_pos,
                    f"Didn't understand relationship '{sub.relationship}' in FROM part of "
                    "query call. If you are attempting to use a custom relationship, be sure "
                    "to append the '__r' after the custom relationship name. Please reference "
                    "your WSDL or the describe call for the appropriate names.",
                ),
            )
        relationship, (child_name, link) = found
        child = self.schema[child_name]
        child_table = self.tables[child_name]
        paths = [self.resolve(child, ref, source) for ref in sub.fields]
        predicate = self._compile(child, sub.where, source) if sub.where is not None else None
        parent_ids = {table.id_of(int(s)) for s in seqs.tolist()}
        groups: dict[str, list[int]] = {}
        if parent_ids:
            for seq in child_table.seqs(include_deleted=all_rows).tolist():
                row = child_table.row(seq)
                parent_id = row.get(link)
                if parent_id in parent_ids and (predicate is None or predicate(row)):
                    groups.setdefault(str(parent_id), []).append(seq)
        for parent_id, members in groups.items():
            ordered = np.array(members, dtype=np.int64)
            if sub.order:
                ordered = self._order(child, child_table, ordered, sub.order, source)
            if sub.limit is not None:
                ordered = ordered[: sub.limit]
            groups[parent_id] = [int(s) for s in ordered.tolist()]
        return relationship, child_name, paths, groups

    def query_more(self, locator: str) -> dict[str, Any]:
        """The page at ``{locator}-{offset}``, reached through ``query/`` or ``queryAll/``
        alike (the locator remembers which of the two ran)."""
        with self.lock:
            key, _, offset_text = locator.partition("-")
            cursor = self.cursors.get(key)
            if cursor is not None and self.clock.now() - cursor.created > LOCATOR_LIFETIME_SECONDS:
                del self.cursors[key]
                cursor = None
            if cursor is None or not offset_text.isdigit():
                raise RecordError("INVALID_QUERY_LOCATOR", "invalid query locator")
            return self._page(cursor, int(offset_text), key)

    def _page(self, cursor: Cursor, start: int, key: str | None = None) -> dict[str, Any]:
        """One page; ``nextRecordsUrl`` always names ``query/``, even for ``queryAll``
        (REST API guide, "QueryAll More Results"). A locator stays usable after its last
        page has been read, so a client may retry a page whose answer it lost."""
        table = self.tables[cursor.sobject]
        chunk = cursor.seqs[start : start + cursor.page]
        records = [self.project(cursor.sobject, table.row(int(s)), cursor.paths) for s in chunk]
        for record, seq in zip(records, chunk.tolist(), strict=True):
            parent_id = table.id_of(int(seq))
            for relationship, child_name, paths, groups in cursor.children:
                members = groups.get(parent_id) or []
                if not members:
                    record[relationship] = None  # Salesforce answers null, not an empty list
                    continue
                child_table = self.tables[child_name]
                record[relationship] = {
                    "totalSize": len(members),
                    "done": True,
                    "records": [
                        self.project(child_name, child_table.row(s), paths) for s in members
                    ],
                }
        out: dict[str, Any] = {"totalSize": len(cursor.seqs), "done": True, "records": records}
        end = start + len(chunk)
        if end < len(cursor.seqs):
            if key is None:
                self._locator_seq += 1
                key = make_id("QueryLocator", self._locator_seq)
                self.cursors[key] = cursor
                while len(self.cursors) > MAX_LOCATORS:
                    self.cursors.pop(next(iter(self.cursors)))
            out["done"] = False
            out["nextRecordsUrl"] = f"{BASE}/query/{key}-{end}"
        return out

    def project(self, sobject: str, row: Row, paths: Sequence[Path]) -> dict[str, Any]:
        """A query record: ``attributes`` first, parents as nested records or ``null``."""
        out: dict[str, Any] = {"attributes": self.attributes(sobject, row)}
        for path in paths:
            target: dict[str, Any] = out
            current_type = sobject
            current: Row | None = row
            for id_field, rel, _targets in path.steps:
                assert current is not None
                found = self.parent(current, id_field)
                if found is None:
                    target.setdefault(rel, None)
                    current = None
                    break
                current_type, current = found
                nested = target.get(rel)
                if nested is None:
                    nested = {"attributes": self.attributes(current_type, current)}
                    target[rel] = nested
                target = nested
            if current is None:
                continue
            if path.spec is None:
                target["Type"] = poly_type(current_type, current)
                continue
            spec = self.schema[current_type].get(path.spec.name)
            target[path.name] = render(spec, current.get(path.spec.name)) if spec else None
        return out

    @staticmethod
    def attributes(sobject: str, row: Row) -> dict[str, str]:
        return {"type": sobject, "url": f"{BASE}/sobjects/{sobject}/{row['Id']}"}

    # WHERE ---------------------------------------------------------------------
    def _coerce_literal(
        self, path: Path, lit: soql.Literal, source: str, ref: soql.FieldRef
    ) -> Any:
        spec_type = path.sort_type

        def wrong(expected: str, quoted: bool) -> soql.SoqlError:
            hint = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
            return soql.SoqlError(
                "INVALID_QUERY_FILTER_OPERATOR",
                soql.located(
                    source,
                    lit.pos,
                    f"value of filter criterion for field '{ref.text}' must be of type "
                    f"{expected} and {hint}",
                ),
            )

        if lit.kind == "null":
            return None
        if lit.kind == "relative":
            if spec_type not in ("datetime", "date"):
                raise wrong(
                    "date or dateTime" if spec_type in _NUMERIC else spec_type, quoted=False
                )
            start, end = relative_span(lit.value[0], lit.value[1], self.clock.now())
            if spec_type == "date":
                return Span(fmt_date(start), fmt_date(end))
            return Span(start, end)
        if spec_type == "datetime":
            if lit.kind != "datetime":
                raise wrong("dateTime", quoted=False)
            return ms(float(lit.value))
        if spec_type == "date":
            if lit.kind != "date":
                raise wrong("date", quoted=False)
            return lit.value
        if spec_type == "boolean":
            if lit.kind != "boolean":
                raise wrong("boolean", quoted=False)
            return lit.value
        if spec_type in _NUMERIC:
            if lit.kind != "number":
                raise wrong("double" if spec_type != "int" else "int", quoted=False)
            return lit.value
        if lit.kind != "string":
            raise wrong("string", quoted=True)
        if lit.value == "":
            return None  # Salesforce keeps no empty strings: '' is null in SOQL
        if spec_type in ("id", "reference"):
            if not _ID_SHAPE.fullmatch(lit.value):
                raise soql.SoqlError(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    soql.located(source, lit.pos, f"invalid ID field: {lit.value}"),
                )
            return normalise_id(lit.value)
        return lit.value.casefold()

    def _compile(self, obj: SObjectSpec, expr: soql.Expr, source: str) -> Callable[[Row], bool]:
        if isinstance(expr, soql.And):
            parts = [self._compile(obj, e, source) for e in expr.items]
            return lambda row: all(p(row) for p in parts)
        if isinstance(expr, soql.Or):
            parts = [self._compile(obj, e, source) for e in expr.items]
            return lambda row: any(p(row) for p in parts)
        if isinstance(expr, soql.Not):
            inner = self._compile(obj, expr.item, source)
            return lambda row: not inner(row)
        path = self.resolve(obj, expr.field, source)
        name = obj.name
        norm = self._normaliser(path)
        get = self.value

        def value(row: Row) -> Any:
            return norm(get(row, name, path))

        op = expr.op
        if op in ("IN", "NOT IN"):
            assert isinstance(expr.value, tuple)
            if any(lit.kind == "relative" for lit in expr.value):
                raise soql.SoqlError(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    soql.located(
                        source, expr.field.pos, "relative date literals cannot be used in IN"
                    ),
                )
            allowed = {self._coerce_literal(path, lit, source, expr.field) for lit in expr.value}
            if op == "IN":
                return lambda row: (v := value(row)) is not None and v in allowed
            return lambda row: (v := value(row)) is None or v not in allowed
        assert isinstance(expr.value, soql.Literal)
        if op == "LIKE":
            if path.sort_type not in _TEXT:
                raise soql.SoqlError(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    soql.located(source, expr.field.pos,
                                 f"invalid operator on {path.sort_type} field: LIKE"),
                )  # fmt: skip
            pattern = soql.like_to_regex(str(expr.value.value))
            return lambda row: (
                (v := get(row, name, path)) is not None and bool(pattern.fullmatch(str(v)))
            )
        lit = self._coerce_literal(path, expr.value, source, expr.field)
        if isinstance(lit, Span):
            return self._span_predicate(value, op, lit)
        if op == "=":
            return lambda row: value(row) == lit
        if op == "!=":
            return lambda row: value(row) != lit
        if lit is None:
            return lambda row: False
        compare: Callable[[Any, Any], bool] = {
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
        }[op]
        return lambda row: (v := value(row)) is not None and compare(v, lit)

    @staticmethod
    def _span_predicate(value: Callable[[Row], Any], op: str, span: Span) -> Callable[[Row], bool]:
        """SOQL compares ``<`` with a range's start, ``>`` with its end, ``=`` with the range."""
        start, end = span.start, span.end
        tests: dict[str, Callable[[Any], bool]] = {
            "=": lambda v: start <= v < end,
            "!=": lambda v: not start <= v < end,
            "<": lambda v: v < start,
            "<=": lambda v: v < end,
            ">": lambda v: v >= end,
            ">=": lambda v: v >= start,
        }
        test = tests[op]
        if op == "!=":
            return lambda row: (v := value(row)) is None or test(v)
        return lambda row: (v := value(row)) is not None and test(v)

    @staticmethod
    def _normaliser(path: Path) -> Callable[[Any], Any]:
        kind = path.sort_type
        if kind in ("id", "reference"):
            return lambda v: None if v is None else normalise_id(str(v))
        if kind in _TEXT:
            return lambda v: None if v is None else str(v).casefold()
        if kind == "datetime":
            return lambda v: None if v is None else ms(float(v))
        return lambda v: v

    def _plan(self, table: Table, expr: soql.Expr) -> tuple[npt.NDArray[np.bool_] | None, bool]:
        """Candidate rows from indexes and columns, and whether they are exactly the
        matches (then rows need not be materialised to check them). ``None``: scan."""
        if isinstance(expr, soql.And):
            parts = [self._plan(table, e) for e in expr.items]
            masks = [m for m, _ in parts if m is not None]
            if not masks:
                return None, False
            out = masks[0].copy()
            for other in masks[1:]:
                out &= other
            return out, len(masks) == len(parts) and all(exact for _, exact in parts)
        if isinstance(expr, soql.Or):
            union = np.zeros(table.n, dtype=np.bool_)
            exact_all = True
            for item in expr.items:
                mask, exact = self._plan(table, item)
                if mask is None:
                    return None, False
                union |= mask
                exact_all &= exact
            return union, exact_all
        if isinstance(expr, soql.Not):
            mask, exact = self._plan(table, expr.item)
            if mask is None or not exact:
                return None, False
            return ~mask, True
        if len(expr.field.path) != 1:
            return None, False
        name = expr.field.path[0].lower()
        literals = expr.value if isinstance(expr.value, tuple) else (expr.value,)
        op = expr.op
        if name == "id" and op in ("=", "IN") and all(lit.kind == "string" for lit in literals):
            mask = np.zeros(table.n, dtype=np.bool_)
            for lit in literals:
                parsed = parse_id(str(lit.value))
                if parsed is not None and parsed[0] == table.name and parsed[1] < table.n:
                    mask[parsed[1]] = True
            return mask, True
        if name == "isdeleted" and op in ("=", "!=") and literals[0].kind == "boolean":
            wanted = bool(literals[0].value) == (op == "=")
            return (table.deleted.copy() if wanted else ~table.deleted), True
        if (
            table.has_column(name)
            and op in ("=", "!=", "IN", "NOT IN")
            and all(lit.kind == "boolean" for lit in literals)
        ):
            mask = table.column_mask(name, [lit.value for lit in literals])
            return (mask if op in ("=", "IN") else ~mask), True
        if op in ("=", "IN") and table.indexed(name):
            spec = table.spec.get(name)
            if spec is None or any(lit.kind == "null" or lit.value == "" for lit in literals):
                return None, False
            keys = [index_key(spec, lit.value) for lit in literals]
            mask = np.zeros(table.n, dtype=np.bool_)
            mask[list(table.lookup(name, keys))] = True
            return mask, False
        if name in STAMP_FIELDS or name == "createddate":
            single = expr.value
            if not isinstance(single, soql.Literal) or single.kind not in ("datetime", "relative"):
                return None, False
            arr = table.created if name == "createddate" else table.stamp
            if single.kind == "relative":
                start, end = relative_span(single.value[0], single.value[1], self.clock.now())
                spans = {
                    "=": lambda: (arr >= start) & (arr < end),
                    "!=": lambda: (arr < start) | (arr >= end),
                    "<": lambda: arr < start,
                    "<=": lambda: arr < end,
                    ">": lambda: arr >= end,
                    ">=": lambda: arr >= start,
                }
                return spans[op](), True
            value = ms(float(single.value))
            compare = {
                "=": np.equal,
                "!=": np.not_equal,
                "<": np.less,
                "<=": np.less_equal,
                ">": np.greater,
                ">=": np.greater_equal,
            }.get(op)
            if compare is None:
                return None, False
            return compare(arr, value), True
        return None, False

    def _order(
        self,
        obj: SObjectSpec,
        table: Table,
        seqs: npt.NDArray[np.int64],
        order: Sequence[soql.OrderItem],
        source: str,
    ) -> npt.NDArray[np.int64]:
        paths = [self.resolve(obj, item.field, source) for item in order]
        arrays: list[npt.NDArray[Any]] = []
        for path in paths:
            name = path.name.lower() if not path.steps else ""
            if name == "id":
                arrays.append(seqs)
            elif name in STAMP_FIELDS:
                arrays.append(table.stamp[seqs])
            elif name == "createddate":
                arrays.append(table.created[seqs])
            else:
                break
        if len(arrays) == len(paths):  # no nulls possible: sort on the arrays
            keys = [-a if item.descending else a for a, item in zip(arrays, order, strict=True)]
            return seqs[np.lexsort(tuple(reversed(keys)))]
        items: list[int] = seqs.tolist()
        rows = {s: table.row(s) for s in items}
        for item, path in reversed(list(zip(order, paths, strict=True))):
            norm = self._normaliser(path)
            values = {s: norm(self.value(rows[s], obj.name, path)) for s in items}
            present = [s for s in items if values[s] is not None]
            nulls = [s for s in items if values[s] is None]
            present.sort(key=lambda s: values[s], reverse=item.descending)
            items = present + nulls if item.nulls_last else nulls + present
        return np.array(items, dtype=np.int64)

    # --------------------------------------------------------------- reading
    def locate(self, sobject: str, record_id: str) -> tuple[Table, int]:
        """The table and row of ``record_id``; 404 as Salesforce answers otherwise."""
        table = self.tables[sobject]
        parsed = parse_id(record_id)
        if parsed is None or parsed[0] != sobject or not table.has(parsed[1], include_deleted=True):
            raise not_found()
        if table.is_deleted(parsed[1]):
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted", status=404)
        return table, parsed[1]

    def get(self, sobject: str, record_id: str, fields: Sequence[str] | None) -> dict[str, Any]:
        with self.lock:
            table, seq = self.locate(sobject, record_id)
            return self.render_row(sobject, table.row(seq), fields)

    def render_row(self, sobject: str, row: Row, fields: Sequence[str] | None) -> dict[str, Any]:
        obj = self.schema[sobject]
        if fields:
            specs = []
            for name in fields:
                spec = obj.get(name)
                if spec is None:
                    raise RecordError(
                        "INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'."
                    )
                specs.append(spec)
        else:
            specs = list(obj.fields.values())
        out: dict[str, Any] = {"attributes": self.attributes(sobject, row)}
        for spec in specs:
            out[spec.name] = render(spec, row.get(spec.name))
        return out

    def replication(
        self, sobject: str, start: float, end: float, *, deleted: bool
    ) -> list[tuple[str, float]]:
        """Rows written (or deleted) in ``[start, end)``: ``(id, stamp)`` by stamp."""
        with self.lock:
            table = self.tables[sobject]
            stamp = table.stamp
            mask = (stamp >= start) & (stamp < end)
            mask &= table.deleted if deleted else ~table.deleted
            seqs = np.flatnonzero(mask)
            seqs = seqs[np.argsort(stamp[seqs], kind="stable")]
            return [(table.id_of(int(s)), float(stamp[s])) for s in seqs]

    def find_by(self, sobject: str, field_name: str, value: str) -> list[int]:
        """Rows whose external-id field (or ``Id``) equals ``value``."""
        obj = self.schema[sobject]
        spec = obj.get(field_name)
        if spec is None or not (spec.external_id or spec.name == "Id"):
            raise RecordError(
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field_name}",
                status=404,
            )
        table = self.tables[sobject]
        if spec.name == "Id":
            parsed = parse_id(value)
            if parsed is None or parsed[0] != sobject or not table.has(parsed[1]):
                return []
            return [parsed[1]]
        try:
            coerced = self.coerce(spec, value, sobject)
        except RecordError:
            return []
        return table.find(spec, coerced)

    # --------------------------------------------------------------- writing
    def coerce(self, spec: FieldSpec, value: Any, sobject: str) -> Any:
        """A JSON value for ``spec`` in the sandbox's storage form, or a refusal."""
        if value is None:
            return None

        def bad(what: str) -> RecordError:
            return RecordError(
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {what} from {type(value).__name__} value "
                f"{value!r} or request may be missing a required field",
                [spec.name],
            )

        kind = spec.type
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise bad("boolean")
        if kind in _NUMERIC:
            if isinstance(value, bool):
                raise bad(kind)
            try:
                number = float(value) if not isinstance(value, int | float) else value
            except (TypeError, ValueError):
                raise bad(kind) from None
            if kind == "int":
                if float(number) != int(number):
                    raise bad("int")
                return int(number)
            return float(number)
        if kind == "datetime":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return ms(float(value) / 1000)
            try:
                return parse_datetime_value(str(value))
            except ValueError:
                raise bad("datetime") from None
        if kind == "date":
            try:
                return date.fromisoformat(str(value)[:10]).isoformat()
            except ValueError:
                raise bad("date") from None
        if isinstance(value, dict | list):
            raise bad("string")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if text == "":
            return None  # Salesforce stores a blank text or lookup field as null
        if kind in ("id", "reference"):
            parsed = parse_id(text)
            if parsed is None or parsed[0] not in spec.reference_to:
                raise RecordError(
                    "MALFORMED_ID" if parsed is None else "FIELD_INTEGRITY_EXCEPTION",
                    f"{spec.label}: id value of incorrect type: {text}",
                    [spec.name],
                )
            table = self.tables[parsed[0]]
            if not table.has(parsed[1]):
                raise RecordError(
                    "INVALID_CROSS_REFERENCE_KEY",
                    f"invalid cross reference id: {text}"
                    if not table.has(parsed[1], include_deleted=True)
                    else "entity is deleted",
                    [spec.name],
                )
            return make_id(*parsed)
        if kind == "email" and text and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
            raise RecordError(
                "INVALID_EMAIL_ADDRESS", f"{spec.label}: invalid email address: {text}", [spec.name]
            )
        if spec.length and len(text) > spec.length:
            raise RecordError(
                "STRING_TOO_LONG",
                f"{spec.label}: data value too large: {text[:40]} (max length={spec.length})",
                [spec.name],
            )
        return text

    def _apply_fields(
        self, obj: SObjectSpec, row: Row, body: Mapping[str, Any], *, creating: bool
    ) -> None:
        refused: list[str] = []
        for key, value in body.items():
            if key == "attributes":
                continue
            spec = obj.get(key)
            if spec is None:
                raise RecordError(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}", [key]
                )
            if not (spec.createable if creating else spec.updateable):
                refused.append(spec.name)
                continue
            row[spec.name] = self.coerce(spec, value, obj.name)
        if refused:
            raise RecordError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(refused)}. Please check the security "
                "settings of this field and verify that it is read/write for your profile or "
                "permission set.",
                refused,
            )

    def _derive(self, obj: SObjectSpec, row: Row, old: Row | None) -> None:
        """Fields Salesforce computes itself on save."""
        now = self.now()
        name = obj.name
        if name in ("Lead", "Contact", "User"):
            row["Name"] = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p)
        if name == "Opportunity":
            stage = row.get("StageName")
            row["IsClosed"] = stage in ("Closed Won", "Closed Lost")
            row["IsWon"] = stage == "Closed Won"
            if old is None or old.get("StageName") != stage:
                if "Probability" not in row or row.get("Probability") is None or old is not None:
                    row["Probability"] = float(STAGE_PROBABILITY.get(str(stage), 10))
                row["ForecastCategoryName"] = (
                    "Closed" if row["IsWon"] else "Omitted" if row["IsClosed"] else "Pipeline"
                )
        if name == "Task":
            row["IsClosed"] = row.get("Status") == "Completed"
            if row["IsClosed"] and (old is None or not old.get("IsClosed")):
                row["CompletedDateTime"] = now
        if name == "Event":
            start = row.get("StartDateTime") or row.get("ActivityDateTime")
            if start is not None:
                row["StartDateTime"] = row["ActivityDateTime"] = start
                row["ActivityDate"] = fmt_date(start)
                if row.get("DurationInMinutes") is not None:
                    row["EndDateTime"] = start + 60 * int(row["DurationInMinutes"])
                elif row.get("EndDateTime") is not None:
                    row["DurationInMinutes"] = int((row["EndDateTime"] - start) // 60)
        if name == "CampaignMember":
            responded = row.get("Status") in RESPONDED_STATUSES
            row["HasResponded"] = responded
            if responded and row.get("FirstRespondedDate") is None:
                row["FirstRespondedDate"] = fmt_date(now)
            person = None
            for id_field in ("ContactId", "LeadId"):
                found = self.parent(row, id_field)
                if found is not None:
                    person = found[1]
                    break
            if person is not None:
                for key in ("Email", "FirstName", "LastName"):
                    row[key] = person.get(key)

    def _check_required(self, obj: SObjectSpec, row: Row) -> None:
        missing = [
            s.name for s in obj.fields.values() if s.required and row.get(s.name) in (None, "")
        ]
        if missing:
            raise RecordError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        if obj.name == "Event" and not row.get("IsAllDayEvent"):
            # Object reference, Event: unless all-day, a start and either
            # DurationInMinutes or EndDateTime must be given.
            missing = []
            if row.get("StartDateTime") is None and row.get("ActivityDateTime") is None:
                missing.append("ActivityDateTime")
            if row.get("DurationInMinutes") is None and row.get("EndDateTime") is None:
                missing.append("DurationInMinutes")
            if missing:
                raise RecordError(
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )
        if obj.name == "CampaignMember" and not (row.get("LeadId") or row.get("ContactId")):
            raise RecordError(
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [LeadId, ContactId]",
                ["LeadId", "ContactId"],
            )

    def _check_unique(self, obj: SObjectSpec, row: Row, seq: int | None) -> None:
        table = self.tables[obj.name]
        for spec in obj.fields.values():
            if not spec.unique or row.get(spec.name) is None:
                continue
            clash = [s for s in table.find(spec, row[spec.name]) if s != seq]
            if clash:
                raise RecordError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {spec.name} duplicates value on record with id: "
                    f"{table.id_of(clash[0])}",
                    [spec.name],
                )
        if obj.name == "CampaignMember" and seq is None:
            for id_field in ("LeadId", "ContactId"):
                person = row.get(id_field)
                if person is None:
                    continue
                ref_spec = obj.get(id_field)
                assert ref_spec is not None
                for other in table.find(ref_spec, person):
                    if table.row(other).get("CampaignId") == row.get("CampaignId"):
                        raise RecordError(
                            "DUPLICATE_VALUE", "Already a campaign member.", [id_field]
                        )

    def prepare_create(self, sobject: str, body: Mapping[str, Any]) -> PreparedWrite:
        obj = self.schema[sobject]
        if not obj.createable:
            raise RecordError(
                "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", f"entity type cannot be inserted: {sobject}"
            )
        if any(k.lower() == "id" for k in body):
            raise RecordError(
                "INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"]
            )
        now = self.now()
        row: Row = {}
        for spec in obj.fields.values():
            if spec.default is not None:
                row[spec.name] = spec.default
        if obj.get("OwnerId") is not None:
            row["OwnerId"] = INTEGRATION_USER
        self._apply_fields(obj, row, body, creating=True)
        self._check_required(obj, row)
        row.update(
            IsDeleted=False,
            CreatedDate=now,
            CreatedById=INTEGRATION_USER,
            LastModifiedDate=now,
            LastModifiedById=INTEGRATION_USER,
            SystemModstamp=now,
        )
        self._derive(obj, row, None)
        self._check_unique(obj, row, None)
        return PreparedWrite(sobject, None, row, created=True)

    def prepare_update(
        self, sobject: str, record_id: str | int, body: Mapping[str, Any]
    ) -> PreparedWrite:
        obj = self.schema[sobject]
        if not obj.updateable:
            raise RecordError(
                "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", f"entity type cannot be updated: {sobject}"
            )
        if isinstance(record_id, int):
            table, seq = self.tables[sobject], record_id
        else:
            table, seq = self.locate(sobject, record_id)
        old = table.row(seq)
        if sobject == "Lead" and old.get("IsConverted"):
            raise RecordError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
        row = dict(old)
        body = {k: v for k, v in body.items() if k.lower() != "id"}
        self._apply_fields(obj, row, body, creating=False)
        self._check_required(obj, row)
        now = self.now()
        row.update(LastModifiedDate=now, LastModifiedById=INTEGRATION_USER, SystemModstamp=now)
        self._derive(obj, row, old)
        self._check_unique(obj, row, seq)
        return PreparedWrite(sobject, seq, row)

    def commit(self, write: PreparedWrite) -> str:
        table = self.tables[write.sobject]
        if write.seq is None:
            write.seq = table.append(write.row)
        else:
            table.put(write.seq, write.row)
        if write.sobject in ("Task", "Event") and not write.row.get("IsDeleted"):
            self._roll_up_activity(write)
        return table.id_of(write.seq)

    def _roll_up_activity(self, write: PreparedWrite) -> None:
        """``LastActivityDate`` of the Who, the What and a Contact's Account: the latest
        due date of closed Tasks and start date of Events. Salesforce sets it by a
        system process, which moves ``SystemModstamp`` but not ``LastModifiedDate``
        (Help: "Difference between SystemModStamp and LastModifiedDate"). Only raises
        the date; deleting or reopening an activity does not recompute it here."""
        row = write.row
        if write.sobject == "Task" and not row.get("IsClosed"):
            return
        day = row.get("ActivityDate")
        if not day:
            return
        targets: list[tuple[str, int]] = []
        for id_field in ("WhoId", "WhatId"):
            found = self.parent(row, id_field)
            if found is None:
                continue
            sobject, parent_row = found
            parsed = parse_id(str(parent_row["Id"]))
            assert parsed is not None
            targets.append(parsed)
            if sobject == "Contact":
                account = self.parent(parent_row, "AccountId")
                if account is not None:
                    account_id = parse_id(str(account[1]["Id"]))
                    assert account_id is not None
                    targets.append(account_id)
        now = self.now()
        for sobject, seq in dict.fromkeys(targets):
            table = self.tables[sobject]
            if table.spec.get("LastActivityDate") is None or table.is_deleted(seq):
                continue
            old = table.row(seq)
            if old.get("LastActivityDate") is not None and str(old["LastActivityDate"]) >= day:
                continue
            write.touched.append((sobject, seq, dict(old)))
            table.put(seq, {**old, "LastActivityDate": day, "SystemModstamp": now})

    def create(self, sobject: str, body: Mapping[str, Any]) -> str:
        with self.lock:
            return self.commit(self.prepare_create(sobject, body))

    def update(self, sobject: str, record_id: str, body: Mapping[str, Any]) -> None:
        with self.lock:
            self.commit(self.prepare_update(sobject, record_id, body))

    def prepare_upsert(
        self, sobject: str, field_name: str, value: str, body: Mapping[str, Any]
    ) -> PreparedWrite:
        matches = self.find_by(sobject, field_name, value)
        spec = self.schema[sobject].get(field_name)
        assert spec is not None
        if len(matches) > 1:
            table = self.tables[sobject]
            raise RecordError(
                "MULTIPLE_CHOICES",
                f"More than 1 record found for external id field: "
                f"[{', '.join(table.id_of(m) for m in matches)}]",
                status=300,
            )
        body = {k: v for k, v in body.items() if k.lower() != spec.name.lower()}
        if matches:
            return self.prepare_update(sobject, matches[0], body)
        if spec.name == "Id":
            raise not_found()
        return self.prepare_create(sobject, {**body, spec.name: value})

    def upsert(
        self, sobject: str, field_name: str, value: str, body: Mapping[str, Any]
    ) -> tuple[str, bool]:
        with self.lock:
            write = self.prepare_upsert(sobject, field_name, value, body)
            return self.commit(write), write.created

    def matching_urls(self, sobject: str, field_name: str, value: str) -> list[str]:
        with self.lock:
            table = self.tables[sobject]
            return [
                f"{BASE}/sobjects/{sobject}/{table.id_of(s)}"
                for s in self.find_by(sobject, field_name, value)
            ]

    def prepare_delete(self, sobject: str, record_id: str) -> PreparedWrite:
        obj = self.schema[sobject]
        if not obj.deletable:
            raise RecordError(
                "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id"
            )
        table, seq = self.locate(sobject, record_id)
        row = dict(table.row(seq))
        now = self.now()
        row.update(IsDeleted=True, LastModifiedDate=now, LastModifiedById=INTEGRATION_USER,
                   SystemModstamp=now)  # fmt: skip
        return PreparedWrite(sobject, seq, row)

    def delete(self, sobject: str, record_id: str) -> None:
        with self.lock:
            self.commit(self.prepare_delete(sobject, record_id))

    # --------------------------------------------------------------- activity
    def simulate_activity(self, count: int, *, seed: int = 0) -> list[str]:
        """Fresh engagement now for ``count`` people (see ``SalesforceSandbox``); returns
        the ids of their Leads and Contacts.

        Who is active and what they do continue the world's story
        (:meth:`~connectors.sandbox.world.World.simulate`). Salesforce sees what it
        records: replies (e-mail Tasks), e-mail clicks and forms (campaign responses),
        booked meetings (Events); page views and opens stay in the marketing tool.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"count: expected a non-negative integer, got {count!r}")
        with self.lock:
            where: dict[int, tuple[str, int]] = {}
            for sobject, persons in (
                ("Contact", self.seed.contact_person),
                ("Lead", self.seed.lead_person),
            ):
                table = self.tables[sobject]
                alive = ~table.deleted[: len(persons)]
                if sobject == "Lead":
                    alive &= ~table.column_mask("IsConverted", [True])[: len(persons)]
                for seq in np.flatnonzero(alive).tolist():
                    where.setdefault(int(persons[seq]), (sobject, int(seq)))
            events = self.seed.world.simulate(
                count, at=self.clock.now(), seed=seed, among=sorted(where)
            )
            by_person: dict[int, list[SimulatedEvent]] = {}
            for event in events:
                by_person.setdefault(event.person, []).append(event)
            ids: list[str] = []
            for person, mine in sorted(by_person.items()):
                sobject, seq = where[person]
                table = self.tables[sobject]
                who = table.id_of(seq)
                for event in mine:
                    self._simulate_event(sobject, who, event)
                # Fresh engagement is a system change (the marketing tool's sync, or the
                # Task above): SystemModstamp moves, LastModifiedDate does not.
                row = dict(table.row(seq))
                row["SystemModstamp"] = self.now()
                table.put(seq, row)
                ids.append(who)
                if self.outbound is not None:
                    fields = {"Id": who}
                    if row.get("Email"):
                        fields["Email"] = str(row["Email"])
                    self.outbound.record_changed(sobject, fields)
            return ids

    def _simulate_event(self, sobject: str, who: str, event: SimulatedEvent) -> bool:
        names = self.seed.campaign_names
        n_email, n_web = self.seed.n_email_campaigns, self.seed.n_webinars
        today = fmt_date(self.now())
        if event.kind == "email_open":
            # Salesforce does not see opens; it logs the campaign e-mail that brought
            # the person as a list e-mail Task (a send, no signal by itself).
            topic = names[event.detail] if 0 <= event.detail < n_email else "Newsletter"
            self.commit(self.prepare_create("Task", {
                "WhoId": who, "Subject": f"Email: {topic}", "Type": "Email",
                "TaskSubtype": "ListEmail", "Status": "Completed", "ActivityDate": today}))  # fmt: skip
        elif event.kind == "email_reply":
            topic = names[event.detail] if 0 <= event.detail < n_email else "Follow-up"
            self.commit(self.prepare_create("Task", {
                "WhoId": who, "Subject": f"Email: Re: {topic}", "Type": "Email",
                "TaskSubtype": "Email", "Status": "Completed", "ActivityDate": today}))  # fmt: skip
        elif event.kind == "meeting_booked":
            start = self.now() + 86_400.0
            self.commit(self.prepare_create("Event", {
                "WhoId": who, "Subject": "Demo call", "Type": "Meeting",
                "StartDateTime": fmt_datetime(start), "EndDateTime": fmt_datetime(start + 1800),
                "ActivityDateTime": fmt_datetime(start),
                "DurationInMinutes": 30}))  # fmt: skip
        elif event.kind == "email_click" and n_email:
            return self._respond_to_one(sobject, who, [event.detail % n_email, *range(n_email)])
        elif event.kind == "form_submit" and event.detail >= 0:
            return self._respond_to_one(sobject, who, [n_email + n_web + event.detail])
        else:
            return False
        return True

    def _respond_to_one(self, sobject: str, who: str, campaigns: list[int]) -> bool:
        """Respond to the first of ``campaigns`` not yet responded to: a campaign
        member responds once, so a second click on the same campaign is no news."""
        members = self.tables["CampaignMember"]
        campaign_table = self.tables["Campaign"]
        id_field = "LeadId" if sobject == "Lead" else "ContactId"
        spec = members.spec.get(id_field)
        assert spec is not None
        responded = {
            members.row(m).get("CampaignId")
            for m in members.find(spec, who)
            if members.row(m).get("HasResponded")
        }
        for c in campaigns:
            if 0 <= c < campaign_table.n:
                campaign_id = campaign_table.id_of(c)
                if campaign_id not in responded:
                    self._respond(campaign_id, sobject, who)
                    return True
        return False

    def _respond(self, campaign_id: str, sobject: str, who: str) -> None:
        members = self.tables["CampaignMember"]
        id_field = "LeadId" if sobject == "Lead" else "ContactId"
        spec = members.spec.get(id_field)
        assert spec is not None
        for seq in members.find(spec, who):
            if members.row(seq).get("CampaignId") == campaign_id:
                self.commit(self.prepare_update("CampaignMember", seq, {"Status": "Responded"}))
                return
        self.commit(self.prepare_create(
            "CampaignMember", {"CampaignId": campaign_id, id_field: who, "Status": "Responded"}))  # fmt: skip


def iter_ids(values: Iterable[str]) -> list[str]:
    return [v for v in (x.strip() for x in values) if v]
