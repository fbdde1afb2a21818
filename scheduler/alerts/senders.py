"""Senders: one message to one destination, and what its failure means.

A failure is :class:`Transient` (worth another attempt: a timeout, a 5xx, a 429 with
its ``Retry-After``, an SMTP 4xx) or :class:`Permanent` (another attempt would fail
the same way: a deleted webhook's 404, a card the schema refuses, a refused
recipient). Neither carries the webhook URL or the SMTP password: every message goes
through the destination's :class:`~connectors.runtime.Redactor`, and a sender's
``repr`` names only its type and destination.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit

import requests

from connectors.runtime import Redactor
from scheduler.alerts.config import (
    EmailDestination,
    SlackDestination,
    TeamsDestination,
)
from scheduler.alerts.render import (
    Message,
    Payload,
    card_problems,
    email_message,
    slack_payload,
    teams_payload,
)

MAX_RETRY_AFTER = 300.0  # a longer Retry-After is not waited for: the next run tries


class DeliveryError(Exception):
    """A message was not delivered; the text is safe to log and store."""


class Transient(DeliveryError):
    """Worth another attempt: after ``retry_after`` seconds when the destination said
    so; not in this run (``later``) when it asked for longer than a run should wait."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.later = retry_after is not None and retry_after > MAX_RETRY_AFTER
        self.retry_after = None if self.later else retry_after


class Permanent(DeliveryError):
    pass


class Sender(Protocol):
    destination: str
    min_interval: float  # seconds between two messages (the destination's own limit)

    def send(self, message: Message, to: Sequence[str] = ()) -> str | None:
        """Deliver or raise :class:`DeliveryError`; returns the destination's id for it."""
        ...

    def close(self) -> None: ...


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class _Webhook:
    """A JSON POST to a webhook URL, with its statuses sorted."""

    kind = "webhook"
    ok_statuses: tuple[int, ...] = (200,)

    def __init__(
        self,
        destination: str,
        url: str,
        *,
        redactor: Redactor,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.destination = destination
        self._url = url
        self._redact = redactor
        # The whole URL, and its path and query on their own: HTTP clients quote
        # those alone in their errors ("... with url: /services/T.../B.../...").
        parts = urlsplit(url)
        for secret in (url, parts.path, parts.query):
            if len(secret) >= 8:
                redactor.add(secret)
        self._timeout = timeout
        self._session = session or requests.Session()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.destination!r})"

    def _post(self, payload: Payload) -> requests.Response:
        where = f"{self.kind} {self.destination}"
        try:
            resp = self._session.post(
                self._url, json=payload, timeout=self._timeout, allow_redirects=False
            )
        except requests.Timeout:
            raise Transient(f"{where}: timed out") from None
        except requests.RequestException as exc:
            # The exception's text quotes the URL: only its kind is told.
            raise Transient(f"{where}: {type(exc).__name__} (no answer)") from None
        if resp.status_code in self.ok_statuses:
            return resp
        body = self._redact(resp.text.strip()[:200])
        text = f"{where}: HTTP {resp.status_code} {body}".rstrip()
        if resp.status_code == 429:
            raise Transient(text, _retry_after(resp.headers.get("Retry-After")))
        if resp.status_code >= 500 or resp.status_code == 408:
            raise Transient(text, _retry_after(resp.headers.get("Retry-After")))
        raise Permanent(text)

    def close(self) -> None:
        self._session.close()


class SlackSender(_Webhook):
    """A Slack incoming webhook: Block Kit; about one message a second per webhook."""

    kind = "slack"
    min_interval = 1.0

    def send(self, message: Message, to: Sequence[str] = ()) -> str | None:
        del to
        self._post(slack_payload(message))
        return None


class TeamsSender(_Webhook):
    """A Teams Workflows webhook: an Adaptive Card, checked before it leaves, because
    the webhook answers 202 whatever the flow later makes of it."""

    kind = "teams"
    min_interval = 0.5  # the retired connectors allowed 4 a second; keep well under
    ok_statuses = (200, 202)

    def send(self, message: Message, to: Sequence[str] = ()) -> str | None:
        del to
        payload = teams_payload(message)
        problems = card_problems(payload)
        if problems:
            raise Permanent(f"teams {self.destination}: card not sent: {'; '.join(problems)}")
        self._post(payload)
        return None


class EmailSender:
    """SMTP with STARTTLS (never in clear), one connection per message."""

    min_interval = 0.0

    def __init__(
        self,
        dest: EmailDestination,
        *,
        redactor: Redactor,
        ssl_context: ssl.SSLContext | None = None,
        now: float | None = None,
    ) -> None:
        self.destination = dest.id
        self._dest = dest
        self._redact = redactor
        if dest.smtp.password:
            redactor.add(dest.smtp.password)
        if ssl_context is None:
            ssl_context = ssl.create_default_context(cafile=dest.smtp.ca_file)
        self._ssl = ssl_context
        self._now = now

    def __repr__(self) -> str:
        return f"EmailSender({self.destination!r})"

    def send(self, message: Message, to: Sequence[str] = ()) -> str | None:
        import time

        recipients = list(to) or (list(self._dest.to) if isinstance(self._dest.to, list) else [])
        if not recipients:
            raise Permanent(f"email {self.destination}: no recipient")
        smtp = self._dest.smtp
        msg = email_message(
            message,
            sender=self._dest.from_,
            to=recipients,
            at=self._now if self._now is not None else time.time(),
        )
        where = f"email {self.destination}"
        try:
            with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds) as client:
                client.ehlo()
                if not client.has_extn("starttls"):
                    raise Permanent(
                        f"{where}: {smtp.host} does not offer STARTTLS; not sent in clear"
                    )
                client.starttls(context=self._ssl)
                client.ehlo()
                if smtp.username and smtp.password:
                    client.login(smtp.username, smtp.password)
                refused = client.send_message(msg, to_addrs=recipients)
        except DeliveryError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise Permanent(self._redact(f"{where}: login refused ({exc.smtp_code})")) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            cls = Transient if all(400 <= c < 500 for c in codes) else Permanent
            raise cls(f"{where}: every recipient refused ({', '.join(map(str, codes))})") from None
        except smtplib.SMTPResponseException as exc:
            cls = Transient if 400 <= exc.smtp_code < 500 else Permanent
            raw = exc.smtp_error
            text = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))[:200]
            raise cls(self._redact(f"{where}: {exc.smtp_code} {text}")) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise Transient(self._redact(f"{where}: {type(exc).__name__}: {exc}")) from None
        if refused:
            # Some recipients took it: it is delivered (a second send would repeat it
            # to the others); the refused ones are said in the result.
            return "refused: " + ", ".join(sorted(refused))[:200]
        return str(msg["Message-ID"])

    def close(self) -> None:
        pass


def build_sender(
    dest: SlackDestination | TeamsDestination | EmailDestination,
    *,
    redactor: Redactor,
    ssl_context: ssl.SSLContext | None = None,
) -> Sender:
    if isinstance(dest, SlackDestination):
        return SlackSender(dest.id, dest.url, redactor=redactor)
    if isinstance(dest, TeamsDestination):
        return TeamsSender(dest.id, dest.url, redactor=redactor)
    return EmailSender(dest, redactor=redactor, ssl_context=ssl_context)
