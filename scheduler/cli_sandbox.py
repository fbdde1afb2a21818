"""``leadsync sandbox``: serve the fake HubSpot and/or Salesforce on loopback.

Both flavours are built from one seeded world, so the same people exist in each. The
world is drawn relative to the moment the sandbox starts (``--days`` of history up to
now), so it tells the same story whenever it is started.
Salesforce is served over TLS with a CA generated at start (simple-salesforce only
builds ``https://`` URLs). The credentials printed are the sandbox's own, never a
real CRM's, which is why printing them is fine.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from connectors.sandbox.control import leadsync_salesforce_fields
from connectors.sandbox.world import DEFAULT_DAYS
from scheduler.cli_common import EXIT_USAGE, fail

if TYPE_CHECKING:
    from connectors.sandbox.framework import Clock

CRMS = ("hubspot", "salesforce", "both")
TIERS = ("free", "starter", "pro", "enterprise")


@dataclass(frozen=True)
class SandboxOptions:
    crm: str = "hubspot"
    host: str = "127.0.0.1"
    hubspot_port: int = 8765
    salesforce_port: int = 8766
    contacts: int = 2000
    seed: int = 7
    days: int = DEFAULT_DAYS
    tier: str = "pro"
    token: str = "sandbox-token"  # noqa: S105  (the sandbox's own demo credential)
    session_id: str = "sandbox-session"
    ca_out: Path | None = None
    leadsync_fields: bool = False
    simulate_every: str | None = None  # "30s", "5m", "1h" or seconds
    simulate_count: int = 20
    # Real hostnames (api.hubapi.com, ...) served over HTTPS with the sandbox's CA, for
    # tools with a hard-coded host reached through a hosts-file entry.
    tls_hostnames: str = ""
    ca_dir: Path | None = None  # keep the CA here, so that it is trusted once
    # Many HubSpot portals in this one process, told apart by their tokens (scale-out
    # tests and benchmarks); 1 is the single portal with ``token``.
    portals: int = 1
    tokens_out: Path | None = None  # where to write the portals' tokens, one a line
    # Real time (docs/realtime.md): HubSpot webhooks to this URL, signed with the
    # app's client secret; Salesforce Outbound Messages to that one.
    webhook_url: str | None = None
    client_secret: str | None = None
    outbound_url: str | None = None
    # HubSpot properties with a propertyChange subscription (HubSpot has no wildcard)
    subscribed: tuple[str, ...] = (
        "jobtitle",
        "lifecyclestage",
        "hs_lead_status",
        "numemployees",
        "industry",
        "country",
        "email",
        "recent_conversion_date",
        "recent_conversion_event_name",
        "hs_email_last_click_date",
        "hs_email_last_open_date",
        "hs_analytics_last_visit_timestamp",
        "hs_analytics_num_page_views",
        "notes_last_contacted",
    )


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_every(text: str) -> float:
    """``30s``, ``5m``, ``1h`` or a plain number of seconds, at least one second."""
    raw = text.strip().lower()
    unit = _UNITS.get(raw[-1:])
    number = raw[:-1] if unit is not None else raw
    try:
        seconds = float(number) * (unit or 1.0)
    except ValueError:
        seconds = float("nan")
    if not seconds >= 1.0 or seconds == float("inf"):
        raise SandboxStartError(
            f"--simulate-every: expected a duration such as 30s, 5m or 1h (at least 1s), "
            f"got {text!r}"
        )
    return seconds


class SandboxStartError(Exception):
    """A problem the user can fix (bad option, port in use, flavour missing)."""


def check_options(opts: SandboxOptions) -> None:
    if opts.crm not in CRMS:
        raise SandboxStartError(f"--crm: expected one of {', '.join(CRMS)}, got {opts.crm!r}")
    if opts.tier not in TIERS:
        raise SandboxStartError(f"--tier: expected one of {', '.join(TIERS)}, got {opts.tier!r}")
    for flag, port in (
        ("--hubspot-port", opts.hubspot_port),
        ("--salesforce-port", opts.salesforce_port),
    ):
        if not 0 <= port <= 65535:
            raise SandboxStartError(f"{flag}: expected a port between 0 and 65535, got {port}")
    if opts.contacts < 0:
        raise SandboxStartError(f"--contacts: expected a non-negative number, got {opts.contacts}")
    if opts.days < 1:
        raise SandboxStartError(f"--days: expected a positive number of days, got {opts.days}")
    if opts.seed < 0:
        raise SandboxStartError(f"--seed: expected a non-negative number, got {opts.seed}")
    if not opts.token:
        raise SandboxStartError("--token: must not be empty")
    if not opts.session_id:
        raise SandboxStartError("--session-id: must not be empty")
    if opts.simulate_every is not None:
        parse_every(opts.simulate_every)
    if opts.simulate_count < 0:
        raise SandboxStartError(
            f"--simulate-count: expected a non-negative number, got {opts.simulate_count}"
        )
    if opts.portals < 1:
        raise SandboxStartError(f"--portals: expected a positive number, got {opts.portals}")
    if opts.portals > 1 and opts.crm != "hubspot":
        raise SandboxStartError("--portals: only the HubSpot sandbox holds many portals")
    if opts.tokens_out is not None and not opts.tokens_out.parent.exists():
        raise SandboxStartError(f"--tokens-out: directory {opts.tokens_out.parent} does not exist")
    for flag, url in (("--webhook-url", opts.webhook_url), ("--outbound-url", opts.outbound_url)):
        if url is not None and not url.startswith(("http://", "https://")):
            raise SandboxStartError(f"{flag}: expected an http:// or https:// URL, got {url!r}")
    if opts.webhook_url is not None and not opts.client_secret:
        raise SandboxStartError("--webhook-url: give the app's --client-secret to sign with")
    if opts.webhook_url is not None and opts.crm == "salesforce":
        raise SandboxStartError("--webhook-url: HubSpot webhooks need --crm hubspot or both")
    if opts.outbound_url is not None and opts.crm == "hubspot":
        raise SandboxStartError("--outbound-url: Outbound Messages need --crm salesforce or both")
    if (opts.webhook_url or opts.outbound_url) and opts.portals > 1:
        raise SandboxStartError("--webhook-url/--outbound-url: not with --portals")
    if opts.ca_out is not None and not opts.ca_out.parent.exists():
        raise SandboxStartError(f"--ca-out: directory {opts.ca_out.parent} does not exist")


def _salesforce_class() -> Any:
    try:
        from connectors.sandbox.salesforce import SalesforceSandbox
    except ImportError as exc:
        raise SandboxStartError(
            f"--crm salesforce: the Salesforce sandbox is not available in this build ({exc})"
        ) from exc
    return SalesforceSandbox


def run_sandbox(
    opts: SandboxOptions,
    *,
    stop: threading.Event,
    echo: Callable[[str], None] = typer.echo,
    clock: Clock | None = None,
    wait: Callable[[float], bool] | None = None,
) -> None:
    """Start the servers, print how to reach them, block until ``stop`` is set.

    With ``simulate_every`` a timer thread gives ``simulate_count`` people new activity
    at each tick; ``wait(seconds)`` is its timer (default ``stop.wait``: it returns
    True once the sandbox is stopping), injected by tests so that they never sleep.
    """
    from connectors.sandbox import HubSpotSandbox, SandboxApp, SystemClock, generate_world, serve

    clock = clock or SystemClock()
    check_options(opts)
    sf_class = _salesforce_class() if opts.crm in ("salesforce", "both") else None
    from connectors.sandbox.tls import serve_options

    try:
        tls_opts = serve_options(opts.tls_hostnames, opts.ca_dir)
    except ValueError as exc:
        # A bad hostname, or a kept CA whose files are not a certificate and key.
        where = (
            "--ca-dir"
            if opts.ca_dir is not None and "hostname" not in str(exc)
            else "--tls-hostnames"
        )
        raise SandboxStartError(f"{where}: {exc}") from None
    except OSError as exc:
        raise SandboxStartError(f"--ca-dir: {opts.ca_dir}: {exc.strerror or exc}") from None
    world = (
        generate_world(opts.contacts, seed=opts.seed, now=clock.now(), days=opts.days)
        if opts.portals == 1
        else None
    )
    servers: list[Any] = []
    sandboxes: list[Any] = []
    ticker: threading.Thread | None = None
    try:
        if opts.portals > 1:
            servers.append(_serve_portals(opts, serve, clock, tls_opts, echo))
        elif opts.crm in ("hubspot", "both"):
            hs = HubSpotSandbox(
                world=world, seed=opts.seed, tier=opts.tier, tokens=(opts.token,), clock=clock
            )
            server = _serve(
                serve,
                SandboxApp(hs, seed=opts.seed),
                opts.host,
                opts.hubspot_port,
                tls=bool(tls_opts),
                ca_out=opts.ca_out if tls_opts else None,
                **tls_opts,
            )
            servers.append(server)
            sandboxes.append(hs)
            echo(
                f"HubSpot sandbox:    {server.base_url}  (tier {opts.tier}, {opts.contacts} contacts, "
                f"{opts.days} days of history, seed {opts.seed})"
            )
            if tls_opts:
                echo(f"  CA certificate:   {server.ca_path}")
            echo(f"  access token:     {opts.token}")
            echo(
                f"  OAuth refresh:    client_id {hs.tokens.client_id}, client_secret "
                f"{hs.tokens.client_secret}, refresh_token {hs.tokens.refresh_token}"
            )
        if sf_class is not None:
            fields = (
                leadsync_salesforce_fields(_starter_score_fields())
                if opts.leadsync_fields
                else None
            )
            sf = sf_class(
                world=world,
                seed=opts.seed,
                session_ids=(opts.session_id,),
                clock=clock,
                custom_fields=fields,
            )
            server = _serve(
                serve,
                SandboxApp(sf, seed=opts.seed),
                opts.host,
                opts.salesforce_port,
                tls=True,
                ca_out=opts.ca_out,
                **tls_opts,
            )
            servers.append(server)
            sandboxes.append(sf)
            echo(
                f"Salesforce sandbox: {server.base_url}  (API v59.0, {opts.contacts} people, seed {opts.seed})"
            )
            echo(f"  session id:       {opts.session_id}")
            echo(f"  CA certificate:   {server.ca_path}")
            if fields is not None:
                created = ", ".join(
                    f"{obj}.{f['name']}" for obj, specs in fields.items() for f in specs
                )
                echo(f"  leadsync fields:  {created}")
        senders = _senders(opts, sandboxes, clock, echo)
        if senders:
            deliverer = threading.Thread(
                target=_deliver_on_timer,
                args=(senders, wait or stop.wait),
                name="sandbox-deliver",
                daemon=True,
            )
            deliverer.start()
        echo(
            "Control routes:     /__sandbox/faults, /__sandbox/stats, /__sandbox/reset, "
            "/__sandbox/fields, /__sandbox/simulate"
        )
        if opts.simulate_every is not None:
            every = parse_every(opts.simulate_every)
            ticker = threading.Thread(
                target=_simulate_on_timer,
                args=(sandboxes, every, opts.simulate_count, opts.seed, wait or stop.wait, echo),
                name="sandbox-simulate",
                daemon=True,
            )
            ticker.start()
            echo(
                f"Simulating activity for {opts.simulate_count} people every {opts.simulate_every}."
            )
        echo("Press Ctrl-C to stop.")
        stop.wait()
    finally:
        stop.set()
        if ticker is not None:
            ticker.join(10)
        for server in servers:
            server.close()


def _senders(
    opts: SandboxOptions, sandboxes: list[Any], clock: Clock, echo: Callable[[str], None]
) -> list[Any]:
    """Attach the webhook sender and the Outbound Messenger the options ask for."""
    senders: list[Any] = []
    for sandbox in sandboxes:
        flavour = type(sandbox).__name__
        if flavour == "HubSpotSandbox" and opts.webhook_url and opts.client_secret:
            from connectors.sandbox.hubspot.store import attach_webhooks
            from connectors.sandbox.hubspot.webhooks import WebhookSender

            sender = WebhookSender(
                opts.webhook_url,
                opts.client_secret,
                clock,
                subscribed=frozenset(opts.subscribed),
            )
            attach_webhooks(sandbox.store, sender)
            senders.append(sender)
            echo(f"  webhooks to:      {opts.webhook_url}  (signed v3)")
        elif flavour == "SalesforceSandbox" and opts.outbound_url:
            from connectors.sandbox.salesforce.outbound import OutboundMessenger
            from connectors.sandbox.salesforce.sandbox import ORG_ID

            messenger = OutboundMessenger(opts.outbound_url, ORG_ID, clock)
            sandbox.store.outbound = messenger
            senders.append(messenger)
            echo(f"  Outbound Messages to: {opts.outbound_url}  (organization {ORG_ID})")
    return senders


def _deliver_on_timer(senders: list[Any], wait: Callable[[float], bool]) -> None:
    """Deliver what is queued (and the retries that are due) about once a second."""
    while not wait(1.0):
        for sender in senders:
            sender.flush()


def _serve_portals(
    opts: SandboxOptions,
    serve: Callable[..., Any],
    clock: Clock,
    tls_opts: dict[str, Any],
    echo: Callable[[str], None],
) -> Any:
    """``--portals N``: one server, N portals (each built on its first request)."""
    from connectors.sandbox.multi import hubspot_portals

    app = hubspot_portals(
        opts.portals,
        contacts=opts.contacts,
        seed=opts.seed,
        tier=opts.tier,
        days=opts.days,
        clock=clock,
    )
    server = _serve(
        serve,
        app,
        opts.host,
        opts.hubspot_port,
        tls=bool(tls_opts),
        ca_out=opts.ca_out if tls_opts else None,
        **tls_opts,
    )
    echo(
        f"HubSpot sandbox:    {server.base_url}  ({opts.portals} portals, tier {opts.tier}, "
        f"{opts.contacts} contacts each, seeds {opts.seed}..{opts.seed + opts.portals - 1})"
    )
    if opts.tokens_out is not None:
        opts.tokens_out.write_text("\n".join(app.tokens) + "\n", encoding="utf-8")
        echo(f"  access tokens:    {app.tokens[0]} ... {app.tokens[-1]} (in {opts.tokens_out})")
    else:
        echo(f"  access tokens:    {', '.join(app.tokens)}")
    return server


def _simulate_on_timer(
    sandboxes: list[Any],
    every: float,
    count: int,
    seed: int,
    wait: Callable[[float], bool],
    echo: Callable[[str], None],
) -> None:
    """At each tick the same people (one seed per tick) are active in every flavour
    served, as in one company's marketing tool and CRM."""
    tick = 0
    while not wait(every):
        tick += 1
        counts = [len(sandbox.simulate_activity(count, seed=seed + tick)) for sandbox in sandboxes]
        echo(f"Simulated activity #{tick}: {max(counts, default=0)} people active")


