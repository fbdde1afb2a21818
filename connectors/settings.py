"""Connector settings declared as pydantic models.

A connector class names its model in a ``settings_model`` attribute (see
docs/connectors.md, "Settings"); ``leadsync check`` and every run then validate the
``crm.<type>`` section of leadsync.yaml with it before any call, with the file's
``FILE:LINE`` and "did you mean" messages (``scheduler/config.py``). The connector
parses the same model in ``from_config``, so code that builds a connector without a
file gets the same checks, as one ``ConnectorConfigError`` line.

Optional on the model: ``mapped_fields()``, the canonical and custom contact fields
the connector delivers with its configuration, which lets ``check`` tell a typo in a
model or template from a field the CRM really has. A field typed ``pathlib.Path``
names a file relative to the configuration file's folder.
"""

from __future__ import annotations

import pathlib
import types
import typing
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from connectors.base import ConnectorConfigError
from scoring.yaml_problems import Path, model_keys, path_problems, render_path

__all__ = ["SettingsModel", "parse_settings_model", "path_fields"]

M = TypeVar("M", bound=BaseModel)


class SettingsModel(BaseModel):
    """Base of the built-in connectors' settings: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


def _direct(error: ErrorDetails, path: Path) -> str | None:
    del path
    return "missing" if error["type"] == "missing" else None


def parse_settings_model(
    model: type[M],
    config: Mapping[str, object],
    *,
    prefix: str,
    context: Mapping[str, object] | None = None,
) -> M:
    """Validate ``config``; the first problem as one ``prefix.path: message`` line.

    pydantic's messages never repeat the value given, so a secret in a wrong place
    is not echoed."""
    if not isinstance(config, Mapping):
        raise ConnectorConfigError(f"{prefix}: must be a mapping of settings")
    data = dict(config)
    try:
        return model.model_validate(data, context=dict(context or {}))
    except ValidationError as exc:
        found = path_problems(
            exc,
            data,
            keys=model_keys(model),
            wording="pydantic",
            message=_direct,
            unknown="unknown setting",
        )
        path, text, _ = found[0] if found else ((), "invalid settings", False)
        where = f"{prefix}.{render_path(path)}" if path else prefix
        raise ConnectorConfigError(f"{where}: {text}") from None


PathFields = dict[str, "bool | PathFields"]


def path_fields(model: type[BaseModel]) -> PathFields:
    """The fields typed ``pathlib.Path``: ``name -> True``, or ``name -> {nested}``
    for a nested model that has some (how ``scheduler/config.py`` finds the paths
    to resolve from the configuration file's folder)."""
    out: PathFields = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if _mentions_path(info.annotation):
            out[key] = True
            continue
        for nested in _models(info.annotation):
            inner = path_fields(nested)
            if inner:
                out[key] = inner
    return out


def _args(annotation: object) -> tuple[object, ...]:
    if typing.get_origin(annotation) is None and not isinstance(annotation, types.UnionType):
        return ()
    return typing.get_args(annotation)


def _mentions_path(annotation: object) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, pathlib.PurePath):
        return True
    return any(_mentions_path(arg) for arg in _args(annotation))


def _models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in _args(annotation) for m in _models(arg)]
