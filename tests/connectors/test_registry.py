"""Connector discovery through the ``leadsync.connectors`` entry-point group."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from connectors import registry
from connectors.base import ConnectorConfigError, RuntimeContext


def _install(tmp_path: Path, dist: str, module: str, source: str, target: str, name: str) -> None:
    """A tiny installed distribution: a module plus ``*.dist-info/entry_points.txt``,
    exactly what pip leaves in site-packages."""
    (tmp_path / f"{module}.py").write_text(source)
    info = tmp_path / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[leadsync.connectors]\n{name} = {target}\n")


PLUGIN = """
class MyCRMConnector:
    name = "mycrm"

    def __init__(self, config):
        self.config = dict(config)

    @classmethod
    def from_config(cls, config, *, context):
        return cls(config)
"""


def test_builtin_entry_points_resolve() -> None:
    eps = registry.available()
    assert {"hubspot", "salesforce", "files"} <= set(eps)
    for name in ("hubspot", "salesforce", "files"):
        factory = registry.load_factory(name)
        assert callable(factory.from_config)
    from connectors.hubspot import HubSpotConnector

    assert registry.load_factory("hubspot") is HubSpotConnector


def test_third_party_connector_is_discovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"mycrm_{uuid.uuid4().hex[:8]}"
    _install(tmp_path, "mycrm-leadsync", module, PLUGIN, f"{module}:MyCRMConnector", "mycrm")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "mycrm" in registry.available()
    context = RuntimeContext(now=lambda: None, sleep=lambda s: None)
    connector = registry.create("mycrm", {"region": "eu"}, context=context)
    assert type(connector).__name__ == "MyCRMConnector"
    assert connector.config == {"region": "eu"}  # type: ignore[attr-defined]


def test_broken_plugin_gives_one_line_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"broken_{uuid.uuid4().hex[:8]}"
    _install(
        tmp_path,
        "broken-leadsync",
        module,
        "import leadsync_dependency_that_is_not_installed\n",
        f"{module}:Connector",
        "brokencrm",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConnectorConfigError) as info:
        registry.load_factory("brokencrm")
    message = str(info.value)
    assert "\n" not in message
    assert "brokencrm" in message and "ModuleNotFoundError" in message


def test_plugin_without_from_config_and_unknown_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"nofactory_{uuid.uuid4().hex[:8]}"
    _install(tmp_path, "nofactory", module, "Thing = object\n", f"{module}:Thing", "thing")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConnectorConfigError, match="has no from_config"):
        registry.load_factory("thing")
    with pytest.raises(ConnectorConfigError, match=r"unknown connector 'nope'.*hubspot"):
        registry.load_factory("nope")
