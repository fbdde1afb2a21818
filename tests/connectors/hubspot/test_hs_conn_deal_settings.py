"""HubSpot ``check_deal_settings`` against the sandbox's deal pipelines."""

from __future__ import annotations

import pytest
from hs_conn_env import Rule, error_json, sandbox_env


@pytest.mark.parametrize(
    ("pipeline", "stage"),
    [
        ("default", "appointmentscheduled"),
        (None, "qualifiedtobuy"),  # the connector's configured pipeline
        ("sales pipeline", "Contract Sent"),  # labels, case-insensitive
        ("SALES PIPELINE", "presentation scheduled"),
    ],
)
def test_known_open_stage_passes(pipeline: str | None, stage: str) -> None:
    with sandbox_env(5) as env:
        connector = env.connector()
        assert connector.check_deal_settings(pipeline=pipeline, stage=stage, lead_status=None) == ()
        connector.close()


def test_unknown_pipeline_names_the_field_and_the_choices() -> None:
    with sandbox_env(5) as env:
        connector = env.connector()
        problems = connector.check_deal_settings(pipeline="renewals", stage="x", lead_status=None)
        assert len(problems) == 1
        assert "'renewals'" in problems[0] and "writeback.on_cross.deal.pipeline" in problems[0]
        assert "default (Sales Pipeline)" in problems[0]
        connector.close()


def test_unknown_stage_lists_the_pipeline_stages() -> None:
    with sandbox_env(5) as env:
        connector = env.connector()
        problems = connector.check_deal_settings(
            pipeline="default", stage="appointment", lead_status="Working"
        )
        assert len(problems) == 1
        assert "'appointment'" in problems[0] and "writeback.on_cross.deal.stage" in problems[0]
        assert "appointmentscheduled (Appointment Scheduled)" in problems[0]
        connector.close()


@pytest.mark.parametrize("stage", ["closedwon", "Closed Lost"])
def test_closed_stage_is_a_problem(stage: str) -> None:
    with sandbox_env(5) as env:
        connector = env.connector()
        problems = connector.check_deal_settings(pipeline="default", stage=stage, lead_status=None)
        assert len(problems) == 1 and "deals would be created closed" in problems[0]
        connector.close()


def test_refused_pipeline_read_is_reported_not_raised() -> None:
    with sandbox_env(5) as env:
        env.flavour.rules.append(
            Rule(
                lambda r: r.path.startswith("/crm/v3/pipelines/deals"),
                error_json(404, "Not found"),
                times=None,
            )
        )
        connector = env.connector()
        problems = connector.check_deal_settings(
            pipeline="default", stage="appointmentscheduled", lead_status=None
        )
        assert len(problems) == 1 and "deal pipelines cannot be read" in problems[0]
        connector.close()
