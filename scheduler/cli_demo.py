"""``leadsync demo``: the whole product against a sandbox CRM embedded in this process.

No account, no network and no configuration: a temporary state store, the packaged
starter model unchanged, and the sandbox's ordinary simulated activity on a simulated
clock. The story it tells is the product's promise: a baseline run that only reports,
then a run after each simulated day, in which leads whose behaviour took them over the
model's threshold get a deal (or, for a Salesforce Lead, a status change) and a task
listing the reasons, next to the few people who raised a hand (an immediate event such
as a demo request); then a final run that finds nothing new to do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from connectors.base import RuntimeContext
from scheduler.cli_common import stdout
from scheduler.cli_leads import lead_rows, reasons_cell
from scheduler.cli_sync import (
    UsageError,
    _guard,
    _out,
    load_model_files,
    setup_logging,
)
from scheduler.state import StateStore, from_epoch, loads
from scheduler.sync import RunOptions, RunSummary, Sync

DAY = 86_400.0


@dataclass
class DemoResult:
    """What the demo did, in the shape ``demo --json`` prints (see :meth:`to_json`)."""

    crm: str
    started_at: datetime
    models: dict[str, dict[str, Any]]
    runs: list[RunSummary]
    labels: list[str]
    hottest: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    simulated_days: int
    active_people: int
    activations: int
    contacts: int
    history_days: int | None = None
    score_paths: dict[tuple[str, str], list[float | None]] = field(default_factory=dict)
    report: Path | None = None  # the HTML report of the demo's own world, when written

    @property
    def first(self) -> RunSummary:
        return self.runs[0]

    @property
    def last(self) -> RunSummary:
        return self.runs[-1]

    def to_json(self) -> dict[str, Any]:
        return {
            "crm": self.crm,
            "started_at": self.started_at.isoformat(),
            "models": self.models,
            "contacts": self.contacts,
            "history_days": self.history_days,
            "simulated_days": self.simulated_days,
            "active_people": self.active_people,
            "activations": self.activations,
            "runs": [run_json(r) for r in self.runs],
            "run_labels": self.labels,
            "actions": self.actions,
            "hottest": self.hottest,
            "report": str(self.report) if self.report else None,
        }


def run_json(s: RunSummary) -> dict[str, Any]:
    """A run summary as ``leadsync run --json`` prints it."""
    summary = s.to_dict()
    summary.pop("bad_rows", None)
    return summary


@dataclass(frozen=True)
class DemoCRM:
    """How to reach the demo's sandbox CRM over its API while it still runs, for
    whoever wants to look at what the sync wrote (see ``run_demo(inspect=...)``)."""

    crm: str
    base_url: str
    headers: dict[str, str]
    ca_path: Path | None
    advance: Callable[[float], None]  # moves the demo's simulated clock (rate windows)
    result: DemoResult | None = None  # what the demo did, for the inspection to check


def run_demo(
    crm: str = "hubspot",
    *,
    contacts: int = 300,
    active: int = 40,
    simulated_days: int = 7,
    days: int | None = None,
    seed: int = 7,
    start: datetime | None = None,
    quiet: bool = False,
    inspect: Callable[[DemoCRM], None] | None = None,
    report: Path | None = None,
) -> DemoResult:
    """The embedded default: a sandbox CRM in this process whose world ends at
    ``start`` (the wall clock by default) with ``days`` of history, a temporary state
    store, the starter model; a baseline run, then ``simulated_days`` simulated days,
    each with the sandbox's ordinary activity for ``active`` people and a run, then a
    final run with no new activity. The clock is simulated, so it takes no time.
    With ``report``, the backtest report of the demo's world (its year of deals and
    the sync's local copy) is written there, outside the temporary folder deleted at
    exit. ``inspect`` is called before the sandbox stops, so that tests can check what the
    CRM holds through its API."""
    import importlib.resources
    import importlib.util
    import tempfile

    from connectors import registry
    from connectors.sandbox import ManualClock, generate_world
    from connectors.sandbox.world import DEFAULT_DAYS

    if crm not in ("hubspot", "salesforce"):
        raise UsageError([f"--crm: expected hubspot or salesforce, got {crm!r}"])
    if crm == "salesforce" and importlib.util.find_spec("trustme") is None:
        # The sandbox serves Salesforce over TLS only; its throw-away authority is
        # trustme, which a plain `pip install leadsync` leaves out.
        raise UsageError(
            [
                "--crm salesforce: the sandbox serves Salesforce over TLS, which needs "
                "the sandbox extra: pip install 'leadsync[sandbox]'"
            ]
        )
    begin = (start or datetime.now(UTC)).astimezone(UTC)
    clock = ManualClock(begin)
    tmp = tempfile.TemporaryDirectory(prefix="leadsync-demo-")
    with contextlib.ExitStack() as stack:
        stack.callback(tmp.cleanup)
        starter = stack.enter_context(
            importlib.resources.as_file(
                importlib.resources.files("scoring").joinpath("data/models/starter.yaml")
            )
        )
        models = load_model_files([starter])
        # By default the world's history is long enough for the report's backtest: a
        # year of weekly snapshots, their horizon, and the starter model's windows.
        world = generate_world(contacts, seed=seed, now=begin, days=days or DEFAULT_DAYS)
        crm_end = _start_sandbox(crm, world, models, seed, clock, stack, Path(tmp.name))
        context = RuntimeContext(now=clock.datetime, sleep=clock.sleep)
        connector = registry.create(crm, crm_end.section[crm], context=context)
        stack.callback(connector.close)
        config = _demo_config(crm_end.section, starter, Path(tmp.name), world.days, connector)
        # The store keeps time on the simulated clock too: run and ledger times then
        # read as the simulated days they belong to.
        store = StateStore(config.state_url(), clock=clock.now)
        store.migrate()
        stack.callback(store.close)
        say = (lambda _text: None) if quiet else _out
        say(
            f"Sandbox {crm} CRM with {contacts} people at {crm_end.base_url}, "
            f"{world.days} days of history up to {begin:%Y-%m-%d %H:%M} UTC."
        )
        for m in models:
            say(
                f"Model {m.name}: threshold {m.threshold:g} (hot from {m.bands.hot:g}, "
                f"warm from {m.bands.warm:g}; acts again only after falling below "
                f"{m.rearm_below:g})."
            )
        story = _DemoStory(crm, config, connector, store, models, clock, say)
        story.play(crm_end.sandbox, active=active, days=simulated_days, seed=seed)
        result = story.result(begin, contacts=contacts, history_days=world.days)
        if report is not None:
            from scheduler.cli_backtest import store_report

            result.report = store_report(
                config, store, connector, models, now=clock.datetime(), path=report.resolve()
            )
        if not quiet:
            from scheduler.alerts.demo import demo_alerts

            demo_alerts(store, echo=say, owners=connector.list_owners)
            print_demo(result)
        if inspect is not None:
            inspect(crm_end.inspection(clock.advance, result))
        return result


@dataclass(frozen=True)
class _DemoSandbox:
    """The running sandbox CRM and the ``crm`` section that reaches it."""

    crm: str
    sandbox: Any
    base_url: str
    section: dict[str, Any]
    ca_path: Path | None

    def inspection(self, advance: Callable[[float], None], result: DemoResult) -> DemoCRM:
        if self.crm == "hubspot":
            auth = {"Authorization": "Bearer sandbox-token"}
        else:
            auth = {"Authorization": "Bearer " + self.sandbox.issue_session()}
        return DemoCRM(self.crm, self.base_url, auth, self.ca_path, advance, result)


def _start_sandbox(
    crm: str,
    world: Any,
    models: Sequence[Any],
    seed: int,
    clock: Any,
    stack: contextlib.ExitStack,
    folder: Path,
) -> _DemoSandbox:
    """Serve the sandbox CRM on loopback until ``stack`` closes (Salesforce over TLS,
    its org prepared as an admin would: score fields and the idempotency key)."""
    from connectors.sandbox import SandboxApp, serve
    from scheduler.config import secret_values

    if crm == "hubspot":
        from connectors.sandbox import HubSpotSandbox

        sandbox: Any = HubSpotSandbox(world=world, seed=seed, clock=clock, search_lag_seconds=0.0)
        server = stack.enter_context(serve(SandboxApp(sandbox, sleep=clock.sleep), port=0))
        secret_values(["sandbox-token"])
        settings = {"access_token": "sandbox-token", "base_url": server.base_url, "tier": "pro"}
        section = {"type": "hubspot", "hubspot": settings}
        return _DemoSandbox(crm, sandbox, server.base_url, section, None)
    from connectors.sandbox import SalesforceSandbox

    score_fields = [{"name": f"{m.score_field}__c", "type": "double"} for m in models]
    key = {"name": "leadsync_key__c", "type": "string", "externalId": True, "unique": True}
    sandbox = SalesforceSandbox(
        world=world,
        seed=seed,
        clock=clock,
        custom_fields={
            "Lead": score_fields,
            "Contact": score_fields,
            "Opportunity": [key],
            "Task": [key],
        },
    )
    ca_path = folder / "sandbox-ca.pem"
    server = stack.enter_context(
        serve(SandboxApp(sandbox, sleep=clock.sleep), port=0, tls=True, ca_out=ca_path)
    )
    secret_values(["sandbox-secret", "sandbox-refresh"])
    section = {
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
    return _DemoSandbox(crm, sandbox, server.base_url, section, ca_path)


def _demo_config(
    section: Mapping[str, Any], starter: Path, folder: Path, history_days: int, connector: Any
) -> Any:
    """The demo's configuration: the starter model, a temporary store that keeps the
    world's whole history, and room for every action of a day."""
    from scheduler.config import config_from_mapping

    # Contacts without an owner go round robin to the sandbox's first three reps.
    pool = [o.email or o.id for o in connector.list_owners() if o.kind == "person"][:3]
    return config_from_mapping(
        {
            "crm": dict(section),
            "models": [str(starter)],
            # Keep the world's whole history, so that the report's backtest can
            # replay a year of weekly snapshots with the starter model's windows.
            "state": {
                "url": f"sqlite:///{folder / 'demo.db'}",
                "retain_events": f"{history_days}d",
            },
            # Room for every action of a day, so that the final run has none left.
            "writeback": {"max_actions_per_run": 500, "on_cross": {"owners": {"pool": pool}}},
        }
    )


