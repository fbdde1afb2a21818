"""Salesforce connector (simple-salesforce): see ``connector.py`` and docs/connectors.md."""

from connectors.salesforce.config import (
    SalesforceSettings,
    SalesforceSettingsModel,
    parse_settings,
)
from connectors.salesforce.connector import SalesforceConnector

__all__ = [
    "SalesforceConnector",
    "SalesforceSettings",
    "SalesforceSettingsModel",
    "parse_settings",
]
