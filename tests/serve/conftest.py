"""Fixtures of the serve tests (helpers live in ``serve_helpers``).

Every real server a test starts (uvicorn in a thread, with its drainer thread) is
stopped before the test ends: a server left running logs into the stream of a test
that has finished (pytest closes it), which prints ``--- Logging error ---`` in a
later test. ``no_server_left`` fails the test that leaves one, and stops it so that
the next tests start clean.

A log handler can outlive its test too: a CLI command run in a test (``CliRunner``)
installs the ``leadsync`` handler on the runner's stderr, closed when the command
returns, and a server of a later test logging there prints the same error; a level
raised by one test lets another's records through to it. ``logging_restored`` puts
the handlers, filters and levels of leadsync's and uvicorn's loggers back after
every test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import Live, server_threads, start_live, stop_leftovers

#: The loggers the service and the CLI configure (uvicorn replaces its handlers).
LOGGERS = ("", "leadsync", "leadsync.serve", "uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """Set up before ``no_server_left``: restored once every server is stopped."""
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), list(logger.filters), logger.level))
    yield
    for logger, handlers, filters, level in saved:
        logger.handlers[:] = handlers
        logger.filters[:] = filters
        logger.setLevel(level)


@pytest.fixture(autouse=True)
def no_server_left() -> Iterator[None]:
    """Set up before, torn down after every other function-scoped fixture of the test:
    a server thread started during the test and still alive then was never stopped.
    (A module-scoped server, started before this fixture, is not the test's.)"""
    before = set(server_threads())
    yield
    left = [t for t in server_threads() if t not in before]
    if left:
        stop_leftovers(left)
        pytest.fail(
            "server threads still running after the test: "
            + ", ".join(sorted(t.name for t in left))
            + " (stop every server before the test ends: the `serving` fixture does)",
            pytrace=False,
        )


@pytest.fixture
def serving() -> Iterator[list[object]]:
    """Stops, after the test, whatever the test appended: a ``Live``, a ``RealTime``
    or a ``RunningService`` (anything with ``close()`` or ``stop()``), last first.
    Start a server and append it at once: it is stopped even when the test fails."""
    started: list[object] = []
    yield started
    errors: list[BaseException] = []
    for item in reversed(started):
        try:
            close = getattr(item, "close", None) or item.stop  # type: ignore[attr-defined]
            close()
        except Exception as exc:  # each one is stopped; the first error raised
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def live(tmp_path: Path, serving: list[object]) -> Live:
    service = start_live(tmp_path)
    serving.append(service)
    return service
