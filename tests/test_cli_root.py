import pytest
from typer.testing import CliRunner

from scheduler.cli import app


def test_help_lists_the_app() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "leadsync" in result.output.lower() or "Usage" in result.output


def _every_command(cmd, path=()):
    """(path, click command) for the app and each command under it, groups included."""
    yield path, cmd
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        yield from _every_command(sub, (*path, name))


def test_no_help_text_shows_a_flag_as_taking_a_bool() -> None:
    """``--dry-run <bool>`` made users type ``--dry-run true``, which fails: flags take
    no value, and every help text of the app must show them so."""
    import typer.main

    commands = list(_every_command(typer.main.get_command(app)))
    assert len(commands) > 5
    runner = CliRunner()
    for path, _ in commands:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
        assert "--help" in result.output


def test_demo_on_salesforce_without_the_sandbox_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """trustme (the sandbox's TLS authority) is in the ``sandbox`` extra, not a runtime
    dependency: without it, the Salesforce demo says how to get it, in one line."""
    import sys

    monkeypatch.setitem(sys.modules, "trustme", None)  # as if not installed
    result = CliRunner().invoke(app, ["demo", "--crm", "salesforce", "--no-report"])
    assert result.exit_code == 2, result.output
    assert "pip install 'leadsync[sandbox]'" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_the_hubspot_demo_needs_no_test_or_sandbox_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """``pip install .`` (no extras) is enough for ``leadsync demo``: the HubSpot
    sandbox is plain HTTP, so neither trustme nor the test-only responses is imported."""
    import json
    import sys

    for module in ("trustme", "responses"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    args = ["demo", "--contacts", "60", "--days", "30", "--simulated-days", "1"]
    result = CliRunner().invoke(app, [*args, "--no-report", "--json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output.strip().splitlines()[-1])["runs"]
    assert [r["exit_code"] for r in runs] == [0, 0, 0]
