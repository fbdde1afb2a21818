"""``leadsync init``: a commented ``leadsync.yaml`` and the starter model, to edit.

The files are the ones ``examples/`` holds (a test keeps them equal), so that what a
new user starts from is what the documentation shows. ``--sandbox`` points the file at
``leadsync sandbox`` on this machine and prints the sandbox's own credentials to export:
they are the sandbox's, never a real CRM's, which is why printing them is fine.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from scheduler.cli_common import EXIT_USAGE, fail

CRMS = ("hubspot", "salesforce")
CONFIG_NAME = "leadsync.yaml"
MODEL_PATH = Path("models") / "starter.yaml"
SANDBOX_URLS = {"hubspot": "http://127.0.0.1:8765", "salesforce": "https://127.0.0.1:8766"}
# What ``leadsync sandbox`` accepts unless told otherwise (its --token, --session-id).
SANDBOX_ENV = {"hubspot": ("HUBSPOT_ACCESS_TOKEN", "sandbox-token"),
               "salesforce": ("SF_SESSION_ID", "sandbox-session")}  # fmt: skip


@dataclass(frozen=True)
class InitPlan:
    crm: str
    sandbox_url: str | None = None  # None: the real CRM
    ca_bundle: str | None = None  # the Salesforce sandbox's CA (``sandbox --ca-out``)
    state: str = "sqlite:///leadsync.db"
    pool: tuple[str, ...] = ()


def starter_model_text() -> str:
    """The packaged starter model, byte for byte."""
    ref = importlib.resources.files("scoring").joinpath("data/models/starter.yaml")
    return ref.read_text(encoding="utf-8")


def _c(text: str, comment: str) -> str:
    """A line with its comment in the file's comment column."""
    return f"{text}{' ' * max(1, 44 - len(text))}# {comment}"


def _pool_line(pool: tuple[str, ...]) -> str:
    if not pool:
        return "    owners: {strategy: round_robin, pool: []}   # rep e-mails or owner ids, for contacts without an owner"
    return (
        f"    owners: {{strategy: round_robin, pool: [{', '.join(pool)}]}}"
        "   # the sandbox's reps, for contacts without an owner"
    )


def _hubspot_crm(plan: InitPlan) -> str:
    if plan.sandbox_url:
        return f"""\
crm:
  type: hubspot
  hubspot:
    access_token: ${{HUBSPOT_ACCESS_TOKEN}}   # the sandbox's token: export HUBSPOT_ACCESS_TOKEN=sandbox-token
{_c(f"    base_url: {plan.sandbox_url}", "`leadsync sandbox`; https://api.hubapi.com for HubSpot itself")}
    tier: pro                               # free | starter | pro | enterprise: sets the rate limits to stay under
"""
    return """\
crm:
  type: hubspot
  hubspot:
    access_token: ${HUBSPOT_ACCESS_TOKEN}   # a private app's token (scopes: crm.objects.contacts.read/write, deals, owners)
    base_url: https://api.hubapi.com
    tier: pro                               # free | starter | pro | enterprise: sets the rate limits to stay under
    # oauth: {client_id: ..., client_secret: ${HUBSPOT_CLIENT_SECRET}, refresh_token: ${HUBSPOT_REFRESH_TOKEN}}
"""


def _salesforce_crm(plan: InitPlan) -> str:
    if plan.sandbox_url:
        return f"""\
crm:
  type: salesforce
  salesforce:
{_c(f"    instance_url: {plan.sandbox_url}", "`leadsync sandbox`; your org's My Domain URL for Salesforce itself")}
    session_id: ${{SF_SESSION_ID}}           # the sandbox's session: export SF_SESSION_ID=sandbox-session
{_c(f"    ca_bundle: {plan.ca_bundle}", "the sandbox's CA (`leadsync sandbox --ca-out`)")}
"""
    return """\
crm:
  type: salesforce
  salesforce:
    login_url: https://login.salesforce.com   # https://test.salesforce.com for a sandbox org
    version: "59.0"
    jwt:                                      # a connected app with a certificate (docs/connectors.md)
      client_id: ${SF_CLIENT_ID}
      username: integration@example.com
      private_key: ${file:salesforce-jwt.key}   # PEM, kept out of this file
    # refresh_token: {client_id: ..., client_secret: ${SF_CLIENT_SECRET}, refresh_token: ${SF_REFRESH_TOKEN}}
    # ca_bundle: ca.pem                       # only for a proxy or a test org with its own CA
"""


