"""YAML nodes to plain data with a line for every path, and pydantic errors to lines.

Model files and the sync's configuration are both YAML validated by pydantic, and a
user wants the same thing from both: one line per problem, ``FILE:LINE: dotted.path:
message``, pointing at the culprit, with "did you mean" for a misspelt key. This is
the one place that does it; it lives in ``scoring`` because every layer may import
``scoring`` (docs/scoring.md, "Checking a model").

Pure: callers parse the text with ruamel.yaml and hand over the nodes.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

__all__ = [
    "OWN_ERROR",
    "Located",
    "Opaque",
    "Path",
    "TooBig",
    "describe",
    "model_keys",
    "path_problems",
    "problems",
    "render_path",
    "suggest",
    "validation_problems",
]

Path = tuple[str | int, ...]

# A custom pydantic error type whose context carries sub-paths, so that checks across
# fields (duplicate ids, decay order) still point at the exact line of the culprit.
OWN_ERROR = "leadsync_problem"

MAX_NODES = 200_000  # aliases can make a small file expand without bound
MAX_DEPTH = 64

Wording = Literal["friendly", "pydantic"]


def problems(*items: tuple[Path, str]) -> PydanticCustomError:
    """An error for a validator to raise: one or more ``(sub-path, message)``."""
    summary = "; ".join(message for _, message in items)
    return PydanticCustomError(
        OWN_ERROR, "{summary}", {"summary": summary, "problems": list(items)}
    )


def describe(value: object) -> str:
    """How a value reads in an error message ("got text 'ten'")."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}" if abs(value) < 1e15 else "a very large number"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"text {shown!r}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, Opaque):
        return value.describe()
    return type(value).__name__


class TooBig(Exception):
    """The document expands beyond what a hand-written file needs."""


class Opaque:
    """A YAML value of a type no setting uses (date, binary, custom tag)."""

    def __init__(self, kind: str, text: str) -> None:
        self.kind = kind
        self.text = text

    def __repr__(self) -> str:
        return f"<{self.kind} {self.text[:30]!r}>"

    def __str__(self) -> str:
        return self.text

    def describe(self) -> str:
        what = {"date": "a date", "datetime": "a timestamp", "bytes": "binary data"}.get(
            self.kind, f"a YAML {self.kind}"
        )
        shown = self.text if len(self.text) <= 30 else self.text[:27] + "..."
        return f"{what} {shown!r} (put it in quotes to make it text)"


