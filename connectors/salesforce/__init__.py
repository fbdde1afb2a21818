"""Salesforce connector (simple-salesforce): see ``connector.py`` and issue 4."""

from connectors.salesforce.config import SalesforceSettings, parse_settings
from connectors.salesforce.connector import SalesforceConnector

__all__ = ["SalesforceConnector", "SalesforceSettings", "parse_settings"]