def config_text(plan: InitPlan) -> str:
    """The commented ``leadsync.yaml`` for one CRM, real or sandbox."""
    if plan.crm == "hubspot":
        head = f"""\
# leadsync sync configuration for HubSpot. Check it, then run it:
#   export HUBSPOT_ACCESS_TOKEN={"sandbox-token" if plan.sandbox_url else "pat-..."}
#   leadsync check --config leadsync.yaml
#   leadsync run --config leadsync.yaml --dry-run
# Secrets never go in this file: ${{VAR}} reads the environment, ${{file:PATH}} a file.
# HubSpot properties for the scores (and leadsync_key on deals and tasks) are created
# by the first run, or by `leadsync check`.
"""
        crm = _hubspot_crm(plan)
        deal = (
            '    deal: {name: "{first_name} {last_name} - {model}", stage: appointmentscheduled, '
            "pipeline: default, close_in: 30d, amount: null}"
        )
        schedule = 'schedule: {every: 15m}                      # or {cron: "*/15 * * * *"}; used by `leadsync schedule`'
    else:
        head = f"""\
# leadsync sync configuration for Salesforce. Check it, then run it:
#   {"export SF_SESSION_ID=sandbox-session" if plan.sandbox_url else "export SF_CLIENT_ID=..."}
#   leadsync check --config leadsync.yaml
#   leadsync run --config leadsync.yaml --dry-run
# Secrets never go in this file: ${{VAR}} reads the environment, ${{file:PATH}} a file.
# The custom fields (leadsync_score__c and leadsync_services_score__c on Lead and
# Contact, leadsync_key__c as an External ID on Opportunity and Task) are created by an
# admin: `leadsync check` names each missing one and its type.
"""
        crm = _salesforce_crm(plan)
        deal = (
            "    # Contacts get an Opportunity (with their Account and a contact role); Leads cannot,\n"
            "    # so they get this status instead. Both get the task.\n"
            '    deal: {name: "{first_name} {last_name} - {model}", stage: Prospecting, '
            'pipeline: null, close_in: 30d, lead_status: "Working - Contacted"}'
        )
        schedule = 'schedule: {cron: "*/15 * * * *"}            # or {every: 15m}; used by `leadsync schedule`'
    return f"""\
{head}{crm}
models: {MODEL_PATH.as_posix()}                 # one file or a list; paths are relative to this file
{_c(f"state: {plan.state}", "or postgresql+psycopg://user@host/db in production")}
{schedule}

writeback:
  min_change: 1                             # write a score only when it moved by at least this, or changed band
  band_field: null                          # e.g. leadsync_band to also write hot/warm/cold
  max_actions_per_run: 100                  # crossings beyond this wait for the next run
  skip_if_open_deal: any                    # any | ours: no new deal while the contact has an open one
  on_cross:
{deal}
    task: {{subject: "Follow up: {{first_name}} {{last_name}} scored {{score}}", due_in: 1d, priority: high, type: call}}
{_pool_line(plan.pool)}
"""


def sandbox_pool() -> tuple[str, ...]:
    """The first three active reps of the sandbox's world: every world has them."""
    from connectors.sandbox import generate_world

    owners = generate_world(0).owners
    return tuple(o.email for o in owners if o.kind == "person" and o.active)[:3]


