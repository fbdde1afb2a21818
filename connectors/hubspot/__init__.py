"""HubSpot connector (entry point ``hubspot = "connectors.hubspot:HubSpotConnector"``)."""

from connectors.hubspot.connector import HubSpotConnector, Settings

__all__ = ["HubSpotConnector", "Settings"]
