"""``leadsync demo``: the whole product against a sandbox CRM embedded in this process.

No account, no network and no configuration: a temporary state store, the packaged
starter model, simulated days of activity on a simulated clock.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from connectors.base import RuntimeContext
from scheduler.cli_sync import (
    UsageError,
    _guard,
    _out,
    load_model_files,
    open_store,
    print_summary,
    setup_logging,
)
from scheduler.state import StateStore
from scheduler.sync import RunOptions, RunSummary, Sync


@dataclass
class DemoResult:
    first: RunSummary
    second: RunSummary
    hottest: list[dict[str, Any]]
    actions: list[dict[str, Any]]


@dataclass(frozen=True)
class DemoCRM:
    """How to reach the demo's sandbox CRM over its API while it still runs, for
    whoever wants to look at what the sync wrote (see ``run_demo(inspect=...)``)."""

    crm: str
    base_url: str
    headers: dict[str, str]
    ca_path: Path | None
    advance: Callable[[float], None]  # moves the demo's simulated clock (rate windows)


def run_demo(
    crm: str = "hubspot",
    *,
    contacts: int = 300,
    active: int = 40,
    days: int = 7,
    seed: int = 7,
    quiet: bool = False,
    inspect: Callable[[DemoCRM], None] | None = None,
) -> DemoResult:
    """The embedded default: a sandbox CRM in this process, a temporary state store, the
    starter model; a baseline run, then ``days`` days of new activity for ``active``
    people (on a simulated clock, so it takes no time), and a second run that acts.
    ``inspect`` is called before the sandbox stops, so that tests can check what the
    CRM holds through its API."""
    import importlib.resources
    import tempfile

    from connectors import registry
    from connectors.sandbox import ManualClock, SandboxApp, serve
    from scheduler.config import config_from_mapping, secret_values

    clock = ManualClock(datetime.now(UTC))
    tmp = tempfile.TemporaryDirectory(prefix="leadsync-demo-")
    with contextlib.ExitStack() as stack:
        stack.callback(tmp.cleanup)
        starter = stack.enter_context(
            importlib.resources.as_file(
                importlib.resources.files("scoring").joinpath("data/models/starter.yaml")
            )
        )
        models = load_model_files([starter])
        if crm == "hubspot":
            from connectors.sandbox import HubSpotSandbox

            sandbox: Any = HubSpotSandbox(
                contacts=contacts, seed=seed, clock=clock, search_lag_seconds=0.0
            )
            server = stack.enter_context(serve(SandboxApp(sandbox, sleep=clock.sleep), port=0))
            secret_values(["sandbox-token"])
            crm_section: dict[str, Any] = {
                "type": "hubspot",
                "hubspot": {
                    "access_token": "sandbox-token",
                    "base_url": server.base_url,
                    "tier": "pro",
                },
            }
        elif crm == "salesforce":
            from connectors.sandbox import SalesforceSandbox

            # The org as an admin prepared it: score fields and the idempotency key.
            score_fields = [{"name": f"{m.score_field}__c", "type": "double"} for m in models]
            key = {"name": "leadsync_key__c", "type": "string", "externalId": True, "unique": True}
            sandbox = SalesforceSandbox(
                contacts=contacts,
                seed=seed,
                clock=clock,
                custom_fields={
                    "Lead": score_fields,
                    "Contact": score_fields,
                    "Opportunity": [key],
                    "Task": [key],
                },
            )
            ca_path = Path(tmp.name) / "sandbox-ca.pem"
            server = stack.enter_context(
                serve(SandboxApp(sandbox, sleep=clock.sleep), port=0, tls=True, ca_out=ca_path)
            )
            secret_values(["sandbox-secret", "sandbox-refresh"])
            crm_section = {
                "type": "salesforce",
                "salesforce": {
                    "login_url": server.base_url,
                    "instance_url": server.base_url,
                    "ca_bundle": str(ca_path),
                    "refresh_token": {
                        "client_id": "sandbox-client",
                        "client_secret": "sandbox-secret",
                        "refresh_token": "sandbox-refresh",
                    },
                },
            }
        else:
            raise UsageError([f"--crm: expected hubspot or salesforce, got {crm!r}"])
        context = RuntimeContext(now=clock.datetime, sleep=clock.sleep)
        connector = registry.create(crm, crm_section[crm], context=context)
        stack.callback(connector.close)
        # Contacts without an owner go round robin to the sandbox's first three reps.
        pool = [o.email or o.id for o in connector.list_owners() if o.kind == "person"][:3]
        config = config_from_mapping(
            {
                "crm": crm_section,
                "models": [str(starter)],
                "state": f"sqlite:///{Path(tmp.name) / 'demo.db'}",
                "writeback": {"max_actions_per_run": 50, "on_cross": {"owners": {"pool": pool}}},
            }
        )
        store = open_store(config)
        stack.callback(store.close)
        if not quiet:
            _out(f"Sandbox {crm} CRM with {contacts} people at {server.base_url}; baseline run...")
        first = Sync(config, connector, store, models, now=clock.datetime).run(RunOptions())
        if not quiet:
            print_summary(first, as_json=False)
        for day in range(days):
            # A different seed each day, so that new people show up, not the same ones.
            sandbox.simulate_activity(active, seed=seed + day)
            clock.advance(86400)
        if not quiet:
            _out(f"Simulated {days} days of new activity for {active} people; second run...")
        second = Sync(config, connector, store, models, now=clock.datetime).run(RunOptions())
        if not quiet:
            print_summary(second, as_json=False)
        hottest = _hottest(store, models, limit=10, as_of=clock.datetime())
        owners = {o.id: o.name or o.email or o.id for o in connector.list_owners()}
        actions = _actions(store, owners)
        if not quiet:
            _print_demo_tables(hottest, actions)
        if inspect is not None:
            if crm == "hubspot":
                auth = {"Authorization": "Bearer sandbox-token"}
                inspect(DemoCRM(crm, server.base_url, auth, None, clock.advance))
            else:
                auth = {"Authorization": "Bearer " + sandbox.issue_session()}
                inspect(DemoCRM(crm, server.base_url, auth, ca_path, clock.advance))
        return DemoResult(first, second, hottest, actions)


def _hottest(
    store: StateStore, models: Sequence[Any], *, limit: int, as_of: datetime
) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    from scoring.engine import score

    ms = store.t["model_state"]
    with store.tx() as conn:
        rows = conn.execute(
            sa.select(ms.c.contact_id, ms.c.model, ms.c.written_score)
            .where(ms.c.written_score.is_not(None))
            .order_by(ms.c.written_score.desc(), ms.c.contact_id)
            .limit(limit)
        ).all()
    out = []
    for cid, model, written in rows:
        contact, events = store.get_contact(cid)
        if contact is None:
            continue
        results = [
            r
            for r in score(list(models), [{"id": cid, **contact.fields}], events, as_of=as_of)
            if r.model == model
        ]
        reasons = sorted(results[0].reasons, key=lambda x: -abs(x.points))[:3] if results else []
        out.append(
            {
                "contact_id": cid,
                "name": " ".join(
                    str(contact.fields.get(k, "")) for k in ("first_name", "last_name")
                ).strip(),
                "model": model,
                "score": written,
                "band": results[0].band if results else "",
                "reasons": ", ".join(f"{r.rule} {r.points:+.0f}" for r in reasons),
            }
        )
    return out


def _actions(store: StateStore, owners: Mapping[str, str]) -> list[dict[str, Any]]:
    """The deals (or Lead status changes) and tasks in the ledger, in the order made;
    ``owners`` names the owner ids."""
    import sqlalchemy as sa

    from scheduler.state import loads

    led = store.t["ledger"]
    with store.tx() as conn:
        rows = conn.execute(
            sa.select(led)
            .where(led.c.kind.in_(("owner", "deal", "task")))
            .order_by(led.c.created_at, led.c.group_key, led.c.seq)
        ).all()
    assigned = {r.group_key for r in rows if r.kind == "owner" and r.status == "done"}
    out = []
    for r in rows:
        if r.kind == "owner":
            continue
        spec = loads(r.spec) or {}
        contact, _events = store.get_contact(r.contact_id)
        fields = contact.fields if contact is not None else {}
        name = " ".join(str(fields.get(k) or "") for k in ("first_name", "last_name")).strip()
        status_change = r.kind == "deal" and spec.get("contact_kind") == "lead"
        owner_id = spec.get("owner_id")
        out.append(
            {
                "kind": r.kind,
                "group": r.group_key,
                "why": "crossed" if r.group_key.split(":", 2)[-1].startswith("c") else "event",
                "action": "lead status" if status_change else r.kind,
                "contact_id": r.contact_id,
                "contact_name": name,
                "model": r.model,
                "status": r.status,
                "crm_id": r.result_id,
                "owner_id": owner_id,
                "owner_name": owners.get(str(owner_id), owner_id) if owner_id else None,
                "owner_assigned": r.group_key in assigned,
                "title": (
                    f"Status: {spec.get('lead_status')}"
                    if status_change
                    else spec.get("name") or spec.get("subject")
                ),
            }
        )
    return out


def _print_demo_tables(hottest: list[dict[str, Any]], actions: list[dict[str, Any]]) -> None:
    con = Console(soft_wrap=True)
    with con.capture() as cap:
        t = Table(title="Hottest leads")
        for col in ("contact", "name", "model", "score", "band", "top reasons"):
            t.add_column(col)
        for h in hottest:
            t.add_row(
                h["contact_id"], h["name"], h["model"], f"{h['score']:.1f}", h["band"], h["reasons"]
            )
        con.print(t)
        # One row per action: the deal (or a Lead's status change) and the task made
        # for one contact at one crossing or immediate event.
        a = Table(title="Deals and tasks created", caption="* owner assigned by leadsync")
        a.add_column("contact", min_width=12)
        a.add_column("why", no_wrap=True)
        a.add_column("owner", min_width=10)
        a.add_column("deal / lead status", overflow="fold")
        a.add_column("task", overflow="fold")
        groups: dict[str, list[dict[str, Any]]] = {}
        for x in actions:
            groups.setdefault(x["group"], []).append(x)
        for items in groups.values():
            first = items[0]
            cells = {"deal": "", "task": ""}
            for x in items:
                what = str(x["crm_id"] or "")
                if x["action"] == "lead status":
                    what = str(x["title"] or "").replace("Status: ", "-> ")
                if x["status"] != "done":
                    what = f"{what} ({x['status']})".strip()
                cells[x["kind"]] = what
            owner = str(first["owner_name"] or "") + (" *" if first["owner_assigned"] else "")
            a.add_row(
                first["contact_name"] or first["contact_id"],
                first["why"],
                owner,
                cells["deal"],
                cells["task"],
            )
        if not actions:
            a.add_row("(none)", "", "", "", "")
        con.print(a)
    _out(cap.get())


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the ``leadsync`` app."""

    @app.command()
    def demo(
        crm: str = typer.Option("hubspot", "--crm", help="hubspot or salesforce"),
        contacts: int = typer.Option(300, "--contacts", min=10, max=20000),
        as_json: Annotated[
            bool, typer.Option("--json", help="Print both summaries as JSON.")
        ] = False,
    ) -> None:
        """A complete sync against an embedded sandbox CRM: no account, no network."""
        setup_logging()
        with _guard():
            result = run_demo(crm, contacts=contacts, quiet=as_json)
        if as_json:
            _out(
                json.dumps(
                    {
                        "first": result.first.to_dict(),
                        "second": result.second.to_dict(),
                        "hottest": result.hottest,
                        "actions": result.actions,
                    },
                    default=str,
                )
            )
        worst = max(result.first.exit_code, result.second.exit_code)
        raise typer.Exit(worst)
