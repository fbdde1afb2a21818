"""What each destination receives: Slack Block Kit, a Teams Adaptive Card, an e-mail.

A message is one alert, a digest (alerts folded past a destination's rate) or a daily
summary; each renderer takes the alert specs the planner stored and nothing else.
Slack's documented limits are kept (at most 50 blocks, 3,000 characters a section);
a Teams card is checked against the small part of the Adaptive Card schema used
here before it leaves (:func:`card_problems`), because a Workflows webhook answers
202 before its flow reads the card, and a malformed card then fails out of sight.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Literal, TypeAlias

Spec = Mapping[str, Any]
# JSON as sent to a webhook: built here, serialised by the HTTP client. Read-only
# containers, so that a list of blocks or a dict of text is a JSON value as it is.
JSONValue: TypeAlias = (
    bool | int | float | str | Sequence["JSONValue"] | Mapping[str, "JSONValue"] | None
)
Payload = dict[str, JSONValue]
MessageKind = Literal["alert", "digest", "summary"]

SLACK_MAX_BLOCKS = 50
SLACK_MAX_TEXT = 3000
DIGEST_LINES = 20  # alerts listed by name in a digest or summary; the rest are counted
CARD_VERSION = "1.4"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


@dataclass(frozen=True, slots=True)
class Message:
    """One message to one destination; ``key`` identifies it (the ledger key of a
    single alert, a digest's or summary's own key otherwise)."""

    kind: MessageKind
    key: str
    alerts: tuple[Spec, ...]
    title: str = ""


def _score(value: float | str) -> str:
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


def _points(value: float | str) -> str:
    return f"{float(value):+.2f}".rstrip("0").rstrip(".")


def headline(spec: Spec) -> str:
    why = "crossed the threshold" if spec.get("trigger") == "crossing" else "immediate signal"
    return (
        f"{spec.get('name')}: {spec.get('model', '')} score {_score(spec.get('score', 0))} "
        f"({spec.get('band')}, {why})"
    )


def reason_lines(spec: Spec) -> list[str]:
    return [f"{rule}: {_points(points)}" for rule, points in spec.get("reasons") or []]


def owner_text(spec: Spec) -> str:
    return str(spec.get("owner_name") or spec.get("owner_id") or "no owner")


def title_of(message: Message) -> str:
    if message.title:
        return message.title
    if message.kind == "alert":
        return f"Hot lead: {message.alerts[0].get('name')}"
    return f"{len(message.alerts)} hot leads"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ------------------------------------------------------------------------ Slack


def slack_payload(message: Message) -> Payload:
    """Block Kit: a header, then per alert a section with its fields, the reasons and
    the link; a digest lists one line per alert."""
    title = title_of(message)
    blocks: list[Payload] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, 150)}}
    ]
    if message.kind == "alert":
        spec = message.alerts[0]
        name = _slack_escape(str(spec.get("name")))
        link = spec.get("link")
        shown = f"<{link}|{name}>" if link else name
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _clip(f"*{shown}*", SLACK_MAX_TEXT)},
                "fields": [
                    {"type": "mrkdwn", "text": f"*Score*\n{_score(spec.get('score', 0))}"},
                    {"type": "mrkdwn", "text": f"*Band*\n{_slack_escape(str(spec.get('band')))}"},
                    {"type": "mrkdwn", "text": f"*Model*\n{_slack_escape(str(spec.get('model')))}"},
                    {"type": "mrkdwn", "text": f"*Owner*\n{_slack_escape(owner_text(spec))}"},
                ],
            }
        )
        reasons = reason_lines(spec)
        if reasons:
            text = "*Top reasons*\n" + "\n".join(f"• {_slack_escape(r)}" for r in reasons)
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SLACK_MAX_TEXT)}}
            )
        if link:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "Open in CRM"},
                            "url": link,
                        }
                    ],
                }
            )
    else:
        lines = []
        for spec in message.alerts[:DIGEST_LINES]:
            name = _slack_escape(str(spec.get("name")))
            link = spec.get("link")
            shown = f"<{link}|{name}>" if link else name
            lines.append(
                f"• {shown}: {_score(spec.get('score', 0))} ({_slack_escape(str(spec.get('band')))}),"
                f" {_slack_escape(owner_text(spec))}"
            )
        more = len(message.alerts) - DIGEST_LINES
        if more > 0:
            lines.append(f"… and {more} more")
        text = "\n".join(lines) or "No alerts."
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SLACK_MAX_TEXT)}}
        )
    return {
        "text": _clip(fallback_text(message), SLACK_MAX_TEXT),
        "blocks": blocks[:SLACK_MAX_BLOCKS],
    }


def fallback_text(message: Message) -> str:
    """The notification text (Slack's ``text``, the e-mail's subject line)."""
    if message.kind == "alert":
        return headline(message.alerts[0])
    return title_of(message)


# ------------------------------------------------------------------------ Teams


def teams_payload(message: Message) -> Payload:
    """The Workflows webhook envelope: a ``message`` with one Adaptive Card attachment."""
    body: list[Payload] = [
        {
            "type": "TextBlock",
            "text": title_of(message),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        }
    ]
    actions: list[Payload] = []
    if message.kind == "alert":
        spec = message.alerts[0]
        body.append(
            {
                "type": "FactSet",
                "facts": [
                    {"title": "Lead", "value": str(spec.get("name"))},
                    {"title": "Score", "value": _score(spec.get("score", 0))},
                    {"title": "Band", "value": str(spec.get("band"))},
                    {"title": "Model", "value": str(spec.get("model"))},
                    {"title": "Owner", "value": owner_text(spec)},
                ],
            }
        )
        reasons = reason_lines(spec)
        if reasons:
            body.append(
                {"type": "TextBlock", "text": "Top reasons", "weight": "Bolder", "wrap": True}
            )
            body.append(
                {"type": "TextBlock", "text": "\n".join(f"- {r}" for r in reasons), "wrap": True}
            )
        if spec.get("link"):
            actions.append({"type": "Action.OpenUrl", "title": "Open in CRM", "url": spec["link"]})
    else:
        facts = [
            {
                "title": str(s.get("name")),
                "value": f"{_score(s.get('score', 0))} ({s.get('band')}), {owner_text(s)}",
            }
            for s in message.alerts[:DIGEST_LINES]
        ]
        body.append({"type": "FactSet", "facts": facts})
        more = len(message.alerts) - DIGEST_LINES
        if more > 0:
            body.append({"type": "TextBlock", "text": f"… and {more} more", "wrap": True})
    card: Payload = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


# What each element type used here must carry (a small, strict part of the schema).
_ELEMENTS: dict[str, dict[str, type]] = {
    "TextBlock": {"text": str},
    "FactSet": {"facts": list},
    "ColumnSet": {"columns": list},
    "Container": {"items": list},
    "Image": {"url": str},
}
_ACTIONS: dict[str, dict[str, type]] = {"Action.OpenUrl": {"title": str, "url": str}}


def card_problems(payload: object) -> list[str]:
    """What is wrong with a Workflows payload, as the flow would find it: the envelope,
    the card's type and version, each body element's type and required fields, each
    action's. Empty when the card is well formed."""
    out: list[str] = []
    if not isinstance(payload, Mapping) or payload.get("type") != "message":
        return ["payload: type must be 'message'"]
    atts = payload.get("attachments")
    if not isinstance(atts, list) or len(atts) != 1 or not isinstance(atts[0], Mapping):
        return ["attachments: exactly one attachment expected"]
    if atts[0].get("contentType") != CARD_CONTENT_TYPE:
        out.append(f"attachments[0].contentType: must be {CARD_CONTENT_TYPE}")
    card = atts[0].get("content")
    if not isinstance(card, Mapping):
        return [*out, "attachments[0].content: the card is missing"]
    if card.get("type") != "AdaptiveCard":
        out.append("card.type: must be 'AdaptiveCard'")
    version = card.get("version")
    if not isinstance(version, str) or not re.fullmatch(r"1\.[0-6]", version):
        out.append(f"card.version: {version!r} is not an Adaptive Card version 1.0-1.6")
    body = card.get("body")
    if not isinstance(body, list) or not body:
        out.append("card.body: must be a non-empty list")
        body = []
    for i, element in enumerate(body):
        out.extend(_element_problems(f"card.body[{i}]", element, _ELEMENTS))
        if isinstance(element, Mapping) and element.get("type") == "FactSet":
            for j, fact in enumerate(element.get("facts") or []):
                if not (
                    isinstance(fact, Mapping)
                    and isinstance(fact.get("title"), str)
                    and isinstance(fact.get("value"), str)
                ):
                    out.append(f"card.body[{i}].facts[{j}]: needs text title and value")
    for i, action in enumerate(card.get("actions") or []):
        out.extend(_element_problems(f"card.actions[{i}]", action, _ACTIONS))
    return out


