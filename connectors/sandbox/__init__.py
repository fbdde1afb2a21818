"""Fake HubSpot and Salesforce APIs for tests, demos and benchmarks.

``SalesforceSandbox`` is imported on first use so that importing the HubSpot side
never pays for (or depends on) the Salesforce package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.sandbox.framework import (
    Clock,
    ManualClock,
    Request,
    Response,
    SandboxApp,
    SystemClock,
    mount_responses,
    serve,
)
from connectors.sandbox.hubspot import HubSpotSandbox
from connectors.sandbox.world import World, generate_world

if TYPE_CHECKING:
    from connectors.sandbox.salesforce import SalesforceSandbox

__all__ = [
    "Clock",
    "HubSpotSandbox",
    "ManualClock",
    "Request",
    "Response",
    "SalesforceSandbox",
    "SandboxApp",
    "SystemClock",
    "World",
    "generate_world",
    "mount_responses",
    "serve",
]


def __getattr__(name: str) -> Any:
    if name == "SalesforceSandbox":
        from connectors.sandbox.salesforce import SalesforceSandbox

        return SalesforceSandbox
    raise AttributeError(f"module 'connectors.sandbox' has no attribute {name!r}")
