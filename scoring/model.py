"""Scoring models: the YAML file marketers edit, validated into frozen pydantic objects.

Why YAML 1.2 through ruamel.yaml: PyYAML reads ``NO`` (Norway) as false and forgets
line numbers; ruamel keeps both right and rejects duplicate keys. Every problem in a
file becomes one line ``FILE:LINE: path.to.field: message`` so that an editor or CI log
points at it (docs/scoring.md, "Checking a model").

The objects follow the agreed interface (notes on the scoring core): ``Match`` holds one
optional field per operator, rules are ``FitRule``/``BehaviorRule`` discriminated on
``kind``, and ``ModelSet`` is what ``load_models`` returns.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from scoring.vocabulary import CONTACT_FIELDS, EVENT_TYPES, near_misses
from scoring.yaml_problems import (
    Located,
    Path,
    TooBig,
    model_keys,
    render_path,
    validation_problems,
)
from scoring.yaml_problems import describe as _describe
from scoring.yaml_problems import problems as _problems

if TYPE_CHECKING:
    from scoring.predictive import Artifact  # predictive imports this module

__all__ = [
    "BAND_NAMES",
    "Bands",
    "BehaviorRule",
    "Condition",
    "DecayStep",
    "FitRule",
    "Match",
    "ModelFileError",
    "ModelSet",
    "OperatorValue",
    "PredictiveSpec",
    "Rule",
    "Scale",
    "ScoringModel",
    "check_warnings",
    "load_models",
    "name_warnings",
]

BAND_NAMES = ("hot", "warm", "cold")

_NAME_RE = re.compile(r"[a-z0-9_-]+")

_CONFIG = ConfigDict(
    frozen=True,
    extra="forbid",
    strict=True,  # a marketer's "10" in quotes is a typo to flag, not a number to guess
    allow_inf_nan=False,
    populate_by_name=True,
)


_Scalar = str | float | int | bool
# What one operator of a Match holds: a value (equals), values (in), text (contains,
# glob, regex), texts (contains_any, email_domain_in), a number (gt, gte, lt, lte) or
# a flag (exists, free_email).
OperatorValue = _Scalar | list[_Scalar] | list[str]


def _check_scalar(value: object) -> _Scalar:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise _problems(((), "must be a finite number"))
        return value
    if isinstance(value, bool):
        return value
    raise _problems(((), f"expected text, a number or true/false, got {_describe(value)}"))


class Match(BaseModel):
    """One value test; all set operators must hold (docs/scoring.md, "Matching")."""

    model_config = _CONFIG

    equals: _Scalar | None = None
    in_: list[_Scalar] | None = Field(default=None, alias="in")
    contains: str | None = None
    contains_any: list[str] | None = None
    glob: str | None = None
    regex: str | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    exists: bool | None = None
    email_domain_in: list[str] | None = None
    free_email: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _scalar_means_equals(cls, data: object) -> object:
        if isinstance(data, Match | Mapping):
            return data
        if isinstance(data, str | int | float | bool):
            return {"equals": data}
        raise _problems(
            (
                (),
                "expected a value or an operator object such as {contains: pricing}, "
                f"got {_describe(data)}",
            )
        )

    @field_validator("equals", mode="before")
    @classmethod
    def _equals_is_scalar(cls, value: object) -> _Scalar | None:
        return None if value is None else _check_scalar(value)

    @field_validator("in_", mode="before")
    @classmethod
    def _in_is_list_of_scalars(cls, value: object) -> object:
        if value is None:
            return None
        if not isinstance(value, list):
            raise _problems(((), f"expected a list of values, got {_describe(value)}"))
        if not value:
            raise _problems(((), "must list at least one value"))
        problems = []
        for index, item in enumerate(value):
            try:
                _check_scalar(item)
            except PydanticCustomError as exc:
                problems.append(((index,), str(exc)))
        if problems:
            raise _problems(*problems)
        return value

    @field_validator("contains_any", "email_domain_in")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise _problems(((), "must list at least one value"))
        return value

    @field_validator("email_domain_in")
    @classmethod
    def _domains_lower(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_clean_domain(d) for d in value]

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except (re.error, OverflowError, RecursionError, ValueError) as exc:
                raise _problems(((), f"invalid regular expression: {exc}")) from None
        return value

    @model_validator(mode="after")
    def _at_least_one_operator(self) -> Match:
        if not self.operators():
            raise _problems(((), f"needs at least one operator ({', '.join(OPERATORS)})"))
        return self

    def operators(self) -> list[tuple[str, OperatorValue]]:
        """The set operators as ``(name, value)`` in a fixed order (``in_`` as ``in``)."""
        out: list[tuple[str, OperatorValue]] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is not None:
                out.append((name.rstrip("_"), value))
        return out


OPERATORS: tuple[str, ...] = tuple(name.rstrip("_") for name in Match.model_fields)


def _clean_domain(domain: str) -> str:
    return domain.strip().lower().lstrip("@")


class Condition(BaseModel):
    """One ``applies_to`` test on a contact field."""

    model_config = _CONFIG

    field: str = Field(min_length=1)
    match: Match


class FitRule(BaseModel):
    """Points once when a contact field matches (job title, company size, ...)."""

    model_config = _CONFIG

    id: str
    kind: Literal["fit"]
    group: str | None = Field(default=None, min_length=1)
    field: str = Field(min_length=1)
    match: Match
    points: float

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str) -> str:
        return _check_name(value, "rule id")


class BehaviorRule(BaseModel):
    """Points per matching event, with caps, window and half-life."""

    model_config = _CONFIG

    id: str
    kind: Literal["behavior"]
    group: str | None = Field(default=None, min_length=1)
    event: str = Field(min_length=1)
    match: dict[str, Match] = Field(default_factory=dict)
    points: float
    max_per_day: int | None = Field(default=None, ge=1)
    max_points: float | None = Field(default=None, gt=0)
    window_days: float | None = Field(default=None, gt=0)
    half_life_days: float | None = Field(default=None, gt=0)
    immediate: bool = False

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str) -> str:
        return _check_name(value, "rule id")

    @field_validator("match", mode="before")
    @classmethod
    def _match_is_mapping(cls, value: object) -> object:
        if not isinstance(value, Mapping):
            raise _problems(
                (
                    (),
                    "expected event attributes to match, such as {url: {glob: '*/pricing*'}}, "
                    f"got {_describe(value)}",
                )
            )
        for key in value:
            if not isinstance(key, str) or not key.strip():
                raise _problems(((), f"attribute names must be text, got {_describe(key)}"))
        return value


Rule = Annotated[FitRule | BehaviorRule, Field(discriminator="kind")]


class DecayStep(BaseModel):
    model_config = _CONFIG

    inactive_days: float = Field(gt=0)
    points: float = Field(le=0)


class Scale(BaseModel):
    model_config = _CONFIG

    min: float = 0
    max: float = 100

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if self.max <= self.min:
            raise _problems(
                (("max",), f"max ({self.max:g}) must be greater than min ({self.min:g})")
            )
        return self


class Bands(BaseModel):
    model_config = _CONFIG

    hot: float
    warm: float

    @model_validator(mode="after")
    def _ordered(self) -> Bands:
        if self.hot <= self.warm:
            raise _problems(
                (("hot",), f"hot ({self.hot:g}) must be greater than warm ({self.warm:g})")
            )
        return self


def _check_name(value: str, what: str) -> str:
    if not _NAME_RE.fullmatch(value):
        raise _problems(
            ((), f"{what} {value!r} may use only a-z, 0-9, '_' and '-' (lower case, no spaces)")
        )
    return value


def _default_thresholds(data: object) -> object:
    # threshold/rearm_below default to the bands; a broken bands entry is reported
    # on its own, so the placeholder 0 never reaches a valid model.
    if not isinstance(data, Mapping):
        return data
    filled = dict(data)
    bands = data.get("bands")
    for key, band in (("threshold", "hot"), ("rearm_below", "warm")):
        if key not in filled:
            value = bands.get(band) if isinstance(bands, Mapping) else None
            ok = (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
            filled[key] = value if ok else 0
    return filled


class ScoringModel(BaseModel):
    """One named model: who it applies to, its rules, bands and decay."""

    model_config = _CONFIG

    name: str
    score_field: str = Field(min_length=1)
    applies_to: list[Condition] = Field(default_factory=list)
    scale: Scale = Field(default_factory=Scale)
    bands: Bands
    threshold: float
    rearm_below: float
    rules: list[Rule]
    decay: list[DecayStep] = Field(default_factory=list)
    free_email_domains: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _default_threshold(cls, data: object) -> object:
        return _default_thresholds(data)

    @field_validator("name")
    @classmethod
    def _name_format(cls, value: str) -> str:
        return _check_name(value, "model name")

    @field_validator("score_field")
    @classmethod
    def _score_field_format(cls, value: str) -> str:
        if value != value.strip() or any(ch.isspace() for ch in value):
            raise _problems(((), f"score_field {value!r} must not contain spaces"))
        return value

    @field_validator("rules")
    @classmethod
    def _unique_rule_ids(cls, rules: list[FitRule | BehaviorRule]) -> list[FitRule | BehaviorRule]:
        if not rules:
            raise _problems(((), "a model needs at least one rule"))
        seen: dict[str, int] = {}
        problems: list[tuple[Path, str]] = []
        for index, rule in enumerate(rules):
            if rule.id in seen:
                problems.append(
                    (
                        (index, "id"),
                        f"duplicate rule id {rule.id!r} (first used by rules[{seen[rule.id]}])",
                    )
                )
            else:
                seen[rule.id] = index
        if problems:
            raise _problems(*problems)
        return rules

    @field_validator("decay")
    @classmethod
    def _decay_ordered(cls, steps: list[DecayStep]) -> list[DecayStep]:
        problems: list[tuple[Path, str]] = []
        for index in range(1, len(steps)):
            before, step = steps[index - 1], steps[index]
            if step.inactive_days <= before.inactive_days:
                problems.append(
                    (
                        (index, "inactive_days"),
                        f"decay steps must be in increasing order of inactive_days: "
                        f"{step.inactive_days:g} comes after {before.inactive_days:g}",
                    )
                )
        if problems:
            raise _problems(*problems)
        return steps

    @field_validator("free_email_domains")
    @classmethod
    def _domains_lower(cls, value: list[str]) -> list[str]:
        cleaned = [_clean_domain(d) for d in value]
        for index, domain in enumerate(cleaned):
            if not domain or "@" in domain or any(ch.isspace() for ch in domain):
                raise _problems(((index,), f"not a domain: {value[index]!r}"))
        return cleaned

    @model_validator(mode="after")
    def _threshold_above_rearm(self) -> ScoringModel:
        if self.rearm_below > self.threshold:
            raise _problems(
                (
                    ("rearm_below",),
                    f"rearm_below ({self.rearm_below:g}) must not be above "
                    f"threshold ({self.threshold:g})",
                )
            )
        return self

    @cached_property
    def content_hash(self) -> str:
        """sha256 of the model's meaning: same rules, same hash, whatever the layout,
        comments or ``10`` vs ``10.0`` in the file. Stored with scores so that a
        changed model is noticed and everything is re-scored."""
        payload = _canonical(self.model_dump(mode="json", by_alias=True))
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @cached_property
    def fields_used(self) -> frozenset[str]:
        """Contact fields the model reads: what connectors must fetch."""
        used = {"created_at"}
        used.update(condition.field for condition in self.applies_to)
        used.update(rule.field for rule in self.rules if isinstance(rule, FitRule))
        return frozenset(used)

    @cached_property
    def history_days(self) -> float | None:
        """How many days of events the model can ever look at, or None for all of them.

        An event older than the longest window counts for no rule, and beyond the
        largest decay step the step reached no longer changes, so older events can be
        dropped. A behaviour rule without a window needs the whole history.
        """
        windows: list[float] = []
        for rule in self.rules:
            if isinstance(rule, BehaviorRule):
                if rule.window_days is None:
                    return None
                windows.append(rule.window_days)
        longest_step = max((step.inactive_days for step in self.decay), default=0.0)
        return max(windows, default=0.0) + longest_step

    @property
    def fit_rules(self) -> list[FitRule]:
        return [rule for rule in self.rules if isinstance(rule, FitRule)]

    @property
    def behavior_rules(self) -> list[BehaviorRule]:
        return [rule for rule in self.rules if isinstance(rule, BehaviorRule)]


# Lists whose order and repetitions mean nothing: sets written as lists.
_SET_KEYS = frozenset({"in", "contains_any", "email_domain_in", "free_email_domains"})


def _canonical(value: object, key: str | None = None) -> object:
    """Whole floats as ints so that ``10`` and ``10.0`` hash alike; set-like lists
    sorted. Rules, decay steps and conditions keep their order: it matters."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        items = [_canonical(item) for item in value]
        if key in _SET_KEYS:
            # text is compared ignoring case, so "Lead" and "lead" are one item
            unique = {json.dumps(_fold(item), sort_keys=True): _fold(item) for item in items}
            items = [unique[k] for k in sorted(unique)]
        return items
    if isinstance(value, dict):
        return {name: _canonical(item, name) for name, item in value.items()}
    return value


