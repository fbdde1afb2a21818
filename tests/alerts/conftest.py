"""Fixtures for the alerts' tests: a real SQLite state store, a clock that the
injected sleeper moves, a webhook catcher and an SMTP server with STARTTLS."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from scheduler.alerts.catcher import Catcher, catching
from scheduler.state import StateStore

T0 = datetime(2026, 3, 2, 9, 0, 5, tzinfo=UTC)


class Clock:
    """``now`` and ``sleep`` in one: sleeping moves time, nothing waits for real."""

    def __init__(self, start: datetime = T0) -> None:
        self.t = start
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.t += timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """The webhook URLs these tests register stay out of other tests' redaction."""
    from scheduler import config

    before = set(config.SECRETS)
    yield
    with config._secrets_lock:
        config.SECRETS.intersection_update(before)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[StateStore]:
    s = StateStore(f"sqlite:///{tmp_path / 'state.db'}", clock=lambda: clock.now().timestamp())
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    with catching() as c:
        yield c


@dataclass
class Mailbox:
    envelopes: list[Envelope] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    starttls: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        self.starttls.append(bool(session.ssl))
        return "250 OK"


@dataclass
class SmtpServer:
    host: str
    port: int
    mailbox: Mailbox
    client_context: ssl.SSLContext


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def smtp_server(ca: trustme.CA) -> Iterator[SmtpServer]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    mailbox = Mailbox()

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        mailbox.logins.append((user, password))
        ok = (user, password) == ("rep-bot", "s3cret-smtp-pass")
        return AuthResult(success=ok, handled=False)

    with socket.socket() as probe:  # aiosmtpd's controller needs the port up front
        probe.bind(("127.0.0.1", 0))
        free = int(probe.getsockname()[1])
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free,
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", free, mailbox, client_ctx)
    finally:
        controller.stop()
