"""A CLI command run in a test (``CliRunner``) installs the ``leadsync`` log handler
while the runner's stderr is in place, and the runner closes that stream when the
command returns; a test that raises a logger's level leaves it raised. Neither may
harm a later test: a server thread still running would log into the closed stream
(``--- Logging error ---``). The handler writes to whatever ``sys.stderr`` is when a
record comes (``cli_sync._CurrentStderr``), and levels are restored after each serve
test (``conftest.logging_restored``). The two tests run in this order."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
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


def test_the_cli_log_handler_outlives_the_runners_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = CliRunner().invoke(app, ["run", "--config", str(tmp_path / "missing.yaml")])
    assert out.exit_code != 0
    assert logging.getLogger("leadsync").handlers  # the command installed it
    assert _closed_streams() == []  # the runner's stream is closed, and not used
    SERVE.warning("a line logged after the command returned")
    err = capsys.readouterr().err
    assert "Logging error" not in err and "a line logged after" in err
    SERVE.setLevel(logging.DEBUG)  # as a test reading the debug lines does


def test_no_level_is_left_by_an_earlier_test() -> None:
    assert _closed_streams() == []
    assert SERVE.level == logging.NOTSET
