"""The HubSpot sandbox delivers signed webhooks from its store to the real service:
a change made through the API reaches ``leadsync serve`` and is acted on; leadsync's
own score writes send nothing (no subscription); merges and deletions arrive as such."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from realtime_world import HubSpotWorld, RealTime, start_realtime
from serve_helpers import HS_SECRET, PUBLIC

from connectors.sandbox.hubspot.store import attach_webhooks
from connectors.sandbox.hubspot.webhooks import WebhookSender, requests_post


@pytest.fixture
def w(tmp_path: Path) -> Iterator[HubSpotWorld]:
    world = HubSpotWorld(tmp_path)
    yield world
    world.close()


@pytest.fixture
def rt(w: HubSpotWorld, tmp_path: Path, serving: list[object]) -> RealTime:
    assert w.run().exit_code == 0
    assert w.run().exit_code == 0
    service = start_realtime(w, tmp_path)
    serving.append(service)
    return service


def _sender(w: HubSpotWorld, rt: RealTime) -> WebhookSender:
    def post(url: str, body: bytes, headers: Mapping[str, str]):  # type: ignore[no-untyped-def]
        # signed for the public URL, delivered to the service behind it (a TLS proxy)
        return requests_post(url.replace(PUBLIC, rt.live.url), body, headers)

    sender = WebhookSender(
        PUBLIC + "/webhooks/hubspot",
        HS_SECRET,
        w.clock,
        post=post,
        subscribed=frozenset({"jobtitle", "lifecyclestage", "email"}),
    )
    attach_webhooks(w.sandbox.store, sender)
    return sender


def test_an_api_change_is_delivered_scored_and_acted_on(w: HubSpotWorld, rt: RealTime) -> None:
    sender = _sender(w, rt)
    cid = w.contact_ids()[5]
    if not w.contact(cid).get("hubspot_owner_id"):
        w.set_owner(cid, w.owners()[0])
    assert sender.pending() == 0  # the owner is not subscribed
    w.set_title(cid, "zzbuyer")
    assert sender.pending() == 1
    (attempt,) = sender.flush()
    assert attempt.outcome == "delivered" and attempt.status == 200
    assert rt.drain() == 1
    s = rt.processor.summaries[-1]
    assert (s.crossings, s.deals, s.tasks, s.scores_written) == (1, 1, 1, 1)
    # leadsync's own score write, deal and task send nothing (no subscription loops)
    assert sender.pending() == 0


def test_merges_and_deletions_arrive_as_such(w: HubSpotWorld, rt: RealTime) -> None:
    sender = _sender(w, rt)
    ids = w.contact_ids()
    keep, gone, deleted = ids[10], ids[11], ids[12]
    w.merge(keep, gone)
    w.archive(deleted)
    sender.flush()
    assert rt.drain() == 2
    assert w.store.get_contact(deleted)[0] is None
    assert w.store.get_contact(gone)[0] is None and w.store.get_contact(keep)[0] is None
    survivor = str(w.sandbox.store.resolve("contacts", int(keep)))
    assert w.store.get_contact(survivor)[0] is not None