def _fold(item: object) -> object:
    return item.lower() if isinstance(item, str) else item


class PredictiveSpec(BaseModel):
    """A learned model (docs/predictive.md): a rules ``base_model`` whose per-rule points
    and counts are its features, and an ``artifact`` (a JSON file, path relative to the
    model file) holding what training learned. Scores are probabilities shown as 0-100.
    """

    model_config = _CONFIG

    name: str
    kind: Literal["predictive"]
    score_field: str = Field(min_length=1)
    base_model: str
    artifact: str = Field(min_length=1)
    bands: Bands
    threshold: float
    rearm_below: float

    @model_validator(mode="before")
    @classmethod
    def _default_threshold(cls, data: object) -> object:
        return _default_thresholds(data)

    @field_validator("name", "base_model")
    @classmethod
    def _name_format(cls, value: str) -> str:
        return _check_name(value, "model name")

    @field_validator("score_field")
    @classmethod
    def _score_field_format(cls, value: str) -> str:
        if any(ch.isspace() for ch in value):
            raise _problems(((), f"score_field {value!r} must not contain spaces"))
        return value

    @model_validator(mode="after")
    def _threshold_above_rearm(self) -> PredictiveSpec:
        if self.rearm_below > self.threshold:
            raise _problems(
                (
                    ("rearm_below",),
                    f"rearm_below ({self.rearm_below:g}) must not be above "
                    f"threshold ({self.threshold:g})",
                )
            )
        return self

    @property
    def scale(self) -> Scale:
        return Scale(min=0, max=100)

    @cached_property
    def content_hash(self) -> str:
        """sha256 of the definition only, never of the artifact: a retrain replaces the
        artifact, and a changed hash would re-baseline the model, disarming every
        contact above the threshold without acting."""
        payload = self.model_dump(mode="json", by_alias=True)
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ModelSet(BaseModel):
    """The models of one file, names unique."""

    model_config = _CONFIG

    models: list[ScoringModel]

    # Where each part came from, for warnings in FILE:LINE form; set by load_models.
    _source: str | None = PrivateAttr(default=None)
    _lines: dict[Path, int] = PrivateAttr(default_factory=dict)
    # Predictive models sit beside the rules models, so that everything reading
    # ``models`` keeps seeing rules models only; ``_positions`` maps ``models`` back to
    # the file's order for warnings. Artifacts are attached by whoever can read files.
    _predictive: list[PredictiveSpec] = PrivateAttr(default_factory=list)
    _positions: list[int] | None = PrivateAttr(default=None)
    _artifacts: dict[str, Artifact] = PrivateAttr(default_factory=dict)

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[ScoringModel]) -> list[ScoringModel]:
        if not models:
            raise _problems(((), "the file defines no models"))
        problems = _model_duplicates([(model.name, model.score_field) for model in models])
        if problems:
            raise _problems(*problems)
        return models

    def get(self, name: str) -> ScoringModel:
        """The model called ``name``; KeyError names the ones that exist."""
        for model in self.models:
            if model.name == name:
                return model
        known = ", ".join(model.name for model in self.models)
        raise KeyError(f"no model named {name!r} (models: {known})")

    @property
    def names(self) -> list[str]:
        return [model.name for model in self.models] + [p.name for p in self._predictive]

    @property
    def predictive(self) -> list[PredictiveSpec]:
        """The file's ``kind: predictive`` models, in file order."""
        return list(self._predictive)

    @property
    def artifacts(self) -> dict[str, Artifact]:
        """Artifacts attached to predictive models, by model name (see scoring.predictive)."""
        return dict(self._artifacts)


