"""Hostile and broken input: bounded bodies, 4xx never 5xx, no secret in any log line."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_helpers import EV_SECRET, HS_SECRET, SF_TOKEN, Live, hs_event, start_live

from scheduler.serve.signatures import event_signature

LIMIT = 64 * 1024  # the fixtures' max_body


def _raw(live: Live, request: bytes, then: bytes = b"", *, end: bool = False) -> bytes:
    """Send raw bytes, then read the answer without sending the rest of the body
    (``end``: close our side, so that a server waiting for more body sees the end)."""
    parts = urlsplit(live.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        if then:
            sock.sendall(then)
        if end:
            sock.shutdown(socket.SHUT_WR)
        return sock.recv(65536)


def test_a_declared_oversized_body_is_refused_before_it_is_sent(live: Live) -> None:
    head = (
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {LIMIT + 1}\r\n\r\n".encode()
    )
    answer = _raw(live, head)  # not one byte of the body sent
    assert answer.startswith(b"HTTP/1.1 413")


def test_a_streamed_body_is_cut_off_at_the_limit(live: Live) -> None:
    head = b"POST /webhooks/hubspot HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"[" + b" " * (40 * 1024)
    piece = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    # two chunks pass the limit; the body never ends, yet the answer comes
    answer = _raw(live, head + piece, piece)
    assert answer.startswith(b"HTTP/1.1 413")
    assert live.inbox.counts() == {}


def test_an_oversized_but_signed_body_is_refused(live: Live) -> None:
    events = [hs_event(i, 100 + i) for i in range(2000)]
    answer = live.hubspot(events)
    assert answer.status_code == 413
    assert live.inbox.counts() == {}
    metrics = live.client.get(live.url + "/metrics").text
    assert 'leadsync_events_refused_total{reason="too_large"} 1.0' in metrics


def test_malformed_bodies_are_400_with_one_line(live: Live) -> None:
    for body, needle in (
        (b"{not json", "not JSON"),
        (b'{"eventId": 1}', "expected a JSON array"),
        (b'[{"eventId": "1"}]', "event 1: eventId: expected a whole number"),
        (b"[1]", "event 1: expected an object"),
        (b"\xff", "not UTF-8"),
        (b"[" * 100_00 + b"]" * 100_00, "JSON"),
    ):
        answer = live.hubspot(body)
        assert answer.status_code == 400, body[:20]
        detail = answer.json()["detail"]
        assert needle in detail and "\n" not in detail
    assert live.inbox.counts() == {}


def test_unknown_routes_and_methods_are_4xx(live: Live) -> None:
    assert live.client.get(live.url + "/webhooks/hubspot").status_code == 405
    assert live.client.post(live.url + "/nope").status_code == 404
    assert live.client.post(live.url + "/webhooks/salesforce/").status_code == 404


def test_a_source_left_out_of_the_config_has_no_endpoint(
    tmp_path: Path, serving: list[object]
) -> None:
    from serve_helpers import serve_config

    service = start_live(tmp_path, config=serve_config(hubspot=None, salesforce=None))
    serving.append(service)
    assert service.hubspot([hs_event(1, 1)]).status_code == 404
    assert service.salesforce(b"<x/>").status_code == 404


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def chatty(tmp_path: Path, serving: list[object]) -> Iterator[tuple[Live, _Lines]]:
    service = start_live(tmp_path, log_level="info", worker=True)
    serving.append(service)
    # after the start: uvicorn replaces the handlers of its loggers when configured
    handler = _Lines()
    names = ("leadsync.serve", "uvicorn.access", "uvicorn.error")
    for name in names:
        logging.getLogger(name).addHandler(handler)
    logging.getLogger("leadsync.serve").setLevel(logging.DEBUG)
    try:
        yield service, handler
    finally:
        service.close()  # before the handler goes: the shutdown logs too
        for name in names:
            logging.getLogger(name).removeHandler(handler)


def test_no_secret_reaches_a_log_line(chatty: tuple[Live, _Lines]) -> None:
    live, logs = chatty
    from serve_soap import envelope

    live.salesforce(envelope([("04l1", "Lead", {"Id": "00Q1"})]))  # the token is in the path
    live.salesforce(b"<bad", token=SF_TOKEN)
    live.hubspot([hs_event(1, 101)], secret="wrong-secret-123")
    live.events(b'{"id": "' + EV_SECRET.encode() + b'"}')  # a secret echoed in a detail
    live.hubspot([hs_event(2, 102)])
    live.drainer.run_once()
    text = "\n".join(logs.lines)
    assert "POST /webhooks/salesforce/*** HTTP/1.1" in text  # the access log is there
    assert "refused 401" in text
    for secret in (SF_TOKEN, HS_SECRET, EV_SECRET):
        assert secret not in text


# -------------------------------------------------------------------------- fuzzing

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "eventId",
                    "objectId",
                    "occurredAt",
                    "subscriptionType",
                    "propertyName",
                    "mergedObjectIds",
                    "primaryObjectId",
                    "id",
                    "email",
                    "contact_id",
                    "type",
                    "occurred_at",
                    "attributes",
                    "name",
                    "portalId",
                    "objectTypeId",
                ]
            )
            | st.text(max_size=8),
            inner,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    service = start_live(tmp_path_factory.mktemp("fuzz"))
    try:
        yield service
    finally:
        service.close()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    body=st.binary(max_size=300) | _json.map(lambda v: json.dumps(v).encode()),
    route=st.sampled_from(["hubspot", "events", "salesforce"]),
    signed=st.booleans(),
    lines=st.booleans(),
)
def test_fuzzed_bodies_never_give_a_5xx(
    fuzz_target: Live, body: bytes, route: str, signed: bool, lines: bool
) -> None:
    live = fuzz_target
    if route == "hubspot":
        answer = (
            live.hubspot(body)
            if signed
            else live.client.post(live.url + "/webhooks/hubspot", content=body)
        )
    elif route == "events":
        if lines:
            body = body + b"\n" + body
        answer = (
            live.events(body)
            if signed
            else live.client.post(
                live.url + "/v1/events",
                content=body,
                headers={
                    "X-Leadsync-Timestamp": "1",
                    "X-Leadsync-Signature": event_signature("x", "1", body),
                },
            )
        )
    else:
        answer = live.salesforce(body)
    assert answer.status_code < 500, (answer.status_code, answer.text)
    assert "Traceback" not in answer.text


@settings(max_examples=80, deadline=None)
@given(
    header=st.sampled_from(
        ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp", "Content-Length"]
    ),
    value=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
    | st.integers(min_value=0, max_value=10**6).map(str),
)
def test_fuzzed_headers_never_give_a_5xx(fuzz_target: Live, header: str, value: str) -> None:
    live = fuzz_target
    request = (
        f"POST /webhooks/hubspot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{header}: {value}\r\n"
        + ("Content-Length: 2\r\n" if header != "Content-Length" else "")
        + "\r\n[]"
    ).encode()
    answer = _raw(live, request, end=True)  # a Content-Length above 2 waits for more body
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 400
    assert status < 500, answer[:200]
