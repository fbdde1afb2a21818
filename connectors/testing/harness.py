"""What a connector author supplies to run the conformance suite: a harness that
builds the connector against a fake backend the author controls.

The fake must be faithful where the suite looks (modification stamps, keyed
lookups, per-record refusals) and must be able to fail on cue. Keep it in-process
or on loopback; the suite never sleeps, so the harness's clock must be manual and
the connector's ``RuntimeContext`` must use it.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Literal

from connectors.base import Connector

__all__ = ["Fault", "Harness", "ObjectKind"]

ObjectKind = Literal["deal", "task"]


class Fault(enum.Enum):
    """A failure the backend plays once, on the next request that creates a deal or a
    task (the one keyed request a retry can duplicate)."""

    #: the backend applies the create, then the connection drops before the answer
    DROP_ANSWER = "drop_answer"
    #: the backend answers a 5xx without applying anything
    ERROR_BEFORE_APPLY = "error_before_apply"
    #: the backend applies the create, then answers a 5xx (a gateway timing out)
    ERROR_AFTER_APPLY = "error_after_apply"


class Harness(abc.ABC):
    """Subclass once per connector; the suite calls only what is declared here.

    Class attributes describe the connector; methods drive the backend. The suite
    builds several connectors from one harness (a new one stands for a new process
    that resumes from a stored state), so ``connector()`` must return a fresh one
    each time, all talking to the same backend.
    """

    #: read-only connectors (exports, say): the write tests are skipped, and the
    #: suite checks that each write method raises ``ConnectorConfigError`` instead
    read_only: bool = False
    #: the connector recognises its own score writes and does not deliver their
    #: contacts again as changes (an optimisation, tested only when declared)
    skips_own_writes: bool = False
    #: the logical score field the suite writes (created by ``ensure_fields`` or by
    #: the harness's set-up when the CRM needs an administrator for that)
    score_field: str = "leadsync_score"
    #: a deal stage the backend accepts, and CRM-specific deal options
    #: (``DealSpec.crm_options``, e.g. ``{"pipeline": "default"}``)
    deal_stage: str = "open"
    deal_options: Mapping[str, str] = MappingProxyType({})

    @abc.abstractmethod
    def connector(self) -> Connector:
        """A new connector on the backend, with a ``RuntimeContext`` on the harness's
        manual clock. Configure pages well below 200 records where the connector has
        a setting for it, so that the suite's reads span several pages."""

    @abc.abstractmethod
    def now(self) -> datetime:
        """The backend's clock (aware UTC): the suite reads ``until`` this."""

    @abc.abstractmethod
    def advance(self, seconds: float) -> None:
        """Move the backend's clock (and the connector's) forward."""

    @abc.abstractmethod
    def seed_contacts(self, count: int, *, at: datetime) -> Sequence[str]:
        """Create or change ``count`` distinct contacts so that all of them carry the
        modification stamp ``at`` (never earlier than ``now()``), leave the clock at
        ``at``, and return their ids."""

    def settle(self) -> None:  # noqa: B027 - optional: most backends need nothing
        """Let the backend catch up with what was just seeded (a search index's lag,
        say) by moving the clock; the default does nothing."""

    def seed_unreadable(self) -> None:
        """Put one record the connector cannot read into the backend (a malformed row
        of an export, say), stamped now. Only for connectors that report what they skip
        (``rejected``); the default says the backend cannot hold such a record."""
        raise NotImplementedError

    # -- writes (not called for read-only connectors) --------------------------------

    def action_contact(self) -> str:
        """A contact that deals and tasks can be created for."""
        raise NotImplementedError

    def unknown_contact_id(self) -> str:
        """An id shaped like the backend's contact ids that no record has: a score
        write to it must be refused for that record alone."""
        raise NotImplementedError

    def inject(self, fault: Fault) -> None:
        """Play ``fault`` on the next create of a deal or task."""
        raise NotImplementedError

    def keyed(self, kind: ObjectKind, key: str) -> Sequence[str]:
        """Ids of every ``kind`` record the backend holds under idempotency ``key``,
        read from the backend itself (not through the connector)."""
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional
        """Stop what the harness started (servers, temporary files)."""
