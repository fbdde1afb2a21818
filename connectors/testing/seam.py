"""The host's side of the connector seam, as the conformance suite uses it: where a
read's resume point is found, how it is stored and loaded, how the host asks for it
after the writes, and how optional capabilities are found. Written once here so that
the suite reads as the behaviours it checks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from connectors.base import (
    Connector,
    ConnectorState,
    ReadBatch,
    ReadsContacts,
    ReportsRejected,
)

__all__ = [
    "checkpoint",
    "has_checkpoint",
    "load_state",
    "reads_contacts",
    "reports_rejected",
    "state_of",
    "state_to_json",
]


def state_of(batch: ReadBatch) -> ConnectorState | None:
    """The resume point a batch carries (only the last batch of a complete read)."""
    return batch.state


def state_to_json(state: object) -> dict[str, object]:
    """What the host stores: a JSON object, checked by an actual round trip through
    ``json`` so that a state that only looks serialisable fails here, not in a store."""
    assert isinstance(state, ConnectorState), f"not a connector state: {state!r}"
    raw = state.to_json()
    if not isinstance(raw, Mapping):
        raise TypeError(f"a connector state must serialise to a JSON object, got {type(raw)}")
    data = json.loads(json.dumps(dict(raw)))
    assert isinstance(data, dict)
    return data


def load_state(connector: Connector, data: Mapping[str, object] | None) -> ConnectorState | None:
    """The state a host hands back to a (possibly new) connector from what it stored."""
    return connector.load_state(data)


def has_checkpoint(connector: Connector) -> bool:
    """Every connector gives a new state after the writes (``checkpoint()``)."""
    return True


def checkpoint(connector: Connector, yielded: object) -> object:
    """The state to store after the run's writes; ``yielded`` (what the read's last
    batch carried) is what a host keeps when the connector has nothing newer."""
    return connector.checkpoint() or yielded


def reads_contacts(connector: Connector) -> bool:
    """Whether the connector can read given contacts by id (``read_contacts``)."""
    return isinstance(connector, ReadsContacts)


def reports_rejected(connector: Connector) -> bool:
    """Whether the connector lists the input it skipped (``rejected``) after a read."""
    return isinstance(connector, ReportsRejected)
