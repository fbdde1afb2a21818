"""Writes against the sandbox: partial failures, faults, expiry, idempotent creates, quota."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from typing import Any

import pytest
from sf_conn_support import Org, responses_org

from connectors.base import (
    AuthError,
    ConnectorConfigError,
    CRMResponseError,
    DealSpec,
    FieldSpec,
    QuotaExhausted,
    ScoreUpdate,
    TaskSpec,
)
from connectors.salesforce import SalesforceConnector
from connectors.sandbox.framework import ManualClock, Request

FIELDS = [FieldSpec("lead_score"), FieldSpec("lead_band", type="text")]


def set_faults(org: Org, **faults: Any) -> None:
    response = org.app(Request("POST", "/__sandbox/faults", body=json.dumps(faults).encode()))
    assert response.status == 200, response.body


def _people(c: SalesforceConnector, org: Org) -> list[Any]:
    now = org.clock.datetime()
    return [x for b in c.read_changes(None, until=now, events_since=now) for x in b.contacts]


def _query(c: SalesforceConnector, soql: str) -> list[dict[str, Any]]:
    return c._query_one(soql, what="test query")


def test_missing_custom_fields_are_named_with_how_to_create_them(org: Org) -> None:
    c = org.connector()
    check = c.ensure_fields(FIELDS)
    assert set(check.missing) == {
        "Lead.lead_score__c", "Lead.lead_band__c", "Contact.lead_score__c",
        "Contact.lead_band__c", "Opportunity.leadsync_key__c", "Task.leadsync_key__c",
    }  # fmt: skip
    text = "\n".join(check.instructions)
    assert len(check.instructions) == 6
    assert (
        "Lead: create custom field lead_score__c (Field Name lead_score) of type Number(5,2)"
        in text
    )
    assert (
        "Contact: create custom field lead_band__c (Field Name lead_band) of type Text(40)" in text
    )
    key_lines = [i for i in check.instructions if "leadsync_key__c" in i]
    assert len(key_lines) == 2 and all("External ID and Unique" in i for i in key_lines)
    assert any(i.startswith("Opportunity:") for i in key_lines)
    assert check.present == ()


def test_fields_present_after_creation_and_key_must_be_unique(org: Org) -> None:
    for obj in ("Lead", "Contact"):
        org.sandbox.add_custom_field(obj, "lead_score__c", "double")
        org.sandbox.add_custom_field(obj, "lead_band__c", "string")
    org.sandbox.add_custom_field(
        "Opportunity", "leadsync_key__c", "string", external_id=True, unique=True
    )
    org.sandbox.add_custom_field("Task", "leadsync_key__c", "string")  # not an external id
    check = org.connector().ensure_fields(FIELDS)
    # Orgs may refuse External ID and Unique on activity fields: the Task key then
    # works through the person's Tasks, and the check says so.
    assert check.missing == ()
    assert "not External ID and Unique" in check.present[-1]
    assert len(check.present) == 6

    # on Opportunity, the key must be External ID and Unique
    clock = ManualClock()
    for other in responses_org(clock, 30):
        other.sandbox.add_custom_field("Opportunity", "leadsync_key__c", "string")
        check = other.connector().ensure_fields([], actions=("deal",))
        assert check.missing == ("Opportunity.leadsync_key__c",)
        assert "must be an External ID and Unique" in check.instructions[0]


def test_score_writes_report_each_refused_record(org: Org) -> None:
    org.add_leadsync_fields()
    c = org.connector()
    people = _people(c, org)[:250]
    updates = [
        ScoreUpdate(p.id, {"lead_score": 50 + i % 40, "lead_band": "B"}, p.kind)
        for i, p in enumerate(people)
    ]
    bogus = ScoreUpdate("003000000000000AAA", {"lead_score": 1}, "contact")  # no such record
    bad_value = ScoreUpdate(people[0].id, {"lead_score": "very high"}, people[0].kind)
    result = c.write_scores([*updates, bogus, bad_value])
    assert len(result.succeeded) == 250
    failed = {f.id: f for f in result.failed}
    assert set(failed) == {bogus.contact_id, people[0].id}
    assert all(f.reason and not f.retriable for f in result.failed)
    stats = org.app.stats()["by_route"]
    assert stats["PATCH /services/data/v59.0/composite/sobjects"] == 2  # 252 records, 200 a call
    rows = _query(
        c,
        f"SELECT Id, lead_score__c FROM {'Lead' if people[5].kind == 'lead' else 'Contact'} WHERE Id = '{people[5].id}'",
    )
    assert rows[0]["lead_score__c"] == 55


def test_5xx_storm_is_retried_with_backoff_and_no_real_sleep(org: Org) -> None:
    org.add_leadsync_fields()
    c = org.connector()
    people = _people(c, org)
    set_faults(org, error_rate=0.4, error_status=503)
    now = org.clock.datetime()
    again = [x.id for b in c.read_changes(None, until=now, events_since=now) for x in b.contacts]
    result = c.write_scores([ScoreUpdate(p.id, {"lead_score": 1}, p.kind) for p in people])
    assert sorted(again) == sorted(p.id for p in people)
    assert len(result.succeeded) == len(people) and not result.failed
    assert org.app.stats()["by_status"].get("503", 0) > 0
    assert org.sleeps and all(s > 0 for s in org.sleeps)  # backed off on the injected clock
    set_faults(org, error_rate=1.0, error_status=500)
    before = c.budget().calls
    with pytest.raises(CRMResponseError, match="gave up after 5 attempts"):
        c.write_scores([ScoreUpdate(people[0].id, {"lead_score": 2}, people[0].kind)])
    assert c.budget().calls - before == 5  # bounded


def test_session_expiry_mid_run_reauthenticates_with_jwt(org: Org) -> None:
    c = org.connector()
    now = org.clock.datetime()
    c.list_owners()  # signed in
    set_faults(org, expire_token_after=1)  # the session dies one call into the read
    batches = list(c.read_changes(None, until=now, events_since=now - timedelta(days=30)))
    ids = [x.id for b in batches for x in b.contacts]
    assert len(ids) == len(set(ids)) and batches[-1].cursor is not None
    assert org.app.stats()["by_route"]["POST /services/oauth2/token"] == 2
    assert org.app.stats()["by_status"]["401"] == 1
    assert len(ids) == len(_people(org.connector(), org))


def test_session_id_without_credentials_cannot_renew(org: Org) -> None:
    c = org.connector(auth="session_id")
    org.sandbox.expire_credentials()
    with pytest.raises(AuthError):
        c.list_owners()


def _deal(contact_id: str, key: str = "deal-1") -> DealSpec:
    return DealSpec(
        key=key, contact_id=contact_id, name="leadsync: hot lead", owner_id=None,
        stage="Prospecting", close_date=date(2026, 7, 31), amount=1200.0,
    )  # fmt: skip


def _task(contact_id: str, key: str = "task-1", kind: str = "contact") -> TaskSpec:
    return TaskSpec(
        key=key, contact_id=contact_id, owner_id=None, subject="Call this lead",
        body="Score 91: visited pricing twice", due_at=ManualClock().datetime(),
        priority="high", type="call", contact_kind=kind,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture(params=["responses", "tls"])
def any_org(request: pytest.FixtureRequest) -> Org:
    """Both front doors: ``responses`` (a drop is a ConnectionError) and the real TLS
    server (a drop is a closed socket after the write was applied)."""
    return request.getfixturevalue("org" if request.param == "responses" else "tls_org")  # type: ignore[no-any-return]


def test_commit_then_drop_creates_exactly_one_deal_role_and_task(any_org: Org) -> None:
    org = any_org
    org.add_leadsync_fields()
    c = org.connector()
    contact = next(p for p in _people(c, org) if p.kind == "contact")
    set_faults(org, commit_then_drop=1.0)  # every write is applied, its answer lost
    deal = c.create_deal(_deal(contact.id))
    task = c.create_task(_task(contact.id))
    set_faults(org)
    assert deal.id and task.id
    again = c.create_deal(_deal(contact.id))
    assert again.id == deal.id and again.created is False
    assert c.create_task(_task(contact.id)).id == task.id
    opps = _query(
        c,
        "SELECT Id, AccountId, OwnerId, CloseDate FROM Opportunity WHERE leadsync_key__c = 'deal-1'",
    )
    roles = _query(c, f"SELECT Id FROM OpportunityContactRole WHERE OpportunityId = '{deal.id}'")
    tasks = _query(
        c,
        "SELECT Id, WhoId, Priority, Status, TaskSubtype FROM Task WHERE leadsync_key__c = 'task-1'",
    )
    assert len(opps) == 1 and len(roles) == 1 and len(tasks) == 1
    assert opps[0]["AccountId"] and opps[0]["CloseDate"] == "2026-07-31"
    assert tasks[0]["WhoId"] == contact.id and tasks[0]["Priority"] == "High"
    assert org.app.stats()["by_status"]["dropped"] >= 3
    open_deals = c.open_deals([contact.id])
    assert deal.id in {d.id for d in open_deals[contact.id]}


def test_lead_gets_a_status_change_instead_of_a_deal(org: Org) -> None:
    org.add_leadsync_fields()
    c = org.connector()
    lead = next(p for p in _people(c, org) if p.kind == "lead")
    spec = DealSpec(
        key="deal-lead", contact_id=lead.id, name="x", owner_id=None, stage="Prospecting",
        close_date=date(2026, 7, 31), contact_kind="lead",
        crm_options={"lead_status": "Working - Contacted"},
    )  # fmt: skip
    first = c.create_deal(spec)
    second = c.create_deal(spec)
    assert first.created and not second.created
    assert (
        _query(c, f"SELECT Status FROM Lead WHERE Id = '{lead.id}'")[0]["Status"]
        == "Working - Contacted"
    )
    assert not _query(c, "SELECT Id FROM Opportunity WHERE leadsync_key__c = 'deal-lead'")
    task = c.create_task(_task(lead.id, "task-lead", "lead"))
    assert task.created


def test_request_limit_exceeded_ends_the_run_without_sleeping(clock: ManualClock) -> None:
    # One call's allowance: the read's first request (one composite request for the
    # objects' first pages) spends it, and the next one would be refused.
    for org in responses_org(clock, 300, daily_limit=1):
        c = org.connector(quota_share=1, headroom=1)  # let the org itself refuse
        now = clock.datetime()
        batches: list[Any] = []
        with pytest.raises(QuotaExhausted):
            batches.extend(c.read_changes(None, until=now, events_since=now - timedelta(days=30)))
        assert not any(b.cursor for b in batches)  # no cursor: the next run re-reads
        assert org.sleeps == []
        # The headers said nothing was left, so it stopped before a call the org would refuse.
        assert org.sandbox.api_usage() == (1, 1)
        assert "403" not in org.app.stats()["by_status"]
        org.sandbox.reset()
        org.sandbox.daily_limit = 4  # room for signing in and listing owners below
        # The storm from the start: the sandbox refuses the token request as well
        # (Salesforce would not); either way the run stops as out of quota.
        set_faults(org, rate_limit_storm=True)
        with pytest.raises(QuotaExhausted, match="REQUEST_LIMIT_EXCEEDED"):
            org.connector(quota_share=1, headroom=1).list_owners()
        set_faults(org)
        c = org.connector(quota_share=1, headroom=1)
        c.list_owners()  # signed in
        set_faults(org, rate_limit_storm=True)  # other apps spent the allowance meanwhile
        with pytest.raises(QuotaExhausted, match="REQUEST_LIMIT_EXCEEDED"):
            c.write_scores(
                [ScoreUpdate(org.sandbox.store.tables["Contact"].id_of(0), {"lead_score": 1})]
            )
        assert org.sleeps == []


def test_quota_share_stops_the_run_before_the_org_runs_dry(clock: ManualClock) -> None:
    for org in responses_org(clock, 2000, daily_limit=40):
        c = org.connector(quota_share=0.05)  # two calls of the org's forty
        now = clock.datetime()
        with pytest.raises(QuotaExhausted, match="quota_share"):
            list(c.read_changes(None, until=now, events_since=now - timedelta(days=30)))
        used, _ = org.sandbox.api_usage()
        assert used <= 2 and org.app.stats()["by_status"].keys() == {"200"}


class _PlantsSecrets:
    """Answers every data request with a 500 whose body echoes the caller's
    Authorization header, as a careless proxy might."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, request: Request) -> Any:
        from connectors.sandbox.framework import Response

        if request.path.startswith("/services/data"):
            token = request.headers.get("authorization", "")
            return Response.json(
                500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": f"bad {token} sid={token[7:]}"}]
            )
        return self.app(request)