class _DemoStory:
    """The demo's runs: a baseline, one run at the end of each simulated day of
    activity, and a final run; what each wrote is kept for the score paths."""

    def __init__(
        self,
        crm: str,
        config: Any,
        connector: Any,
        store: StateStore,
        models: Sequence[Any],
        clock: Any,
        say: Callable[[str], None],
    ) -> None:
        self.crm = crm
        self.config = config
        self.connector = connector
        self.store = store
        self.models = list(models)
        self.clock = clock
        self.say = say
        self.runs: list[RunSummary] = []
        self.labels: list[str] = []
        self.paths: list[dict[tuple[str, str], float]] = []
        self.seen: set[str] = set()
        self.activations = 0
        self.days = 0

    def sync_run(self, label: str) -> None:
        sync = Sync(self.config, self.connector, self.store, self.models, now=self.clock.datetime)
        summary = sync.run(RunOptions())
        self.runs.append(summary)
        self.labels.append(label)
        self.paths.append(_written(self.store))
        self.say(_run_line(label, summary, self.crm))

    def play(self, sandbox: Any, *, active: int, days: int, seed: int) -> None:
        self.days = days
        self.sync_run("baseline")
        for day in range(1, days + 1):
            # Activity during the day, the run at its end; a different seed each day,
            # so that new people show up, not the same ones.
            self.clock.advance(DAY / 2)
            ids = sandbox.simulate_activity(active, seed=seed + day)
            self.seen.update(str(i) for i in ids)
            self.activations += len(ids)
            self.clock.advance(DAY / 2)
            self.sync_run(f"day {day}")
        self.clock.advance(3600)
        self.sync_run("final")

    def result(self, begin: datetime, *, contacts: int, history_days: int) -> DemoResult:
        run_index = {r.run_id: i for i, r in enumerate(self.runs)}
        hottest = lead_rows(self.store, self.models, as_of=self.clock.datetime(), limit=10)
        owners = {o.id: o.name or o.email or o.id for o in self.connector.list_owners()}
        actions = _actions(self.store, owners, run_index, self.labels)
        return DemoResult(
            crm=self.crm,
            started_at=begin,
            models={
                m.name: {
                    "threshold": m.threshold,
                    "rearm_below": m.rearm_below,
                    "bands": {"hot": m.bands.hot, "warm": m.bands.warm},
                }
                for m in self.models
            },
            runs=self.runs,
            labels=self.labels,
            hottest=hottest,
            actions=actions,
            simulated_days=self.days,
            active_people=len(self.seen),
            activations=self.activations,
            contacts=contacts,
            history_days=history_days,
            score_paths=_score_paths(self.paths, actions),
        )


