"""``python -m scheduler.serve``: the ``serve`` command on its own (same options as
``leadsync serve``), for process managers that run one module."""

from __future__ import annotations

import typer

from scheduler import cli_serve

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
cli_serve.register(app)

if __name__ == "__main__":
    app()
