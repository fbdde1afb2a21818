from typer.testing import CliRunner

from scheduler.cli import app


def test_help_lists_the_app() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "leadsync" in result.output.lower() or "Usage" in result.output
