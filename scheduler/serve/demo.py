"""``leadsync demo --realtime``: a demo request scored and acted on within seconds.

Beside the embedded HubSpot sandbox it starts the real service on loopback (uvicorn,
its inbox in the demo's state store, the real processor), has the sandbox deliver
signed webhooks to it, then simulates what a marketing form does when someone asks
for a demo: it sets the contact's conversion properties. The sandbox sends the
webhook, the service stores it and answers, the worker reads the contact by id,
scores it, writes the score and creates the deal and the task. The sync's runs use
the demo's simulated clock; the elapsed time printed is the wall clock's.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.base import RuntimeContext
from connectors.runtime import Redactor
from scheduler.state import LedgerKind, LedgerStatus, StateStore
from scheduler.sync import RunOptions, Sync

__all__ = ["RealtimeDemo", "run_realtime_demo"]

PUBLIC = "https://leadsync-demo.example"  # the URL the sandbox signs for (a TLS proxy's)
DEMO_FORM = "demo-request"


@dataclass(frozen=True)
class RealtimeDemo:
    """What the demo showed: who asked, the score before and after, the actions, the
    wall time from the form to the last action, and the API calls the worker made."""

    contact_id: str
    name: str
    score_before: float | None
    score_after: float | None
    deal: str | None
    task: str | None
    seconds: float
    worker_calls: int


def _wall() -> datetime:
    return datetime.now(UTC)


def run_realtime_demo(
    *,
    contacts: int = 300,
    seed: int = 7,
    say: Callable[[str], None] = print,
    timeout: float = 30.0,
) -> RealtimeDemo:
    """Run the real-time demo (HubSpot sandbox); raises ``RuntimeError`` if the
    actions do not come within ``timeout`` wall seconds."""
    from connectors import registry
    from connectors.sandbox import ManualClock, generate_world
    from connectors.sandbox.hubspot.store import attach_webhooks
    from connectors.sandbox.hubspot.webhooks import WebhookSender, requests_post
    from scheduler.cli_demo import _demo_config, _start_sandbox
    from scheduler.cli_sandbox import SandboxOptions
    from scheduler.cli_sync import load_model_files
    from scheduler.serve.app import Service
    from scheduler.serve.inbox import Inbox
    from scheduler.serve.metrics import Metrics
    from scheduler.serve.processor import SyncProcessor
    from scheduler.serve.runner import start_in_thread
    from scheduler.serve.settings import ServeConfig, WorkerSettings
    from scheduler.serve.worker import Drainer

    begin = _wall()
    clock = ManualClock(begin)
    secret = secrets.token_urlsafe(24)  # the demo app's client secret, never printed
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="leadsync-realtime-"))
        starter = stack.enter_context(
            importlib.resources.as_file(
                importlib.resources.files("scoring").joinpath("data/models/starter.yaml")
            )
        )
        models = load_model_files([starter])
        world = generate_world(contacts, seed=seed, now=begin, days=120)
        crm = _start_sandbox("hubspot", world, models, seed, clock, stack, Path(tmp))
        context = RuntimeContext(now=clock.datetime, sleep=clock.sleep)
        connector = registry.create("hubspot", crm.section["hubspot"], context=context)
        stack.callback(connector.close)
        config = _demo_config(crm.section, starter, Path(tmp), world.days, connector)
        store = StateStore(config.state_url(), clock=clock.now)
        store.migrate()
        stack.callback(store.close)
        sync = Sync(config, connector, store, models, now=clock.datetime)
        base = sync.run(RunOptions())
        say(
            f"Sandbox HubSpot with {contacts} people at {crm.base_url}; baseline run: "
            f"{base.contacts_scored} scored, {base.scores_written} written, no actions."
        )

        serve = ServeConfig.model_validate(
            {"public_url": PUBLIC, "hubspot": {"client_secret": secret}}
        )
        inbox = Inbox(config.state_url(), now=_wall)
        inbox.create()
        metrics = Metrics(depth=inbox.depth)
        processor = SyncProcessor(Sync(config, connector, store, models, now=clock.datetime))
        drainer = Drainer(
            inbox,
            processor,
            now=_wall,
            settings=WorkerSettings(idle=timedelta(milliseconds=20)),
            metrics=metrics,
        )
        service = Service(serve, inbox, _wall, metrics, Redactor([secret]), drainer=drainer)
        running = start_in_thread(service)
        stack.callback(running.stop)
        say(f"leadsync serve on {running.url} (its worker drains the inbox as pushes come in).")

        def post(url: str, body: bytes, headers: Mapping[str, str]) -> Any:
            return requests_post(url.replace(PUBLIC, running.url), body, headers)

        sender = WebhookSender(
            PUBLIC + "/webhooks/hubspot",
            secret,
            clock,
            post=post,
            subscribed=frozenset(SandboxOptions().subscribed),
        )
        attach_webhooks(crm.sandbox.store, sender)

        cid, name = _quiet_contact(store, connector, models)
        before = _written(store, cid)
        calls0 = connector.budget().calls
        started = time.monotonic()
        say(f"{name} (contact {cid}) fills in the demo-request form ...")
        _submit_demo_form(crm.sandbox, cid, clock.now())
        sender.flush()  # the sandbox's webhook delivery (HubSpot sends within seconds)
        deal, task = _until_acted(store, cid, started + timeout)
        seconds = time.monotonic() - started
        after = _written(store, cid)
        calls = connector.budget().calls - calls0
        say(
            f"  webhook delivered, scored {_show(before)} -> {_show(after)}, "
            f"deal {deal!r}, task {task!r}: {seconds:.2f} s of wall time, "
            f"{calls} API calls by the worker."
        )
        return RealtimeDemo(cid, name, before, after, deal, task, round(seconds, 3), calls)
    raise AssertionError("unreachable")  # pragma: no cover


def _submit_demo_form(sandbox: Any, cid: str, now: float) -> None:
    """What the marketing form does in the sandbox: the same path as its simulated
    activity (the conversion properties are read-only through the API, as in HubSpot)."""
    from connectors.sandbox.world import FORMS, SimulatedEvent

    with sandbox._lock:
        table = sandbox.store.tables["contacts"]
        slot = table.slot_of(int(cid))
        if slot is None:
            raise RuntimeError(f"contact {cid} is not in the sandbox")
        event = SimulatedEvent(slot, "form_submit", now, FORMS.index(DEMO_FORM))
        sandbox._simulate_one(table, slot, [event], now)


def _show(score: float | None) -> str:
    return "-" if score is None else f"{score:g}"


def _written(store: StateStore, cid: str) -> float | None:
    states = store.model_states([cid])
    scores = [s.written_score for s in states.values() if s.written_score is not None]
    return max(scores) if scores else None


def _quiet_contact(store: StateStore, connector: Any, models: Any) -> tuple[str, str]:
    """A contact with an owner, below every threshold and without an open deal: the
    demo request is what makes them worth a call."""
    threshold = min(m.threshold for m in models)
    ids = store.contact_ids()
    states = store.model_states(ids)
    quiet = [
        cid
        for cid in ids
        if all(
            st.written_score is not None and st.written_score < threshold and st.armed
            for (c, _m), st in states.items()
            if c == cid
        )
    ]
    for start in range(0, len(quiet), 50):
        chunk = quiet[start : start + 50]
        deals = connector.open_deals(chunk)
        for cid in chunk:
            contact, _ = store.get_contact(cid)
            if contact is None or not contact.fields.get("owner_id") or deals.get(cid):
                continue
            first, last = contact.fields.get("first_name"), contact.fields.get("last_name")
            return cid, " ".join(str(p) for p in (first, last) if p) or cid
    raise RuntimeError("the demo's world has no quiet contact with an owner")


def _until_acted(store: StateStore, cid: str, deadline: float) -> tuple[str | None, str | None]:
    """Wait (wall clock, bounded) until the deal and the task are recorded as done."""
    while time.monotonic() < deadline:
        done = [e for e in store.ledger_for(cid) if e.status == LedgerStatus.DONE]
        deal = next((e for e in done if e.kind == LedgerKind.DEAL), None)
        task = next((e for e in done if e.kind == LedgerKind.TASK), None)
        if deal is not None and task is not None:
            return _spec(deal.spec, "name"), _spec(task.spec, "subject")
        time.sleep(0.02)
    raise RuntimeError("the demo request was not acted on in time")


def _spec(spec: Mapping[str, Any] | None, key: str) -> str | None:
    value = (spec or {}).get(key)
    return None if value is None else str(value)