def _model_duplicates(models: Sequence[tuple[object, object]]) -> list[tuple[Path, str]]:
    """Model names must differ, and so must score fields: two models writing one CRM
    field would overwrite each other's scores on every run."""
    problems: list[tuple[Path, str]] = []
    names: dict[str, int] = {}
    fields: dict[str, int] = {}
    for index, (name, field) in enumerate(models):
        if isinstance(name, str):
            if name in names:
                problems.append(
                    (
                        (index, "name"),
                        f"duplicate model name {name!r} (first used by models[{names[name]}])",
                    )
                )
            else:
                names[name] = index
        if isinstance(field, str):
            if field in fields:
                problems.append(
                    (
                        (index, "score_field"),
                        f"score_field {field!r} is already written by models[{fields[field]}]; "
                        "each model needs its own field",
                    )
                )
            else:
                fields[field] = index
    return problems


class ModelFileError(ValueError):
    """A model file that cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# ---------------------------------------------------------------------------------------
# Loading: YAML text -> plain data with a line for every path -> pydantic


def _all_keys() -> frozenset[str]:
    return model_keys(ModelSet)


def _message(error: ErrorDetails, path: Path) -> str | None:
    """Wording only model files need; the rest is the shared mapper's."""
    kind = error["type"]
    if kind == "extra_forbidden" and "match" in path[-3:-1]:
        return f"unknown operator {path[-1]!r} (operators: {', '.join(OPERATORS)})"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx") or {}
        return f"kind must be 'fit' or 'behavior', got {_describe(ctx.get('tag'))}"
    if kind == "union_tag_not_found":
        return "missing required key 'kind' (fit or behavior)"
    return None


