"""``leadsync sandbox --webhook-url URL --client-secret S`` (and ``--outbound-url``):
the sandbox started by the CLI's own function delivers signed webhooks for changes
made through its API; bad flags are one clear line."""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from scheduler.cli_sandbox import SandboxOptions, SandboxStartError, check_options, run_sandbox
from scheduler.serve.signatures import hubspot_signature

SECRET = "app-client-secret-for-tests"


class Catcher:
    """A real HTTP endpoint that keeps what it is sent."""

    def __init__(self) -> None:
        self.got: queue.Queue[tuple[str, dict[str, str], bytes]] = queue.Queue()
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                catcher.got.put((self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Ticks:
    """The sandbox's timer, moved by the test: each ``tick()`` lets one round run."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.q: queue.Queue[None] = queue.Queue()

    def wait(self, seconds: float) -> bool:
        while not self.stop.is_set():
            try:
                self.q.get(timeout=0.05)
                return False
            except queue.Empty:
                continue
        return True

    def tick(self) -> None:
        self.q.put(None)


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    c = Catcher()
    yield c
    c.close()


def test_webhooks_are_delivered_signed_for_api_changes(catcher: Catcher) -> None:
    stop = threading.Event()
    ticks = Ticks(stop)
    lines: list[str] = []
    opts = SandboxOptions(
        crm="hubspot",
        hubspot_port=0,
        contacts=10,
        webhook_url=catcher.url + "/webhooks/hubspot",
        client_secret=SECRET,
    )
    thread = threading.Thread(
        target=run_sandbox, args=(opts,), kwargs={"stop": stop, "echo": lines.append,
                                                  "wait": ticks.wait}, daemon=True
    )  # fmt: skip
    thread.start()
    try:
        for _ in range(200):
            if any("Press Ctrl-C" in line for line in lines):
                break
            stop.wait(0.05)
        base = re.search(r"(http://127\.0\.0\.1:\d+)", lines[0]).group(1)  # type: ignore[union-attr]
        assert any("webhooks to:" in line for line in lines)
        assert not any(SECRET in line for line in lines)
        http = requests.Session()
        http.headers["Authorization"] = "Bearer sandbox-token"
        cid = http.get(f"{base}/crm/v3/objects/contacts?limit=1", timeout=10).json()["results"][0][
            "id"
        ]
        r = http.patch(
            f"{base}/crm/v3/objects/contacts/{cid}",
            json={"properties": {"jobtitle": "Head of Data", "hubspot_owner_id": ""}},
            timeout=10,
        )
        assert r.status_code == 200
        ticks.tick()
        path, headers, body = catcher.got.get(timeout=10)
        assert path == "/webhooks/hubspot"
        ts = headers["X-HubSpot-Request-Timestamp"]
        expected = hubspot_signature(SECRET, "POST", catcher.url + path, body, ts)
        assert headers["X-HubSpot-Signature-v3"] == expected
        events = requests.models.complexjson.loads(body)
        assert [(e["objectId"], e["propertyName"]) for e in events] == [(int(cid), "jobtitle")]
    finally:
        stop.set()
        thread.join(10)


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (SandboxOptions(webhook_url="ftp://x"), "--webhook-url: expected an http:// or https://"),
        (SandboxOptions(webhook_url="http://x/h"), "--webhook-url: give the app's --client-secret"),
        (SandboxOptions(crm="hubspot", outbound_url="http://x/s"), "--outbound-url: Outbound"),
    ],
)
def test_bad_realtime_flags_are_named(opts: SandboxOptions, message: str) -> None:
    with pytest.raises(SandboxStartError, match=re.escape(message)):
        check_options(opts)
