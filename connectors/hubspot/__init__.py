"""HubSpot connector (entry point ``hubspot = "connectors.hubspot:HubSpotConnector"``)."""

from connectors.hubspot.connector import HubSpotConnector, Settings
from connectors.hubspot.settings import HubSpotSettingsModel

__all__ = ["HubSpotConnector", "HubSpotSettingsModel", "Settings"]
