"""What every command shares: exit statuses and one-line error reporting."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console

# Exit statuses (documented in the README; scripts rely on them).
EXIT_OK = 0
EXIT_REJECTED = 1  # done, but some input rows or CRM records were rejected
EXIT_USAGE = 2  # configuration, model file or usage error
EXIT_STOPPED = 3  # stopped early: quota, auth
EXIT_LOCKED = 4  # another run holds the lock

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True, highlight=False)


def error_line(message: str) -> None:
    """One plain line on stderr: no markup, no traceback, greppable as ``FILE:LINE: ...``."""
    sys.stderr.write(message.rstrip("\n") + "\n")


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    error_line(message)
    raise typer.Exit(code)