def _run_line(label: str, s: RunSummary, crm: str) -> str:
    deals = "deal(s) or Lead status change(s)" if crm == "salesforce" else "deal(s)"
    text = (
        f"{label:>8}: {s.contacts_read} read, {s.scores_written} written; "
        f"{s.crossings} crossed, {s.immediate} immediate: {s.deals} {deals}, "
        f"{s.tasks} task(s); {s.api_calls} API calls"
    )
    if s.baseline_models:
        text += f" (baseline: no action; {s.baseline_above_threshold} already over a threshold)"
    if s.error:
        text += f" [{s.status}: {s.error}]"
    return text


def _written(store: StateStore) -> dict[tuple[str, str], float]:
    import sqlalchemy as sa

    ms = store.t["model_state"]
    with store.tx() as conn:
        rows = conn.execute(
            sa.select(ms.c.contact_id, ms.c.model, ms.c.written_score).where(
                ms.c.written_score.is_not(None)
            )
        ).all()
    return {(str(c), str(m)): float(s) for c, m, s in rows}


def _score_paths(
    paths: Sequence[Mapping[tuple[str, str], float]], actions: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str], list[float | None]]:
    """The written score of each acted-on contact after every run: how it got there."""
    wanted = {(str(a["contact_id"]), str(a["model"])) for a in actions}
    return {k: [p.get(k) for p in paths] for k in sorted(wanted)}


