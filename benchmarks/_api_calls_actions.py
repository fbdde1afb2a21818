"""The act step and the outcomes read of a benchmark run, as the sync does them.

A contact crosses when a model's score reaches its threshold while armed; it re-arms
below ``rearm_below``. The first (full) run is a baseline: who is hot then is not acted
on. Each later run checks the crossing contacts for open deals, then creates a deal and
a task for each in batches (``CreatesInBatches``), and reads the deal outcomes changed
since the previous run. Calls are counted from the connector's own meter.

Minimum of the act step, per run with ``a`` actions (0 when none):
  HubSpot     ceil(a / 1,000) association reads for open deals + ceil(a / 100) deal
              creates + ceil(a / 100) task creates (each with its association)
  Salesforce  ceil(a / ids per query) open-opportunity queries + as many Contact reads
              (an Opportunity needs the Contact's Account) + ceil(a / 200) upserts for
              Opportunities, contact roles and Tasks each
The keyed reads that make a retried create exactly-once are overhead, not minimum; an
action the ledger never sent needs none (HubSpot's unique key still refuses a second).
Outcomes: one page of changed deals (HubSpot deal search / Salesforce Opportunity
query), plus their contacts' association reads when any changed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from connectors.base import (
    CreatesInBatches,
    DealSpec,
    OwnerSpec,
    ReadsConversions,
    ScoreUpdate,
    SharesOwnWrites,
    TaskSpec,
)


class Crossings:
    """Armed state per (contact, score field), as the sync keeps it."""

    def __init__(self, models: Any) -> None:
        self.rules: dict[str, tuple[float, float]] = {}
        for m in models.models if models is not None else []:
            self.rules[m.score_field] = (float(m.threshold), float(m.rearm_below))
        self.hot: set[tuple[str, str]] = set()
        self.counter = 0

    def crossed(
        self, scores: Mapping[str, Mapping[str, float]], *, baseline: bool
    ) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for cid, values in scores.items():
            for field, score in values.items():
                threshold, rearm = self.rules.get(field, (60.0, 40.0))
                key = (cid, field)
                if score >= threshold and key not in self.hot:
                    self.hot.add(key)
                    if not baseline:
                        out.append(key)
                elif score < rearm:
                    self.hot.discard(key)
        return out


def act(
    connector: Any, crossings: list[tuple[str, str]], now: datetime, kinds: Mapping[str, str]
) -> dict[str, int]:
    """Open-deal check, then deals and tasks in batches; returns calls and counts."""
    if not crossings:
        return {"calls": 0, "actions": 0}
    meter: Any = connector  # narrowed below to the batch capability
    before = meter.budget().calls
    people = sorted({cid for cid, _ in crossings})
    contacts = [c for c in people if kinds.get(c, "contact") != "lead"]
    busy = (
        {c for c, deals in connector.open_deals(contacts).items() if deals} if contacts else set()
    )
    todo = [(c, f) for c, f in crossings if c not in busy]
    deals = [
        DealSpec(
            key=f"bench:{c}:{f}:{now.timestamp():.0f}:deal",
            contact_id=c,
            name=f"Hot lead {c}",
            owner_id=None,
            stage="appointmentscheduled" if connector.name == "hubspot" else "Prospecting",
            close_date=date(2027, 1, 31),
            contact_kind="lead" if kinds.get(c) == "lead" else "contact",
            crm_options={"lead_status": "Working - Contacted"},
            first_attempt=True,  # as the sync hands on an action its ledger never sent
        )
        for c, f in todo
    ]
    tasks = [
        TaskSpec(
            key=f"bench:{c}:{f}:{now.timestamp():.0f}:task",
            contact_id=c,
            owner_id=None,
            subject=f"Call {c}",
            body="crossed",
            due_at=now + timedelta(days=1),
            contact_kind="lead" if kinds.get(c) == "lead" else "contact",
            first_attempt=True,
        )
        for c, f in todo
    ]
    if not isinstance(connector, CreatesInBatches):
        raise RuntimeError(f"{connector.name}: no batch actions")
    batched: CreatesInBatches = connector
    made = list(batched.create_deals(deals)) + list(batched.create_tasks(tasks))
    failed = [m for m in made if not hasattr(m, "created")]
    if failed:
        raise RuntimeError(f"{len(failed)} actions failed: {failed[0]}")
    return {
        "calls": meter.budget().calls - before,
        "actions": len(todo),
        "open_deal_skips": len(busy),
        "contacts": len(contacts),
    }


def act_heavy(
    connector: Any, kinds: Mapping[str, str], n_actions: int, now: datetime, score_field: str
) -> dict[str, Any]:
    """An act step with ``n_actions`` crossings, as a campaign's burst gives one: the
    owner list, an owner for each crossing person (round robin over the active
    users, the sync's ``assign_owner``), the open-deal check, then deals and tasks
    in batches, and (HubSpot) the read of the stamps the deals moved. Every call from
    the owner list on is counted against the actions, but the score writes of the
    people acted on: the sync writes their new scores after the actions (which is
    why their answers carry the stamps the deals moved), and those writes are the
    write step's, made with or without actions."""
    if not isinstance(connector, CreatesInBatches):
        raise RuntimeError(f"{connector.name}: no batch actions")
    people = sorted(kinds)[:n_actions]
    if len(people) < n_actions:
        raise RuntimeError(f"only {len(people)} people to cross, {n_actions} asked")
    before = connector.budget().calls
    owners = [o for o in connector.list_owners() if o.active and o.kind == "person"]
    assigned = list(
        connector.set_owners(
            [
                OwnerSpec(
                    key=f"bench-owner:{cid}",
                    contact_id=cid,
                    owner_id=owners[i % len(owners)].id,
                    kind="lead" if kinds[cid] == "lead" else "contact",
                )
                for i, cid in enumerate(people)
            ]
        )
    )
    refused = [o for o in assigned if not hasattr(o, "created")]
    if refused:
        raise RuntimeError(f"{len(refused)} owner writes refused: {refused[0]}")
    acted = act(connector, [(cid, "lead_score") for cid in people], now, kinds)
    writing = connector.budget().calls
    connector.write_scores([ScoreUpdate(cid, {score_field: 90.0}) for cid in people])
    score_write_calls = connector.budget().calls - writing
    if isinstance(connector, SharesOwnWrites):
        # HubSpot: the new stamps of the contacts the deals were linked to, read once
        # after the step (at the checkpoint, or when serve hands its writes on)
        connector.own_writes()
    calls = connector.budget().calls - before - score_write_calls
    connector.close()
    return {
        "crm": connector.name,
        "actions": acted["actions"],
        "open_deal_skips": acted.get("open_deal_skips", 0),
        "owner_writes": len(assigned),
        "score_write_calls_not_counted": score_write_calls,
        "calls": calls,
        "calls_per_action": round(calls / acted["actions"], 3) if acted["actions"] else None,
    }


def act_minimum(crm: str, acted: Mapping[str, int], per_query: int = 400) -> int:
    a = acted.get("actions", 0)
    if not acted.get("calls"):
        return 0
    checked = acted.get("contacts", 0)
    if crm == "hubspot":
        return math.ceil(checked / 1000) + 2 * math.ceil(a / 100)
    return 2 * math.ceil(checked / per_query) + 3 * math.ceil(a / 200)


def outcomes(connector: Any, since: datetime | None) -> tuple[int, int]:
    """Calls of one outcomes read (deals changed since ``since``, and on Salesforce
    the Lead conversions, as the sync reads them), and its minimum: one page of
    changed deals per 200, and, when any changed, their contacts' links (HubSpot: one
    association read per 1,000; Salesforce: in the same query; the conversions come
    with the Opportunities)."""
    before = connector.budget().calls
    deals = {d.id for d in connector.read_deal_outcomes(since)}
    if isinstance(connector, ReadsConversions):  # as the sync's outcomes read does
        list(connector.read_conversions(since))
    calls = int(connector.budget().calls - before)
    minimum = max(1, math.ceil(len(deals) / 200))
    if connector.name == "hubspot":
        minimum += math.ceil(len(deals) / 1000)
    return calls, minimum
