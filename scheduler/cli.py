"""The ``leadsync`` command line.

Commands live in small modules, each owning one area, and register themselves here:
``cli_scoring`` (score, check, explain), ``cli_sandbox`` (sandbox), ``cli_sync`` (run,
schedule, purge), ``cli_status`` (status), ``cli_demo`` (demo). Errors a user can fix print one line and exit with a
status from :mod:`scheduler.cli_common`, never a traceback.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

from scheduler import (
    cli_alerts,
    cli_backtest,
    cli_demo,
    cli_init,
    cli_leads,
    cli_sandbox,
    cli_scale,
    cli_scoring,
    cli_serve,
    cli_status,
    cli_sync,
    cli_train,
)


def _flags_take_no_value(params: list[Any]) -> list[Any]:
    """Typer's Rich help prints a flag's type (``--dry-run <bool>``), which reads as an
    option taking a value, and ``--dry-run true`` then fails; an empty metavar leaves
    the type column blank for flags, as the plain help has always done."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_take_no_value(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_take_no_value(super().get_params(ctx))


app = typer.Typer(
    name="leadsync",
    cls=_Group,
    help="Lead scoring for HubSpot and Salesforce, with an embedded sandbox CRM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print the installed leadsync version."""
    from importlib.metadata import version as dist_version

    typer.echo(f"leadsync {dist_version('leadsync')}")


for module in (
    cli_scoring,
    cli_sandbox,
    cli_sync,
    cli_status,
    cli_demo,
    cli_init,
    cli_leads,
    cli_backtest,
    cli_train,
    cli_alerts,
    cli_serve,
    cli_scale,
):
    module.register(app)


def _plain_flags(typer_app: typer.Typer) -> None:
    """Every command and group, whichever module added it (sub-apps included)."""
    for command in typer_app.registered_commands:
        if command.cls in (None, TyperCommand):
            command.cls = _Command
    for group in typer_app.registered_groups:
        # Typer wraps an unset class in a placeholder whose ``value`` is None.
        if getattr(group.cls, "value", group.cls) in (None, TyperGroup):
            group.cls = _Group
        if group.typer_instance is not None:
            _plain_flags(group.typer_instance)


_plain_flags(app)


def main() -> None:
    app()
