"""``leadsync alerts test``: a sample alert to each configured destination.

Checks the ``alerts`` section on its own (a typo in it is a ``FILE:LINE`` line), then
posts one sample message to each Slack and Teams webhook and mails each e-mail
destination, so that a new webhook or SMTP account is proved before a real lead
depends on it. Nothing is written to the state store.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperOption

from connectors.runtime import Redactor
from scheduler.alerts.config import AlertsConfig, EmailDestination, load_alerts
from scheduler.alerts.render import Message
from scheduler.alerts.senders import DeliveryError, build_sender
from scheduler.cli_common import EXIT_REJECTED, EXIT_USAGE, error_line
from scheduler.config import ConfigError, redact

SAMPLE = {
    "trigger": "crossing",
    "model": "sample",
    "contact_id": "0",
    "name": "Sample Lead (leadsync alerts test)",
    "email": "sample.lead@example.com",
    "score": 87.5,
    "band": "hot",
    "reasons": [["visited the pricing page", 25.0], ["title is VP", 15.0], ["company size", 10.0]],
    "owner_name": "the lead's owner",
    "link": None,
}


def send_samples(
    config: AlertsConfig, *, owner_email: str | None, redactor: Redactor
) -> list[tuple[str, str | None]]:
    """(destination, error or None) per destination, in configuration order."""
    out: list[tuple[str, str | None]] = []
    for dest in config.destinations:
        to: list[str] = []
        if isinstance(dest, EmailDestination):
            if dest.to == "owner":
                if not owner_email:
                    out.append(
                        (dest.id, "sends to each lead's owner: give --owner-email to test it")
                    )
                    continue
                to = [owner_email]
            else:
                to = list(dest.to)
        sender = build_sender(dest, redactor=redactor)
        try:
            sender.send(
                Message(
                    kind="alert", key=f"test.{dest.id}", alerts=(dict(SAMPLE, destination=dest.id),)
                ),
                to,
            )
            out.append((dest.id, None))
        except DeliveryError as exc:
            out.append((dest.id, redactor(str(exc))))
        finally:
            sender.close()
    return out


class _Command(TyperCommand):
    """Flags shown without a value in help (``--help``, not ``--help <bool>``), as the
    root app shows its own commands' (see ``scheduler/cli.py``)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
                param.metavar = ""
        return params


def register(app: typer.Typer) -> None:
    """Add ``alerts test`` to the ``leadsync`` app."""
    alerts_app = typer.Typer(
        cls=app.info.cls,  # the root's group class: its help shows flags the same way
        help="Alerts to reps: Slack, Teams, e-mail.",
        no_args_is_help=True,
    )

    @alerts_app.command("test", cls=_Command)
    def test(
        config: Annotated[str, typer.Option("--config", help="leadsync.yaml")],
        owner_email: Annotated[
            str | None,
            typer.Option(
                "--owner-email", help="Where a 'to: owner' e-mail destination sends the sample."
            ),
        ] = None,
    ) -> None:
        """Send a sample alert to each destination of the ``alerts`` section."""
        try:
            cfg = load_alerts(config)
        except ConfigError as exc:
            for line in exc.problems:
                error_line(redact(line))
            raise typer.Exit(EXIT_USAGE) from None
        if not cfg.destinations:
            error_line(f"{config}:1: alerts: no destination configured")
            raise typer.Exit(EXIT_USAGE)
        redactor = Redactor(cfg.secrets())
        failed = 0
        for dest_id, error in send_samples(cfg, owner_email=owner_email, redactor=redactor):
            if error is None:
                typer.echo(f"{dest_id}: sent")
            else:
                failed += 1
                error_line(redact(f"{dest_id}: not sent: {error}"))
        if failed:
            raise typer.Exit(EXIT_REJECTED)

    app.add_typer(alerts_app, name="alerts")
