"""Links from an alert to the contact's record in the CRM.

HubSpot's record URL needs the account's portal id, which no contact read returns:
one ``GET /account-info/v3/details`` at the start of a run gives it. Salesforce's
needs the instance URL the session was opened on. A link is a help: when the id
cannot be had, alerts go out without one.
"""

from __future__ import annotations

import logging

from scheduler.alerts.plan import Link

log = logging.getLogger("leadsync.alerts")


def hubspot_link(portal_id: int | str) -> Link:
    def link(contact_id: str, kind: str) -> str | None:
        del kind
        return f"https://app.hubspot.com/contacts/{portal_id}/record/0-1/{contact_id}"

    return link


def salesforce_link(instance_url: str) -> Link:
    base = instance_url.rstrip("/")
    if not base.startswith("http"):
        base = "https://" + base

    def link(contact_id: str, kind: str) -> str | None:
        obj = "Lead" if kind == "lead" else "Contact"
        return f"{base}/lightning/r/{obj}/{contact_id}/view"

    return link


def record_links(connector: object) -> Link | None:
    """The link maker for a connector, or None (no link) for one that has no record
    pages (files) or when the account cannot be identified."""
    try:
        from connectors.hubspot.connector import HubSpotConnector

        if isinstance(connector, HubSpotConnector):
            reply = connector.transport.legacy_get("account info", "/account-info/v3/details", {})
            data = reply.data if isinstance(reply.data, dict) else {}
            portal = data.get("portalId")
            return hubspot_link(portal) if portal else None
        from connectors.salesforce.connector import SalesforceConnector

        if isinstance(connector, SalesforceConnector):
            instance = connector.api.client().sf_instance
            return salesforce_link(str(instance)) if instance else None
    except Exception as exc:  # a link is a help, never a reason to fail a run
        log.info("alerts: no CRM record links (%s)", type(exc).__name__)
        return None
    return None
