"""API calls of a Salesforce score-and-write sync against the sandbox, next to the minimum.

The minimum is computed from what the run had to read and write, with every read at
the largest page the API allows (2,000 records per query page; as many ids per
``IN (...)`` list as fit in the 16,384-byte URI limit) and every write at the largest
batch (200 records per sObject Collections call). Set-up calls (the OAuth token and
``describe`` for ``ensure_fields``) are left out of both sides.

Run alone: ``python benchmarks/_api_calls_salesforce.py [n_contacts] [changed_share]``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import responses

from connectors.base import Cursor, FieldSpec, RuntimeContext, ScoreUpdate
from connectors.salesforce import SalesforceConnector
from connectors.salesforce import connector as sf_connector
from connectors.salesforce.soql import COLLECTION_SIZE, PAGE_SIZE, URI_LIMIT, ids_per_query
from connectors.sandbox.framework import ManualClock, SandboxApp, mount_responses
from connectors.sandbox.salesforce import SalesforceSandbox

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _api_calls_actions import Crossings, act, act_heavy, act_minimum, outcomes

URL = "https://sf.benchmark.test"
FIELDS = [FieldSpec("lead_score"), FieldSpec("lead_band", type="text")]
QUERY_PATH = "/services/data/v59.0/query/?q="
EVENT_SOURCES = ("Task", "Event", "CampaignMember")


def _minimum(
    rows: dict[str, int], people: int, updates: int, incremental: bool, echoes: int = 0
) -> int:
    """``echoes`` rows of the change reads are left out when given: our own score writes
    re-listed by ``SystemModstamp``, which no SOQL filter can exclude without also
    hiding real changes (so the connector reads and skips them)."""
    budget = URI_LIMIT - len(QUERY_PATH)
    since = "2000-01-01T00:00:00Z"
    per_query = {
        "Task": ids_per_query(sf_connector._TASK_QUERY.format(since=since), max_encoded=budget),
        "Event": ids_per_query(sf_connector._EVENT_QUERY.format(since=since), max_encoded=budget),
        # One IN list per person either way (LeadId or ContactId): the same id budget.
        "CampaignMember": ids_per_query(
            sf_connector._MEMBER_QUERY.format(since=since).replace(
                "{who}", "(LeadId IN {ids} OR ContactId IN ())"
            ),
            max_encoded=budget,
        ),
    }
    total = 0
    change_rows = sum(rows.get(f"read {obj} changes", 0) for obj in ("Lead", "Contact"))
    for obj in ("Lead", "Contact"):
        share = rows.get(f"read {obj} changes", 0) / change_rows if change_rows else 0
        kept = rows.get(f"read {obj} changes", 0) - round(echoes * share)
        # An incremental read's queryAll returns deleted rows with the changed ones:
        # they are part of ``read {obj} changes``, not a query of their own.
        total += max(1, math.ceil(kept / PAGE_SIZE))
    if people:
        for source in EVENT_SOURCES:
            by_rows = max(1, math.ceil(rows.get(f"read {source}", 0) / PAGE_SIZE))
            # Reading everyone, engagement needs no id lists; reading some, each
            # query carries at most per_query ids.
            by_ids = math.ceil(people / per_query[source]) if incremental else 0
            total += max(by_ids, by_rows)
    total += math.ceil(updates / COLLECTION_SIZE)
    return total


def _sync(
    connector: SalesforceConnector,
    app: SandboxApp,
    clock: ManualClock,
    cursor: Cursor | None,
    schedule: Any = None,
    since: datetime | None = None,
) -> tuple[dict[str, Any], Cursor | None]:
    """One run. ``schedule``: ``(scorer, crossings)`` of the starter model, whose scores
    are written when their whole-number value moved and whose crossings are acted on;
    without it a stand-in score (events per person) is written for everyone."""
    api = connector.api
    api.rows_read.clear()
    app.reset_stats()
    calls_before = connector.budget().calls
    echoes_before = connector.echoes_skipped
    now = clock.datetime()
    started = time.perf_counter()
    # As the sync does: read everything, score, then write in full batches.
    counts: dict[str, int] = {}
    live: dict[str, Any] = {}
    crossed: list[tuple[str, str]] = []
    writes: list[ScoreUpdate] = []
    kinds: dict[str, str] = {}
    for batch in connector.read_changes(cursor, until=now, events_since=now - timedelta(days=90)):
        for event in batch.events:
            counts[event.contact_id] = counts.get(event.contact_id, 0) + 1
        live.update((c.id, c) for c in batch.contacts if not c.converted)
        kinds.update((c.id, c.kind) for c in batch.contacts)
        if schedule is not None:
            scorer, crossings = schedule
            contacts = tuple(c for c in batch.contacts if not c.converted)
            scores = scorer.scores(contacts, batch.events, now)
            for c in contacts:
                value = next(iter(scores.get(c.id, {}).values()), None)
                old = c.fields.get("lead_score")
                if value is not None and (old is None or round(float(old)) != round(value)):
                    writes.append(ScoreUpdate(c.id, {"lead_score": value}, c.kind))
            crossed += crossings.crossed(scores, baseline=cursor is None)
    if schedule is None:
        writes = [
            ScoreUpdate(c.id, {"lead_score": min(99, 5 * counts.get(c.id, 0))}, c.kind)
            for c in live.values()
        ]
    people = len(live) if schedule is not None else len(writes)
    updates = len(writes)
    clock.advance(1)  # as in the sync: the act step, then the score writes
    acted = act(connector, crossed, now, kinds) if schedule is not None else {}
    clock.advance(1)
    result = connector.write_scores(writes)
    if result.failed:
        raise RuntimeError(f"{len(result.failed)} score writes failed: {result.failed[0]}")
    outcome_calls, outcome_min = outcomes(connector, since) if since is not None else (0, 0)
    # the state after the run's writes and actions (our own writes included)
    state = connector.checkpoint()
    new_cursor = None if state is None else state.to_json()
    calls = connector.budget().calls - calls_before
    stats = app.stats()
    rows = dict(api.rows_read)
    incremental = cursor is not None
    echoes = connector.echoes_skipped - echoes_before
    extra = act_minimum("salesforce", acted) + outcome_min
    minimum = _minimum(rows, people, updates, incremental) + extra
    strict = _minimum(rows, people, updates, incremental, echoes) + extra
    return {
        "actions": acted.get("actions", 0),
        "act_calls": acted.get("calls", 0),
        "outcome_calls": outcome_calls,
        "calls": calls,
        "minimum": minimum,
        "ratio": round(calls / minimum, 3) if minimum else None,
        "own_write_echoes_skipped": echoes,
        "minimum_without_echo_rows": strict,
        "ratio_without_echo_rows": round(calls / strict, 3) if strict else None,
        "people_read": people,
        "score_writes": updates,
        "rows_read": rows,
        "by_route": stats["by_route"],
        "status_429": stats["by_status"].get("429", 0),
        "seconds": round(time.perf_counter() - started, 2),
    }, new_cursor


@contextmanager
def _org(n_contacts: int) -> Iterator[tuple[SalesforceSandbox, SandboxApp, ManualClock, Any]]:
    """A sandbox org of ``n_contacts`` people with leadsync's fields, reached through
    ``responses``; ``connect()`` makes a new connector (a new process's)."""
    clock = ManualClock()
    sandbox = SalesforceSandbox(contacts=n_contacts, clock=clock, instance_url=URL)
    for obj in ("Lead", "Contact"):
        sandbox.add_custom_field(obj, "lead_score__c", "double")
        sandbox.add_custom_field(obj, "lead_band__c", "string")
    for obj in ("Opportunity", "Task"):
        sandbox.add_custom_field(obj, "leadsync_key__c", "string", external_id=True, unique=True)
    app = SandboxApp(sandbox, sleep=clock.sleep)

    def connect() -> SalesforceConnector:
        return SalesforceConnector.from_config(
            {
                "login_url": URL,
                "instance_url": URL,
                "refresh_token": {
                    "client_id": "sandbox-client",
                    "client_secret": "sandbox-secret",
                    "refresh_token": "sandbox-refresh",
                },
                "quota_share": 1.0,
            },
            context=RuntimeContext(now=clock.datetime, sleep=clock.sleep),
        )

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount_responses(app, rsps, URL)
        yield sandbox, app, clock, connect


def run(n_contacts: int = 10_000, changed_share: float = 0.01) -> dict[str, Any]:
    """Full then incremental score-and-write sync of ``n_contacts`` sandbox people."""
    with _org(n_contacts) as (sandbox, app, clock, connect):
        connector = connect()
        check = connector.ensure_fields(FIELDS)
        if check.missing:
            raise RuntimeError("; ".join(check.instructions))
        full, cursor = _sync(connector, app, clock, None)
        clock.advance(3600)
        changed = sandbox.simulate_activity(max(1, round(n_contacts * changed_share)), seed=11)
        clock.advance(60)
        incremental, _ = _sync(connector, app, clock, cursor)
        incremental["changed"] = len(changed)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _outcome_reads import outcome_reads

        outcomes = outcome_reads(connector, clock)
        connector.close()
    return {
        "crm": "salesforce",
        "contacts": n_contacts,
        "changed_share": changed_share,
        "full": full,
        "incremental": incremental,
        **outcomes,
    }


def run_schedule(n_contacts: int = 5_000) -> dict[str, Any]:
    """The whole-schedule sequence (see api_calls.py) with the starter model's actions
    and an outcomes read in every run; runs an hour apart, each a new connector that
    starts from the stored (JSON) state, as a scheduled ``leadsync run`` is a new
    process."""
    from api_calls import SCHEDULE, Scorer

    scorer = Scorer()
    schedule = (scorer, Crossings(scorer.models))
    steps: list[dict[str, Any]] = []
    with _org(n_contacts) as (sandbox, app, clock, connect):
        cursor: Cursor | None = None
        last = clock.datetime()
        for name, share in SCHEDULE:
            if share:
                sandbox.simulate_activity(max(1, round(n_contacts * share)), seed=len(steps))
                clock.advance(60)
            started = clock.datetime()
            connector = connect()
            if cursor is None:  # the first run sets the fields up, as ``leadsync run`` does
                connector.ensure_fields(FIELDS)
            step, cursor = _sync(connector, app, clock, cursor, schedule, since=last)
            connector.close()
            last = started
            steps.append({"step": name, **step})
            clock.advance(3600)
    return {"crm": "salesforce", "contacts": n_contacts, "schedule": steps}


def run_actions(n_actions: int, n_contacts: int) -> dict[str, Any]:
    """One act step with ``n_actions`` crossings (Leads and Contacts as the org has
    them) after a full read, in a new process; see ``act_heavy`` in api_calls.py."""
    with _org(n_contacts) as (_sandbox, _app, clock, connect):
        reader = connect()
        reader.ensure_fields(FIELDS)
        now = clock.datetime()
        kinds: dict[str, str] = {}
        for batch in reader.read_changes(None, until=now, events_since=now - timedelta(days=90)):
            kinds.update((c.id, c.kind) for c in batch.contacts if not c.converted)
        reader.close()
        clock.advance(600)
        return act_heavy(connect(), kinds, n_actions, clock.datetime(), FIELDS[0].name)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    share = float(sys.argv[2]) if len(sys.argv) > 2 else 0.01
    print(json.dumps(run(n, share), indent=2))
