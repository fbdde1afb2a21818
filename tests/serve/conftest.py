"""Fixtures of the serve tests (helpers live in ``serve_helpers``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import Live, start_live


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    service = start_live(tmp_path)
    try:
        yield service
    finally:
        service.client.close()
        service.running.stop()