def test_planted_secrets_never_reach_messages_or_logs(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for org in responses_org(clock, 50, wrap=_PlantsSecrets):
        c = org.connector(auth="refresh_token")
        with pytest.raises(CRMResponseError) as info:
            c.list_owners()
        token = c.api.client().session_id
        text = f"{info.value}\n{info.value!r}\n{caplog.text}"
        for secret in (token, token.split("!")[1], "sandbox-refresh", "sandbox-secret"):
            assert secret not in text
        assert "UNKNOWN_EXCEPTION" in str(info.value)
        # The JWT private key as well, when a key is refused.
        bad = org.connector(
            jwt={
                "client_id": "nope",
                "username": "u",
                "private_key": org.sandbox.jwt_private_key_pem.decode(),
            }
        )
        with pytest.raises(AuthError) as refused:
            bad.list_owners()
        key_line = org.sandbox.jwt_private_key_pem.decode().splitlines()[1]
        assert key_line not in f"{refused.value}{caplog.text}"


def test_headroom_leaves_the_rest_of_the_daily_allocation_to_other_apps(clock: ManualClock) -> None:
    for org in responses_org(clock, 50, daily_limit=20):
        other = org.connector(quota_share=1, headroom=1)
        for _ in range(9):
            other.list_owners()  # another app has spent 9 of the 20 calls
        c = org.connector(headroom=0.5, quota_share=1)
        with pytest.raises(QuotaExhausted, match=r"headroom 0\.5"):
            for _ in range(5):
                c.list_owners()
        used, limit = org.sandbox.api_usage()
        assert used < limit and "403" not in org.app.stats()["by_status"]


def test_deal_without_the_key_field_says_how_to_create_it(org: Org) -> None:
    c = org.connector()
    contact = org.sandbox.store.tables["Contact"].id_of(0)
    with pytest.raises(ConnectorConfigError, match=r"Opportunity\.leadsync_key__c must exist"):
        c.create_deal(_deal(contact))
    assert _query(c, "SELECT Id FROM Opportunity WHERE Name = 'leadsync: hot lead'") == []
