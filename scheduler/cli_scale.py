"""``leadsync worker``, ``leadsync beat`` and ``leadsync deployment status``: many
tenants on Celery (``docs/scale-out.md``). ``leadsync schedule`` stays the one-machine
way to run one configuration.

A deployment file that does not validate prints one ``FILE:LINE: path: problem`` line
per problem and exits 2 before any broker is contacted.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Annotated, Any

import typer

from scheduler.cli_common import EXIT_USAGE, error_line
from scheduler.config import ConfigError

DeploymentOption = Annotated[str, typer.Option("--deployment", help="The deployment file.")]


def _app(path: str) -> Any:
    from scheduler.scaleout.celery_app import make_app

    try:
        return make_app(path)
    except ConfigError as exc:
        for line in exc.problems:
            error_line(line)
        raise typer.Exit(EXIT_USAGE) from None


def register(app: typer.Typer) -> None:
    """Add ``worker``, ``beat`` and ``deployment`` to the ``leadsync`` app."""

    @app.command()
    def worker(
        deployment: DeploymentOption,
        concurrency: Annotated[
            int, typer.Option("--concurrency", "-c", min=1, help="Runs at once (processes).")
        ] = 2,
        hostname: Annotated[
            str | None, typer.Option("--hostname", "-n", help="This worker's name.")
        ] = None,
        loglevel: Annotated[str, typer.Option("--loglevel", help="INFO, WARNING, ...")] = "INFO",
    ) -> None:
        """Run a Celery worker that performs the deployment's tenant runs."""
        celery = _app(deployment)
        name = hostname or f"leadsync-{celery.conf.task_default_queue}@{socket.gethostname()}"
        celery.worker_main(
            [
                "worker",
                "--concurrency",
                str(concurrency),
                "--hostname",
                name,
                "--loglevel",
                loglevel,
                "--queues",
                celery.conf.task_default_queue,
                "--without-gossip",
                "--without-mingle",
            ]
        )

    @app.command()
    def beat(
        deployment: DeploymentOption,
        loglevel: Annotated[str, typer.Option("--loglevel", help="INFO, WARNING, ...")] = "INFO",
    ) -> None:
        """Dispatch each tenant's run on its schedule (one beat at a time: a second one
        waits for the first's lock)."""
        celery = _app(deployment)
        celery.start(["beat", "--loglevel", loglevel])

    group = typer.Typer(help="Inspect a deployment of many tenants.", no_args_is_help=True)
    app.add_typer(group, name="deployment")

    @group.command("status")
    def status(
        deployment: DeploymentOption,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    ) -> None:
        """Per tenant: last run, next run, lag, state, error, API budget."""
        deployment_status(deployment, as_json=as_json)


def deployment_status(deployment: str, *, as_json: bool) -> None:
    """``leadsync deployment status`` and ``leadsync status --deployment``: one row per
    tenant, from Redis only (no tenant database is opened)."""
    from scheduler.scaleout.status import print_rows, status_rows

    try:
        rows = status_rows(deployment)
    except ConfigError as exc:
        for line in exc.problems:
            error_line(line)
        raise typer.Exit(EXIT_USAGE) from None
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row, sort_keys=True) + "\n")
    else:
        print_rows(rows)


def _standalone() -> typer.Typer:
    standalone = typer.Typer(
        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
    )
    register(standalone)
    return standalone


def main() -> None:
    """``python -m scheduler.cli_scale``: these commands on their own."""
    _standalone()()


if __name__ == "__main__":
    main()
