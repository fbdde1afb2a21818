"""Salesforce ``check_deal_settings``: stage and Lead status against describe."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sf_conn_support import Org, responses_org

from connectors.sandbox import ManualClock, Request, Response


def test_active_stage_and_status_pass(org: Org) -> None:
    c = org.connector()
    assert (
        c.check_deal_settings(
            pipeline="ignored", stage="Prospecting", lead_status="Working - Contacted"
        )
        == ()
    )


def test_unknown_stage_and_status_are_reported_with_the_choices(org: Org) -> None:
    c = org.connector()
    problems = c.check_deal_settings(
        pipeline=None, stage="appointmentscheduled", lead_status="working"
    )
    assert len(problems) == 2
    stage, status = problems
    assert "'appointmentscheduled'" in stage and "writeback.on_cross.deal.stage" in stage
    assert "is not a value of Opportunity.StageName" in stage and "Prospecting" in stage
    assert "'working'" in status and "writeback.on_cross.deal.lead_status" in status
    assert "Working - Contacted" in status


def test_missing_lead_status_is_a_problem_only_when_leads_are_synced(org: Org) -> None:
    with_leads = org.connector()
    problems = with_leads.check_deal_settings(pipeline=None, stage="Prospecting", lead_status=None)
    assert len(problems) == 1 and "lead_status is empty" in problems[0]
    contacts_only = org.connector(objects=["Contact"])
    assert (
        contacts_only.check_deal_settings(pipeline=None, stage="Prospecting", lead_status=None)
        == ()
    )


class _DeactivatesProspecting:
    """Describes ``Prospecting`` as an inactive stage, as an admin may leave it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, request: Request) -> Response:
        response: Response = self.app(request)
        if not request.path.rstrip("/").endswith("/Opportunity/describe"):
            return response
        body = json.loads(response.body)
        for f in body["fields"]:
            for entry in f.get("picklistValues") or []:
                if f["name"] == "StageName" and entry["value"] == "Prospecting":
                    entry["active"] = False
        return Response.json(response.status, body, response.headers)


def _inactive_org(clock: ManualClock) -> Iterator[Org]:
    yield from responses_org(clock, 50, wrap=_DeactivatesProspecting)


def test_inactive_stage_is_reported(clock: ManualClock) -> None:
    for org in _inactive_org(clock):
        c = org.connector()
        problems = c.check_deal_settings(
            pipeline=None, stage="Prospecting", lead_status="Working - Contacted"
        )
        assert len(problems) == 1 and "is an inactive value of Opportunity.StageName" in problems[0]
        assert "Qualification" in problems[0] and "Prospecting," not in problems[0]
