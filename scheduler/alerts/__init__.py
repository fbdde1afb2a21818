"""Alerts to reps where they work: Slack, Microsoft Teams, e-mail (docs/alerts.md).

Planned with a run's other actions as ledger entries of kind ``alert`` (one per
event and destination, keyed so that nothing plans one twice), then delivered
after the run's CRM actions by :func:`deliver`.
"""

from scheduler.alerts.config import AlertsConfig, load_alerts, validate_alerts
from scheduler.alerts.deliver import DeliveryReport, deliver, given_up_alerts, pending_alerts
from scheduler.alerts.links import record_links
from scheduler.alerts.plan import (
    ALERT,
    AlertEvent,
    Owners,
    event_from_action,
    is_alert,
    plan_alerts,
)

__all__ = [
    "ALERT",
    "AlertEvent",
    "AlertsConfig",
    "DeliveryReport",
    "Owners",
    "deliver",
    "event_from_action",
    "given_up_alerts",
    "is_alert",
    "load_alerts",
    "pending_alerts",
    "plan_alerts",
    "record_links",
    "validate_alerts",
]
