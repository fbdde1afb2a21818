"""An example third-party connector, installed through its entry point as pip would
install it, is found by leadsync by name and passes the connector conformance suite.

The package (``notebook_crm/``) is "installed" by putting its source and a
``.dist-info`` built from its own ``pyproject.toml`` on ``sys.path``: that is what
pip leaves in site-packages, and ``importlib.metadata`` (which ``connectors.registry``
uses) reads nothing else. Two deliberately broken variants show that the suite
catches what it is meant to catch.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors import registry
from connectors.base import Connector
from connectors.testing import ConnectorSuite, Fault

PACKAGE = Path(__file__).parent / "notebook_crm"


def install(site: Path) -> None:
    """Write the dist-info pip would write for the package into ``site``."""
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = ["[leadsync.connectors]"]
    for name, target in project["entry-points"]["leadsync.connectors"].items():
        lines.append(f"{name} = {target}")
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    site = tmp_path_factory.mktemp("site-packages")
    install(site)
    added = [str(site), str(PACKAGE)]
    sys.path[:0] = added
    try:
        yield
    finally:
        for entry in added:
            sys.path.remove(entry)
        for module in [m for m in sys.modules if m.split(".")[0] == "notebook_crm"]:
            del sys.modules[module]


def _harness_class() -> type:
    from notebook_crm.testing import NotebookHarness

    class ThroughRegistry(NotebookHarness):
        """The author's harness, with the connector built the way leadsync builds it."""

        def connector(self) -> Connector:
            return registry.create("notebook", self.settings(), context=self.context())

    return ThroughRegistry


def test_leadsync_finds_the_installed_connector_by_name(installed: None) -> None:
    assert "notebook" in registry.available()
    harness = _harness_class()()
    connector = harness.connector()
    assert type(connector).__module__ == "notebook_crm"
    assert connector.name == "notebook"
    assert isinstance(connector, Connector)


def test_leadsync_config_accepts_the_installed_connector(installed: None, tmp_path: Path) -> None:
    from scheduler.config import config_from_mapping

    (tmp_path / "m.yaml").write_text("models: []\n")
    config = config_from_mapping(
        {"crm": {"type": "notebook", "notebook": {"account": "a"}}, "models": ["m.yaml"]},
        base_dir=tmp_path,
    )
    assert config.crm.type == "notebook"


class TestNotebookConformance(ConnectorSuite):
    @pytest.fixture
    def harness(self, installed: None) -> object:
        return _harness_class()()


# -- the suite fails connectors that break its promises --------------------------------


def test_the_suite_catches_pages_that_skip_records_sharing_a_stamp(installed: None) -> None:
    from notebook_crm import NotebookConnector

    class SkipsSharedStamps(NotebookConnector):
        def _page_after(self, last):  # type: ignore[no-untyped-def]
            return (last.stamp, "\uffff")  # "after this stamp": loses the rest of it

    harness = _harness_class()()
    connector = SkipsSharedStamps.from_config(harness.settings(), context=harness.context())
    with pytest.raises(AssertionError, match="changed at one instant missed"):
        ConnectorSuite().test_incremental_read_loses_no_contact_sharing_one_stamp(
            harness, connector
        )


def test_the_suite_catches_a_create_resent_blindly(installed: None) -> None:
    from notebook_crm import NotebookConnector

    class ResendsBlindly(NotebookConnector):
        def _create_once(self, kind, key, record):  # type: ignore[no-untyped-def]
            from notebook_crm.backend import AnswerLost, Unavailable

            from connectors.base import ActionResult

            try:
                return ActionResult(key, self.notebook.create(kind, record), created=True)
            except (AnswerLost, Unavailable):
                return ActionResult(key, self.notebook.create(kind, record), created=True)

    harness = _harness_class()()
    connector = ResendsBlindly.from_config(harness.settings(), context=harness.context())
    with pytest.raises(AssertionError, match="records under one key"):
        ConnectorSuite().test_keyed_create_never_duplicates_under_a_fault(
            harness, connector, "deal", Fault.ERROR_AFTER_APPLY
        )
