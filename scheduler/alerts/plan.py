"""Which alerts a run owes: one ledger entry per (crossing or immediate event,
destination), planned with the run's other actions and stored in the same
transaction.

The entry's key is derived only from the event's identity (model, contact, crossing
number or event id — the action's ``group_key``) and the destination's name, so a
rerun, a retry or another process that decides the same crossing plans the same key,
and ``StateStore.add_intents`` keeps the first. The spec holds everything a message
needs (name, score, reasons, owner, link), so that delivery — now, or on a later run
after a crash — needs neither the CRM nor the contact again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connectors.base import Owner
from scheduler.alerts.config import AlertsConfig
from scheduler.state import LedgerEntry

if TYPE_CHECKING:
    from scheduler.writeback import Action

ALERT = "alert"  # the ledger kind (LedgerKind.ALERT once the ledger's kinds are an enum)
SEQ = 10  # after the action's owner (0), deal (1) and task (2)
TOP_REASONS = 5

Link = Callable[[str, str], str | None]  # (contact id, contact kind) -> CRM record URL


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A crossing or immediate event, as an alert tells it."""

    contact_id: str
    model: str
    kind: str  # crossing | immediate
    token: str  # crossing number (c3) or event id (e:...)
    score: float
    band: str
    reasons: tuple[tuple[str, float], ...] = ()
    contact_kind: str = "contact"
    fields: Mapping[str, object] = field(default_factory=dict)
    owner_id: str | None = None

    @property
    def group_key(self) -> str:
        """The action's identity; the same as ``writeback.Action.group_key``."""
        return f"{self.model}:{self.contact_id}:{self.token}"


def event_from_action(action: Action, owner_id: str | None) -> AlertEvent:
    """An alert event from a ``writeback.Action`` and the owner the run decided."""
    return AlertEvent(
        contact_id=action.contact_id,
        model=action.model,
        kind=action.kind,
        token=action.token,
        score=float(action.score),
        band=str(action.band),
        reasons=tuple((str(r.rule), float(r.points)) for r in action.reasons),
        contact_kind=action.contact_kind,
        fields=dict(action.fields),
        owner_id=owner_id,
    )


def alert_key(group_key: str, destination: str) -> str:
    return f"{group_key}:alert:{destination}"


def display_name(fields: Mapping[str, object], contact_id: str) -> str:
    """First and last name, else the e-mail, else the CRM id."""
    first = str(fields.get("first_name") or "").strip()
    last = str(fields.get("last_name") or "").strip()
    name = f"{first} {last}".strip()
    return name or str(fields.get("email") or "").strip() or contact_id


class Owners:
    """The CRM's owners, read once and only when an alert needs one."""

    def __init__(self, loader: Callable[[], Sequence[Owner]] | None) -> None:
        self._loader = loader
        self._by_id: dict[str, Owner] | None = None

    def get(self, owner_id: str | None) -> Owner | None:
        if not owner_id or self._loader is None:
            return None
        if self._by_id is None:
            try:
                self._by_id = {o.id: o for o in self._loader()}
            except Exception:  # an owner's name is a nicety: never fail a run for it
                self._by_id = {}
        return self._by_id.get(owner_id)


def plan_alerts(
    events: Iterable[AlertEvent],
    config: AlertsConfig,
    *,
    now: datetime,
    owners: Owners | Callable[[], Sequence[Owner]] | None = None,
    link: Link | None = None,
) -> list[LedgerEntry]:
    """The alert entries the events owe, one per (event, destination that wants it).

    An e-mail destination sending to the owner plans nothing for an event whose owner
    has no e-mail the CRM lists (there is no one to write to); the alert is not owed.
    """
    book = owners if isinstance(owners, Owners) else Owners(owners)
    out: list[LedgerEntry] = []
    for ev in events:
        wanting = [d for d in config.destinations if d.wants(ev.kind, ev.model)]
        if not wanting:
            continue
        owner = book.get(ev.owner_id)
        body: dict[str, Any] = {
            "trigger": ev.kind,
            "model": ev.model,
            "contact_id": ev.contact_id,
            "token": ev.token,
            "name": display_name(ev.fields, ev.contact_id),
            "email": str(ev.fields.get("email") or "") or None,
            "company": str(ev.fields.get("company") or "") or None,
            "score": round(ev.score, 2),
            "band": ev.band,
            "reasons": [
                [rule, round(points, 2)]
                for rule, points in sorted(ev.reasons, key=lambda r: -abs(r[1]))[:TOP_REASONS]
            ],
            "owner_id": ev.owner_id,
            "owner_name": (owner.name or owner.email) if owner else None,
            "owner_email": owner.email if owner else None,
            "link": link(ev.contact_id, ev.contact_kind) if link else None,
            "decided_at": now.isoformat(),
        }
        for dest in wanting:
            spec = dict(body, destination=dest.id)
            if dest.type == "email":
                if dest.to == "owner":
                    if not (owner and owner.email):
                        continue
                    spec["to"] = [owner.email]
                else:
                    spec["to"] = list(dest.to)
            out.append(
                LedgerEntry(
                    key=alert_key(ev.group_key, dest.id),
                    group_key=f"{ev.group_key}:alert",
                    seq=SEQ,
                    contact_id=ev.contact_id,
                    model=ev.model,
                    kind=ALERT,
                    status="intent",
                    spec=spec,
                    result_id=None,
                    error=None,
                    attempts=0,
                )
            )
    return out


def is_alert(entry: LedgerEntry) -> bool:
    return str(entry.kind) == ALERT
