"""The seeded org mirrors the shared world; activity simulation; threads; scale."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime

import pytest
from sf_sandbox_support import PinnedSession
from simple_salesforce import Salesforce

from connectors.sandbox.framework import ManualClock, RunningServer
from connectors.sandbox.salesforce import SalesforceSandbox
from connectors.sandbox.world import ACTIVITY_TYPES, World, generate_world


def test_people_become_leads_converted_leads_and_contacts(
    sf: Salesforce, small_world: World
) -> None:
    kinds = Counter(p.sf_kind for p in small_world.people)
    assert (
        sf.query("SELECT COUNT() FROM Lead WHERE IsConverted = false")["totalSize"] == kinds["lead"]
    )
    converted = sf.query_all(
        "SELECT Id, Email, Status, ConvertedContactId, ConvertedAccountId, ConvertedContact.Email, "
        "ConvertedContact.AccountId FROM Lead WHERE IsConverted = true"
    )["records"]
    assert len(converted) == kinds["converted_lead"] > 0
    for lead in converted:
        assert lead["Status"] == "Closed - Converted"
        assert lead["ConvertedContact"]["Email"] == lead["Email"]
        assert lead["ConvertedContact"]["AccountId"] == lead["ConvertedAccountId"] is not None
    contacts = sf.query("SELECT COUNT() FROM Contact WHERE AccountId != null")["totalSize"]
    assert contacts == kinds["converted_lead"] + kinds["contact"]
    emails = {p.email.lower() for p in small_world.people}
    sample = sf.query("SELECT Email FROM Lead LIMIT 50")["records"]
    assert all(r["Email"].lower() in emails for r in sample)


def test_owners_users_and_the_queue(sf: Salesforce, small_world: World) -> None:
    reps = [o for o in small_world.owners if o.kind == "person"]
    users = sf.query("SELECT Email, IsActive FROM User WHERE Email LIKE '%@acmecloud.example'")
    assert sorted((u["Email"], u["IsActive"]) for u in users["records"]) == sorted(
        (o.email, o.active) for o in reps
    )
    queued = sf.query_all(
        "SELECT Id, OwnerId, Owner.Name, Owner.Type FROM Lead WHERE Owner.Type = 'Queue'"
    )
    expected = sum(
        p.sf_kind != "contact"
        and p.owner_idx is not None
        and small_world.owners[p.owner_idx].kind == "queue"
        for p in small_world.people
    )
    assert queued["totalSize"] == expected > 0
    first = queued["records"][0]
    assert first["OwnerId"].startswith("00G") and first["Owner"]["Name"] == "Inbound Lead Queue"
    assert first["Owner"]["Type"] == "Queue"


def test_activities_become_tasks_events_and_campaign_members(
    sf: Salesforce, small_world: World
) -> None:
    acts = small_world.activities
    counts = Counter(ACTIVITY_TYPES[k] for k in acts.kind.tolist())
    calls = sf.query("SELECT COUNT() FROM Task WHERE TaskSubtype = 'Call'")["totalSize"]
    assert calls == counts["call"]
    sends = sf.query("SELECT COUNT() FROM Task WHERE TaskSubtype = 'ListEmail'")["totalSize"]
    assert sends == counts["email_send"]
    meetings = sf.query("SELECT COUNT() FROM Event")["totalSize"]
    assert meetings == counts["meeting_booked"]
    cancelled = sf.query("SELECT COUNT() FROM Event WHERE IsDeleted = true", include_deleted=True)
    assert cancelled["totalSize"] == counts["meeting_cancelled"]
    task = sf.query("SELECT WhoId, ActivityDate, CreatedDate, Status FROM Task LIMIT 1")["records"][
        0
    ]
    assert task["WhoId"][:3] in ("00Q", "003") and task["Status"] == "Completed"
    assert task["ActivityDate"] == task["CreatedDate"][:10]
    attended = sf.query(
        "SELECT Status, HasResponded, FirstRespondedDate, Campaign.Type FROM CampaignMember "
        "WHERE Status = 'Attended' LIMIT 5"
    )["records"]
    assert attended and all(
        m["HasResponded"] and m["FirstRespondedDate"] and m["Campaign"]["Type"] == "Webinar"
        for m in attended
    )
    sent_only = sf.query("SELECT COUNT() FROM CampaignMember WHERE HasResponded = false")
    assert sent_only["totalSize"] > 0


def test_opportunities_and_contact_roles(sf: Salesforce, small_world: World) -> None:
    stages = Counter(d.stage for d in small_world.deals)
    won = sf.query("SELECT COUNT() FROM Opportunity WHERE IsWon = true AND IsClosed = true")
    lost = sf.query("SELECT COUNT() FROM Opportunity WHERE IsWon = false AND IsClosed = true")
    open_ = sf.query("SELECT COUNT() FROM Opportunity WHERE IsClosed = false")
    assert (won["totalSize"], lost["totalSize"], open_["totalSize"]) == (
        stages["won"],
        stages["lost"],
        stages["open"],
    )
    closed = sf.query(
        "SELECT StageName, CloseDate, Amount, AccountId FROM Opportunity WHERE IsWon = true LIMIT 5"
    )["records"]
    assert all(
        o["StageName"] == "Closed Won" and o["Amount"] > 0 and o["AccountId"] for o in closed
    )
    roles = sf.query_all("SELECT Opportunity.IsWon, Contact.Email FROM OpportunityContactRole")[
        "records"
    ]
    with_contact = sum(
        1 for d in small_world.deals if small_world.people[d.person_idx].sf_kind != "lead"
    )
    assert len(roles) == with_contact > 0
    assert all(r["Contact"]["Email"] for r in roles)


def test_simulate_activity_bumps_stamps_and_adds_engagement(
    sf: Salesforce, box: SalesforceSandbox, clock: ManualClock
) -> None:
    clock.advance(600)
    cursor = clock.datetime().strftime("%Y-%m-%dT%H:%M:%SZ")
    tasks_before = sf.query("SELECT COUNT() FROM Task")["totalSize"]
    ids = box.simulate_activity(40, seed=3)
    assert len(ids) == len(set(ids)) == 40
    changed = {
        r["Id"]
        for sobject in ("Lead", "Contact")
        for r in sf.query_all(f"SELECT Id FROM {sobject} WHERE SystemModstamp >= {cursor}")[
            "records"
        ]
    }
    assert changed == set(ids)
    new_tasks = sf.query_all(f"SELECT WhoId FROM Task WHERE CreatedDate >= {cursor}")["records"]
    new_members = sf.query_all(
        f"SELECT LeadId, ContactId FROM CampaignMember WHERE SystemModstamp >= {cursor}"
    )["records"]
    assert sf.query("SELECT COUNT() FROM Task")["totalSize"] == tasks_before + len(new_tasks)
    new_events = sf.query_all(f"SELECT WhoId FROM Event WHERE CreatedDate >= {cursor}")["records"]
    touched = {t["WhoId"] for t in new_tasks + new_events} | {
        m["ContactId"] or m["LeadId"] for m in new_members
    }
    # Page views and opens stay in the marketing tool: only replies, clicks, forms
    # and meetings leave records in Salesforce.
    assert touched <= set(ids) and len(touched) >= 5
    assert all(m["ContactId"] or m["LeadId"] for m in new_members)
    # same seed, same people
    other = SalesforceSandbox(world=box.world, clock=clock)
    assert other.simulate_activity(40, seed=3) == ids


def test_concurrent_writes_get_distinct_ids(box: SalesforceSandbox) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(50):
            new = box.store.create("Lead", {"LastName": f"T{n}-{i}", "Company": "ThreadCo"})
            with lock:
                ids.append(new)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == len(set(ids)) == 200
    result = box.store.query("SELECT COUNT() FROM Lead WHERE Company = 'ThreadCo'", all_rows=False)
    assert result["totalSize"] == 200


@pytest.mark.slow
def test_one_hundred_thousand_people() -> None:
    """Seeding, memory and indexed queries at the size the benchmarks use."""
    world = generate_world(100_000, seed=7)
    clock = ManualClock(datetime(2026, 7, 1, tzinfo=UTC))
    tracemalloc.start()
    started = time.perf_counter()
    box = SalesforceSandbox(world=world, clock=clock)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seconds < 30
    assert peak < 1024**3
    store = box.store
    started = time.perf_counter()
    recent = store.query(
        "SELECT Id, Email, Owner.Email FROM Lead WHERE SystemModstamp >= 2026-06-29T00:00:00Z "
        "ORDER BY SystemModstamp, Id",
        all_rows=False,
    )
    by_email = store.query(
        f"SELECT Id FROM Contact WHERE Email = '{world.people[-1].email}'", all_rows=False
    )
    who = store.query(
        f"SELECT Id FROM Task WHERE WhoId = '{store.tables['Task'].row(5)['WhoId']}'",
        all_rows=False,
    )
    elapsed = time.perf_counter() - started
    assert recent["totalSize"] > 0 and who["totalSize"] > 0
    assert by_email["totalSize"] == (1 if world.people[-1].sf_kind != "lead" else 0)
    assert elapsed < 1.0


def test_concurrent_clients_over_tls(server: RunningServer) -> None:
    """Several clients on the threaded server: every write lands once, ids stay unique."""
    errors: list[BaseException] = []
    ids: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            with PinnedSession(str(server.ca_path)) as session:
                client = Salesforce(
                    session_id="sandbox-session",
                    instance_url=server.base_url,
                    version="59.0",
                    session=session,
                )
                records = [
                    {"attributes": {"type": "Lead"}, "LastName": f"C{n}-{i}", "Company": "ConcCo"}
                    for i in range(20)
                ]
                for _ in range(3):
                    results = client.restful("composite/sobjects", method="POST",
                                             json={"records": records})  # fmt: skip
                    with lock:
                        ids.extend(r["id"] for r in results)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ids) == len(set(ids)) == 4 * 3 * 20