class Located:
    """Turns ruamel's round-trip nodes into plain data, noting each path's line.

    ``text`` is applied to every string value with its path (the configuration
    substitutes ``${VAR}`` there); ``opaque`` decides what a date or tagged scalar
    becomes (model files keep it as :class:`Opaque` for a clear type error).
    """

    def __init__(
        self,
        *,
        text: Callable[[str, Path], object] | None = None,
        opaque: Callable[[object], object] | None = None,
    ) -> None:
        self.lines: dict[Path, int] = {}  # line of the value (or list item)
        self.key_lines: dict[Path, int] = {}  # line of the key naming it
        self.nodes = 0
        self._text = text
        self._opaque = opaque

    def convert(self, node: object, path: Path = (), line: int = 1) -> Any:
        """Plain data: dicts with text keys, lists, text, numbers, booleans, None and
        whatever ``opaque`` makes of other scalars.

        Left untyped on purpose, as ``json.loads`` is: what the document holds is
        unknown until the caller's pydantic model validates it, and callers narrow the
        top level (``isinstance(data, dict)``) before reading it."""
        return self._convert(node, path, line, frozenset())

    def _convert(self, node: object, path: Path, line: int, active: frozenset[int]) -> object:
        from ruamel.yaml.comments import CommentedMap, CommentedSeq
        from ruamel.yaml.scalarbool import ScalarBoolean

        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise TooBig("the file expands to too many values (aliases?)")
        if len(path) > MAX_DEPTH:
            raise TooBig("the file is nested too deeply")
        self.lines.setdefault(path, line)
        if isinstance(node, Mapping):
            if id(node) in active:
                raise TooBig("an alias refers to itself")
            inner = active | {id(node)}
            base = _node_line(node, line)
            self.lines[path] = base
            out: dict[str, object] = {}
            for key, value in node.items():
                name = _key_text(key)
                key_line = base
                value_line = base
                if isinstance(node, CommentedMap):
                    key_line = _lc(node, "key", key, base)
                    value_line = _lc(node, "value", key, key_line)
                child: Path = (*path, name)
                self.key_lines[child] = key_line
                if isinstance(value, Mapping | list):
                    value_line = _node_line(value, value_line)
                out[name] = self._convert(value, child, value_line, inner)
            return out
        if isinstance(node, list):
            if id(node) in active:
                raise TooBig("an alias refers to itself")
            inner = active | {id(node)}
            base = _node_line(node, line)
            self.lines[path] = base
            items: list[object] = []
            for index, value in enumerate(node):
                item_line = base
                if isinstance(node, CommentedSeq):
                    item_line = _lc(node, "item", index, base)
                if isinstance(value, Mapping | list):
                    item_line = _node_line(value, item_line)
                items.append(self._convert(value, (*path, index), item_line, inner))
            return items
        if isinstance(node, ScalarBoolean | bool):
            return bool(node)
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        if isinstance(node, str):
            return self._text(str(node), path) if self._text is not None else str(node)
        if node is None:
            return None
        if self._opaque is not None:
            return self._opaque(node)
        return Opaque(type(node).__name__, str(node))

    def line_for(self, path: Path, *, key: bool = False) -> int:
        """The line of ``path``, or of its nearest ancestor in the file."""
        if key and path in self.key_lines:
            return self.key_lines[path]
        probe = path
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), 1)

    def at(self, source: str, path: Path, message: str, *, key: bool = False) -> str:
        """One problem line: ``FILE:LINE: path: message``."""
        return f"{source}:{self.line_for(path, key=key)}: {render_path(path)}: {message}"


def _key_text(key: object) -> str:
    if isinstance(key, str):
        return str(key)
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _node_line(node: object, fallback: int) -> int:
    lc = getattr(node, "lc", None)
    line = getattr(lc, "line", None) if lc is not None else None
    return line + 1 if isinstance(line, int) else fallback


def _lc(node: object, kind: str, key: object, fallback: int) -> int:
    try:
        position = getattr(getattr(node, "lc", None), kind)(key)
    except Exception:  # merged keys and odd nodes have no position; use the parent's
        return fallback
    if isinstance(position, tuple) and position and isinstance(position[0], int):
        return position[0] + 1
    return fallback


