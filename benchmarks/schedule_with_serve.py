"""The whole-schedule API calls with ``leadsync serve`` beside the scheduled runs.

    python benchmarks/schedule_with_serve.py [n_contacts] [--crm hubspot|salesforce|all]
                                             [--json]

The sequence of ``benchmarks/api_calls.py --schedule`` (full, no change, 1% changed,
1% changed again, no change, 10% changed, no change), on both CRMs, but with the
sandbox pushing every change to a real ``leadsync serve`` (uvicorn, in its own
process, as ``benchmarks/realtime.py`` starts it): HubSpot's signed webhooks
(``connectors/sandbox/hubspot/webhooks.py``), Salesforce's Outbound Messages
(``connectors/sandbox/salesforce/outbound.py``). Each step:

1. the sandbox's simulated activity (the same seeds as ``api_calls.py``), delivered
   at once; serve reads the contacts by id, scores, writes and acts; the benchmark
   waits until serve's inbox has drained (serve's calls are the sandbox's calls
   meanwhile);
2. the scheduled run, ``leadsync run``'s own code (``Sync`` on the same state
   database as serve, a fresh connector from the stored cursor, as each scheduled
   run starts), after the CRM's search lag: its calls are the sandbox's calls during
   it (nothing else calls then).

The first step is the scheduled full run alone (serve starts after it: it leaves a
model without a committed baseline to the scheduled run). Real time throughout (serve
is a real process): the steps are seconds apart, not an hour, so scores barely decay
between them; every scheduled run reads the deal outcomes (``outcomes_every: 0s``),
as ``api_calls.py`` does.

Printed per CRM and step:

- ``sched``: the scheduled run's calls; ``serve``: serve's calls; ``total``: both;
- ``min``: the step's minimum by the scheduled-alone formulas, unchanged: it is
  ``api_calls.py --schedule``'s own minimum for the same step, from its own run of the
  same sandbox world and seeds (``run_hubspot_schedule`` / ``run_schedule``, imported,
  on a simulated clock an hour apart), printed beside it as ``alone`` (that run's
  calls); ``total/min`` is the ratio that matters: serve handling a change must not
  make the schedule as a whole dearer than the scheduled run handling it alone (target
  1.25x, and no-change runs at most 3 calls);
- ``changed``: contacts the sandbox's activity changed; ``events``: the
  notifications serve stored for them (inbox rows); ``serve/ev`` and ``min/ev``: serve's calls
  per event and the per-event minimum ``benchmarks/realtime.py`` derives from the
  batches serve formed (``serve_minimum``; for Salesforce the same rule with its
  queries: per batch one ``IN (...)`` query per object read by id, one per engagement
  source, one collection write per 200, and the actions' upserts);
- ``x``: crossings (serve's, from its ledger entries, plus the scheduled run's) and
  ``made``: deals and tasks created in the sandbox during the step (Salesforce:
  Opportunities and Tasks with leadsync's key); ``made`` is at most ``2 * x`` (a deal
  and a task per crossing; a Lead, or a contact with an open deal, gets the task
  only): more is a second action;
- ``reread``: contacts the scheduled run read back that were serve's own score
  writes and recognised only after reading them (``serve_echoes``: the state
  database's own-writes table, after the CRM read and its engagement reads), and
  ``read``: contacts it applied as changed. Both count what serve already handled
  when they are above the contacts serve did not handle (one whose score did not
  move is not written by serve, and so is read by the run).

Serve forms its batches from what has arrived (``worker.min_interval``, 1 s by
default, between batch starts): a step's changes arrive within a second or two and
make a few batches, each paying its own reads. So serve's calls for a step exceed
the minimum of one scheduled read of the same contacts; what matters is that serve
stays near its own per-event minimum and the scheduled run adds little beside it.

The connectors' look-back is 5 s here (``LOOKBACK_S``, 300 s by default) and each
run starts at least that long after the previous one ended: with the default, every
run of this compressed schedule would still hold the baseline's thousands of score
writes in its window (paged through, then skipped as its own), which an hour apart
it does not.

The machine's load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_calls import SCHEDULE, run_hubspot_schedule  # noqa: E402
from realtime import serve_minimum  # noqa: E402

HS_TOKEN = "benchmark-private-app-token"  # noqa: S105 (the sandbox's own token)
HS_SECRET = "benchmark-client-secret-0123456789"  # noqa: S105 (throw-away, local)
SF_PATH_TOKEN = "benchmark-path-token-0123456789abcdef"  # noqa: S105 (throw-away, local)
PUBLIC = "https://leads.example.com"
SEARCH_LAG_S = 1.0  # the HubSpot sandbox's search index lag (its default is 3 s)
# The connectors' look-back (default 300 s): the steps are seconds apart, not an hour,
# and with 300 s every run's window would still hold the baseline's thousands of
# score writes (an hour apart it holds none). Runs start at least this far apart.
LOOKBACK_S = 5.0


def _starter(folder: Path) -> Path:
    from importlib.resources import as_file, files

    target = folder / "starter.yaml"
    with as_file(files("scoring").joinpath("data/models/starter.yaml")) as starter:
        shutil.copy(starter, target)
    return target


def _drain(lines: Any) -> None:
    for _ in lines:  # keep reading serve's output, so that it never blocks on a pipe
        pass


def _listening(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if "listening on" in line:
            found = re.search(r"https?://[\d.]+:\d+", line)
            if found:
                threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
                return found.group(0)
    raise SystemExit("leadsync serve did not start")


@dataclass
class Step:
    step: str
    changed: int = 0
    sched: int = 0
    serve: int = 0
    events: int = 0
    batches: list[int] = field(default_factory=list)
    serve_min: int = 0
    crossings_serve: int = 0
    crossings_sched: int = 0
    made: int = 0
    reread: int = 0
    scored: int = 0
    sched_read: int = 0
    setup: int = 0
    sched_routes: dict[str, int] = field(default_factory=dict)
    serve_routes: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.sched + self.serve


class World:
    """One CRM's sandbox in this process, ``leadsync serve`` in its own, and the
    scheduled runs here; subclasses say how the CRM is served and pushes changes."""

    crm = ""

    def __init__(self, folder: Path, n_contacts: int) -> None:
        self.folder = folder
        self.n = n_contacts
        self.serve_proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.sandbox: Any = None  # set by each CRM: its sandbox and the app serving it
        self.app: Any = None

    # -- the sandbox, the same for both CRMs
    def simulate(self, count: int, seed: int) -> list[str]:
        return list(self.sandbox.simulate_activity(count, seed=seed))

    def stats(self) -> dict[str, Any]:
        return dict(self.app.stats())

    def reset(self) -> None:
        self.app.reset_stats()

    # -- per CRM
    def crm_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def serve_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def attach(self, url: str) -> None:
        """Deliver the sandbox's changes to serve at ``url``."""
        raise NotImplementedError

    def push(self) -> int:
        """Deliver what is pending now; returns the deliveries."""
        raise NotImplementedError

    def created(self) -> int:
        """Deals (Opportunities) and tasks in the sandbox."""
        raise NotImplementedError

    def serve_per_event_minimum(self, batches: list[int], routes: dict[str, int]) -> int:
        raise NotImplementedError

    def settle(self) -> None:
        """Wait until the CRM's search sees the latest writes."""

    # -- common
    def write_config(self) -> Path:
        # secrets through the environment, as the configuration requires (this
        # process's runs and serve's process read the same variables)
        os.environ.update(
            BENCH_HS_TOKEN=HS_TOKEN,
            BENCH_HS_SECRET=HS_SECRET,
            BENCH_SF_PATH=SF_PATH_TOKEN,
            BENCH_SF_CLIENT_SECRET="sandbox-secret",  # noqa: S106 (the sandbox's own)
            BENCH_SF_REFRESH="sandbox-refresh",
        )
        config = {
            "crm": self.crm_config(),
            "models": str(_starter(self.folder)),
            "state": f"sqlite:///{self.folder / 'state.db'}",
            "outcomes_every": "0s",
            "serve": {
                "public_url": PUBLIC,
                **self.serve_config(),
                "worker": {"idle": "0.02s"},
            },
        }
        path = self.folder / "leadsync.yaml"
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        self.config_path = path
        return path

    def start_serve(self) -> None:
        code = "from scheduler.cli import app; app(prog_name='leadsync')"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.serve_proc = subprocess.Popen(
            [sys.executable, "-c", code, "serve", "--config", str(self.config_path),
             "--port", "0"],
            env=env, cwd=self.folder, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = _listening(self.serve_proc)
        self.attach(self.url)

    def stop_serve(self) -> None:
        if self.serve_proc is not None:
            self.serve_proc.terminate()
            try:
                self.serve_proc.wait(20)
            except subprocess.TimeoutExpired:
                self.serve_proc.kill()

    def scheduled_run(self) -> Any:
        """One ``leadsync run``: its own code, a fresh connector and store."""
        from scheduler.cli_sync import host_redactor, load_model_files, make_connector
        from scheduler.config import load_config
        from scheduler.state import StateStore
        from scheduler.sync import RunOptions, Sync

        config = load_config(self.config_path)
        store = StateStore(config.state_url())
        store.migrate()
        redactor = host_redactor(config)
        connector = make_connector(config, redactor=redactor)
        try:
            models = load_model_files(config.model_paths())
            summary = Sync(config, connector, store, models, redactor=redactor).run(RunOptions())
        finally:
            connector.close()
            store.close()
        if summary.exit_code not in (0,):
            raise RuntimeError(f"scheduled run: exit {summary.exit_code}: {summary.to_dict()}")
        return summary

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.folder / "state.db")

    def last_row(self) -> int:
        from scheduler.serve.inbox import TABLE

        with self._db() as conn:
            (n,) = conn.execute(f"SELECT coalesce(max(id), 0) FROM {TABLE}").fetchone()
        return int(n)

    def wait_drained(self, after: int, timeout: float = 300.0) -> tuple[int, list[int]]:
        """Wait until the inbox rows after row ``after`` are all settled (at least one
        arrived); returns the rows and the contacts per batch serve formed of them
        (one ``done()`` per batch: one stamp)."""
        from scheduler.serve.inbox import TABLE

        deadline = time.monotonic() + timeout
        rows: list[tuple[str, float | None, str | None]] = []
        while time.monotonic() < deadline:
            with self._db() as conn:
                rows = list(
                    conn.execute(
                        f"SELECT status, done_at, contact_id FROM {TABLE} WHERE id > ?",
                        (after,),
                    )
                )
            if rows and not any(r[0] == "pending" for r in rows):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("serve did not drain its inbox in time")
        time.sleep(0.5)  # the last batch's deals and tasks follow its done() stamp
        batches: dict[float, set[str | None]] = {}
        for status, done, contact in rows:
            if status == "done" and done is not None:
                batches.setdefault(done, set()).add(contact)
        return len(rows), [len(batches[d]) for d in sorted(batches)]

    def serve_crossings(self, since: float) -> int:
        with self._db() as conn:
            (n,) = conn.execute(
                "SELECT count(DISTINCT group_key) FROM ls_ledger "
                "WHERE run_id LIKE 'serve-%' AND kind != 'alert' AND created_at >= ?",
                (since,),
            ).fetchone()
        return int(n)


