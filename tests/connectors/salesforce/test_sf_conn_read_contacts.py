"""``read_contacts``: given Leads and Contacts by id with their activities, for
real-time scoring; unknown ids are left out and change reads are not disturbed."""

from __future__ import annotations

from datetime import timedelta

from sf_conn_support import Org

from connectors.base import ReadsContacts

WINDOW = timedelta(days=30)


def test_given_leads_and_contacts_come_with_their_activities(org: Org) -> None:
    c = org.connector()
    assert isinstance(c, ReadsContacts)
    now = org.clock.datetime()
    full = list(c.read_changes(None, until=now, events_since=now - WINDOW))
    people = [x for b in full for x in b.contacts]
    events = [e for b in full for e in b.events]
    with_events = sorted({e.contact_id for e in events})
    lead = next(p for p in people if p.kind == "lead")
    contact = next(p for p in people if p.kind == "contact" and p.id in with_events)
    state = c.checkpoint()
    batch = c.read_contacts(
        [lead.id, contact.id, contact.id, "003000000000000AAA"], events_since=now - WINDOW
    )
    assert sorted(x.id for x in batch.contacts) == sorted([lead.id, contact.id])
    assert {x.id: x.kind for x in batch.contacts} == {lead.id: "lead", contact.id: "contact"}
    mine = {e.id for e in batch.events}
    expected = {e.id for e in events if e.contact_id in (lead.id, contact.id)}
    assert mine == expected and mine  # the same activities the change read found
    assert batch.state is None and c.checkpoint() == state  # change reads undisturbed
    assert c.read_contacts([], events_since=now).contacts == ()
