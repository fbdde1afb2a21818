"""The sandboxes' senders (HubSpot webhooks, Salesforce Outbound Messages) against the
running service: batches, signatures, retries like the real CRMs, redelivery."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta

from serve_helpers import HS_SECRET, PUBLIC, SF_ORG, SF_TOKEN, Live

from connectors.sandbox.hubspot import webhooks
from connectors.sandbox.hubspot.webhooks import RETRY_DELAYS, WebhookSender
from connectors.sandbox.salesforce import outbound
from connectors.sandbox.salesforce.outbound import OutboundMessenger

HOOK = PUBLIC + "/webhooks/hubspot"
SF_URL = f"{PUBLIC}/webhooks/salesforce/{SF_TOKEN}"


class SharedClock:
    """One time for the sender and the service (the signature window is 5 minutes)."""

    def __init__(self, live: Live) -> None:
        self.live = live

    def now(self) -> float:
        return self.live.clock().timestamp()

    def advance(self, seconds: float) -> None:
        # the service's clock keeps microseconds: round up so that "due" is reached
        self.live.clock.advance(seconds=seconds + 1e-6)


def proxy(live: Live, real: object) -> object:
    """A TLS-terminating proxy: the sender calls the public URL, the service gets it
    on loopback (the signature still covers the public URL)."""

    def post(url: str, body: bytes, headers: Mapping[str, str]) -> object:
        return real(url.replace(PUBLIC, live.url), body, headers)  # type: ignore[operator]

    return post


def hubspot_sender(live: Live, **kw: object) -> WebhookSender:
    kw.setdefault("post", proxy(live, webhooks.requests_post))
    return WebhookSender(HOOK, kw.pop("secret", HS_SECRET), SharedClock(live), **kw)  # type: ignore[arg-type]


def test_changes_are_delivered_in_signed_batches_of_100(live: Live) -> None:
    sender = hubspot_sender(live)
    for contact in range(150):
        sender.property_changed(2_147_480_001 + contact, "jobtitle", "CTO")
    sender.contact_created(2_147_490_000)
    done = sender.flush()
    assert [(a.events, a.status, a.outcome) for a in done] == [
        (100, 200, "delivered"),
        (51, 200, "delivered"),
    ]
    assert live.inbox.counts() == {"pending": 151}
    assert sender.pending() == 0


def test_a_401_is_not_retried(live: Live) -> None:
    sender = hubspot_sender(live, secret="rotated-secret-xyz")
    sender.contact_created(1)
    assert [a.outcome for a in sender.flush()] == ["dropped"]
    assert sender.pending() == 0 and live.inbox.counts() == {}


def test_failures_are_retried_10_times_within_a_day_then_dropped(live: Live) -> None:
    calls: list[int] = []

    def down(url: str, body: bytes, headers: Mapping[str, str]) -> None:
        calls.append(json.loads(body)[0]["attemptNumber"])
        return None  # no answer

    clock = SharedClock(live)
    sender = WebhookSender(HOOK, HS_SECRET, clock, post=down)
    sender.contact_created(1)
    start = clock.now()
    sender.flush()
    while (due := sender.next_due()) is not None:
        clock.advance(due - clock.now())
        sender.flush()
    assert calls == list(range(11))  # the first delivery and 10 retries
    assert [a.outcome for a in sender.attempts] == ["retry"] * 10 + ["dropped"]
    assert clock.now() - start < 24 * 3600
    assert clock.now() - start > 0.75 * sum(RETRY_DELAYS)


def test_a_delivery_whose_answer_was_lost_is_redelivered_and_deduplicated(live: Live) -> None:
    real = proxy(live, webhooks.requests_post)
    lost = {"first": True}

    def flaky(url: str, body: bytes, headers: Mapping[str, str]) -> object:
        answer = real(url, body, headers)  # type: ignore[operator]
        if lost["first"]:
            lost["first"] = False
            return None  # stored, but the 200 never reached HubSpot
        return answer

    clock = SharedClock(live)
    sender = WebhookSender(HOOK, HS_SECRET, clock, post=flaky)  # type: ignore[arg-type]
    sender.property_changed(7, "lifecyclestage", "lead")
    assert [a.outcome for a in sender.flush()] == ["retry"]
    clock.advance(sender.next_due() - clock.now())  # type: ignore[operator]
    assert [a.outcome for a in sender.flush()] == ["delivered"]
    assert live.inbox.counts() == {"pending": 1}
    metrics = live.client.get(live.url + "/metrics").text
    assert 'leadsync_events_duplicate_total{source="hubspot"} 1.0' in metrics


def test_a_429_waits_for_retry_after(live: Live) -> None:
    def limited(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, str]]:
        return 429, {"Retry-After": "7200"}

    clock = SharedClock(live)
    sender = WebhookSender(HOOK, HS_SECRET, clock, post=limited)
    sender.contact_created(1)
    sender.flush()
    assert sender.next_due() == clock.now() + 7200


# ----------------------------------------------------------------------- Salesforce


def messenger(live: Live, url: str = SF_URL, **kw: object) -> OutboundMessenger:
    kw.setdefault("post", proxy(live, outbound.requests_post))
    return OutboundMessenger(url, SF_ORG, SharedClock(live), **kw)  # type: ignore[arg-type]


def test_outbound_messages_are_acknowledged_and_stored(live: Live) -> None:
    sender = messenger(live)
    for n in range(120):
        sender.record_changed("Lead", {"Id": f"00Q5g{n:013d}", "Email": f"p{n}@example.com"})
    sender.record_changed("Contact", {"Id": "0035g000000000001AAA", "Email": "c&o@example.com"})
    done = sender.flush()
    assert [(d.notifications, d.outcome) for d in done] == [(100, "delivered"), (21, "delivered")]
    assert live.inbox.counts() == {"pending": 121}
    while live.drainer.run_once():
        pass
    emails = {i.email for i in live.processor.seen}
    assert len(emails) == 121
    assert "c&o@example.com" in emails


def test_an_unacknowledged_message_is_retried_then_dropped_after_a_day(live: Live) -> None:
    sender = messenger(live, url=f"{PUBLIC}/webhooks/salesforce/not-the-token-000000")
    clock = SharedClock(live)
    sender.record_changed("Lead", {"Id": "00Q5g0000000001AAA"})
    start = clock.now()
    sender.flush()
    gaps = []
    while (due := sender.next_due()) is not None:
        gaps.append(round(due - clock.now(), 3))
        clock.advance(due - clock.now())
        sender.flush()
    assert all(d.status == 401 for d in sender.deliveries)
    assert sender.deliveries[-1].outcome == "dropped"
    assert max(gaps) == 7200 and gaps[:3] == [15, 30, 60]
    assert clock.now() - start <= 24 * 3600
    assert live.inbox.counts() == {}


def test_a_lost_ack_redelivers_the_same_notification_ids(live: Live) -> None:
    real = proxy(live, outbound.requests_post)
    calls = {"n": 0}

    def lose_first(url: str, body: bytes, headers: Mapping[str, str]) -> object:
        calls["n"] += 1
        answer = real(url, body, headers)  # type: ignore[operator]
        return None if calls["n"] == 1 else answer

    clock = SharedClock(live)
    sender = OutboundMessenger(SF_URL, SF_ORG, clock, post=lose_first)  # type: ignore[arg-type]
    sender.record_changed("Contact", {"Id": "0035g000000000001AAA"})
    sender.flush()
    clock.advance(timedelta(seconds=15).total_seconds())
    assert [d.outcome for d in sender.flush()] == ["delivered"]
    assert live.inbox.counts() == {"pending": 1}


def test_only_subscribed_properties_are_sent(live: Live) -> None:
    sender = hubspot_sender(live, subscribed=frozenset({"jobtitle", "recent_conversion_date"}))
    sender.property_changed(1, "leadsync_score", "87")  # our own write: no webhook, no loop
    sender.property_changed(1, "jobtitle", "CTO")
    assert sender.pending() == 1
    sender.flush()
    live.drainer.run_once()
    assert [i.payload["propertyName"] for i in live.processor.seen] == ["jobtitle"]
