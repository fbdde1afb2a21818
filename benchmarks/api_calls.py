"""API calls of a score-and-write sync per CRM, next to the minimum for the same data.

For each CRM: a full sync of ``n_contacts`` sandbox contacts (read, score with the
starter model, write the scores), then an incremental one after ``changed_share`` of
them had fresh activity. The minimum is computed from what the run had to read and
write, every read at the largest page or batch the API allows and every write at the
largest batch. Set-up calls (``ensure_fields``, token requests) are left out of both
sides. Targets: within 1.25x of the minimum, and no 429 at the ``pro`` tier.

HubSpot minimum, per run:
  contacts   full: ceil(read / 100) list pages; incremental: ceil(read / 200) search
             pages (at least 1) + ceil(archived / 100) archived-list pages (at least 1)
  engagement per type (calls, emails, meetings, notes): ceil(contacts / 1,000) v4
             association reads + ceil(objects / 100) batch reads
  marketing e-mail events: ceil(events / 1,000) (at least 1), when any contact changed
  forms      1 list + per form ceil(submissions in the window / 50) (at least 1), when
             any contact changed (a submission or an e-mail event changes its contact)
  writes     ceil(score updates / 100)
A run whose contacts are all unchanged but for our own score writes has to read
nothing more than one search page and one archived-list page. The connector's check
before its first write (one search page, usually) is overhead, not in the minimum.

Salesforce comes from ``benchmarks/_api_calls_salesforce.py`` (its own minimum).

Run: ``python benchmarks/api_calls.py [n_contacts] [changed_share] [--crm hubspot|salesforce]``;
``--schedule`` for the whole-schedule sequence (each run a new process starting from
the stored state; targets: every step within 1.25x, every no-change run at most 3
calls); ``--actions N`` for one act step with N crossings (target: at most 0.1 calls
per action, every call of the act step counted).

Salesforce's ``/composite`` counts as one API call for up to five queries: the
connector sends the objects' first pages and the next pages of a long query that way,
so its calls can fall below the per-query minimum (which stays as it was defined).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.base import (
    ContactRecord,
    Cursor,
    EventRecord,
    FieldSpec,
    RuntimeContext,
    ScoreUpdate,
)
from connectors.hubspot import HubSpotConnector
from connectors.sandbox import HubSpotSandbox, ManualClock, SandboxApp, serve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _api_calls_actions import Crossings, act, act_heavy, act_minimum, outcomes
from _outcome_reads import outcome_reads

TOKEN = "benchmark-private-app-token"  # noqa: S105 (the sandbox's own token)
MODEL_FILE = Path(__file__).resolve().parents[1] / "scoring" / "data" / "models" / "starter.yaml"
ENGAGEMENT = ("calls", "emails", "meetings", "notes")
WRITE_BATCH = 1000  # the sync's writeback.write_batch default


class Scorer:
    """The starter model through the scoring engine, or, when the scoring core is not
    there, a stand-in score (events per contact) so that the call counts still mean
    something."""

    def __init__(self) -> None:
        self.models: Any = None
        try:
            from scoring.model import load_models

            self.models = load_models(MODEL_FILE.read_text(), str(MODEL_FILE))
        except (ImportError, OSError):
            self.models = None

    @property
    def fields(self) -> list[str]:
        if self.models is None:
            return ["leadsync_score"]
        return sorted({m.score_field for m in self.models.models})

    def scores(
        self, contacts: tuple[ContactRecord, ...], events: tuple[EventRecord, ...], now: datetime
    ) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        if self.models is None:
            for c in contacts:
                out.setdefault(c.id, {})["leadsync_score"] = float(
                    min(99, 5 * sum(1 for e in events if e.contact_id == c.id))
                )
            return out
        from scoring.engine import score

        field_of = {m.name: m.score_field for m in self.models.models}
        rows = [{"id": c.id, **c.fields} for c in contacts]
        evs = [
            {
                "id": e.id,
                "contact_id": e.contact_id,
                "type": e.type,
                "occurred_at": e.occurred_at,
                **e.attributes,
            }
            for e in events
        ]
        for result in score(self.models, rows, evs, as_of=now):
            out.setdefault(result.contact_id, {})[field_of[result.model]] = result.score
        return out


def _rounded(value: Any) -> int | None:
    return None if not isinstance(value, int | float) else round(value)


def hubspot_minimum(
    rows: dict[str, int], *, updates: int, incremental: bool, forms: bool, delivered: int
) -> int:
    total = 0
    if incremental:
        total += max(1, math.ceil(rows.get("search contacts", 0) / 200))
        total += max(1, math.ceil(rows.get("list archived contacts", 0) / 100))
    else:
        total += max(1, math.ceil(rows.get("list contacts", 0) / 100))
    for kind in ENGAGEMENT:
        linked = rows.get(f"associations contacts->{kind}", 0)
        total += math.ceil(linked / 1000)
        total += math.ceil(rows.get(f"batch read {kind}", 0) / 100)
    if delivered == 0:  # nothing changed: the time-window sources are not needed
        return total + math.ceil(updates / 100)
    total += max(1, math.ceil(rows.get("marketing e-mail events", 0) / 1000))
    if forms:
        total += 1
        for key, n in rows.items():
            if key.startswith("form submissions "):
                total += max(1, math.ceil(n / 50))
    total += math.ceil(updates / 100)
    return total


def _hubspot_sync(
    connector: HubSpotConnector,
    app: SandboxApp,
    clock: ManualClock,
    scorer: Scorer,
    cursor: Cursor | None,
    crossings: Crossings | None = None,
    since: datetime | None = None,
) -> tuple[dict[str, Any], Cursor | None]:
    transport = connector.transport
    transport.rows_read.clear()
    app.reset_stats()
    calls_before = connector.budget().calls
    started = time.perf_counter()
    now = clock.datetime()
    read = updates = 0
    crossed: list[tuple[str, str]] = []
    pending: dict[str, ScoreUpdate] = {}
    for batch in connector.read_changes(cursor, until=now, events_since=now - timedelta(days=90)):
        read += len(batch.contacts)
        scores = scorer.scores(batch.contacts, batch.events, now)
        for contact in batch.contacts:
            values = {
                name: value
                for name, value in scores.get(contact.id, {}).items()
                # a score is re-sent only when its whole-number value moved: decay makes
                # every score drift a little with time, and each write bumps the
                # contact's lastmodifieddate, i.e. makes it "changed" for the next run
                if _rounded(contact.fields.get(name)) != _rounded(value)
            }
            if values:
                pending[contact.id] = ScoreUpdate(contact.id, values)
        if crossings is not None:
            crossed += crossings.crossed(scores, baseline=cursor is None)
        if len(pending) >= WRITE_BATCH:
            # as the sync flushes a full batch: the writes of whom it will act on wait
            held = {cid for cid, _ in crossed}
            updates += _write(connector, [u for cid, u in pending.items() if cid not in held])
            pending = {cid: u for cid, u in pending.items() if cid in held}
    clock.advance(1)  # the act step comes before the last score writes, as in the sync
    acted = act(connector, crossed, now, {}) if crossings is not None else {}
    clock.advance(1)
    updates += _write(connector, list(pending.values()))
    outcome_calls, outcome_min = outcomes(connector, since) if since is not None else (0, 0)
    # the state after the run's writes and actions (our own writes included)
    state = connector.checkpoint()
    new_cursor = None if state is None else state.to_json()
    calls = connector.budget().calls - calls_before
    stats = app.stats()
    minimum = hubspot_minimum(
        dict(transport.rows_read),
        updates=updates,
        incremental=cursor is not None,
        forms=True,
        delivered=read,
    )
    minimum += act_minimum("hubspot", acted) + outcome_min
    return {
        "actions": acted.get("actions", 0),
        "act_calls": acted.get("calls", 0),
        "outcome_calls": outcome_calls,
        "calls": calls,
        "minimum": minimum,
        "ratio": round(calls / minimum, 3) if minimum else None,
        "contacts_read": read,
        "score_writes": updates,
        "rows_read": {k: v for k, v in transport.rows_read.items() if not k.startswith("form ")},
        "by_route": stats["by_route"],
        "status_429": stats["by_status"].get("429", 0),
        "seconds": round(time.perf_counter() - started, 2),
    }, new_cursor


def run_hubspot(n_contacts: int = 10_000, changed_share: float = 0.01) -> dict[str, Any]:
    clock = ManualClock()
    sandbox = HubSpotSandbox(contacts=n_contacts, clock=clock, tier="pro", tokens=(TOKEN,))
    app = SandboxApp(sandbox, sleep=clock.sleep)
    server = serve(app, port=0)
    scorer = Scorer()
    try:
        connector = HubSpotConnector.from_config(
            {
                "access_token": TOKEN,
                "base_url": server.base_url,
                "tier": "pro",
                "quota_share": 1.0,
                "score_fields": {name: name for name in scorer.fields},
            },
            context=RuntimeContext(now=clock.datetime, sleep=clock.sleep),
        )
        connector.ensure_fields([FieldSpec(name) for name in scorer.fields])
        full, cursor = _hubspot_sync(connector, app, clock, scorer, None)
        # the full sync's own writes bumped every written contact; the connector
        # remembers them, so this run finds nothing changed with one count
        clock.advance(3600)
        after_writes, cursor = _hubspot_sync(connector, app, clock, scorer, cursor)
        clock.advance(3600)
        changed = sandbox.simulate_activity(max(1, round(n_contacts * changed_share)), seed=11)
        clock.advance(60)
        incremental, _ = _hubspot_sync(connector, app, clock, scorer, cursor)
        incremental["changed"] = len(changed)
        outcomes = outcome_reads(connector, clock)
        connector.close()
    finally:
        server.close()
    return {
        "crm": "hubspot",
        "contacts": n_contacts,
        "changed_share": changed_share,
        "scorer": "starter model" if scorer.models is not None else "stand-in",
        "full": full,
        "incremental_after_full_writes": after_writes,
        "incremental": incremental,
        **outcomes,
    }


def _connect(base_url: str, clock: ManualClock, scorer: Scorer) -> HubSpotConnector:
    """A new connector to the benchmark's portal: a new process's."""
    return HubSpotConnector.from_config(
        {
            "access_token": TOKEN,
            "base_url": base_url,
            "tier": "pro",
            "quota_share": 1.0,
            "score_fields": {name: name for name in scorer.fields},
        },
        context=RuntimeContext(now=clock.datetime, sleep=clock.sleep),
    )


SCHEDULE = (
    ("full", None),
    ("no change", 0.0),
    ("1% changed", 0.01),
    ("1% changed again", 0.01),
    ("no change again", 0.0),
    ("10% changed", 0.10),
    ("no change at last", 0.0),
)


def run_hubspot_schedule(n_contacts: int = 5_000) -> dict[str, Any]:
    """The whole-schedule sequence with the starter model's actions (deal and task for
    each crossing) and an outcomes read in every run; runs an hour apart, each a new
    connector that starts from the stored (JSON) state, as a scheduled
    ``leadsync run`` is a new process."""
    clock = ManualClock()
    sandbox = HubSpotSandbox(contacts=n_contacts, clock=clock, tier="pro", tokens=(TOKEN,))
    app = SandboxApp(sandbox, sleep=clock.sleep)
    server = serve(app, port=0)
    scorer = Scorer()
    crossings = Crossings(scorer.models)
    steps: list[dict[str, Any]] = []

    def connect() -> HubSpotConnector:
        return _connect(server.base_url, clock, scorer)

    try:
        cursor: Cursor | None = None
        last = clock.datetime()
        for name, share in SCHEDULE:
            if share:
                sandbox.simulate_activity(max(1, round(n_contacts * share)), seed=len(steps))
                clock.advance(60)
            started = clock.datetime()
            connector = connect()
            if cursor is None:  # the first run sets the fields up, as ``leadsync run`` does
                connector.ensure_fields([FieldSpec(name) for name in scorer.fields])
            step, cursor = _hubspot_sync(
                connector, app, clock, scorer, cursor, crossings=crossings, since=last
            )
            connector.close()
            last = started
            steps.append({"step": name, **step})
            clock.advance(3600)
    finally:
        server.close()
    return {"crm": "hubspot", "contacts": n_contacts, "schedule": steps}


def _write(connector: HubSpotConnector, writes: list[ScoreUpdate]) -> int:
    result = connector.write_scores(writes)
    if result.failed:
        raise RuntimeError(f"{len(result.failed)} score writes failed: {result.failed[0]}")
    return len(writes)


def run_hubspot_actions(n_actions: int, n_contacts: int) -> dict[str, Any]:
    """One act step with ``n_actions`` crossings after a full read, in a new process."""
    clock = ManualClock()
    sandbox = HubSpotSandbox(contacts=n_contacts, clock=clock, tier="pro", tokens=(TOKEN,))
    app = SandboxApp(sandbox, sleep=clock.sleep)
    server = serve(app, port=0)
    scorer = Scorer()

    def connect() -> HubSpotConnector:
        return _connect(server.base_url, clock, scorer)

    try:
        reader = connect()
        reader.ensure_fields([FieldSpec(name) for name in scorer.fields])
        now = clock.datetime()
        kinds: dict[str, str] = {}
        for batch in reader.read_changes(None, until=now, events_since=now - timedelta(days=90)):
            kinds.update((c.id, c.kind) for c in batch.contacts)
        reader.close()
        clock.advance(600)
        return act_heavy(connect(), kinds, n_actions, clock.datetime(), scorer.fields[0])
    finally:
        server.close()


def run_salesforce(n_contacts: int, changed_share: float) -> dict[str, Any]:
    try:
        from benchmarks._api_calls_salesforce import run
    except ImportError:
        try:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from _api_calls_salesforce import run  # type: ignore[no-redef]
        except ImportError as exc:
            return {"crm": "salesforce", "skipped": f"benchmarks/_api_calls_salesforce.py: {exc}"}
    result: dict[str, Any] = run(n_contacts, changed_share)
    return result


def _line(crm: str, name: str, r: dict[str, Any]) -> str:
    return (
        f"{crm:<10} {name:<28} calls {r['calls']:>6}  minimum {r['minimum']:>6}  "
        f"ratio {r['ratio']:>5}  429s {r.get('status_429', 0)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_contacts", nargs="?", type=int, default=10_000)
    parser.add_argument("changed_share", nargs="?", type=float, default=0.01)
    parser.add_argument("--crm", choices=("hubspot", "salesforce", "all"), default="all")
    parser.add_argument("--json", action="store_true", help="print the full results as JSON")
    parser.add_argument(
        "--schedule", action="store_true", help="the whole-schedule sequence with actions"
    )
    parser.add_argument(
        "--actions",
        type=int,
        default=0,
        metavar="N",
        help="one act step with N crossings: calls per action (owner list and writes, "
        "open-deal checks, key reads, creates with their links)",
    )
    args = parser.parse_args(argv)
    results = []
    if args.schedule:
        return _print_schedule(args)
    if args.actions:
        return _print_actions(args)
    if args.crm in ("hubspot", "all"):
        results.append(run_hubspot(args.n_contacts, args.changed_share))
    if args.crm in ("salesforce", "all"):
        results.append(run_salesforce(args.n_contacts, args.changed_share))
    if args.json:
        print(json.dumps(results, indent=2, default=str))
        return 0
    for r in results:
        if "skipped" in r:
            print(f"{r['crm']:<10} skipped: {r['skipped']}")
            continue
        for name in ("full", "incremental_after_full_writes", "incremental"):
            if name in r:
                print(_line(r["crm"], name, r[name]))
        for name in ("outcomes_full", "outcomes_incremental"):
            if name in r:
                o = r[name]
                print(
                    f"{r['crm']:<10} {name:<28} calls {o['calls']:>6}  "
                    f"({o['deals']} deals, {o['conversions']} conversions read)"
                )
    return 0


def _print_actions(args: argparse.Namespace) -> int:
    runs = []
    if args.crm in ("hubspot", "all"):
        runs.append(run_hubspot_actions(args.actions, args.n_contacts))
    if args.crm in ("salesforce", "all"):
        try:
            from benchmarks._api_calls_salesforce import run_actions
        except ImportError:
            from _api_calls_salesforce import run_actions  # type: ignore[no-redef]
        runs.append(run_actions(args.actions, args.n_contacts))
    if args.json:
        print(json.dumps(runs, indent=2, default=str))
        return 0
    for r in runs:
        print(
            f"{r['crm']:<10} act step: {r['actions']} actions ({r['owner_writes']} owner writes, "
            f"{r['open_deal_skips']} skipped for an open deal)  calls {r['calls']}  "
            f"per action {r['calls_per_action']}  (target <= 0.1)"
        )
    return 0


def _print_schedule(args: argparse.Namespace) -> int:
    runs = []
    if args.crm in ("hubspot", "all"):
        runs.append(run_hubspot_schedule(args.n_contacts))
    if args.crm in ("salesforce", "all"):
        try:
            from benchmarks._api_calls_salesforce import run_schedule
        except ImportError:
            from _api_calls_salesforce import run_schedule  # type: ignore[no-redef]
        runs.append(run_schedule(args.n_contacts))
    if args.json:
        print(json.dumps(runs, indent=2, default=str))
        return 0
    for r in runs:
        for step in r["schedule"]:
            print(
                f"{r['crm']:<10} {step['step']:<18} calls {step['calls']:>5}  minimum "
                f"{step['minimum']:>5}  ratio {step['ratio']:>5}  actions {step['actions']:>4} "
                f"(act calls {step['act_calls']}, outcome calls {step['outcome_calls']})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
