"""A sync's state store filled from a sandbox CRM, as ``leadsync demo`` builds it."""

from __future__ import annotations

import contextlib
import importlib.resources
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors import registry
from connectors.base import RuntimeContext
from connectors.sandbox import ManualClock, SandboxApp, serve
from scheduler.cli_sync import load_model_files, open_store
from scheduler.config import SyncConfig, config_from_mapping, secret_values
from scheduler.state import StateStore
from scheduler.sync import RunOptions, Sync


@dataclass
class World:
    config: SyncConfig
    connector: Any
    store: StateStore
    models: list[Any]
    clock: ManualClock
    sandbox: Any


@contextlib.contextmanager
def synced_world(
    crm: str, tmp: Path, *, contacts: int = 400, seed: int = 7, days: int = 180
) -> Iterator[World]:
    """``days``: the history the sandbox holds (its own default is a short window that
    keeps tests fast; benchmarks pass ``DEFAULT_DAYS``). The state store keeps all of it
    (``state.retain_events``), as a user who trains on a long history configures it."""
    clock = ManualClock(datetime(2026, 6, 30, tzinfo=UTC))
    with contextlib.ExitStack() as stack:
        starter = stack.enter_context(
            importlib.resources.as_file(
                importlib.resources.files("scoring").joinpath("data/models/starter.yaml")
            )
        )
        models = load_model_files([starter])
        if crm == "hubspot":
            from connectors.sandbox import HubSpotSandbox

            sandbox: Any = HubSpotSandbox(
                contacts=contacts, seed=seed, clock=clock, search_lag_seconds=0.0, days=days
            )
            server = stack.enter_context(serve(SandboxApp(sandbox, sleep=clock.sleep), port=0))
            secret_values(["sandbox-token"])
            section: dict[str, Any] = {
                "type": "hubspot",
                "hubspot": {"access_token": "sandbox-token", "base_url": server.base_url},
            }
        else:
            from connectors.sandbox import SalesforceSandbox

            score_fields = [{"name": f"{m.score_field}__c", "type": "double"} for m in models]
            sandbox = SalesforceSandbox(
                contacts=contacts,
                seed=seed,
                clock=clock,
                days=days,
                custom_fields={"Lead": score_fields, "Contact": score_fields},
            )
            ca_path = tmp / "ca.pem"
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
        context = RuntimeContext(now=clock.datetime, sleep=clock.sleep)
        connector = registry.create(crm, section[crm], context=context)
        stack.callback(connector.close)
        config = config_from_mapping(
            {
                "crm": section,
                "models": [str(starter)],
                "state": {
                    "url": f"sqlite:///{tmp / 'state.db'}",
                    "retain_events": f"{max(days, 400)}d",
                },
                "writeback": {"on_cross": {"deal": None, "task": None}},
            }
        )
        store = open_store(config)
        stack.callback(store.close)
        Sync(config, connector, store, models, now=clock.datetime).run(RunOptions(dry_run=True))
        yield World(config, connector, store, models, clock, sandbox)
