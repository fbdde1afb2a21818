"""The ``leadsync`` command line.

Commands live in small modules, each owning one area, and register themselves here:
``cli_scoring`` (score, check, explain), ``cli_sandbox`` (sandbox), ``cli_sync`` (run,
schedule, purge), ``cli_status`` (status), ``cli_demo`` (demo). Errors a user can fix print one line and exit with a
status from :mod:`scheduler.cli_common`, never a traceback.
"""

from __future__ import annotations

import typer

from scheduler import cli_demo, cli_init, cli_leads, cli_sandbox, cli_scoring, cli_status, cli_sync

app = typer.Typer(
    name="leadsync",
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


for module in (cli_scoring, cli_sandbox, cli_sync, cli_status, cli_demo, cli_init, cli_leads):
    module.register(app)


def main() -> None:
    app()