def _actions(
    store: StateStore,
    owners: Mapping[str, str],
    run_index: Mapping[str, int],
    labels: Sequence[str],
) -> list[dict[str, Any]]:
    """The deals (or Lead status changes) and tasks in the ledger, in the order made;
    ``owners`` names the owner ids."""
    import sqlalchemy as sa

    led, ev = store.t["ledger"], store.t["events"]
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
        token = str(r.group_key)[len(f"{r.model}:{r.contact_id}:") :]
        crossed = token.startswith("c")
        event = None
        if not crossed:
            with store.tx() as conn:
                e = conn.execute(
                    sa.select(ev.c.type, ev.c.attributes).where(ev.c.event_id == token[2:])
                ).first()
            if e is not None:
                attrs = loads(e.attributes) or {}
                event = str(attrs.get("form") or attrs.get("campaign") or e.type)
        index = run_index.get(r.run_id)
        out.append(
            {
                "kind": r.kind,
                "group": r.group_key,
                "why": "crossed" if crossed else "event",
                "event": event,
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
                "body": spec.get("body") if r.kind == "task" else None,
                "run": index,
                "run_label": labels[index] if index is not None else None,
                "created_at": _iso(r.created_at),
            }
        )
    return out


def _iso(epoch_seconds: float | None) -> str | None:
    at = from_epoch(epoch_seconds)
    return at.isoformat() if at else None


