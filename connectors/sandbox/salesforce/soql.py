"""A small SOQL parser: tokenizer plus recursive descent, for the SOQL connectors send.

Supported: ``SELECT`` a field list (parent fields such as ``Account.Name`` included,
and parent-to-child sub-queries such as ``(SELECT ContactId FROM OpportunityContactRoles)``
with their own ``WHERE``, ``ORDER BY`` and ``LIMIT``, one level deep) or ``COUNT()``, ``FROM`` one object, ``WHERE`` with ``= != <> < <= > >= IN NOT IN LIKE``,
``AND``/``OR``/``NOT`` and parentheses, literals (quoted strings with escapes, numbers,
``true``/``false``/``null``, unquoted date and datetime literals, and the relative ``TODAY``, ``YESTERDAY``,
``TOMORROW``, ``LAST_N_DAYS:n``, ``NEXT_N_DAYS:n``), ``ORDER BY`` several
fields with ``ASC``/``DESC`` and ``NULLS FIRST``/``LAST``, ``LIMIT`` and ``OFFSET``.
Anything else (semi-join sub-selects in ``WHERE``, nested sub-queries, ``GROUP BY``, functions, other relative date literals)
is refused with ``MALFORMED_QUERY`` rather than half-understood: a connector that
depends on more must find out here, not in production.

As in SOQL, AND and OR may not be mixed at one level without parentheses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

MAX_OFFSET = 2000


class SoqlError(Exception):
    """A query Salesforce would refuse; ``code`` is the ``errorCode`` it answers with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class FieldRef:
    path: tuple[str, ...]  # as written; resolved case-insensitively against the schema
    pos: int

    @property
    def text(self) -> str:
        return ".".join(self.path)


# A literal's value: text, a number, a boolean, null, a datetime as epoch seconds, a
# date as "YYYY-MM-DD", or a relative date literal as ("LAST_N_DAYS", n).
LiteralValue = str | int | float | bool | tuple[str, int] | None


@dataclass(frozen=True, slots=True)
class Literal:
    kind: str  # string | number | boolean | null | datetime | date | relative
    # str | int | float | bool | None | epoch seconds (datetime) | "YYYY-MM-DD" |
    # ("LAST_N_DAYS", n) and the like for relative date literals: a ``LiteralValue``,
    # kept open because the store's filters read it by ``kind`` without narrowing.
    value: Any
    pos: int


@dataclass(frozen=True, slots=True)
class Compare:
    field: FieldRef
    op: str  # = != < <= > >= IN NOT IN LIKE
    value: Literal | tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Expr


Expr = Compare | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderItem:
    field: FieldRef
    descending: bool
    nulls_last: bool


@dataclass(frozen=True, slots=True)
class SubQuery:
    """``(SELECT ... FROM <child relationship> ...)`` in a select list: the parent's
    child records, answered as a nested query result (or ``null`` when none)."""

    fields: tuple[FieldRef, ...]
    relationship: str
    relationship_pos: int
    where: Expr | None
    order: tuple[OrderItem, ...]
    limit: int | None


@dataclass(frozen=True, slots=True)
class Query:
    fields: tuple[FieldRef, ...]
    count: bool
    sobject: str
    sobject_pos: int
    where: Expr | None
    order: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None
    children: tuple[SubQuery, ...] = ()


# ------------------------------------------------------------------ tokenizer

_DATETIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})"
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>"""
    + _DATETIME
    + r""")(?![\w.])
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\w.:])
  | (?P<number>[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)(?![\w])
  | (?P<string>')
  | (?P<relative>(?i:(?:LAST|NEXT)_N_DAYS:\d+|TODAY|YESTERDAY|TOMORROW))(?![\w.:])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_ESCAPES = {
    "'": "'",
    '"': '"',
    "\\": "\\",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    "_": "\\_",  # kept escaped: only LIKE gives them meaning
    "%": "\\%",
}
KEYWORDS = frozenset(
    [
        "select",
        "from",
        "where",
        "and",
        "or",
        "not",
        "in",
        "like",
        "order",
        "by",
        "asc",
        "desc",
        "nulls",
        "first",
        "last",
        "limit",
        "offset",
        "true",
        "false",
        "null",
        "count",
        "group",
        "having",
        "with",
        "for",
        "typeof",
        "includes",
        "excludes",
        "using",
    ]
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # ident | keyword | string | number | datetime | date | op | punct | eof
    text: str
    value: LiteralValue
    pos: int


def _read_string(source: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(source):
        char = source[i]
        if char == "'":
            return "".join(out), i + 1
        if char == "\\":
            if i + 1 >= len(source):
                break
            nxt = source[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", source[i + 2 : i + 6]):
                out.append(chr(int(source[i + 2 : i + 6], 16)))
                i += 6
                continue
            if nxt not in _ESCAPES:
                raise SoqlError(
                    "MALFORMED_QUERY",
                    _located(
                        source,
                        i,
                        f"Invalid string literal '{source[start : i + 2]}'. "
                        "Illegal character sequence '\\" + nxt + "' in string literal.",
                    ),
                )
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(char)
        i += 1
    raise SoqlError("MALFORMED_QUERY", _located(source, start, "unterminated string literal"))


def _parse_datetime(text: str) -> float:
    match = re.fullmatch(
        r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|([+-])(\d{2}):?(\d{2}))",
        text,
    )
    if match is None:
        raise ValueError(text)
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or "0"
    tz = UTC
    if match.group(8) != "Z":
        sign = 1 if match.group(9) == "+" else -1
        tz = timezone(sign * timedelta(hours=int(match.group(10)), minutes=int(match.group(11))))
    moment = datetime(year, month, day, hour, minute, second, tzinfo=tz)
    return moment.timestamp() + float("0." + fraction)


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise SoqlError(
                "MALFORMED_QUERY", _located(source, pos, f"unexpected token: '{source[pos]}'")
            )
        kind = match.lastgroup or ""
        text = match.group(0)
        if kind == "ws":
            pos = match.end()
            continue
        if kind == "string":
            text_value, end = _read_string(source, pos)
            tokens.append(Token("string", source[pos:end], text_value, pos))
            pos = end
            continue
        value: LiteralValue = text
        try:
            if kind == "datetime":
                value = _parse_datetime(text)
            elif kind == "date":
                value = date.fromisoformat(text).isoformat()
        except ValueError:
            raise SoqlError(
                "MALFORMED_QUERY", _located(source, pos, f"invalid date or datetime: {text}")
            ) from None
        if kind == "number":
            value = float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "relative":
            name, _, days = text.upper().partition(":")
            value = (name, int(days or 0))
        if kind == "ident" and "." not in text and text.lower() in KEYWORDS:
            kind = "keyword"
            value = text.lower()
        tokens.append(Token(kind, text, value, pos))
        pos = match.end()
    tokens.append(Token("eof", "", None, len(source)))
    return tokens


def _located(source: str, pos: int, message: str) -> str:
    """Salesforce's error layout: the query, a caret, row and column, the message."""
    line_start = source.rfind("\n", 0, pos) + 1
    row = source.count("\n", 0, pos) + 1
    col = pos - line_start + 1
    line_end = source.find("\n", pos)
    line = source[line_start : line_end if line_end >= 0 else len(source)]
    return f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{message}"


# --------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.i = 0

    # helpers ----------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, token: Token | None = None, message: str | None = None) -> SoqlError:
        token = token or self.tok
        if message is None:
            message = (
                "unexpected token: <EOF>"
                if token.kind == "eof"
                else f"unexpected token: '{token.text}'"
            )
        return SoqlError("MALFORMED_QUERY", _located(self.source, token.pos, message))

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "keyword" and self.tok.value in words

    def expect_kw(self, word: str) -> Token:
        if not self.is_kw(word):
            raise self.error()
        return self.advance()

    def expect_punct(self, char: str) -> Token:
        if not (self.tok.kind == "punct" and self.tok.text == char):
            raise self.error()
        return self.advance()

    def advance(self) -> Token:
        token = self.tok
        self.i += 1
        return token

    # grammar ----------------------------------------------------------------
    def query(self) -> Query:
        self.expect_kw("select")
        count = False
        fields: list[FieldRef] = []
        children: list[SubQuery] = []
        if self.is_kw("count"):
            self.advance()
            self.expect_punct("(")
            self.expect_punct(")")
            count = True
        else:
            self.select_item(fields, children)
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                self.select_item(fields, children)
        seen: set[str] = set()
        for ref in fields:
            key = ref.text.lower()
            if key in seen:
                raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {ref.text}")
            seen.add(key)
        for child in children:
            key = child.relationship.lower()
            if key in seen:
                raise SoqlError(
                    "MALFORMED_QUERY", f"duplicate field selected: {child.relationship}"
                )
            seen.add(key)
        self.expect_kw("from")
        if self.is_kw("group"):
            # ``Group`` is an sObject as well as a keyword: Salesforce reads it as the
            # object right after FROM (``SELECT Id FROM Group WHERE Type = 'Queue'``).
            self.tokens[self.i] = Token("ident", self.tok.text, self.tok.text, self.tok.pos)
        if self.tok.kind != "ident" or "." in self.tok.text:
            raise self.error()
        sobject_token = self.advance()
        where = None
        if self.is_kw("where"):
            self.advance()
            where = self.expr()
        order: list[OrderItem] = []
        if self.is_kw("order"):
            self.advance()
            self.expect_kw("by")
            order.append(self.order_item())
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                order.append(self.order_item())
        limit = offset = None
        if self.is_kw("limit"):
            self.advance()
            limit = self.integer()
        if self.is_kw("offset"):
            self.advance()
            offset_token = self.tok
            offset = self.integer()
            if offset > MAX_OFFSET:
                raise SoqlError(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    _located(
                        self.source,
                        offset_token.pos,
                        f"Maximum SOQL offset allowed is {MAX_OFFSET}",
                    ),
                )
        if self.tok.kind != "eof":
            raise self.error()
        if count and order:
            raise self.error(message="Ordered field cannot be used with COUNT()")
        return Query(
            tuple(fields),
            count,
            sobject_token.text,
            sobject_token.pos,
            where,
            tuple(order),
            limit,
            offset,
            tuple(children),
        )

    def select_item(self, fields: list[FieldRef], children: list[SubQuery]) -> None:
        """A field, or a parenthesised parent-to-child sub-query."""
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.advance()
            children.append(self.subquery())
            self.expect_punct(")")
            return
        fields.append(self.field())

    def subquery(self) -> SubQuery:
        self.expect_kw("select")
        if self.is_kw("count"):
            raise self.error(message="COUNT() is not supported in a relationship sub-query")
        fields: list[FieldRef] = [self.field()]
        while self.tok.kind == "punct" and self.tok.text == ",":
            self.advance()
            if self.tok.kind == "punct" and self.tok.text == "(":
                raise self.error(message="nested relationship sub-queries are not supported")
            fields.append(self.field())
        seen: set[str] = set()
        for ref in fields:
            key = ref.text.lower()
            if key in seen:
                raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {ref.text}")
            seen.add(key)
        self.expect_kw("from")
        if self.tok.kind != "ident" or "." in self.tok.text:
            raise self.error()
        relationship = self.advance()
        where = None
        if self.is_kw("where"):
            self.advance()
            where = self.expr()
        order: list[OrderItem] = []
        if self.is_kw("order"):
            self.advance()
            self.expect_kw("by")
            order.append(self.order_item())
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                order.append(self.order_item())
        limit = None
        if self.is_kw("limit"):
            self.advance()
            limit = self.integer()
        return SubQuery(
            tuple(fields), relationship.text, relationship.pos, where, tuple(order), limit
        )

    def integer(self) -> int:
        token = self.tok
        if token.kind != "number" or not isinstance(token.value, int) or token.value < 0:
            raise self.error()
        self.advance()
        return int(token.value)

    def field(self) -> FieldRef:
        if self.tok.kind != "ident":
            raise self.error()
        token = self.advance()
        if self.tok.kind == "punct" and self.tok.text == "(":
            raise self.error(
                token, f"unexpected token: '{token.text}(' (functions are not supported)"
            )
        return FieldRef(tuple(token.text.split(".")), token.pos)

    def order_item(self) -> OrderItem:
        ref = self.field()
        descending = False
        if self.is_kw("asc", "desc"):
            descending = self.advance().value == "desc"
        nulls_last = False
        if self.is_kw("nulls"):
            self.advance()
            if not self.is_kw("first", "last"):
                raise self.error()
            nulls_last = self.advance().value == "last"
        return OrderItem(ref, descending, nulls_last)

    def expr(self) -> Expr:
        first = self.unary()
        if not self.is_kw("and", "or"):
            return first
        joiner = self.tok.value
        items = [first]
        while self.is_kw("and", "or"):
            if self.tok.value != joiner:  # SOQL refuses a mix of AND and OR without parentheses
                raise self.error()
            self.advance()
            items.append(self.unary())
        return And(tuple(items)) if joiner == "and" else Or(tuple(items))

    def unary(self) -> Expr:
        if self.is_kw("not"):
            self.advance()
            return Not(self.unary())
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.advance()
            inner = self.expr()
            self.expect_punct(")")
            return inner
        return self.condition()

    def condition(self) -> Compare:
        ref = self.field()
        token = self.tok
        if token.kind == "op":
            self.advance()
            op = "!=" if token.text == "<>" else token.text
            return Compare(ref, op, self.literal())
        if self.is_kw("like"):
            self.advance()
            value = self.literal()
            if value.kind != "string":
                raise self.error(message="LIKE needs a quoted string")
            return Compare(ref, "LIKE", value)
        negated = False
        if self.is_kw("not"):
            self.advance()
            negated = True
            if not self.is_kw("in"):
                raise self.error()
        if self.is_kw("in"):
            self.advance()
            self.expect_punct("(")
            if self.is_kw("select"):
                raise self.error(message="semi-join sub-selects are not supported")
            values = [self.literal()]
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                values.append(self.literal())
            self.expect_punct(")")
            return Compare(ref, "NOT IN" if negated else "IN", tuple(values))
        raise self.error()

    def literal(self) -> Literal:
        token = self.tok
        if token.kind in ("string", "number", "datetime", "date", "relative"):
            self.advance()
            return Literal(token.kind, token.value, token.pos)
        if token.kind == "keyword" and token.value in ("true", "false"):
            self.advance()
            return Literal("boolean", token.value == "true", token.pos)
        if token.kind == "keyword" and token.value == "null":
            self.advance()
            return Literal("null", None, token.pos)
        raise self.error()


def parse(source: str) -> Query:
    """Parse one SOQL statement or raise :class:`SoqlError` as Salesforce would."""
    if not source.strip():
        raise SoqlError("MALFORMED_QUERY", "unexpected token: <EOF>")
    return _Parser(source).query()


def located(source: str, pos: int, message: str) -> str:
    return _located(source, pos, message)


def like_to_regex(pattern: str) -> re.Pattern[str]:
    """SOQL LIKE: ``%`` any run, ``_`` one character, ``\\%`` and ``\\_`` literal, case-insensitive."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)
