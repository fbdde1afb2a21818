"""The harness that runs leadsync's connector conformance suite against Notebook:
a fresh account per test on a manual clock, faults played by the backend itself."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

from connectors.base import Connector, RuntimeContext
from connectors.sandbox import ManualClock
from connectors.testing import Fault, Harness, ObjectKind
from notebook_crm import NotebookConnector
from notebook_crm.backend import Notebook, publish

_ACCOUNTS = itertools.count(1)


class NotebookHarness(Harness):
    score_field = "lead_score"

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.notebook = Notebook(clock=self.clock.datetime)
        self.account = f"conformance-{next(_ACCOUNTS)}"
        publish(self.account, self.notebook)
        for n in range(30):
            self.notebook.add_contact({"email": f"early{n}@example.com"})
            self.clock.advance(1)

    def settings(self) -> dict[str, object]:
        return {"account": self.account, "page_size": 40}

    def context(self) -> RuntimeContext:
        return RuntimeContext(now=self.clock.datetime, sleep=self.clock.sleep)

    def connector(self) -> Connector:
        return NotebookConnector.from_config(self.settings(), context=self.context())

    def now(self) -> datetime:
        return self.clock.datetime()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def seed_contacts(self, count: int, *, at: datetime) -> Sequence[str]:
        self.clock.advance(at.timestamp() - self.clock.now())
        return [self.notebook.add_contact({"email": f"seed{n}@example.com"}) for n in range(count)]

    def settle(self) -> None:
        self.clock.advance(1)  # a read sees what is stamped before its start

    def action_contact(self) -> str:
        return min(self.notebook.contacts)

    def unknown_contact_id(self) -> str:
        return "nb-999999"

    def inject(self, fault: Fault) -> None:
        self.notebook.fail_next_create(fault.value)

    def keyed(self, kind: ObjectKind, key: str) -> Sequence[str]:
        return self.notebook.keyed(kind, key)
