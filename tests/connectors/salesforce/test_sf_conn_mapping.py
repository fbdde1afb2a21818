"""Salesforce records become canonical records: names, numbers, UTC times, no blanks."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.salesforce import mapping


def test_contact_reads_company_through_its_account_and_drops_blanks() -> None:
    rec = {
        "attributes": {"type": "Contact"},
        "Id": "003000000000001AAA",
        "SystemModstamp": "2026-06-30T12:00:00.000+0000",
        "Email": "ana@example.com",
        "FirstName": "",
        "LastName": "Ruiz",
        "Title": "  VP Sales ",
        "Account": {"attributes": {"type": "Account"}, "Name": "Acme", "NumberOfEmployees": 250},
        "MailingCountry": None,
        "OwnerId": "005000000000001AAA",
        "CreatedDate": "2026-01-02T03:04:05.000+0000",
    }
    c = mapping.to_contact("Contact", rec, mapping.field_map("Contact", {}))
    assert c.kind == "contact"
    assert c.fields["company"] == "Acme"
    assert c.fields["company_size"] == 250
    assert c.fields["job_title"] == "VP Sales"
    assert "first_name" not in c.fields and "country" not in c.fields
    assert c.fields["created_at"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert c.updated_at == datetime(2026, 6, 30, 12, tzinfo=UTC)


def test_lead_field_map_override_and_range_numbers() -> None:
    fmap = mapping.field_map("Lead", {"Lead": {"company_size": "Size__c", "rating": "Rating"}})
    rec = {
        "Id": "00Q1",
        "Size__c": "25-50",
        "Rating": "Hot",
        "Company": "Initech",
        "Status": "Open",
    }
    c = mapping.to_contact("Lead", rec, fmap)
    assert c.kind == "lead"
    assert c.fields["company_size"] == 25
    assert c.fields["rating"] == "Hot"
    assert c.fields["company"] == "Initech"
    assert mapping.to_number("1,000+") == 1000
    assert mapping.to_number("n/a") is None


def test_task_kinds_follow_task_subtype() -> None:
    base = {"Id": "00T1", "WhoId": "003X", "CompletedDateTime": "2026-06-01T10:00:00.000+0000"}
    call = mapping.task_event({**base, "TaskSubtype": "Call", "Subject": "Call"})
    send = mapping.task_event({**base, "TaskSubtype": "ListEmail", "Subject": "List Email: Q3"})
    reply = mapping.task_event({**base, "TaskSubtype": "Email", "Subject": "Email: Re: Q3"})
    todo = mapping.task_event({**base, "TaskSubtype": "Task", "Subject": "Follow up"})
    assert call is not None and call.type == "call"
    assert send is not None and send.type == "email_send"
    assert reply is not None and reply.type == "email_reply"
    assert todo is None
    assert call.id == "sf-task-00T1"
    assert call.occurred_at == datetime(2026, 6, 1, 10, tzinfo=UTC)


def test_campaign_members_only_count_responses() -> None:
    base = {"Id": "00v1", "LeadId": "00QX", "ContactId": None, "FirstRespondedDate": "2026-06-02"}
    web = mapping.campaign_member_event(
        {**base, "HasResponded": True, "Campaign": {"Type": "Webinar", "Name": "W"}}
    )
    form = mapping.campaign_member_event(
        {**base, "HasResponded": True, "Campaign": {"Type": "Other", "Name": "Form: Demo"}}
    )
    click = mapping.campaign_member_event(
        {**base, "HasResponded": True, "Campaign": {"Type": "Email", "Name": "Q3"}}
    )
    sent = mapping.campaign_member_event(
        {**base, "HasResponded": False, "Campaign": {"Type": "Email", "Name": "Q3"}}
    )
    assert web is not None and web.type == "webinar_attended" and web.contact_id == "00QX"
    assert form is not None and form.type == "form_submit"
    # Models match forms on ``form`` (HubSpot's form name); a form campaign names it.
    assert form.attributes["form"] == "Form: Demo" and form.attributes["campaign"] == "Form: Demo"
    assert "form" not in web.attributes and "form" not in click.attributes
    assert click is not None and click.type == "email_click"
    assert sent is None
    meeting = mapping.event_event(
        {"Id": "00U1", "WhoId": "003X", "CreatedDate": "2026-06-01T09:00:00.000+0000"}
    )
    assert meeting is not None and meeting.type == "meeting_booked"


def test_a_deleted_event_is_a_meeting_cancelled_at_its_deletion() -> None:
    """Salesforce cancels a meeting by deleting its Event (``queryAll`` still returns
    it): a cancellation, dated when it was deleted, beside the booking read before."""
    record = {
        "Id": "00U1",
        "WhoId": "003X",
        "Subject": "Demo",
        "CreatedDate": "2026-06-01T09:00:00.000+0000",
        "SystemModstamp": "2026-06-03T15:30:00.000+0000",
    }
    booked = mapping.event_event(record)
    cancelled = mapping.event_event({**record, "IsDeleted": True})
    assert booked is not None and booked.type == "meeting_booked"
    assert cancelled is not None and cancelled.type == "meeting_cancelled"
    assert cancelled.occurred_at == datetime(2026, 6, 3, 15, 30, tzinfo=UTC)
    assert cancelled.contact_id == "003X" and cancelled.id != booked.id
    # without a deletion stamp it is dated by the Event's creation
    bare = mapping.event_event({**record, "IsDeleted": True, "SystemModstamp": None})
    assert bare is not None and bare.occurred_at == datetime(2026, 6, 1, 9, tzinfo=UTC)


def _lead(status: str | None) -> dict[str, object]:
    return {"Id": "00Q1", "LastName": "Ito", "Status": status}


def test_lifecycle_stage_of_leads_follows_their_status() -> None:
    fmap = mapping.field_map("Lead", {})
    stage = {
        status: mapping.to_contact("Lead", _lead(status), fmap).fields["lifecycle_stage"]
        for status in (
            "Open - Not Contacted",
            "Working - Contacted",
            "Nurturing",
            None,
            "Closed - Not Converted",
            "Unqualified",
        )
    }
    assert stage == {
        "Open - Not Contacted": "lead",
        "Working - Contacted": "lead",
        "Nurturing": "lead",
        None: "lead",
        "Closed - Not Converted": "other",
        "Unqualified": "other",
    }
    lead = mapping.to_contact("Lead", _lead("Working - Contacted"), fmap)
    assert lead.fields["lead_status"] == "Working - Contacted"  # kept alongside
    converted = mapping.to_contact("Lead", _lead("Closed - Converted"), fmap, converted=True)
    assert converted.fields["lifecycle_stage"] == "other"


def test_lifecycle_stage_of_contacts_follows_their_account_type() -> None:
    fmap = mapping.field_map("Contact", {})

    def stage(account: dict[str, object] | None) -> object:
        rec = {"Id": "0031", "LastName": "Ito", "Account": account}
        return mapping.to_contact("Contact", rec, fmap).fields["lifecycle_stage"]

    assert stage({"Type": "Prospect"}) == "salesqualifiedlead"
    assert stage(None) == "salesqualifiedlead"  # a Contact without an Account
    assert stage({"Type": "Customer - Direct"}) == "customer"
    assert stage({"Type": "Customer - Channel"}) == "customer"


def test_a_mapped_lifecycle_stage_wins_and_its_inputs_are_selected_otherwise() -> None:
    fmap = mapping.field_map("Lead", {"Lead": {"lifecycle_stage": "Stage__c"}})
    lead = mapping.to_contact("Lead", {"Id": "00Q1", "Stage__c": "marketingqualifiedlead"}, fmap)
    assert lead.fields["lifecycle_stage"] == "marketingqualifiedlead"
    assert "Status" in mapping.select_fields(mapping.field_map("Lead", {}), obj="Lead")
    contact_fields = mapping.select_fields(mapping.field_map("Contact", {}), obj="Contact")
    assert "Account.Type" in contact_fields
    assert "Account.Type" not in mapping.select_fields(
        mapping.field_map("Contact", {"Contact": {"lifecycle_stage": "Stage__c"}}), obj="Contact"
    )