class HubSpot(World):
    crm = "hubspot"

    def __init__(self, folder: Path, n_contacts: int) -> None:
        from connectors.sandbox import HubSpotSandbox, SandboxApp, serve

        super().__init__(folder, n_contacts)
        self.sandbox = HubSpotSandbox(
            contacts=n_contacts, tier="pro", tokens=(HS_TOKEN,), search_lag_seconds=SEARCH_LAG_S
        )
        self.app = SandboxApp(self.sandbox)
        self.server = serve(self.app, port=0)
        self.sender: Any = None

    def close(self) -> None:
        self.server.close()

    def crm_config(self) -> dict[str, Any]:
        return {
            "type": "hubspot",
            "hubspot": {
                "access_token": "${BENCH_HS_TOKEN}",
                "base_url": self.server.base_url,
                "tier": "pro",
                "lookback_seconds": LOOKBACK_S,
            },
        }

    def serve_config(self) -> dict[str, Any]:
        return {"hubspot": {"client_secret": "${BENCH_HS_SECRET}"}}

    def attach(self, url: str) -> None:
        from connectors.sandbox.hubspot.store import attach_webhooks
        from connectors.sandbox.hubspot.webhooks import WebhookSender, requests_post
        from scheduler.cli_sandbox import SandboxOptions

        def post(target: str, body: bytes, headers: Any) -> Any:
            # signed for the public URL, delivered to the service behind it
            return requests_post(target.replace(PUBLIC, url), body, headers)

        self.sender = WebhookSender(
            PUBLIC + "/webhooks/hubspot",
            HS_SECRET,
            self.sandbox.clock,
            post=post,
            subscribed=frozenset(SandboxOptions().subscribed),
        )
        attach_webhooks(self.sandbox.store, self.sender)

    def push(self) -> int:
        return len(self.sender.flush()) if self.sender is not None else 0

    def created(self) -> int:
        tables = self.sandbox.store.tables
        return int(tables["deals"].n + tables["tasks"].n)

    def serve_per_event_minimum(self, batches: list[int], routes: dict[str, int]) -> int:
        return serve_minimum(batches, routes)

    def settle(self) -> None:
        time.sleep(SEARCH_LAG_S + 0.2)


