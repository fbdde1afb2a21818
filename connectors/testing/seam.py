"""Every place where the conformance suite touches the parts of the connector seam
that are changing: where a read's resume point is found, how it is stored and loaded,
how the host asks for it after the writes, and how optional capabilities are found.

The suite and harnesses call only these functions, so that moving from the mapping
cursor (``ReadBatch.cursor``, mutated by ``write_scores``) to typed states
(``ReadBatch.state``, ``Connector.load_state``, ``Connector.checkpoint``, capability
protocols) changes this module and nothing else. Each function accepts both shapes
today; the comment ``seam:`` in each names the one line it becomes once every
connector has the typed state.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from connectors.base import Connector, ReadBatch

__all__ = [
    "checkpoint",
    "has_checkpoint",
    "load_state",
    "reads_contacts",
    "reports_rejected",
    "state_of",
    "state_to_json",
]


def state_of(batch: ReadBatch) -> Any:
    """The resume point a batch carries (only the last batch of a complete read).

    seam: ``return batch.state``"""
    state = getattr(batch, "state", None)
    if state is None:
        state = getattr(batch, "cursor", None)
    return state


def state_to_json(state: Any) -> dict[str, object]:
    """What the host stores: a JSON object, checked by an actual round trip through
    ``json`` so that a state that only looks serialisable fails here, not in a store.

    seam: ``return json.loads(json.dumps(state.to_json()))``"""
    to_json = getattr(state, "to_json", None)
    raw = to_json() if callable(to_json) else state
    if not isinstance(raw, Mapping):
        raise TypeError(f"a connector state must serialise to a JSON object, got {type(raw)}")
    data = json.loads(json.dumps(dict(raw)))
    assert isinstance(data, dict)
    return data


def load_state(connector: Connector, data: Mapping[str, object] | None) -> Any:
    """The state a host hands back to a (possibly new) connector from what it stored.

    seam: ``return connector.load_state(data)``"""
    load = getattr(connector, "load_state", None)
    if callable(load):
        return load(data)
    return None if data is None else dict(data)


def has_checkpoint(connector: Connector) -> bool:
    """Whether the connector gives a new state after the writes (``checkpoint()``)
    instead of adding its writes to the value its read yielded.

    seam: ``return True``"""
    return callable(getattr(connector, "checkpoint", None))


def checkpoint(connector: Connector, yielded: Any) -> Any:
    """The state to store after the run's writes. ``yielded``: what the read's last
    batch carried (with the mapping cursor, connectors add their writes to it).

    seam: ``return connector.checkpoint()``"""
    if has_checkpoint(connector):
        return connector.checkpoint()  # type: ignore[attr-defined]
    return yielded


def reads_contacts(connector: Connector) -> bool:
    """Whether the connector can read given contacts by id (``read_contacts``).

    seam: ``return isinstance(connector, ReadsContacts)`` (from ``connectors.base``)"""
    try:
        from connectors.base import ReadsContacts  # type: ignore[attr-defined]
    except ImportError:
        return callable(getattr(connector, "read_contacts", None))
    return isinstance(connector, ReadsContacts)


def reports_rejected(connector: Connector) -> bool:
    """Whether the connector lists the input it skipped (``rejected``) after a read.

    seam: ``return isinstance(connector, ReportsRejected)`` (from ``connectors.base``)"""
    try:
        from connectors.base import ReportsRejected  # type: ignore[attr-defined]
    except ImportError:
        return hasattr(connector, "rejected")
    return isinstance(connector, ReportsRejected)
