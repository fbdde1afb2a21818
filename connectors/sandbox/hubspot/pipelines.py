"""Deal pipelines (``/crm/v3/pipelines/deals``): the portal's default "Sales Pipeline".

A connector needs the pipelines to tell open, won and lost stages apart without
hard-coding stage ids. HubSpot answers stage ``metadata`` as a map of *strings*
(``{"isClosed": "true", "probability": "1.0"}``; the SDK types it
``dict[str, str]``), and every pipeline and stage carries ``createdAt``,
``updatedAt`` and ``archived``, which the SDK's models require. The default
pipeline's stages and probabilities are the ones every new HubSpot portal starts
with.
"""

from __future__ import annotations

from typing import TypedDict

from connectors.sandbox.framework import iso_ms
from connectors.sandbox.hubspot.errors import HsError

DEFAULT_PIPELINE_ID = "default"
DEFAULT_PIPELINE_LABEL = "Sales Pipeline"

# (stage id, label, probability, closed); probabilities as HubSpot writes them
DEFAULT_STAGES: tuple[tuple[str, str, str, bool], ...] = (
    ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", False),
    ("presentationscheduled", "Presentation Scheduled", "0.6", False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", False),
    ("contractsent", "Contract Sent", "0.9", False),
    ("closedwon", "Closed Won", "1.0", True),
    ("closedlost", "Closed Lost", "0.0", True),
)
STAGE_PROBABILITY: dict[str, str] = {s[0]: s[2] for s in DEFAULT_STAGES}
CLOSED_STAGES: frozenset[str] = frozenset(s[0] for s in DEFAULT_STAGES if s[3])
WON_STAGES: frozenset[str] = frozenset(s[0] for s in DEFAULT_STAGES if s[3] and float(s[2]) >= 1.0)
# the portal's default pipeline predates everything: HubSpot stamps it with the epoch
_STAMP = iso_ms(0.0)
_PIPELINE_TYPES = {"deals", "deal", "0-3"}


class StageMetadata(TypedDict):
    """A stage's ``metadata``: strings, as HubSpot answers them."""

    isClosed: str
    probability: str


class StageJSON(TypedDict):
    """One stage as ``GET /crm/v3/pipelines/deals/.../stages`` answers it."""

    label: str
    displayOrder: int
    metadata: StageMetadata
    id: str
    createdAt: str
    updatedAt: str
    archived: bool
    writePermissions: str


class PipelineJSON(TypedDict):
    """One pipeline as ``GET /crm/v3/pipelines/deals`` answers it."""

    label: str
    displayOrder: int
    id: str
    stages: list[StageJSON]
    createdAt: str
    updatedAt: str
    archived: bool


class Results(TypedDict):
    """A list answer: ``{"results": [...]}``."""

    results: list[PipelineJSON] | list[StageJSON]


def stage_json(index: int) -> StageJSON:
    stage_id, label, probability, closed = DEFAULT_STAGES[index]
    return {
        "label": label,
        "displayOrder": index,
        "metadata": {"isClosed": "true" if closed else "false", "probability": probability},
        "id": stage_id,
        "createdAt": _STAMP,
        "updatedAt": _STAMP,
        "archived": False,
        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
    }


def pipeline_json() -> PipelineJSON:
    return {
        "label": DEFAULT_PIPELINE_LABEL,
        "displayOrder": 0,
        "id": DEFAULT_PIPELINE_ID,
        "stages": [stage_json(i) for i in range(len(DEFAULT_STAGES))],
        "createdAt": _STAMP,
        "updatedAt": _STAMP,
        "archived": False,
    }


def deal_stage_properties(stage: str) -> dict[str, str]:
    """The read-only deal properties HubSpot derives from ``dealstage``."""
    if stage not in STAGE_PROBABILITY:
        return {}
    return {
        "hs_is_closed": "true" if stage in CLOSED_STAGES else "false",
        "hs_is_closed_won": "true" if stage in WON_STAGES else "false",
        "hs_deal_stage_probability": STAGE_PROBABILITY[stage],
    }


def answer(parts: list[str]) -> PipelineJSON | StageJSON | Results:
    """The JSON for ``GET /crm/v3/pipelines/...``; ``parts`` starts after ``pipelines``."""
    object_type = parts[0].lower()
    if object_type not in _PIPELINE_TYPES:
        raise HsError(
            400,
            "VALIDATION_ERROR",
            f"Unable to infer object type from: {parts[0]} (this sandbox has deal pipelines only)",
        )
    rest = parts[1:]
    if not rest:
        return {"results": [pipeline_json()]}
    if rest[0] != DEFAULT_PIPELINE_ID:
        raise HsError(404, "OBJECT_NOT_FOUND", f"Unable to find pipeline {rest[0]}")
    if len(rest) == 1:
        return pipeline_json()
    if rest[1] != "stages" or len(rest) > 3:
        raise HsError(404, "OBJECT_NOT_FOUND", "Not found")
    if len(rest) == 2:
        return {"results": [stage_json(i) for i in range(len(DEFAULT_STAGES))]}
    for i, stage in enumerate(DEFAULT_STAGES):
        if stage[0] == rest[2]:
            return stage_json(i)
    raise HsError(404, "OBJECT_NOT_FOUND", f"Unable to find stage {rest[2]} in pipeline {rest[0]}")