#: Set-up calls, left out of both sides as ``api_calls.py`` does: field checks
#: (``ensure_fields``), Salesforce's OAuth token and describes.
SETUP = re.compile(r"/crm/v3/properties/|/services/oauth2/token|/describe$")


def _calls(stats: dict[str, Any]) -> tuple[int, int, dict[str, int]]:
    """(calls, set-up calls, calls by route) of a stats snapshot."""
    routes: dict[str, int] = dict(stats["by_route"])
    setup = sum(n for r, n in routes.items() if SETUP.search(r))
    return int(stats["total"]) - setup, setup, routes


def measure(world: Any) -> list[Step]:
    """The sequence with serve beside the scheduled runs."""
    world.write_config()
    out: list[Step] = []
    last_end = 0.0
    for i, (name, share) in enumerate(SCHEDULE):
        step = Step(name)
        made0 = world.created()
        t0 = time.time()
        if i == 1:
            world.start_serve()
        if share:
            after = world.last_row()
            world.reset()
            step.changed = len(world.simulate(max(1, round(world.n * share)), seed=i))
            world.push()
            step.events, step.batches = world.wait_drained(after)
            step.serve, setup, step.serve_routes = _calls(world.stats())
            step.setup += setup
            step.serve_min = world.serve_per_event_minimum(step.batches, step.serve_routes)
            step.crossings_serve = world.serve_crossings(t0)
            world.settle()
        # the previous run's writes (until its end) fall before this run's window
        time.sleep(max(0.0, last_end + LOOKBACK_S + 1.0 - time.monotonic()))
        world.reset()
        summary = world.scheduled_run()
        last_end = time.monotonic()
        step.sched, setup, step.sched_routes = _calls(world.stats())
        step.setup += setup
        step.crossings_sched = int(summary.crossings)
        step.reread = int(summary.serve_echoes)
        step.scored = int(summary.contacts_scored)
        step.sched_read = int(summary.contacts_read)
        step.made = world.created() - made0
        out.append(step)
        print(f"  {world.crm} {name}: done", file=sys.stderr, flush=True)
    return out


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "-"


