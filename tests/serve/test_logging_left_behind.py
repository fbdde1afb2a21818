"""A CLI command run in a test (``CliRunner``) installs the ``leadsync`` log handler
on the runner's stderr, which is closed when the command returns; a test that
raises a logger's level leaves it raised. Neither may outlive its test: a later
test's server thread would log into the closed stream (``--- Logging error ---``).
The two tests run in this order: the first leaves both behind, the second finds
them restored (``conftest.logging_restored``)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from typer.testing import CliRunner

from scheduler.cli import app

SERVE = logging.getLogger("leadsync.serve")


def _closed_streams() -> list[str]:
    out = []
    for name in ("leadsync", "leadsync.serve", "uvicorn", "uvicorn.error", "uvicorn.access", ""):
        for h in logging.getLogger(name).handlers:
            stream = getattr(h, "stream", None)
            if isinstance(stream, io.IOBase | io.TextIOWrapper) and stream.closed:
                out.append(f"{name or 'root'}: {h!r}")
    return out


def test_a_cli_command_installs_its_log_handler(tmp_path: Path) -> None:
    before = len(logging.getLogger("leadsync").handlers)
    out = CliRunner().invoke(app, ["run", "--config", str(tmp_path / "missing.yaml")])
    assert out.exit_code != 0
    SERVE.setLevel(logging.DEBUG)  # as a test reading the debug lines does
    if before == 0:
        assert _closed_streams()  # the runner's stream, closed once the command returned


def test_no_handler_or_level_is_left_by_an_earlier_test() -> None:
    assert _closed_streams() == []
    assert SERVE.level == logging.NOTSET
