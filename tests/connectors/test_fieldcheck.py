"""Whether an existing CRM field can take a score or a band, from the metadata the
CRMs send (the cases the sandboxes cannot produce separately)."""

from __future__ import annotations

from connectors.base import FieldSpec
from connectors.fieldcheck import hubspot_property_problem, salesforce_field_problem

SCORE = FieldSpec("leadsync_score", "number")
BAND = FieldSpec("leadsync_band", "text")


def _hs(kind: str = "number", **extra: object) -> dict[str, object]:
    return {"name": "p", "type": kind, "fieldType": "number", **extra}


def test_hubspot_calculated_and_read_only_are_told_apart() -> None:
    assert hubspot_property_problem(SCORE, _hs()) is None
    calculated = hubspot_property_problem(SCORE, _hs(calculated=True))
    assert calculated is not None and "calculated" in calculated
    read_only = _hs(calculated=False, modificationMetadata={"readOnlyValue": True})
    problem = hubspot_property_problem(SCORE, read_only)
    assert problem is not None and "read-only" in problem


def test_hubspot_band_accepts_text_or_the_three_options() -> None:
    assert hubspot_property_problem(BAND, _hs("string")) is None
    options = [{"value": v, "label": v.title()} for v in ("hot", "warm", "cold")]
    assert hubspot_property_problem(BAND, _hs("enumeration", options=options)) is None
    hidden = [*options[:2], {"value": "cold", "hidden": True}]
    problem = hubspot_property_problem(BAND, _hs("enumeration", options=hidden))
    assert problem is not None and "cold" in problem


def test_salesforce_number_types_formulas_and_inactive_values() -> None:
    for kind in ("double", "int", "percent", "currency"):
        assert salesforce_field_problem(SCORE, {"type": kind, "updateable": True}) is None
    formula = {"type": "double", "calculated": True, "updateable": False}
    problem = salesforce_field_problem(SCORE, formula)
    assert problem is not None and "formula" in problem
    values = [
        {"value": "hot", "active": True},
        {"value": "warm"},
        {"value": "cold", "active": False},
    ]
    problem = salesforce_field_problem(BAND, {"type": "picklist", "picklistValues": values})
    assert problem is not None and "cold" in problem
    assert salesforce_field_problem(BAND, {"type": "textarea", "updateable": True}) is None