def table(crm: str, steps: list[Step], alone: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"{crm:<10} {'step':<18} {'sched':>5} {'serve':>5} {'total':>5} {'min':>4} "
        f"{'total/min':>9} {'alone':>5} {'changed':>7} {'events':>6} {'serve/ev':>8} "
        f"{'min/ev':>6} {'x':>3} {'made':>4} {'reread':>6} {'read':>4}"
    ]
    for s, a in zip(steps, alone, strict=True):
        per_event = f"{s.serve / s.events:.2f}" if s.events else "-"
        min_event = f"{s.serve_min / s.events:.2f}" if s.events else "-"
        lines.append(
            f"{crm:<10} {s.step:<18} {s.sched:>5} {s.serve:>5} {s.total:>5} {a['minimum']:>4} "
            f"{_ratio(s.total, a['minimum']):>9} {a['calls']:>5} {s.changed:>7} {s.events:>6} "
            f"{per_event:>8} {min_event:>6} {s.crossings_serve + s.crossings_sched:>3} "
            f"{s.made:>4} {s.reread:>6} {s.sched_read:>4}"
        )
    setup = sum(s.setup for s in steps)
    lines.append(f"{crm:<10} (set-up calls left out: {setup})")
    return lines


def run_crm(crm: str, n_contacts: int) -> dict[str, Any]:
    if crm == "hubspot":
        alone = run_hubspot_schedule(n_contacts)["schedule"]
        factory: Callable[[Path, int], Any] = HubSpot
    else:
        from _api_calls_salesforce import run_schedule

        alone = run_schedule(n_contacts)["schedule"]
        factory = Salesforce
    with tempfile.TemporaryDirectory() as tmp:
        world = factory(Path(tmp), n_contacts)
        try:
            steps = measure(world)
        finally:
            world.stop_serve()
            world.close()
    return {"crm": crm, "contacts": n_contacts, "steps": steps, "alone": alone}


