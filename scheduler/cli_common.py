"""What every command shares: exit statuses and one-line error reporting."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NoReturn

import typer
from rich.console import Console, ConsoleDimensions

from connectors.base import AuthError, ConnectorConfigError, ConnectorError, QuotaExhausted
from scheduler.state import LeaseLost, LockHeld, StateError
from scheduler.writeback import TooManyRejected


class ExitCode(IntEnum):
    """Exit statuses, defined once (documented in the README; scripts rely on them).
    The second name of each value is the one the run summary's ``status`` suggests."""

    OK = 0
    REJECTED = 1  # done, but some input rows or CRM records were rejected
    FAILED = 1
    USAGE = 2  # configuration, model file or usage error
    CONFIG = 2
    STOPPED = 3  # stopped early, progress saved: quota, auth, the CRM failing
    PARTIAL = 3
    LOCKED = 4  # another run holds the lock


EXIT_OK = ExitCode.OK
EXIT_REJECTED = ExitCode.REJECTED
EXIT_USAGE = ExitCode.USAGE
EXIT_STOPPED = ExitCode.STOPPED
EXIT_LOCKED = ExitCode.LOCKED


@dataclass(frozen=True, slots=True)
class Stop:
    """How a command ends on an error the user can act on."""

    code: ExitCode
    status: str  # the run summary's ``status``: config | stopped | locked
    label: str  # the one line's prefix: error | stopped | locked


_CONFIG = Stop(EXIT_USAGE, "config", "error")
_STOPPED = Stop(EXIT_STOPPED, "stopped", "stopped")
_LOCKED = Stop(EXIT_LOCKED, "locked", "locked")


def stop_for(exc: BaseException) -> Stop | None:
    """The one mapping from an error to an exit status, shared by every command and by
    the sync's run summary, so that ``check`` and ``run`` end the same way on the same
    failure. ``None``: not an error a user can act on (a bug).

    2: something to fix in the set-up (configuration, CRM fields or trust, the state
    database); 3: stopped early, progress saved (quota, credentials refused, the CRM
    failing after retries, the run's lease lost); 4: another run holds the lock."""
    if isinstance(exc, LockHeld):
        return _LOCKED
    if isinstance(exc, LeaseLost):
        return _STOPPED
    if isinstance(exc, StateError | ConnectorConfigError):
        return _CONFIG
    if isinstance(exc, TooManyRejected):
        return _CONFIG if exc.config else _STOPPED
    if isinstance(exc, AuthError | QuotaExhausted | ConnectorError):
        return _STOPPED
    return None


def label_for(code: int) -> str:
    """The prefix of the one error line of a command that ended with ``code``."""
    labels: dict[int, str] = {EXIT_USAGE: "error", EXIT_STOPPED: "stopped", EXIT_LOCKED: "locked"}
    return labels.get(code, "error")


class _Console(Console):
    """A console that does not squeeze piped output into 80 columns.

    Rich falls back to 80 columns when it writes to a file or a pipe, which wraps table
    cells such as timestamps mid-value in CI logs and redirected reports. A terminal,
    or an explicit ``COLUMNS``, still decides the width.
    """

    PIPED_WIDTH = 160

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if "width" not in kwargs:
            # Rich freezes ``COLUMNS`` at construction; read it at print time instead,
            # since these consoles are module globals created at import.
            self._width = None

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        if not self.is_terminal and not os.environ.get("COLUMNS"):
            return ConsoleDimensions(max(dims.width, self.PIPED_WIDTH), dims.height)
        return dims

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self.width, self.height = new_size


stdout = _Console(soft_wrap=True)
stderr = _Console(stderr=True, soft_wrap=True, highlight=False)


def error_line(message: str) -> None:
    """One plain line on stderr: no markup, no traceback, greppable as ``FILE:LINE: ...``."""
    sys.stderr.write(message.rstrip("\n") + "\n")


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    error_line(message)
    raise typer.Exit(code)