def write_files(folder: Path, plan: InitPlan, *, force: bool) -> list[Path]:
    """Write both files, or none: an existing one is refused unless ``force``; each is
    written beside its place first and renamed only once both are written, so that a
    full disk or a read-only folder leaves nothing half-made."""
    targets = {folder / CONFIG_NAME: config_text(plan), folder / MODEL_PATH: starter_model_text()}
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        fail(f"leadsync init: not overwriting {names} (--force does)", EXIT_USAGE)
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in targets.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_name(path.name + ".part")
            part.write_text(text, encoding="utf-8")
            staged.append((part, path))
        for part, path in staged:
            part.replace(path)
    except OSError as exc:
        for part, _ in staged:
            part.unlink(missing_ok=True)
        fail(f"leadsync init: cannot write in {folder}: {exc.strerror or exc}", EXIT_USAGE)
    return list(targets)


def register(app: typer.Typer) -> None:
    """Add ``init`` to the ``leadsync`` app."""

    @app.command()
    def init(
        crm: str = typer.Option("hubspot", "--crm", help="hubspot or salesforce"),
        sandbox: Annotated[
            bool,
            typer.Option("--sandbox", help="Point the file at `leadsync sandbox` on this machine."),
        ] = False,
        sandbox_url: str | None = typer.Option(
            None,
            "--sandbox-url",
            help="Where the sandbox listens (default http://127.0.0.1:8765 for HubSpot, "
            "https://127.0.0.1:8766 for Salesforce).",
        ),
        ca_bundle: Path = typer.Option(
            Path("ca.pem"),
            "--ca-bundle",
            help="The Salesforce sandbox's CA, as written by `leadsync sandbox --ca-out`.",
        ),
        folder: Path = typer.Option(Path("."), "--dir", help="Where to write the files."),
        force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    ) -> None:
        """Write a commented leadsync.yaml and models/starter.yaml to start from."""
        plan = init_plan(crm, sandbox=sandbox, sandbox_url=sandbox_url, ca_bundle=ca_bundle)
        if not folder.is_dir():
            fail(f"--dir: {folder} is not a directory", EXIT_USAGE)
        written = write_files(folder, plan, force=force)
        for path in written:
            typer.echo(f"wrote {path}")
        typer.echo(next_steps(plan, written[0]))


def init_plan(crm: str, *, sandbox: bool, sandbox_url: str | None, ca_bundle: Path) -> InitPlan:
    """What ``init`` writes, from its options; a bad option ends the command (exit 2)."""
    if crm not in CRMS:
        fail(f"--crm: expected hubspot or salesforce, got {crm!r}", EXIT_USAGE)
    if sandbox_url is not None and not sandbox:
        fail("--sandbox-url: only with --sandbox", EXIT_USAGE)
    url = (sandbox_url or SANDBOX_URLS[crm]).rstrip("/") if sandbox else None
    if url is not None and not url.startswith(("http://", "https://")):
        fail(f"--sandbox-url: expected an http(s) URL, got {url!r}", EXIT_USAGE)
    return InitPlan(
        crm=crm,
        sandbox_url=url,
        # The connector reads the CA from the directory it runs in: an absolute path
        # keeps the file usable from anywhere.
        ca_bundle=str(ca_bundle.expanduser().resolve()) if sandbox else None,
        pool=sandbox_pool() if sandbox else (),
    )


def next_steps(plan: InitPlan, config: Path) -> str:
    """What to do after ``init``: start the sandbox and export its credentials, or
    edit the file and export your own; then check and run."""
    crm = plan.crm
    lines: list[str] = []
    if plan.sandbox_url is not None:
        var, value = SANDBOX_ENV[crm]
        fields = " --leadsync-fields --ca-out ca.pem" if crm == "salesforce" else ""
        lines.append(f"\nStart the sandbox (if not running): leadsync sandbox --crm {crm}{fields}")
        lines.append("Then export the sandbox's credentials:")
        lines.append(f"export {var}={value}")
    else:
        var = SANDBOX_ENV[crm][0] if crm == "hubspot" else "SF_CLIENT_ID"
        lines.append(f"\nEdit {config}, then export your credentials ({var}, see the file).")
    lines.append(f"Next: leadsync check --config {config}")
    lines.append(f"      leadsync run --config {config}")
    return "\n".join(lines)
