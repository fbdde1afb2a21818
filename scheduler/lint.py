"""Warnings for ``leadsync check``: names in the models that the data never has.

A fit rule on ``job_titel`` or a behaviour rule on ``page_veiw`` is valid YAML and a
valid model, and never matches. ``check --model`` cannot know the data, so it only
mentions near misses of canonical names; ``check --config`` knows the connector, and
mentions every name it does not deliver (see :func:`scoring.model.name_warnings`).
"""

from __future__ import annotations

from scheduler.config import SyncConfig, connector_fields
from scoring.model import ModelFileError, load_models, name_warnings


def config_name_warnings(config: SyncConfig) -> list[str]:
    """``FILE:LINE: path: ...`` for each field or event type of the configured models
    that is neither canonical nor delivered by the configured connector."""
    fields = connector_fields(config)
    # A CRM connector that says which fields it maps delivers canonical event types
    # only; one that does not say (a file export) may carry other columns and events,
    # so only near misses are mentioned for it.
    events: frozenset[str] | None = frozenset() if fields is not None else None
    out: list[str] = []
    for path in config.model_paths():
        try:
            model_set = load_models(path.read_text(encoding="utf-8"), str(path))
        except (OSError, ModelFileError):
            continue  # reported when the models were loaded
        out += name_warnings(
            model_set, fields=fields, events=events, source=f"the {config.crm.type} connector"
        )
    return out
