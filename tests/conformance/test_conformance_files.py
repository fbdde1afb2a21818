"""The connector conformance suite against the read-only ``files`` connector: an
export in a temporary directory is its backend."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors import registry
from connectors.base import Connector, RuntimeContext
from connectors.sandbox import ManualClock
from connectors.testing import ConnectorSuite, Harness


class FilesHarness(Harness):
    """An export as a user would write one: each seed rewrites the CSV with its rows
    stamped ``updated_at`` and the file's modification time set to the stamp."""

    read_only = True

    def __init__(self, directory: Path) -> None:
        self.clock = ManualClock()
        self.path = directory / "contacts.csv"
        self.rows: list[str] = []
        for _ in range(20):
            self._row(self.clock.datetime())
        self._write()

    def _row(self, at: datetime) -> str:
        ident = f"c{len(self.rows) + 1:05d}"
        self.rows.append(f"{ident},{ident}@example.com,Buyer,{at.isoformat()}")
        return ident

    def _write(self) -> None:
        self.path.write_text("id,email,job_title,updated_at\n" + "\n".join(self.rows) + "\n")
        stamp = self.clock.now()
        os.utime(self.path, (stamp, stamp))

    def connector(self) -> Connector:
        context = RuntimeContext(now=self.clock.datetime, sleep=self.clock.sleep)
        settings = {"contacts": str(self.path), "batch_size": 50}
        return registry.create("files", settings, context=context)

    def now(self) -> datetime:
        return self.clock.datetime()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def seed_contacts(self, count: int, *, at: datetime) -> Sequence[str]:
        self.clock.advance(max(0.0, at.timestamp() - self.clock.now()))
        ids = [self._row(at.astimezone(UTC)) for _ in range(count)]
        self._write()
        return ids

    def seed_unreadable(self) -> None:
        """A second row for an id already in the export: which one to score is the
        export's question, so the connector skips it and says where it is."""
        self.rows.append(self.rows[0])
        self._write()


class TestFilesConformance(ConnectorSuite):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[FilesHarness]:
        yield FilesHarness(tmp_path)
