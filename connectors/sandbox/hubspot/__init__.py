"""The fake HubSpot portal: ``HubSpotSandbox`` (a ``framework.Flavour``)."""

from connectors.sandbox.hubspot.app import HubSpotSandbox

__all__ = ["HubSpotSandbox"]
