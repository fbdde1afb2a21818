"""serve and the scheduled runs are separate processes, each with its own connector.
A contact serve has scored and written is changed in the CRM by that write only: the
next scheduled run must not read it again (its engagement, the portal-wide e-mail
events and form submissions), as it does not read its own writes again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from realtime_world import HubSpotWorld, RealTime, start_realtime
from serve_helpers import hs_event


@pytest.fixture
def w(tmp_path: Path) -> Iterator[HubSpotWorld]:
    world = HubSpotWorld(tmp_path)
    yield world
    world.close()


@pytest.fixture
def rt(w: HubSpotWorld, tmp_path: Path, serving: list[object]) -> RealTime:
    assert w.run().exit_code == 0  # baseline
    assert w.run().exit_code == 0  # reads the baseline's own writes back
    # serve's own connector, as in its own process
    service = start_realtime(w, tmp_path, connector=w.make_connector())
    serving.append(service)
    return service


def _reads(routes: dict[str, int]) -> dict[str, int]:
    """Reads beyond the change search, the archived list and the outcomes search."""
    return {
        r: n
        for r, n in routes.items()
        if ("batch/read" in r or "/email/" in r or "form" in r) and "deals" not in r
    }


def test_the_next_run_reads_nothing_serve_handled(w: HubSpotWorld, rt: RealTime) -> None:
    cids = w.contact_ids()[3:6]
    for n, cid in enumerate(cids):
        w.set_title(cid, "zzbuyer")
        assert (
            rt.live.hubspot([hs_event(n + 1, int(cid), propertyValue="zzbuyer")]).status_code == 200
        )
    assert rt.drain() == 3
    assert rt.processor.summaries[-1].scores_written == 3
    w.connector = w.make_connector()  # the scheduled run: a process of its own
    run = w.run()
    assert run.exit_code == 0, run.error
    assert run.contacts_read == 0 and run.scores_written == 0 and run.deals == 0
    assert _reads(w.app.stats()["by_route"]) == {}
