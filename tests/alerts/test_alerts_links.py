"""Links to the CRM record, as each CRM's UI addresses it."""

from __future__ import annotations

from scheduler.alerts.links import hubspot_link, record_links, salesforce_link


def test_hubspot_record_url_uses_the_portal_id() -> None:
    assert hubspot_link(24600007)("551", "contact") == (
        "https://app.hubspot.com/contacts/24600007/record/0-1/551"
    )


def test_salesforce_lightning_url_for_leads_and_contacts() -> None:
    link = salesforce_link("https://acme.my.salesforce.com/")
    assert link("00Q1", "lead") == "https://acme.my.salesforce.com/lightning/r/Lead/00Q1/view"
    assert link("0031", "contact") == "https://acme.my.salesforce.com/lightning/r/Contact/0031/view"
    assert salesforce_link("acme.my.salesforce.com")("0031", "contact").startswith("https://acme.")


def test_a_connector_without_record_pages_gives_no_link() -> None:
    assert record_links(object()) is None
