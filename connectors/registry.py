"""Connector discovery through the ``leadsync.connectors`` entry-point group.

A third-party package ships a connector by declaring, in its own ``pyproject.toml``::

    [project.entry-points."leadsync.connectors"]
    mycrm = "mycrm_leadsync:MyCRMConnector"

where the object has ``from_config(config, *, context)`` and, optionally, a
``settings_model`` attribute: the pydantic model of its ``crm.<name>`` section, with
which leadsync.yaml is checked before any call (docs/connectors.md, "Settings").
Nothing in this repository changes; no import-time registration or metaclass is
involved.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel

from connectors.base import Connector, ConnectorConfigError, ConnectorFactory, RuntimeContext
from scoring.yaml_problems import suggest

GROUP = "leadsync.connectors"


def available() -> dict[str, EntryPoint]:
    """Installed connectors by name (later installs of the same name win, as pip does)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_factory(name: str) -> ConnectorFactory:
    eps = available()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        hint = suggest(name, eps)
        raise ConnectorConfigError(
            f"crm.type: unknown connector {name!r}{hint} (installed: {known})"
        )
    try:
        factory = eps[name].load()
    except Exception as exc:  # a broken plug-in must not take the CLI down with a traceback
        raise ConnectorConfigError(
            f"crm.type: connector {name!r} failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(getattr(factory, "from_config", None)):
        raise ConnectorConfigError(f"crm.type: connector {name!r} has no from_config()")
    return factory  # type: ignore[no-any-return]


def create(name: str, config: Mapping[str, Any], *, context: RuntimeContext) -> Connector:
    return load_factory(name).from_config(config, context=context)


def settings_model(name: str) -> type[BaseModel] | None:
    """The connector's settings model, or None when it declares none (it then checks
    its settings itself, in ``from_config``). ``ConnectorConfigError`` as
    :func:`load_factory` for a name that is not installed."""
    model = getattr(load_factory(name), "settings_model", None)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model
    return None