def render_path(path: Path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text or "(file)"


# ---------------------------------------------------------------------------------------
# Keys a file may use: for "did you mean"


def model_keys(*roots: type[BaseModel]) -> frozenset[str]:
    """Every key (field name or alias) of the models reachable from ``roots``."""
    keys: set[str] = set()
    seen: set[type[BaseModel]] = set()
    todo = list(roots)
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for name, info in cls.model_fields.items():
            keys.add(info.alias or name)
            todo.extend(_models_in(info.annotation))
    return frozenset(keys)


def _models_in(annotation: object) -> Iterable[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def suggest(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or nothing."""
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------------------------------
# pydantic errors -> lines


def _real_path(loc: Sequence[str | int], data: object, error_type: str) -> Path:
    """Follow pydantic's location through the data, dropping the tags it inserts for
    unions, discriminators and validators (``str``, ``fit``, ``function-after[...]``)."""
    path: list[str | int] = []
    current = data
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(current, dict):
            if isinstance(part, str) and part in current:
                path.append(part)
                current = current[part]
                continue
            if last and error_type == "missing":
                path.append(part)
            continue
        if isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
            continue
    return tuple(path)


_BOUNDS = {
    "greater_than": ("greater than", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("less than", "lt"),
    "less_than_equal": ("at most", "le"),
}


def friendly_message(error: ErrorDetails, path: Path) -> str:
    """A message a marketer reads without knowing pydantic."""
    kind = error["type"]
    value = error.get("input")
    ctx: Mapping[str, object] = error.get("ctx") or {}
    got = describe(value)
    name = path[-1] if path else ""
    if kind == "missing":
        return f"missing required key {name!r}"
    if kind == "string_type":
        return f"expected text, got {got}"
    if kind in ("float_type", "float_parsing"):
        return f"expected a number, got {got}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, got {got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {got}"
    if kind == "list_type":
        return f"expected a list, got {got}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping (key: value), got {got}"
    if kind == "finite_number":
        return "must be a finite number"
    if kind == "too_short":
        return "must not be empty"
    if kind == "literal_error":
        return f"expected {ctx.get('expected', 'another value')}, got {got}"
    if kind in _BOUNDS:
        words, key = _BOUNDS[kind]
        bound = ctx.get(key)
        shown = f"{bound:g}" if isinstance(bound, int | float) else str(bound)
        return f"must be {words} {shown}, got {got}"
    return pydantic_message(error, path)


def pydantic_message(error: ErrorDetails, path: Path) -> str:
    """pydantic's own message, without its ``Value error,`` prefix."""
    del path
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


Message = Callable[[ErrorDetails, Path], str | None]


def path_problems(
    exc: ValidationError,
    data: object,
    *,
    keys: Iterable[str],
    wording: Wording = "friendly",
    message: Message | None = None,
    unknown: str = "unknown key",
) -> list[tuple[Path, str, bool]]:
    """Each problem as ``(path in data, message, on a key)``, in pydantic's order.

    ``keys`` are the keys the data may use (for "did you mean"); ``message`` may word
    an error itself (return None to leave it to ``wording``); ``unknown`` starts the
    message for a key the model does not have."""
    known = sorted(frozenset(keys))
    default = friendly_message if wording == "friendly" else pydantic_message
    errors = exc.errors()
    # A misspelt key ("point") also makes the real one ("points") missing; saying
    # "unknown key 'point' (did you mean 'points'?)" covers both.
    misspelt: set[Path] = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            path = _real_path(tuple(error["loc"]), data, error["type"])
            close = difflib.get_close_matches(str(path[-1]), known, n=1, cutoff=0.75)
            if path and close:
                misspelt.add((*path[:-1], close[0]))
    out: list[tuple[Path, str, bool]] = []
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == OWN_ERROR:
            ctx = error.get("ctx") or {}
            base = _real_path(loc, data, error["type"])
            for sub, text in ctx.get("problems", []):
                out.append(((*base, *sub), text, False))
            continue
        path = _real_path(loc, data, error["type"])
        if error["type"] == "missing" and path in misspelt:
            continue
        text = message(error, path) if message is not None else None
        on_key = error["type"] == "extra_forbidden"
        if text is None:
            if on_key and path:
                text = f"{unknown} {path[-1]!r}{suggest(str(path[-1]), known)}"
            else:
                text = default(error, path)
        out.append((path, text, on_key))
    return out


def validation_problems(
    exc: ValidationError,
    data: object,
    located: Located,
    source: str,
    *,
    keys: Iterable[str],
    prefix: Path = (),
    wording: Wording = "friendly",
    message: Message | None = None,
) -> list[str]:
    """One ``FILE:LINE: path: message`` line per problem, sorted by line.

    ``data`` is what was validated, found in the file at ``prefix``."""
    found: list[tuple[int, str]] = []
    for path, text, on_key in path_problems(exc, data, keys=keys, wording=wording, message=message):
        full = (*prefix, *path)
        found.append(
            (located.line_for(full, key=on_key), located.at(source, full, text, key=on_key))
        )
    unique: dict[str, int] = {}
    for line, text in found:
        unique.setdefault(text, line)
    return [text for text, _ in sorted(unique.items(), key=lambda item: item[1])]
