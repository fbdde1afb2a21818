"""Incremental reads: what an empty one costs, deletions and merges from the same
``queryAll``, rows that share the boundary second, and the describe it remembers."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sf_conn_support import Org, responses_org

from connectors.base import Cursor, FieldSpec, ReadBatch
from connectors.salesforce import SalesforceConnector
from connectors.sandbox.framework import ManualClock, Request, Response

WINDOW = timedelta(days=90)
API = "/services/data/v59.0"
TOKEN_ROUTE = "POST /services/oauth2/token"
QUERY_ALL_ROUTE = f"GET {API}/queryAll"
COMPOSITE_ROUTE = f"POST {API}/composite"


def _read(c: SalesforceConnector, clock: ManualClock, cursor: Cursor | None) -> list[ReadBatch]:
    now = clock.datetime()
    return list(c.read_changes(cursor, until=now, events_since=now - WINDOW))


def _cursor(batches: list[ReadBatch]) -> Cursor:
    cursor = batches[-1].cursor
    assert cursor is not None
    return cursor


def _ids(batches: list[ReadBatch]) -> list[str]:
    return [x.id for b in batches for x in b.contacts]


def _stats(org: Org) -> dict[str, Any]:
    """What the sandbox counted, asked the way any client would (``/__sandbox/stats``)."""
    answer = org.app(Request("GET", "/__sandbox/stats"))
    assert answer.status == 200
    stats: dict[str, Any] = json.loads(answer.body)
    return stats


def _reset_stats(org: Org) -> None:
    assert org.app(Request("DELETE", "/__sandbox/stats")).status == 204


def _api_calls(stats: dict[str, Any]) -> int:
    """Calls against the API allowance: everything but the OAuth token request."""
    return int(stats["total"]) - int(stats["by_route"].get(TOKEN_ROUTE, 0))


def _delete(c: SalesforceConnector, ident: str) -> None:
    sobject = "Lead" if ident.startswith("00Q") else "Contact"
    c.api.client().restful(f"sobjects/{sobject}/{ident}", method="DELETE")


def _live_contacts(org: Org, n: int) -> list[str]:
    table = org.sandbox.store.tables["Contact"]
    return [table.id_of(int(s)) for s in table.seqs(include_deleted=False)[:n]]


def test_empty_incremental_read_costs_one_call_holding_a_query_all_per_object(org: Org) -> None:
    first = org.connector()
    first.ensure_fields([FieldSpec("lead_score")])  # the baseline run describes the objects
    cursor = _cursor(_read(first, org.clock, None))
    org.clock.advance(900)
    # A new process (a new connector) reads with the saved cursor; nothing changed.
    _reset_stats(org)
    used_before, _ = org.sandbox.api_usage()
    c = org.connector()
    batches = _read(c, org.clock, cursor)
    stats = _stats(org)
    assert _ids(batches) == [] and not any(b.deletions or b.merges for b in batches)
    # Both objects' queryAll in one composite request, which the org counts once.
    assert stats["by_route"] == {TOKEN_ROUTE: 1, COMPOSITE_ROUTE: 1}
    assert stats["subrequests"] == {QUERY_ALL_ROUTE: 2}
    assert stats["by_status"] == {"200": 2}
    assert _api_calls(stats) == 1 == c.budget().calls
    assert org.sandbox.api_usage()[0] - used_before == 1
    # The same connector again: no token request either.
    org.clock.advance(900)
    _reset_stats(org)
    _read(c, org.clock, _cursor(batches))
    assert _stats(org)["by_route"] == {COMPOSITE_ROUTE: 1}


def test_describe_is_remembered_in_the_cursor_for_a_day(org: Org) -> None:
    # A full read without ensure_fields (or a cursor from before the memory existed)
    # describes each object once on its next incremental read, and then not again.
    cursor = _cursor(_read(org.connector(), org.clock, None))
    describe = {f"GET {API}/sobjects/Lead/describe": 1, f"GET {API}/sobjects/Contact/describe": 1}
    org.clock.advance(900)
    _reset_stats(org)
    cursor = _cursor(_read(org.connector(), org.clock, cursor))
    assert _stats(org)["by_route"] == {TOKEN_ROUTE: 1, COMPOSITE_ROUTE: 1, **describe}
    for hours in (1, 23):
        org.clock.advance(hours * 3600)
        _reset_stats(org)
        cursor = _cursor(_read(org.connector(), org.clock, cursor))
        assert _stats(org)["by_route"] == {TOKEN_ROUTE: 1, COMPOSITE_ROUTE: 1}
    org.clock.advance(2 * 3600)  # more than a day since the describe: asked again
    _reset_stats(org)
    _read(org.connector(), org.clock, cursor)
    assert _stats(org)["by_route"] == {TOKEN_ROUTE: 1, COMPOSITE_ROUTE: 1, **describe}


def test_deletions_come_from_the_same_query_all_and_are_reported_once(org: Org) -> None:
    c = org.connector()
    cursor = _cursor(_read(c, org.clock, None))
    org.clock.advance(600)
    victims = sorted(_live_contacts(org, 2))
    edited = _live_contacts(org, 3)[2]
    for ident in victims:
        _delete(c, ident)
    c.api.client().restful(f"sobjects/Contact/{edited}", method="PATCH", json={"Title": "CFO"})
    org.clock.advance(60)
    _reset_stats(org)
    c.api.rows_read.clear()
    batches = _read(c, org.clock, cursor)
    assert sorted(d for b in batches for d in b.deletions) == victims
    assert not any(b.deletions for b in batches[:-1])  # with the cursor, in the last batch
    assert _ids(batches) == [edited]
    # One queryAll per object for changes and deletions; the rest is the edited
    # contact's engagement (one query per source).
    # (Events by queryAll too: a deleted Event is a cancelled meeting)
    assert _stats(org)["subrequests"][QUERY_ALL_ROUTE] == 3
    assert set(c.api.rows_read) == {
        "read Lead changes",
        "read Contact changes",
        "read Task",
        "read Event",
        "read CampaignMember",
    }
    # Still inside the look-back window: neither the deletions nor the edit come again.
    org.clock.advance(60)
    again = _read(c, org.clock, _cursor(batches))
    assert _ids(again) == [] and not any(b.deletions for b in again)


def test_boundary_second_edits_and_deletes_are_not_lost(org: Org) -> None:
    """Salesforce stamps are whole seconds: a record read in the second the read ends
    can change again in that second and keep its stamp."""
    c = org.connector()
    cursor = _cursor(_read(c, org.clock, None))
    org.clock.advance(600)
    edited, doomed = _live_contacts(org, 2)
    sf = c.api.client()
    for ident in (edited, doomed):
        sf.restful(f"sobjects/Contact/{ident}", method="PATCH", json={"Title": "VP Sales"})
    # The clock stands still: the read ends in the same second as the edits...
    first = _read(c, org.clock, cursor)
    assert sorted(_ids(first)) == sorted([edited, doomed])
    # ... and in that second, after the read, one is edited again and one deleted.
    sf.restful(f"sobjects/Contact/{edited}", method="PATCH", json={"Title": "CEO"})
    _delete(c, doomed)
    org.clock.advance(60)
    second = _read(c, org.clock, _cursor(first))
    assert _ids(second) == [edited]
    assert next(x for x in second[0].contacts).fields["job_title"] == "CEO"
    assert [d for b in second for d in b.deletions] == [doomed]
    org.clock.advance(60)
    third = _read(c, org.clock, _cursor(second))
    assert _ids(third) == [] and not any(b.deletions for b in third)


class _ServesMasterRecordId:
    """A front that makes the sandbox describe and serve ``MasterRecordId`` on Lead and
    Contact (as Salesforce does), for the records ``merged`` names."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.merged: dict[str, str] = {}
        self.queries: list[str] = []

    def __call__(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if path.endswith(("/Lead/describe", "/Contact/describe")):
            response: Response = self.app(request)
            body = json.loads(response.body)
            body["fields"].append({"name": "MasterRecordId", "type": "reference"})
            return Response.json(response.status, body, response.headers)
        soql = request.param("q")
        if soql is None or not path.endswith(("/query", "/queryAll")):
            answer: Response = self.app(request)
            return answer
        self.queries.append(soql)
        if ", MasterRecordId" not in soql:
            plain: Response = self.app(request)
            return plain
        stripped = soql.replace(", MasterRecordId", "")
        response = self.app(dataclasses.replace(request, query={**request.query, "q": [stripped]}))
        body = json.loads(response.body)
        for rec in body.get("records", []):
            rec["MasterRecordId"] = self.merged.get(rec["Id"]) if rec.get("IsDeleted") else None
        return Response.json(response.status, body, response.headers)


def _master_org(clock: ManualClock) -> Iterator[tuple[Org, _ServesMasterRecordId]]:
    fronts: list[_ServesMasterRecordId] = []

    def wrap(app: Any) -> _ServesMasterRecordId:
        fronts.append(_ServesMasterRecordId(app))
        return fronts[-1]

    for org in responses_org(clock, 300, wrap=wrap):
        yield org, fronts[0]


def test_merges_are_reported_where_master_record_id_is_served(clock: ManualClock) -> None:
    for org, front in _master_org(clock):
        c = org.connector()
        cursor = _cursor(_read(c, clock, None))
        clock.advance(600)
        loser, survivor, deleted = _live_contacts(org, 3)
        sf = c.api.client()
        # What a merge does: the survivor is updated, the loser deleted naming it.
        sf.restful(f"sobjects/Contact/{survivor}", method="PATCH", json={"Title": "Merged"})
        _delete(c, loser)
        front.merged[loser] = survivor
        _delete(c, deleted)
        clock.advance(60)
        front.queries.clear()
        batches = _read(c, clock, cursor)
        assert all("MasterRecordId" in q for q in front.queries[:2])
        assert [(m.merged_id, m.into_id) for b in batches for m in b.merges] == [(loser, survivor)]
        assert [d for b in batches for d in b.deletions] == [deleted]
        assert _ids(batches) == [survivor]


def test_without_master_record_id_merged_away_records_are_deletions(org: Org) -> None:
    """The sandbox does not model MasterRecordId (describe does not list it): the read
    must not select it, and a merged-away record is still reported, as deleted."""
    c = org.connector()
    cursor = _cursor(_read(c, org.clock, None))
    org.clock.advance(600)
    [loser] = _live_contacts(org, 1)
    _delete(c, loser)
    org.clock.advance(60)
    batches = _read(c, org.clock, cursor)
    assert [d for b in batches for d in b.deletions] == [loser]
    assert not any(b.merges for b in batches)
    assert "400" not in _stats(org)["by_status"]


@pytest.mark.parametrize("queryable", [False, True])
def test_lead_queues_are_listed_where_group_can_be_queried(
    clock: ManualClock, queryable: bool
) -> None:
    """Salesforce answers ``FROM Group``; an org or proxy that refuses it (as the
    sandbox's parser once did) still gets a list of users, and is not asked again."""

    class _AnswersGroup:
        def __init__(self, app: Any) -> None:
            self.app = app
            self.asked = 0
            self.sandbox: Any = None  # set once the org exists

        def __call__(self, request: Request) -> Response:
            soql = request.param("q") or ""
            if request.path.endswith("/composite") and b"FROM+Group" in request.body:
                # asked inside a composite request: the same answer as alone
                self.asked += 1
                answer = self.app(request)
                if queryable:
                    return answer
                body = json.loads(answer.body)
                for result in body["compositeResponse"]:
                    if result["referenceId"] == "q1":
                        result["httpStatusCode"] = 400
                        result["body"] = [{"errorCode": "MALFORMED_QUERY", "message": "Group"}]
                return Response.json(200, body, answer.headers)
            if "FROM Group" in soql:
                self.asked += 1
                if queryable:
                    table = self.sandbox.store.tables["Group"]
                    rows = [table.row(s) for s in range(table.n)]
                    records = [
                        {
                            "attributes": {"type": "Group"},
                            "Id": table.id_of(s),
                            "Name": r["Name"],
                            "Email": r.get("Email"),
                        }
                        for s, r in enumerate(rows)
                        if r.get("Type") == "Queue"
                    ]
                    body = {"totalSize": len(records), "done": True, "records": records}
                    return Response.json(200, body)
                refusal = [{"errorCode": "MALFORMED_QUERY", "message": "unexpected token: 'Group'"}]
                return Response.json(400, refusal)
            answer: Response = self.app(request)
            return answer

    fronts: list[_AnswersGroup] = []

    def wrap(app: Any) -> _AnswersGroup:
        fronts.append(_AnswersGroup(app))
        return fronts[-1]

    for org in responses_org(clock, 100, wrap=wrap):
        fronts[0].sandbox = org.sandbox
        c = org.connector()
        owners = c.list_owners()
        users = org.sandbox.store.tables["User"]
        people = {o.id for o in owners if o.kind == "person"}
        assert people == {users.id_of(s) for s in range(users.n)}
        queues = [o for o in owners if o.kind == "queue"]
        assert bool(queues) is queryable
        assert all(q.id.startswith("00G") and q.name for q in queues)
        c.list_owners()
        # Queryable: asked with the users each time. Refused: inside the composite
        # request, then alone (for the refusal's own answer), and never again.
        assert fronts[0].asked == 2