def _groups(actions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per action: the deal (or a Lead's status change) and the task made for
    one contact at one crossing or immediate event."""
    groups: dict[str, dict[str, Any]] = {}
    for x in actions:
        g = groups.setdefault(
            x["group"],
            {
                "contact_id": x["contact_id"],
                "name": x["contact_name"],
                "model": x["model"],
                "why": x["why"],
                "event": x["event"],
                "when": x["run_label"] or "",
                "owner": str(x["owner_name"] or x["owner_id"] or "")
                + (" *" if x["owner_assigned"] else ""),
                "run": x["run"],
                "deal": "",
                "task": "",
                "body": "",
            },
        )
        what = str(x["crm_id"] or "")
        if x["action"] == "lead status":
            what = str(x["title"] or "").replace("Status: ", "-> ")
        if x["status"] != "done":
            what = f"{what} ({x['status']})".strip()
        g[x["kind"]] = what
        if x["kind"] == "task" and x["body"]:
            g["body"] = str(x["body"])
    return list(groups.values())


def _id_column(t: Table, name: str, values: Sequence[str]) -> None:
    """Ids are copied into other tools: never cut, never wrapped."""
    t.add_column(name, no_wrap=True, min_width=max([len(v) for v in values] + [len(name)]))


def print_demo(result: DemoResult, console: Console | None = None) -> None:
    con = console or stdout
    groups = _groups(result.actions)
    crossed = [g for g in groups if g["why"] == "crossed"]
    events = [g for g in groups if g["why"] == "event"]
    with con.capture() as cap:
        t = Table(title="Leads that crossed the threshold through their behaviour")
        _id_column(t, "contact", [g["contact_id"] for g in crossed])
        t.add_column("name", overflow="fold")
        t.add_column("score by run")
        t.add_column("when", no_wrap=True)
        t.add_column("owner", overflow="fold")
        _id_column(t, "deal / status", [g["deal"] for g in crossed])
        _id_column(t, "task", [g["task"] for g in crossed])
        for g in crossed:
            path = result.score_paths.get((g["contact_id"], g["model"]), [])
            upto = path[: g["run"] + 1] if g["run"] is not None else path
            t.add_row(
                g["contact_id"], g["name"], _path_text(upto), g["when"], g["owner"],
                g["deal"], g["task"],
            )  # fmt: skip
        if not crossed:
            t.add_row("(none)", *[""] * 6)
        con.print(t)
        if crossed:
            con.print("What the rep reads in each task:")
        for g in crossed:
            con.print(f"  task {g['task']} for {g['name'] or g['contact_id']}:", markup=False)
            for line in g["body"].splitlines():
                con.print(f"    {line}", markup=False)
        e = Table(title="Immediate events: a raised hand acts at once, whatever the score")
        _id_column(e, "contact", [g["contact_id"] for g in events])
        e.add_column("name", overflow="fold")
        e.add_column("event", overflow="fold")
        e.add_column("when", no_wrap=True)
        e.add_column("owner", overflow="fold")
        _id_column(e, "deal / status", [g["deal"] for g in events])
        _id_column(e, "task", [g["task"] for g in events])
        for g in events:
            e.add_row(
                g["contact_id"], g["name"], g["event"] or "", g["when"], g["owner"],
                g["deal"], g["task"],
            )  # fmt: skip
        if not events:
            e.add_row("(none)", *[""] * 6)
        con.print(e)
        con.print("* owner assigned by leadsync (the contact had none, or a queue)")
        h = Table(title="Hottest leads (last written score)")
        _id_column(h, "contact", [x["contact_id"] for x in result.hottest])
        h.add_column("name", overflow="fold")
        h.add_column("model", overflow="fold")
        h.add_column("score", justify="right", no_wrap=True)
        h.add_column("band", no_wrap=True)
        h.add_column("top reasons", overflow="fold")
        for x in result.hottest:
            h.add_row(
                x["contact_id"], x["name"], x["model"], f"{x['score']:.1f}", x["band"],
                reasons_cell(x["reasons"], sep="\n"),
            )  # fmt: skip
        con.print(h)
    _out(cap.get())
    _out(summary_text(result, len(crossed), len(events)))
    if result.report is not None:
        _out(
            f"\nThe evidence: how the starter model's bands converted over the world's past "
            f"year, and where the threshold should sit, in {result.report}"
        )
    _out(next_steps(result.crm))


def _path_text(path: Sequence[float | None]) -> str:
    """``41 → 55 → 72``: the written score after each run, repeats left out."""
    shown: list[str] = []
    for value in path:
        text = "-" if value is None else f"{value:.0f}"
        if not shown or shown[-1] != text:
            shown.append(text)
    return " → ".join(shown)


def summary_text(result: DemoResult, crossed: int, events: int) -> str:
    last = result.last
    share = f" ({events / result.active_people:.0%} of them)" if result.active_people else ""
    hot = sum(1 for x in result.hottest if x["band"] == "hot")
    return (
        f"Over {result.simulated_days} simulated day(s), {result.active_people} distinct "
        f"people of {result.contacts} were active ({result.activations} activations). "
        f"{crossed} lead(s) crossed a threshold through their behaviour; {events} raised "
        f"a hand with an immediate event{share}. {hot} of the 10 hottest leads are hot.\n"
        f"Final run, with no new activity: {last.deals} deal(s), {last.tasks} task(s), "
        f"{last.scores_written} score(s) written: every action was taken exactly once."
    )


def next_steps(crm: str) -> str:
    """What to try after the demo: the same product on the user's own CRM."""
    steps = [
        (f"leadsync init --crm {crm}", "writes leadsync.yaml and models/starter.yaml here"),
        ("leadsync check --config leadsync.yaml", "credentials, fields, owners, deal settings"),
        ("leadsync run --config leadsync.yaml --dry-run", "what it would write and do"),
        ("leadsync run --config leadsync.yaml", "the first run is a baseline: no actions"),
        ("leadsync leads --config leadsync.yaml --band hot", "the hottest leads and why"),
    ]
    width = max(len(cmd) for cmd, _ in steps)
    lines = ["", "Next, on your own CRM:"]
    lines += [f"  {cmd:<{width}}  # {why}" for cmd, why in steps]
    lines += [
        "Or against a local sandbox that keeps running: leadsync sandbox --crm both "
        f"--leadsync-fields, then leadsync init --crm {crm} --sandbox",
    ]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the ``leadsync`` app."""

    @app.command()
    def demo(
        crm: str = typer.Option("hubspot", "--crm", help="hubspot or salesforce"),
        contacts: int = typer.Option(300, "--contacts", min=10, max=20000),
        days: int | None = typer.Option(
            None, "--days", min=1, help="History of the sandbox's world, in days."
        ),
        simulated_days: int = typer.Option(
            7, "--simulated-days", min=1, max=60, help="Days of new activity, a run each."
        ),
        as_json: Annotated[
            bool, typer.Option("--json", help="Print what happened as one JSON object.")
        ] = False,
        report: Path = typer.Option(
            Path("leadsync-demo-report.html"),
            "--report",
            help="Where to write the HTML report of the demo's world (backtest and KPIs).",
        ),
        no_report: Annotated[bool, typer.Option("--no-report", help="Write no report.")] = False,
        realtime: Annotated[
            bool,
            typer.Option(
                "--realtime",
                help="Show leadsync serve beside the sandbox: a demo request scored and "
                "acted on within seconds (HubSpot).",
            ),
        ] = False,
    ) -> None:
        """A complete sync against an embedded sandbox CRM: no account, no network."""
        setup_logging()
        if realtime:
            with _guard():
                if crm != "hubspot":
                    raise UsageError(["--realtime: the real-time demo runs on --crm hubspot"])
                from scheduler.serve.demo import run_realtime_demo

                quiet = (lambda _text: None) if as_json else _out
                shown = run_realtime_demo(contacts=contacts, say=quiet)
            if as_json:
                _out(json.dumps(dataclasses.asdict(shown)))
            return
        with _guard():
            result = run_demo(
                crm,
                contacts=contacts,
                days=days,
                simulated_days=simulated_days,
                quiet=as_json,
                report=None if no_report else report,
            )
        if as_json:
            _out(json.dumps(result.to_json(), default=str))
        raise typer.Exit(max(r.exit_code for r in result.runs))
