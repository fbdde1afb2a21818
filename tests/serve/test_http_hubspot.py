"""``POST /webhooks/hubspot`` on the real service: v3 signatures, redelivery, order."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
from datetime import timedelta

from hubspot.utils.signature import Signature
from hypothesis import given, settings
from hypothesis import strategies as st
from serve_helpers import HS_SECRET, PUBLIC, T0, Live, hs_event

from scheduler.serve.signatures import hubspot_signature, verify_hubspot


def test_a_signed_batch_is_stored_before_the_answer(live: Live) -> None:
    answer = live.hubspot([hs_event(1, 101), hs_event(2, 102)])
    assert answer.status_code == 200
    assert answer.json() == {"accepted": 2, "duplicates": 0}
    assert live.inbox.status_of("hubspot:1") == "pending"
    assert live.inbox.depth() == 2


def test_a_wrong_signature_is_refused_and_nothing_is_stored(live: Live) -> None:
    answer = live.hubspot([hs_event(1, 101)], secret="not-the-client-secret")
    assert answer.status_code == 401
    assert answer.json()["error"] == "bad_signature"
    assert live.inbox.counts() == {}


def test_a_stale_timestamp_is_refused(live: Live) -> None:
    old = live.hubspot([hs_event(1, 101)], stamp=T0 - timedelta(minutes=5, seconds=1))
    future = live.hubspot([hs_event(2, 101)], stamp=T0 + timedelta(minutes=6))
    fresh = live.hubspot([hs_event(3, 101)], stamp=T0 - timedelta(minutes=4, seconds=59))
    assert (old.status_code, old.json()["error"]) == (401, "stale")
    assert future.status_code == 401
    assert fresh.status_code == 200
    assert live.inbox.counts() == {"pending": 1}


def test_missing_headers_are_refused(live: Live) -> None:
    no_sig = live.hubspot([hs_event(1, 101)], headers={"X-HubSpot-Signature-v3": ""})
    answer = live.client.post(live.url + "/webhooks/hubspot", content=b"[]")
    assert no_sig.status_code == 401 and answer.status_code == 401
    assert answer.json()["error"] == "missing_signature"
    assert live.inbox.counts() == {}


def test_the_signature_covers_the_public_url_not_the_one_the_service_sees(live: Live) -> None:
    # Behind a TLS proxy the service sees http://127.0.0.1:PORT; HubSpot signed https://...
    body = b"[]"
    ts = str(int(T0.timestamp() * 1000))
    local = hubspot_signature(HS_SECRET, "POST", live.url + "/webhooks/hubspot", body, ts)
    answer = live.client.post(
        live.url + "/webhooks/hubspot",
        content=body,
        headers={"X-HubSpot-Signature-v3": local, "X-HubSpot-Request-Timestamp": ts},
    )
    assert answer.status_code == 401


def test_an_encoded_query_string_is_signed_as_hubspot_does(live: Live) -> None:
    # Hand-checked: HubSpot decodes %2F, %3F, %3A ... (not %3D, not %20) before signing, so
    # the source string is the one written out below.
    query = "portal=62515&next=%2Fdone%3Fa%3D1&name=J%20Doe"
    source = (
        "POST"
        "https://hooks.example.com/webhooks/hubspot?portal=62515&next=/done?a%3D1&name=J%20Doe"
        '[{"eventId":1}]'
        "1700000000000"
    )
    expected = base64.b64encode(
        hmac.new(b"yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", source.encode(), hashlib.sha256).digest()
    ).decode()
    assert expected == "DHckqbAaRkeUvXsmnnhnX/2M8st4s6w+p2Mt3kg01HA="
    assert (
        hubspot_signature(
            "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
            "POST",
            f"https://hooks.example.com/webhooks/hubspot?{query}",
            b'[{"eventId":1}]',
            "1700000000000",
        )
        == expected
    )
    # and through the running service, with the query as sent
    answer = live.hubspot([hs_event(7, 101)], query=query)
    assert answer.status_code == 200, answer.text


def test_redelivery_is_a_no_op(live: Live) -> None:
    batch = [hs_event(1, 101), hs_event(2, 102)]
    assert live.hubspot(batch).json() == {"accepted": 2, "duplicates": 0}
    again = live.hubspot([*batch, hs_event(3, 103)])
    assert again.status_code == 200
    assert again.json() == {"accepted": 1, "duplicates": 2}
    assert live.inbox.counts() == {"pending": 3}
    metrics = live.client.get(live.url + "/metrics").text
    assert 'leadsync_events_received_total{source="hubspot"} 3.0' in metrics
    assert 'leadsync_events_duplicate_total{source="hubspot"} 2.0' in metrics


def test_events_arriving_out_of_order_are_processed_in_the_order_they_happened(
    live: Live,
) -> None:
    late = hs_event(2, 101, at=T0 - timedelta(seconds=30), propertyValue="VP")
    early = hs_event(1, 101, at=T0 - timedelta(seconds=90), propertyValue="Manager")
    live.hubspot([hs_event(3, 101, at=T0)])
    live.hubspot([late])
    live.hubspot([early])
    assert live.drainer.run_once() == 3
    seen = [i.payload.get("propertyValue") for i in live.processor.seen]
    assert seen == ["Manager", "VP", "CTO"]


def test_only_contact_events_are_kept(live: Live) -> None:
    deal = hs_event(5, 900, subscriptionType="deal.propertyChange")
    merge = hs_event(
        6, 101, subscriptionType="contact.merge", primaryObjectId=100, mergedObjectIds=[101]
    )
    generic = hs_event(8, 104, subscriptionType="object.creation", objectTypeId="0-1")
    answer = live.hubspot([deal, merge, generic])
    assert answer.json() == {"accepted": 2, "duplicates": 0}
    live.drainer.run_once()
    kinds = {(i.kind, i.contact_id) for i in live.processor.seen}
    assert kinds == {("merged", "100"), ("created", "104")}


@settings(max_examples=60, deadline=None)
@given(
    secret=st.text(min_size=8, max_size=40),
    body=st.text(max_size=300),
    path=st.text(alphabet=string.ascii_letters + string.digits + "-._~/", max_size=30),
    query=st.text(alphabet=string.ascii_letters + string.digits + "-._~=&", max_size=30),
    method=st.sampled_from(["POST", "GET", "PUT"]),
    ms=st.integers(min_value=0, max_value=299_000),
)
def test_agrees_with_hubspots_client_library(
    secret: str, body: str, path: str, query: str, method: str, ms: int
) -> None:
    """On URIs without escapes (where HubSpot's recipe and its Python helper agree),
    our signature is the helper's, and the helper's is accepted."""
    uri = f"{PUBLIC}/{path}" + (f"?{query}" if query else "")
    now = T0
    ts = str(int(now.timestamp() * 1000) - ms)
    theirs = Signature.get_signature(secret, body, "v3", uri, method, ts)
    assert hubspot_signature(secret, method, uri, body.encode(), ts) == theirs
    ok = verify_hubspot(
        secret, method=method, uri=uri, body=body.encode(), signature=theirs, timestamp=ts, now=now
    )
    assert ok is None
    wrong = verify_hubspot(
        secret + "x",
        method=method,
        uri=uri,
        body=body.encode(),
        signature=theirs,
        timestamp=ts,
        now=now,
    )
    assert wrong is not None and wrong.reason == "bad_signature"


def test_concurrent_requests_are_all_stored_and_redeliveries_counted_once(live: Live) -> None:
    import asyncio
    import json as _json

    import httpx

    async def send_all() -> list[dict[str, int]]:
        async with httpx.AsyncClient(timeout=30) as client:

            async def one(n: int) -> dict[str, int]:
                body = _json.dumps([hs_event(n % 40, 100 + n % 40)]).encode()
                ts = str(int(T0.timestamp() * 1000))
                sig = hubspot_signature(HS_SECRET, "POST", PUBLIC + "/webhooks/hubspot", body, ts)
                answer = await client.post(
                    live.url + "/webhooks/hubspot",
                    content=body,
                    headers={"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts},
                )
                assert answer.status_code == 200
                return answer.json()  # type: ignore[no-any-return]

            return await asyncio.gather(*(one(n) for n in range(120)))

    answers = asyncio.run(send_all())
    assert sum(a["accepted"] for a in answers) == 40
    assert sum(a["duplicates"] for a in answers) == 80
    assert live.inbox.counts() == {"pending": 40}
