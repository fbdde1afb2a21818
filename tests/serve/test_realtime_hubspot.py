"""``leadsync serve`` end to end against the HubSpot sandbox: signed webhooks through
the real service on uvicorn, the real processor and connector, then the scheduled sync."""

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
    service = start_realtime(w, tmp_path)
    serving.append(service)
    return service


def _owned(w: HubSpotWorld) -> str:
    cid = w.contact_ids()[5]
    if not w.contact(cid).get("hubspot_owner_id"):
        w.set_owner(cid, w.owners()[0])
    return cid


def test_webhook_change_is_scored_and_acted_on_in_one_drain(w: HubSpotWorld, rt: RealTime) -> None:
    cid = _owned(w)
    w.set_title(cid, "zzbuyer")
    r = rt.live.hubspot([hs_event(1, int(cid), propertyValue="zzbuyer")])
    assert r.status_code == 200
    assert rt.drain() == 1
    s = rt.processor.summaries[-1]
    assert (s.crossings, s.deals, s.tasks, s.scores_written) == (1, 1, 1, 1)
    assert float(w.contact(cid)["leadsync_score"]) >= 75
    assert len(w.deals_of(cid)) == 1 and len(w.tasks_of(cid)) == 1
    # The next scheduled run takes no second action, writes nothing, and does not
    # take serve's score write, nor the deal's move of the contact's stamp, for a change.
    w.app.reset_stats()
    run = w.run()
    assert run.exit_code == 0, run.error
    assert (run.deals, run.tasks, run.crossings, run.scores_written) == (0, 0, 0, 0)
    # (its connector skips the echo: serve shared its write's stamp and digest)
    assert run.serve_echoes == 0 and run.contacts_read == 0
    # serve shared its deal's contact too: the outcomes read needs no association read
    routes = w.app.stats()["by_route"]
    assert "POST /crm/v4/associations/deals/contacts/batch/read" not in routes, routes
    assert len(w.deals_of(cid)) == 1
    assert w.writes() == 0


def test_redelivery_and_reordering_act_once(w: HubSpotWorld, rt: RealTime) -> None:
    cid = _owned(w)
    w.set_title(cid, "zzbuyer")
    later = hs_event(2, int(cid), propertyValue="zzbuyer")
    earlier = hs_event(1, int(cid), propertyValue="zzcool", at=rt.live.clock().replace(minute=0))
    assert rt.live.hubspot([later, earlier]).status_code == 200
    rt.drain()
    # HubSpot retries the same batch (same event ids), then another attempt.
    assert rt.live.hubspot([later, earlier]).status_code == 200
    assert rt.live.hubspot([{**later, "attemptNumber": 1}]).status_code == 200
    rt.drain()
    rt.live.clock.advance(seconds=30)
    assert rt.live.hubspot([hs_event(3, int(cid), propertyValue="zzbuyer")]).status_code == 200
    rt.drain()
    assert len(w.deals_of(cid)) == 1 and len(w.tasks_of(cid)) == 1
    # The score reflects the CRM now, not the order the payloads came in.
    assert float(w.contact(cid)["leadsync_score"]) >= 75


def test_a_lost_swap_skips_the_crossing(w: HubSpotWorld, rt: RealTime) -> None:
    """Another process consumed the crossing between this batch's read and its
    transaction: no intent, no deal."""
    cid = _owned(w)
    w.set_title(cid, "zzbuyer")
    store = rt.processor.sync.store
    real = store.model_states

    def racing(ids: list[str]) -> dict:  # type: ignore[type-arg]
        states = real(ids)
        # the scheduled run consumes the crossing meanwhile
        with store.tx() as conn:
            for st in states.values():
                store.put_model_states(
                    conn, [type(st)(**{**_fields(st), "armed": False, "crossings": 1})]
                )
        return states

    store.model_states = racing  # type: ignore[method-assign]
    try:
        assert rt.live.hubspot([hs_event(1, int(cid))]).status_code == 200
        rt.drain()
    finally:
        store.model_states = real  # type: ignore[method-assign]
    s = rt.processor.summaries[-1]
    assert s.deals == 0 and s.crossings == 0
    assert w.deals_of(cid) == [] and store.ledger_for(cid) == []


def _fields(st: object) -> dict:  # type: ignore[type-arg]
    import dataclasses

    return {f.name: getattr(st, f.name) for f in dataclasses.fields(st)}  # type: ignore[arg-type]


def test_score_written_is_stamped_when_the_crm_took_the_score_before_any_deal(
    w: HubSpotWorld, rt: RealTime
) -> None:
    import sqlalchemy as sa

    cid = _owned(w)
    w.set_title(cid, "zzbuyer")
    sync = rt.processor.sync
    seen: list[tuple[float, int]] = []
    real = sync.score_now

    def spy(batch, ids, *, scores_written=None):  # type: ignore[no-untyped-def]
        def at_ack() -> None:
            seen.append((float(w.contact(cid)["leadsync_score"]), len(w.deals_of(cid))))
            assert scores_written is not None
            scores_written()

        return real(batch, ids, scores_written=at_ack)

    sync.score_now = spy  # type: ignore[method-assign]
    assert rt.live.hubspot([hs_event(1, int(cid), propertyValue="zzbuyer")]).status_code == 200
    assert rt.drain() == 1
    assert len(seen) == 1 and seen[0][0] >= 75 and seen[0][1] == 0  # score in, no deal yet
    assert len(w.deals_of(cid)) == 1
    box = rt.live.inbox
    with box.engine.connect() as conn:
        received, scored, done = conn.execute(
            sa.select(box.t.c.received_at, box.t.c.scored_at, box.t.c.done_at)
        ).one()
    assert received <= scored <= done
