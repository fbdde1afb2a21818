"""Every server a serve test starts is stopped before the test ends: the check of
``conftest.no_server_left`` finds one left running, and ``RunningService.stop``
leaves no thread behind (not even with a client's kept-alive connection open)."""

from __future__ import annotations

from pathlib import Path

import httpx
from serve_helpers import server_threads, start_live, stop_leftovers


def test_a_server_left_running_is_found_and_stopped(tmp_path: Path) -> None:
    before = set(server_threads())
    service = start_live(tmp_path, worker=True)
    service.client.close()
    left = [t for t in server_threads() if t not in before]
    assert sorted(t.name for t in left) == ["leadsync-drainer", "leadsync-serve"]
    stop_leftovers(left)
    assert not any(t.is_alive() for t in left)


def test_stop_ends_the_threads_with_a_connection_kept_alive(tmp_path: Path) -> None:
    before = set(server_threads())
    service = start_live(tmp_path, worker=True)
    kept = httpx.Client(timeout=5)
    try:
        assert kept.get(service.url + "/healthz").status_code == 200  # stays open
        service.close()
        assert [t for t in server_threads() if t not in before] == []
        service.close()  # a second stop is harmless
    finally:
        kept.close()