def _line(source: str, plain: Located, path: Path, message: str) -> str:
    return plain.at(source, path, message)


def load_models(text: str, source: str) -> ModelSet:
    """Parse and validate a model file; ``source`` names it in error lines.

    Raises ``ModelFileError`` listing every problem found, one line each.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            document = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = f"not valid YAML: {exc.problem or exc.context or 'syntax error'}"
        if "duplicate key" in problem and exc.problem_mark is not None:
            problem = _duplicate_key_message(exc)
        raise ModelFileError([f"{source}:{line}: (file): {_one_line(problem)}"]) from None
    except YAMLError as exc:
        raise ModelFileError(
            [f"{source}:1: (file): not valid YAML: {_one_line(str(exc))}"]
        ) from None
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        # ruamel raises plain exceptions on some malformed input (bad escapes, tags).
        raise ModelFileError(
            [f"{source}:1: (file): not valid YAML: {_one_line(str(exc))}"]
        ) from None

    plain = Located()
    try:
        data = plain.convert(document)
    except TooBig as exc:
        raise ModelFileError([f"{source}:1: (file): {exc}"]) from None
    except RecursionError:
        raise ModelFileError([f"{source}:1: (file): the file is nested too deeply"]) from None

    if data is None:
        raise ModelFileError(
            [f"{source}:1: (file): the file is empty; expected 'models:' with a list of models"]
        )
    if not isinstance(data, dict):
        raise ModelFileError(
            [
                f"{source}:{plain.lines.get((), 1)}: (file): expected 'models:' with a list of models, got {_describe(data)}"
            ]
        )
    data, predictive, spec_problems = _split_predictive(data, plain, source)
    try:
        models = ModelSet.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, data, plain, source, keys=_all_keys(), message=_message)
        problems += [line for line in spec_problems if line not in problems]
        # Duplicates are checked again on the raw data: pydantic's own check only runs
        # once everything else is valid, and a marketer wants all problems at once.
        for line in _raw_duplicates(data, plain, source):
            if line not in problems:
                problems.append(line)
        problems.sort(key=lambda text: _line_number(text, source))
        raise ModelFileError(problems or [f"{source}:1: (file): invalid model file"]) from None
    if spec_problems:
        raise ModelFileError(sorted(spec_problems, key=lambda text: _line_number(text, source)))
    if predictive:
        return _with_predictive(models, predictive, source, plain)
    models._source = source
    models._lines = dict(plain.lines)
    return models


def _stand_in(entry: Mapping[str, object]) -> dict[str, object]:
    """A rules model in a predictive model's place: names and score fields are checked
    for duplicates across all models, and other models keep their positions."""
    out: dict[str, object] = {k: entry[k] for k in ("name", "score_field") if k in entry}
    out["bands"] = {"hot": 1, "warm": 0}
    out["rules"] = [{"id": "p", "kind": "fit", "field": "p", "match": "p", "points": 0}]
    return out


def _split_predictive(
    data: dict[str, object], plain: Located, source: str
) -> tuple[dict[str, object], list[tuple[int, PredictiveSpec]], list[str]]:
    raw = data.get("models")
    if not isinstance(raw, list):
        return data, [], []
    where = [i for i, m in enumerate(raw) if isinstance(m, dict) and m.get("kind") == "predictive"]
    if not where:
        return data, [], []
    specs: list[tuple[int, PredictiveSpec]] = []
    problems: list[str] = []
    keys = _all_keys() | model_keys(PredictiveSpec)
    for i in where:
        try:
            specs.append((i, PredictiveSpec.model_validate(raw[i])))
        except ValidationError as exc:
            problems += validation_problems(
                exc, raw[i], plain, source, keys=keys, prefix=("models", i), message=_message
            )
    stand_in = [_stand_in(m) if i in where else m for i, m in enumerate(raw)]
    return {**data, "models": stand_in}, specs, problems


def _with_predictive(
    models: ModelSet, specs: list[tuple[int, PredictiveSpec]], source: str, plain: Located
) -> ModelSet:
    taken = {i for i, _ in specs}
    positions = [i for i in range(len(models.models)) if i not in taken]
    rules = [models.models[i] for i in positions]
    by_name = {m.name: m for m in rules}
    problems: list[str] = []
    for i, spec in specs:
        if spec.base_model not in by_name:
            known = ", ".join(by_name) or "none"
            problems.append(
                plain.at(
                    source,
                    ("models", i, "base_model"),
                    f"base_model {spec.base_model!r} is not a rules model of this file "
                    f"(rules models: {known})",
                )
            )
    if not rules:
        problems.append(
            f"{source}:1: models: a predictive model needs a rules model as its base_model"
        )
    if problems:
        raise ModelFileError(problems)
    out = ModelSet.model_construct(models=rules)
    out._source = source
    out._lines = dict(plain.lines)
    out._predictive = [spec for _, spec in specs]
    out._positions = positions
    return out


def _line_number(text: str, source: str) -> int:
    head = text[len(source) + 1 :].split(":", 1)[0]
    return int(head) if head.isdigit() else 0


def _raw_duplicates(data: Mapping[str, object], plain: Located, source: str) -> list[str]:
    out: list[str] = []
    models = data.get("models")
    if not isinstance(models, list):
        return out
    pairs = [
        (model.get("name"), model.get("score_field")) if isinstance(model, dict) else (None, None)
        for model in models
    ]
    for sub, message in _model_duplicates(pairs):
        out.append(_line(source, plain, ("models", *sub), message))
    for m_index, model in enumerate(models):
        if not isinstance(model, dict):
            continue
        rules = model.get("rules")
        if not isinstance(rules, list):
            continue
        ids: dict[str, int] = {}
        for r_index, rule in enumerate(rules):
            rule_id = rule.get("id") if isinstance(rule, dict) else None
            if not isinstance(rule_id, str):
                continue
            if rule_id in ids:
                path = ("models", m_index, "rules", r_index, "id")
                message = f"duplicate rule id {rule_id!r} (first used by rules[{ids[rule_id]}])"
                out.append(_line(source, plain, path, message))
            else:
                ids[rule_id] = r_index
    return out


def _duplicate_key_message(exc: object) -> str:
    snippet = str(getattr(exc, "problem", ""))
    found = re.search(r'found duplicate key "([^"]*)"', snippet)
    name = found.group(1) if found else "?"
    return f"duplicate key {name!r} (a key may appear only once in a mapping)"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ---------------------------------------------------------------------------------------
# Warnings: valid but probably not what the author meant


def check_warnings(models: ModelSet) -> list[str]:
    """Things ``leadsync check`` mentions but accepts (exit 0)."""
    out: list[str] = []
    for m_index, model in enumerate(models.models):
        for r_index, rule in enumerate(model.rules):
            if (
                isinstance(rule, BehaviorRule)
                and rule.points > 0
                and rule.max_points is None
                and rule.window_days is None
            ):
                out.append(
                    _warning(
                        models,
                        ("models", m_index, "rules", r_index),
                        f"behaviour rule {rule.id!r} has no max_points and no window_days: "
                        "its points grow without limit as events pile up",
                    )
                )
        out.extend(_group_warnings(models, m_index, model))
        for s_index in range(1, len(model.decay)):
            if model.decay[s_index].points > model.decay[s_index - 1].points:
                out.append(
                    _warning(
                        models,
                        ("models", m_index, "decay", s_index, "points"),
                        "this longer inactivity removes fewer points than the step before it",
                    )
                )
        if model.bands.hot > model.scale.max:
            out.append(
                _warning(
                    models,
                    ("models", m_index, "bands", "hot"),
                    f"hot ({model.bands.hot:g}) is above scale.max ({model.scale.max:g}): "
                    "no lead can ever be hot",
                )
            )
        if model.threshold > model.scale.max:
            out.append(
                _warning(
                    models,
                    ("models", m_index, "threshold"),
                    f"threshold ({model.threshold:g}) is above scale.max ({model.scale.max:g}): "
                    "write-back actions never fire",
                )
            )
    return out


def name_warnings(
    models: ModelSet,
    *,
    fields: Iterable[str] | None = None,
    events: Iterable[str] | None = None,
    source: str | None = None,
) -> list[str]:
    """Contact fields and event types that are probably typos (``job_titel``,
    ``page_veiw``): they never match, and nothing else would say so.

    Without ``fields`` (``events``), only a name within two edits of a canonical one is
    mentioned, since files may carry other columns (event types); with them, the names
    the data is known to have besides the canonical ones, every other name is.
    ``source`` says where the known names come from, for the message."""
    known_fields = None if fields is None else CONTACT_FIELDS | frozenset(fields)
    known_events = None if events is None else EVENT_TYPES | frozenset(events)
    out: list[str] = []

    def check(
        path: Path, name: str, what: str, canonical: frozenset[str], known: frozenset[str] | None
    ) -> None:
        close = near_misses(name, canonical if known is None else known)
        if known is None and not close:
            return
        if known is not None and name in known:
            return
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        if known is None:
            text = f"{what} {name!r}{hint} is not a canonical {what} (fine if your data has it)"
        else:
            origin = f" nor one {source} delivers" if source else ""
            text = f"{what} {name!r}{hint} is neither a canonical {what}{origin}: it never matches"
        out.append(_warning(models, path, text))

    for m_index, model in enumerate(models.models):
        base: Path = ("models", m_index)
        for c_index, condition in enumerate(model.applies_to):
            path = (*base, "applies_to", c_index, "field")
            check(path, condition.field, "field", CONTACT_FIELDS, known_fields)
        for r_index, rule in enumerate(model.rules):
            path = (*base, "rules", r_index)
            if isinstance(rule, FitRule):
                check((*path, "field"), rule.field, "field", CONTACT_FIELDS, known_fields)
            else:
                check((*path, "event"), rule.event, "event type", EVENT_TYPES, known_events)
    return out


def _group_warnings(models: ModelSet, m_index: int, model: ScoringModel) -> list[str]:
    """Groups that do not do what their author probably meant."""
    out: list[str] = []
    kinds: dict[str, set[str]] = {}
    # (group, event type) -> id of an earlier rule that takes every event of that type
    catch_all: dict[tuple[str, str], str] = {}
    for r_index, rule in enumerate(model.rules):
        if rule.group is None:
            continue
        kinds.setdefault(rule.group, set()).add(rule.kind)
        if not isinstance(rule, BehaviorRule):
            continue
        key = (rule.group, rule.event)
        if key in catch_all:
            out.append(
                _warning(
                    models,
                    ("models", m_index, "rules", r_index),
                    f"rule {rule.id!r} never counts: the earlier rule {catch_all[key]!r} of "
                    f"group {rule.group!r} takes every {rule.event} event; put the more "
                    "specific rule first",
                )
            )
        elif not rule.match:
            catch_all[key] = rule.id
    for r_index, rule in enumerate(model.rules):
        group = rule.group
        if group is not None and len(kinds.get(group, ())) > 1:
            kinds[group] = set()  # once per group
            out.append(
                _warning(
                    models,
                    ("models", m_index, "rules", r_index, "group"),
                    f"group {group!r} has fit and behavior rules: they never compete, "
                    "groups work within one kind",
                )
            )
    return out


def _warning(models: ModelSet, path: Path, message: str) -> str:
    positions = models._positions
    if positions is not None and len(path) > 1 and path[0] == "models":
        index = path[1]
        if isinstance(index, int) and index < len(positions):
            path = ("models", positions[index], *path[2:])
    source = models._source
    if source is None:
        return f"{render_path(path)}: {message}"
    probe = path
    while probe and probe not in models._lines:
        probe = probe[:-1]
    line = models._lines.get(probe, 1)
    return f"{source}:{line}: {render_path(path)}: {message}"