def _starter_score_fields() -> list[str]:
    """The score fields of the packaged starter model."""
    from importlib.resources import files

    from scoring.model import load_models

    text = files("scoring").joinpath("data/models/starter.yaml").read_text(encoding="utf-8")
    return [m.score_field for m in load_models(text, "starter.yaml").models]


def _serve(
    serve: Callable[..., Any],
    app: Any,
    host: str,
    port: int,
    *,
    tls: bool,
    ca_out: Path | None = None,
    **tls_opts: Any,
) -> Any:
    try:
        server = serve(app, host=host, port=port, tls=tls, ca_out=ca_out, **tls_opts)
    except OSError as exc:
        raise SandboxStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return server


def register(app: typer.Typer) -> None:
    """Add ``leadsync sandbox`` to the ``leadsync`` app."""

    @app.command("sandbox")
    def sandbox(
        crm: str = typer.Option("hubspot", "--crm", help="hubspot, salesforce or both"),
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on"),
        hubspot_port: int = typer.Option(8765, "--hubspot-port", help="0 picks a free port"),
        salesforce_port: int = typer.Option(8766, "--salesforce-port", help="0 picks a free port"),
        contacts: int = typer.Option(2000, "--contacts", help="People in the seeded world"),
        days: int = typer.Option(
            DEFAULT_DAYS, "--days", help="Days of history up to now in the seeded world"
        ),
        seed: int = typer.Option(7, "--seed", help="Same seed, same data"),
        tier: str = typer.Option(
            "pro", "--tier", help="HubSpot tier: free, starter, pro, enterprise"
        ),
        token: str = typer.Option(
            "sandbox-token", "--token", help="HubSpot access token to accept"
        ),
        session_id: str = typer.Option(
            "sandbox-session", "--session-id", help="Salesforce session id to accept"
        ),
        ca_out: Path | None = typer.Option(
            None, "--ca-out", help="Where to write the Salesforce CA (PEM)"
        ),
        leadsync_fields: Annotated[
            bool,
            typer.Option(
                "--leadsync-fields",
                help="Start the Salesforce org with leadsync's custom fields, as an admin "
                "would have created them",
            ),
        ] = False,
        simulate_every: str | None = typer.Option(
            None, "--simulate-every", help="New activity on a timer: 30s, 5m, 1h"
        ),
        simulate_count: int = typer.Option(
            20, "--simulate-count", help="People active at each --simulate-every tick"
        ),
        tls_hostnames: str = typer.Option(
            "",
            "--tls-hostnames",
            help="Comma-separated hostnames (e.g. api.hubapi.com,login.salesforce.com) to "
            "serve over HTTPS with the sandbox's CA, for tools reached through a hosts-file "
            "entry (docs/sandbox.md)",
        ),
        ca_dir: Path | None = typer.Option(
            None,
            "--ca-dir",
            help="Keep the sandbox's CA in this folder (made on first use), so it is trusted once",
        ),
        portals: int = typer.Option(
            1,
            "--portals",
            help="HubSpot portals in this one process, told apart by their tokens "
            "(sandbox-portal-0001, ...)",
        ),
        tokens_out: Path | None = typer.Option(
            None, "--tokens-out", help="With --portals: write the tokens here, one a line"
        ),
        webhook_url: str | None = typer.Option(
            None,
            "--webhook-url",
            help="Deliver signed HubSpot webhooks to this URL (leadsync serve's "
            "/webhooks/hubspot, as its serve.public_url spells it)",
        ),
        client_secret: str | None = typer.Option(
            None, "--client-secret", help="The HubSpot app's client secret to sign with"
        ),
        outbound_url: str | None = typer.Option(
            None,
            "--outbound-url",
            help="Send Salesforce Outbound Messages to this URL "
            "(leadsync serve's /webhooks/salesforce/TOKEN)",
        ),
    ) -> None:
        """Serve a fake HubSpot and/or Salesforce on loopback until interrupted."""
        opts = SandboxOptions(
            crm=crm,
            host=host,
            hubspot_port=hubspot_port,
            salesforce_port=salesforce_port,
            contacts=contacts,
            seed=seed,
            days=days,
            tier=tier,
            token=token,
            session_id=session_id,
            ca_out=ca_out,
            leadsync_fields=leadsync_fields,
            simulate_every=simulate_every,
            simulate_count=simulate_count,
            tls_hostnames=tls_hostnames,
            ca_dir=ca_dir,
            portals=portals,
            tokens_out=tokens_out,
            webhook_url=webhook_url,
            client_secret=client_secret,
            outbound_url=outbound_url,
        )
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            run_sandbox(opts, stop=stop)
        except SandboxStartError as exc:
            fail(f"leadsync sandbox: {exc}", EXIT_USAGE)
        except KeyboardInterrupt:
            typer.echo("Stopped.")