def _element_problems(
    where: str, element: object, kinds: Mapping[str, Mapping[str, type]]
) -> list[str]:
    if not isinstance(element, Mapping):
        return [f"{where}: must be an object"]
    kind = element.get("type")
    if kind not in kinds:
        return [f"{where}.type: {kind!r} is not one of {', '.join(sorted(kinds))}"]
    out = []
    for name, typ in kinds[str(kind)].items():
        value = element.get(name)
        if not isinstance(value, typ) or (typ is str and not value):
            out.append(f"{where}.{name}: required ({typ.__name__})")
    return out


# ------------------------------------------------------------------------ e-mail


def message_id(key: str) -> str:
    """``<ledger-key@leadsync>``: the same alert sent twice (the crash window) carries
    the same Message-ID, which mail clients use to show it once. Characters a
    Message-ID may not hold are replaced, with a digest of the key to keep it unique."""
    safe = re.sub(r"[^A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]", "-", key)
    if safe != key:
        safe += "." + hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"<{safe}@leadsync>"


def email_message(message: Message, *, sender: str, to: Sequence[str], at: float) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = _clip(fallback_text(message), 200)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(at, usegmt=True)
    msg["Message-ID"] = message_id(message.key)
    lines: list[str] = []
    if message.kind == "alert":
        spec = message.alerts[0]
        lines += [
            headline(spec),
            "",
            f"Owner: {owner_text(spec)}",
        ]
        if spec.get("email"):
            lines.append(f"E-mail: {spec['email']}")
        reasons = reason_lines(spec)
        if reasons:
            lines += ["", "Top reasons:", *(f"- {r}" for r in reasons)]
        if spec.get("link"):
            lines += ["", f"Open in the CRM: {spec['link']}"]
    else:
        lines.append(title_of(message))
        lines.append("")
        for spec in message.alerts[:DIGEST_LINES]:
            tail = f" {spec['link']}" if spec.get("link") else ""
            lines.append(
                f"- {spec.get('name')}: {_score(spec.get('score', 0))} ({spec.get('band')}), "
                f"{owner_text(spec)}{tail}"
            )
        more = len(message.alerts) - DIGEST_LINES
        if more > 0:
            lines.append(f"... and {more} more")
    lines += ["", "-- sent by leadsync"]
    msg.set_content("\n".join(lines) + "\n")
    return msg
