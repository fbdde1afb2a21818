"""Full and incremental reads against the sandbox: nothing missed, nothing read twice."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sf_conn_support import Org, responses_org

from connectors.base import ReadBatch
from connectors.salesforce import SalesforceConnector
from connectors.sandbox.framework import ManualClock, Request, Response

WINDOW = timedelta(days=90)


def _read(c: SalesforceConnector, clock: ManualClock, cursor: Any = None) -> list[ReadBatch]:
    now = clock.datetime()
    return list(c.read_changes(cursor, until=now, events_since=now - WINDOW))


def _ids(batches: list[ReadBatch]) -> list[str]:
    return [c.id for b in batches for c in b.contacts]


def _sandbox_people(org: Org, *, converted: bool = False) -> set[str]:
    """What the org holds, read straight from the sandbox's store (not through the connector)."""
    out: set[str] = set()
    for sobject in ("Lead", "Contact"):
        table = org.sandbox.store.tables[sobject]
        for seq in table.seqs(include_deleted=False).tolist():
            row = table.row(seq)
            if sobject == "Lead" and bool(row.get("IsConverted")) != converted:
                continue
            if sobject == "Contact" and converted:
                continue
            out.add(table.id_of(seq))
    return out


def test_full_read_over_tls_reads_everyone_once(
    tls_org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The machine's CA variables point elsewhere; the configured bundle must win.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    c = tls_org.connector()
    batches = _read(c, tls_org.clock)
    ids = _ids(batches)
    assert len(ids) == len(set(ids))
    assert set(ids) == _sandbox_people(tls_org)
    assert [b.cursor is not None for b in batches] == [False] * (len(batches) - 1) + [True]
    kinds = {c.kind for b in batches for c in b.contacts}
    assert kinds == {"lead", "contact"}
    people = set(ids)
    events = [e for b in batches for e in b.events]
    assert events and {e.contact_id for e in events} <= people
    assert len({e.id for e in events}) == len(events)
    types = Counter(e.type for e in events)
    assert {"call", "email_send", "meeting_booked", "form_submit"} <= set(types)
    budget = c.budget()
    used, limit = tls_org.sandbox.api_usage()
    assert budget.daily_limit == limit and budget.daily_remaining == limit - used
    assert budget.calls == used  # every API call counted (the token request is not one)
    c.close()


def test_canonical_fields_are_normalised(org: Org) -> None:
    c = org.connector()
    contacts = [x for b in _read(c, org.clock) for x in b.contacts]
    sample = next(x for x in contacts if x.kind == "contact" and "company" in x.fields)
    assert isinstance(sample.fields.get("company_size", 0), int)
    assert sample.fields["created_at"].tzinfo is not None
    assert all(v != "" for x in contacts for v in x.fields.values())
    lead = next(x for x in contacts if x.kind == "lead")
    assert "lead_status" in lead.fields and lead.updated_at is not None
    # Models written for HubSpot's lifecycle stages score Salesforce people too.
    stages = Counter(x.fields["lifecycle_stage"] for x in contacts)
    assert stages["lead"] and stages["salesqualifiedlead"]
    for x in contacts:
        if x.kind == "contact":  # every sandbox Account is a prospect
            assert x.fields["lifecycle_stage"] == "salesqualifiedlead"
        elif x.fields.get("lead_status") == "Closed - Not Converted":
            assert x.fields["lifecycle_stage"] == "other"
        else:
            assert x.fields["lifecycle_stage"] == "lead"


def _changes_sharing_one_stamp(
    clock: ManualClock, contacts: int, shared: int, spread: int, per_stamp: int = 1
) -> int:
    for org in responses_org(clock, contacts):
        c = org.connector()
        first = _read(c, clock)
        cursor = first[-1].cursor
        clock.advance(3600)
        changed = set(org.sandbox.simulate_activity(shared, seed=1))  # all share one stamp
        for i in range(spread // per_stamp):  # and more, per_stamp at each later stamp
            clock.advance(1)
            changed |= set(org.sandbox.simulate_activity(per_stamp, seed=100 + i))
        clock.advance(60)
        org.app.reset_stats()
        second = _read(c, clock, cursor)
        ids = _ids(second)
        assert len(ids) == len(set(ids)), "a record was read twice"
        # Leads converted just before the first read's end fall inside the look-back
        # window; the full read skipped them, so the incremental one reports them.
        live = {x.id for b in second for x in b.contacts if not x.converted}
        assert live == changed, "a changed record was missed (or an unchanged one read)"
        assert second[-1].cursor is not None
        pages = org.app.stats()["by_route"].get("GET /services/data/v59.0/query/{id}", 0)
        assert pages >= shared // 2000  # paged through nextRecordsUrl, never re-queried
        # A third read with nothing new reads nothing: the look-back window overlaps the
        # last read, and the ids it saw are remembered with their stamps.
        clock.advance(60)
        third = _read(c, clock, second[-1].cursor)
        assert _ids(third) == []
        assert org.app.stats()["by_status"].keys() == {"200"}
        return len(changed)
    raise AssertionError("no sandbox")


def test_incremental_with_thousands_sharing_one_timestamp(clock: ManualClock) -> None:
    _changes_sharing_one_stamp(clock, contacts=3000, shared=2100, spread=20)


@pytest.mark.slow
def test_incremental_25000_changes_12000_sharing_one_timestamp(clock: ManualClock) -> None:
    changed = _changes_sharing_one_stamp(
        clock, contacts=60_000, shared=12_000, spread=70_000, per_stamp=350
    )
    assert changed >= 25_000


def test_converted_leads_are_reported_as_merges(org: Org) -> None:
    c = org.connector()
    full = _read(c, org.clock)
    assert not any(x.converted for b in full for x in b.contacts)  # full sync: live people
    old = {
        "v": 1,
        "objects": {
            o: {"until": "2020-01-01T00:00:00.000Z", "seen": {}} for o in ("Lead", "Contact")
        },
    }
    batches = _read(c, org.clock, old)
    converted = [x for b in batches for x in b.contacts if x.converted]
    expected = _sandbox_people(org, converted=True)
    assert expected and {x.id for x in converted} == expected
    merges = {m.merged_id: m.into_id for b in batches for m in b.merges}
    for x in converted:
        table, seq = org.sandbox.store.locate("Lead", x.id)
        assert x.kind == "lead"
        assert merges[x.id] == table.row(seq)["ConvertedContactId"]
    # Converted leads get no engagement of their own: it moved to the Contact.
    assert not {e.contact_id for b in batches for e in b.events} & expected


def test_deleted_and_merged_away_records_are_reported(org: Org) -> None:
    c = org.connector()
    cursor = _read(c, org.clock)[-1].cursor
    org.clock.advance(600)
    victims = sorted(_sandbox_people(org) - set())[:3]
    sf = c.api.client()
    for ident in victims:
        sobject = "Lead" if ident.startswith("00Q") else "Contact"
        sf.restful(f"sobjects/{sobject}/{ident}", method="DELETE")
    org.clock.advance(60)
    batches = _read(c, org.clock, cursor)
    deleted = [d for b in batches for d in b.deletions]
    assert sorted(deleted) == victims
    assert not set(_ids(batches)) & set(victims)


class _LocatorExpiresOnce:
    """Wraps the sandbox app: at the first request for a ``nextRecordsUrl`` (alone or
    in a composite request) the org's locators expire, as when they sat idle too
    long, and that request meets ``INVALID_QUERY_LOCATOR``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.more = 0

    def __call__(self, request: Request) -> Response:
        # A query-more alone or inside a composite request: at the second, every
        # locator of the org expires (the reader must restart after its last row).
        if "/query/01g" in request.path or b"/query/01g" in request.body:
            self.more += 1
            if self.more == 1:
                store = self.app.flavour.store
                with store.lock:
                    store.cursors.clear()
        response: Response = self.app(request)
        return response


@pytest.mark.parametrize("composite", [True, False], ids=["composite", "one-by-one"])
def test_expired_query_locator_resumes_after_the_last_row(
    clock: ManualClock, composite: bool
) -> None:
    fronts: list[_LocatorExpiresOnce] = []

    def wrap(app: Any) -> _LocatorExpiresOnce:
        fronts.append(_LocatorExpiresOnce(app))
        return fronts[-1]

    for org in responses_org(clock, 600, wrap=wrap):
        clock.advance(3600)
        changed = set(org.sandbox.simulate_activity(250, seed=3))  # one shared stamp
        clock.advance(60)
        c = org.connector()
        c.api.page_size = 200  # the API's smallest batch size: several locators per query
        c.api.composite = composite
        ids = _ids(_read(c, clock))
        assert fronts[0].more >= 2  # the expired request and the ones after the restart
        assert len(ids) == len(set(ids))
        assert set(ids) == _sandbox_people(org) and changed <= set(ids)


def test_own_score_writes_are_not_read_back_but_later_changes_are(org: Org) -> None:
    from connectors.base import ScoreUpdate

    org.add_leadsync_fields()
    c = org.connector()
    first = _read(c, org.clock)
    people = [x for b in first for x in b.contacts]
    result = c.write_scores([ScoreUpdate(p.id, {"lead_score": 42}, p.kind) for p in people])
    assert len(result.succeeded) == len(people)
    # Same instant as the writes: one person's title is edited too (fields differ).
    edited = next(p for p in people if p.kind == "contact")
    c.api.client().restful(f"sobjects/Contact/{edited.id}", method="PATCH", json={"Title": "CEO"})
    org.clock.advance(600)
    active = set(org.sandbox.simulate_activity(5, seed=9))  # later activity on some
    org.clock.advance(60)
    after_writes = c.checkpoint()  # what the sync stores after its writes
    assert after_writes is not None
    second = _read(c, org.clock, after_writes)
    ids = set(_ids(second))
    assert ids == active | {edited.id}
    assert c.echoes_skipped == len(people) - len(ids)
    # A connector that cannot tell its own writes (no cursor memory) re-reads them all.
    plain = org.connector()
    forgetful = dict(after_writes.to_json(), own_writes={})
    assert len(_ids(_read(plain, org.clock, forgetful))) >= len(people)


def test_own_owner_writes_are_not_read_back(org: Org) -> None:
    """The owner is one of the fields a read hashes: our owner write is remembered
    with the digest the next read computes (the new owner), so it is not re-read."""
    from connectors.base import OwnerSpec

    c = org.connector()
    people = [x for b in _read(c, org.clock) for x in b.contacts if not x.converted]
    owner = next(o for o in c.list_owners() if o.active and o.kind == "person")
    moved = [p for p in people if p.fields.get("owner_id") != owner.id][:6]
    out = c.set_owners([OwnerSpec(f"own-{p.id}", p.id, owner.id, kind=p.kind) for p in moved])
    assert len(out) == len(moved) and all(getattr(o, "created", False) for o in out)
    org.clock.advance(600)
    state = c.checkpoint()
    assert state is not None
    again = org.connector()
    assert _ids(_read(again, org.clock, state.to_json())) == []
    assert again.echoes_skipped == len(moved)


class _CompositeFront:
    """Wraps the sandbox app: ``/composite`` refused as an endpoint that lacks it
    would (``refuse``), or answered with its second subrequest failed (``fail``)."""

    def __init__(self, app: Any, *, refuse: bool = False, fail: bool = False) -> None:
        self.app, self.refuse, self.fail = app, refuse, fail
        self.composites = 0

    def __call__(self, request: Request) -> Response:
        if not request.path.endswith("/composite"):
            response: Response = self.app(request)
            return response
        self.composites += 1
        if self.refuse:
            return Response.json(
                404,
                [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
            )
        response = self.app(request)
        body = json.loads(response.body)
        if self.fail and len(body["compositeResponse"]) > 1:
            body["compositeResponse"][1] = {
                "body": [{"errorCode": "UNKNOWN_EXCEPTION", "message": "try again"}],
                "httpHeaders": {},
                "httpStatusCode": 500,
                "referenceId": body["compositeResponse"][1]["referenceId"],
            }
        return Response.json(200, body, response.headers)


@pytest.mark.parametrize("mode", ["refused", "subrequest fails"])
def test_reads_stay_whole_when_composite_is_refused_or_a_subrequest_fails(
    clock: ManualClock, mode: str
) -> None:
    # The same people and events as with every query on its own: a query whose
    # subrequest failed is run alone; a refused /composite is not tried again.
    fronts: list[_CompositeFront] = []

    def wrap(app: Any) -> _CompositeFront:
        fronts.append(_CompositeFront(app, refuse=mode == "refused", fail=mode != "refused"))
        return fronts[-1]

    for org in responses_org(clock, 600, wrap=wrap):
        clock.advance(3600)
        org.sandbox.simulate_activity(40, seed=5)
        clock.advance(60)
        plain = org.connector()
        plain.api.composite = False
        expected = _read(plain, clock)
        c = org.connector()
        c.api.page_size = 200  # several pages per query: query-more requests too
        batches = _read(c, clock)
        assert sorted(_ids(batches)) == sorted(_ids(expected))
        assert sorted(e.id for b in batches for e in b.events) == sorted(
            e.id for b in expected for e in b.events
        )
        if mode == "refused":
            assert fronts[0].composites == 1 and c.api.composite is False
        else:
            assert fronts[0].composites > 1 and c.api.composite is True


def test_a_long_read_takes_its_pages_five_to_a_call(clock: ManualClock) -> None:
    for org in responses_org(clock, 1200):
        c = org.connector()
        c.api.page_size = 200
        plain = org.connector()
        plain.api.page_size = 200
        plain.api.composite = False
        expected = _ids(_read(plain, clock))
        before = c.budget().calls
        ids = _ids(_read(c, clock))
        assert ids == expected and len(ids) == len(set(ids))
        # 1,200 people at 200 a page: the change queries alone are six pages or more.
        pages = sum(-(-n // 200) for n in c.api.rows_read.values())
        assert c.budget().calls - before <= -(-pages // 2)


def test_a_meeting_called_off_comes_as_a_cancellation(org: Org) -> None:
    """A deleted Event is a meeting called off: the Event queries run as ``queryAll``
    (in the composite request too), so the read reports ``meeting_cancelled``."""
    c = org.connector()
    events = org.sandbox.store.query(
        "SELECT Id, WhoId FROM Event WHERE WhoId != null", all_rows=False, page_size=10**9
    )["records"]
    assert events
    gone = events[0]
    org.clock.advance(60)
    c.api.client().restful(f"sobjects/Event/{gone['Id']}", method="DELETE")
    org.clock.advance(60)
    deleted_at = org.clock.datetime() - timedelta(seconds=60)
    read = [e for b in _read(c, org.clock) for e in b.events]
    cancelled = [e for e in read if e.type == "meeting_cancelled" and e.occurred_at == deleted_at]
    assert [e.contact_id for e in cancelled] == [gone["WhoId"]]
    plain = org.connector()
    plain.api.composite = False  # one query at a time: the same
    again = [e for b in _read(plain, org.clock) for e in b.events]
    assert sorted(e.id for e in again) == sorted(e.id for e in read)


def test_the_outcomes_read_takes_deals_and_conversions_in_one_call(org: Org) -> None:
    """Opportunities and Lead conversions of one window: one composite request, the
    same rows as each query alone; a page fetched ahead is never served late."""
    c = org.connector()
    plain = org.connector()
    plain.api.composite = False
    since = org.clock.datetime() - timedelta(days=400)
    expected = (list(plain.read_deal_outcomes(since)), list(plain.read_conversions(since)))
    assert expected[0] and expected[1]
    list(c.list_owners())  # signed in, so that only the outcomes read is counted
    before = c.budget().calls
    got = (list(c.read_deal_outcomes(since)), list(c.read_conversions(since)))
    assert got == expected
    assert c.budget().calls - before == 1
    # fetched ahead, then another query first: the conversions are read afresh
    list(c.read_deal_outcomes(since))
    list(c.list_owners())
    before = c.budget().calls
    assert list(c.read_conversions(since)) == expected[1]
    assert c.budget().calls - before == 1