class Salesforce(World):
    crm = "salesforce"

    def __init__(self, folder: Path, n_contacts: int) -> None:
        from connectors.sandbox import SalesforceSandbox, SandboxApp, serve

        super().__init__(folder, n_contacts)
        scores = [
            {"name": "leadsync_score__c", "type": "double"},
            {"name": "leadsync_services_score__c", "type": "double"},
        ]
        key = [{"name": "leadsync_key__c", "type": "string", "externalId": True, "unique": True}]
        self.sandbox = SalesforceSandbox(
            contacts=n_contacts,
            custom_fields={"Lead": scores, "Contact": scores, "Opportunity": key, "Task": key},
        )
        self.app = SandboxApp(self.sandbox)
        self.ca = folder / "sandbox-ca.pem"
        self.server = serve(self.app, port=0, tls=True, ca_out=self.ca)
        self.messenger: Any = None

    def close(self) -> None:
        self.server.close()

    def crm_config(self) -> dict[str, Any]:
        url = self.server.base_url
        return {
            "type": "salesforce",
            "salesforce": {
                "login_url": url,
                "instance_url": url,
                "ca_bundle": str(self.ca),
                "lookback_seconds": LOOKBACK_S,
                "refresh_token": {
                    "client_id": "sandbox-client",
                    "client_secret": "${BENCH_SF_CLIENT_SECRET}",
                    "refresh_token": "${BENCH_SF_REFRESH}",
                },
            },
        }

    def serve_config(self) -> dict[str, Any]:
        from connectors.sandbox.salesforce.sandbox import ORG_ID

        return {"salesforce": {"organization_id": ORG_ID, "path_token": "${BENCH_SF_PATH}"}}

    def attach(self, url: str) -> None:
        from connectors.sandbox.salesforce.outbound import OutboundMessenger
        from connectors.sandbox.salesforce.sandbox import ORG_ID

        self.messenger = OutboundMessenger(
            f"{url}/webhooks/salesforce/{SF_PATH_TOKEN}", ORG_ID, self.sandbox.clock
        )
        self.sandbox.store.outbound = self.messenger

    def push(self) -> int:
        return len(self.messenger.flush()) if self.messenger is not None else 0

    def created(self) -> int:
        """Opportunities and Tasks with leadsync's key (the sandbox's simulated
        activity makes Tasks too); asked outside the measured calls."""
        import requests

        total = 0
        for sobject in ("Opportunity", "Task"):
            answer = requests.get(
                f"{self.server.base_url}/services/data/v59.0/query/",
                params={"q": f"SELECT COUNT() FROM {sobject} WHERE leadsync_key__c != null"},
                headers={"Authorization": "Bearer sandbox-session"},
                verify=str(self.ca),
                timeout=30,
            )
            answer.raise_for_status()
            total += int(answer.json()["totalSize"])
        return total

    def serve_per_event_minimum(self, batches: list[int], routes: dict[str, int]) -> int:
        return salesforce_serve_minimum(batches, routes)

    def settle(self) -> None:
        time.sleep(1.1)  # SystemModstamp has whole seconds: the next run reads after them


def salesforce_serve_minimum(batches: list[int], routes: dict[str, int]) -> int:
    """``realtime.serve_minimum``'s rule with Salesforce's calls: per batch of k
    people, the records by id (one ``IN (...)`` query per ``ids_per_query`` ids, for
    Leads and Contacts each when both are in the batch: counted once here), one
    query per engagement source (Task, Event, CampaignMember) per as many ids, one
    sObject Collections update per 200 written; for actions the upserts the sandbox
    served (Opportunities, contact roles, Tasks: the create calls are what is
    measured) and one open-opportunity query per batch that acted."""
    from _api_calls_salesforce import EVENT_SOURCES

    from connectors.salesforce.soql import COLLECTION_SIZE

    per_query = 400  # ids per query, as ``_api_calls_actions.act_minimum`` assumes
    upserts = sum(n for r, n in routes.items() if r.startswith("PATCH ") and "composite" in r)
    acted = min(upserts, len(batches))
    return (
        sum(
            math.ceil(k / per_query)
            + len(EVENT_SOURCES) * math.ceil(k / per_query)
            + math.ceil(k / COLLECTION_SIZE)
            for k in batches
        )
        + upserts
        + acted
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_contacts", nargs="?", type=int, default=5_000)
    parser.add_argument("--crm", choices=("hubspot", "salesforce", "all"), default="all")
    parser.add_argument("--json", action="store_true", help="print the full results as JSON")
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs, load average before {os.getloadavg()}")
    crms = ("hubspot", "salesforce") if args.crm == "all" else (args.crm,)
    results = [run_crm(crm, args.n_contacts) for crm in crms]
    for r in results:
        if args.json:
            print(json.dumps({**r, "steps": [vars(s) for s in r["steps"]]}, default=str))
        for line in table(r["crm"], r["steps"], r["alone"]):
            print(line)
    print(f"load average after {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
