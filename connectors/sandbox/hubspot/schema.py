"""HubSpot's object types, built-in properties and association types, as the CRM
publishes them (see ``docs/crm-api-notes.md``, HubSpot).

Kept as plain data so that the store, the property endpoints and the write
validation all read the same table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# path name -> (singular, objectTypeId)
OBJECT_TYPES: dict[str, tuple[str, str]] = {
    "contacts": ("contact", "0-1"),
    "companies": ("company", "0-2"),
    "deals": ("deal", "0-3"),
    "tasks": ("task", "0-27"),
    "notes": ("note", "0-46"),
    "meetings": ("meeting", "0-47"),
    "calls": ("call", "0-48"),
    "emails": ("email", "0-49"),
}
ENGAGEMENT_TYPES = ("emails", "meetings", "calls", "notes", "tasks")

_ALIASES: dict[str, str] = {}
for _plural, (_singular, _type_id) in OBJECT_TYPES.items():
    _ALIASES[_plural] = _ALIASES[_singular] = _ALIASES[_type_id] = _plural


def normalise_object_type(name: str) -> str | None:
    """``contact``, ``contacts`` and ``0-1`` all name the same object type."""
    return _ALIASES.get(name.lower())


# (from, to) -> HUBSPOT_DEFINED default association type id
ASSOCIATION_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("contacts", "tasks"): 203,
    ("tasks", "contacts"): 204,
    ("deals", "tasks"): 215,
    ("tasks", "deals"): 216,
    ("contacts", "calls"): 193,
    ("calls", "contacts"): 194,
    ("contacts", "emails"): 197,
    ("emails", "contacts"): 198,
    ("contacts", "meetings"): 199,
    ("meetings", "contacts"): 200,
    ("contacts", "notes"): 201,
    ("notes", "contacts"): 202,
    ("deals", "calls"): 205,
    ("calls", "deals"): 206,
    ("deals", "emails"): 209,
    ("emails", "deals"): 210,
    ("deals", "meetings"): 211,
    ("meetings", "deals"): 212,
    ("deals", "notes"): 213,
    ("notes", "deals"): 214,
}
TYPE_ID_TO_PAIR: dict[int, tuple[str, str]] = {v: k for k, v in ASSOCIATION_TYPE_IDS.items()}
# the older unlabeled contact->company id is accepted as well
TYPE_ID_TO_PAIR[1] = ("contacts", "companies")
TYPE_ID_TO_PAIR[2] = ("companies", "contacts")


def association_type_name(from_type: str, to_type: str) -> str:
    """``contact_to_deal``: the ``type`` of a v3 ``associations`` entry."""
    return f"{OBJECT_TYPES[from_type][0]}_to_{OBJECT_TYPES[to_type][0]}"


@dataclass(slots=True)
class PropertyDef:
    name: str
    label: str
    type: str  # string, number, enumeration, datetime, date, bool
    field_type: str  # text, textarea, number, select, radio, checkbox, booleancheckbox, date
    group_name: str
    options: list[str] = field(default_factory=list)
    has_unique_value: bool = False
    read_only: bool = False
    hubspot_defined: bool = True
    description: str = ""
    created_at: float = 0.0

    def to_json(self, iso: Callable[[float], str]) -> dict[str, Any]:
        stamp = iso(self.created_at)
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": [
                {"label": o, "value": o, "displayOrder": i, "hidden": False}
                for i, o in enumerate(self.options)
            ],
            "displayOrder": -1,
            "calculated": self.read_only,
            "externalOptions": False,
            "hasUniqueValue": self.has_unique_value,
            "hidden": False,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "formField": not self.read_only,
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }


LIFECYCLE_STAGES = [
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
]


def lifecycle_date_property(stage: str) -> str:
    """``hs_lifecyclestage_<stage>_date``: when the contact entered ``stage``."""
    return f"hs_lifecyclestage_{stage}_date"


LEAD_STATUSES = [
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
]
EMPLOYEE_RANGES = ["1-5", "5-25", "25-50", "50-100", "100-500", "500-1000", "1000+"]
DEAL_STAGES = [
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
]


def employee_range(size: int) -> str:
    """``numemployees`` is an enumeration of ranges in HubSpot, not a number."""
    for bound, label in ((5, "1-5"), (25, "5-25"), (50, "25-50"), (100, "50-100")):
        if size <= bound:
            return label
    if size <= 500:
        return "100-500"
    if size <= 1000:
        return "500-1000"
    return "1000+"


def _p(
    name: str,
    type_: str = "string",
    field_type: str = "text",
    *,
    group: str = "contactinformation",
    options: list[str] | None = None,
    read_only: bool = False,
    unique: bool = False,
) -> PropertyDef:
    label = name.replace("hs_", "").replace("_", " ").capitalize()
    return PropertyDef(
        name, label, type_, field_type, group, list(options or []), unique, read_only
    )


def _common(group: str, *, stamp_names: tuple[str, str]) -> list[PropertyDef]:
    created, modified = stamp_names
    return [
        _p("hs_object_id", "number", "number", group=group, read_only=True),
        _p(created, "datetime", "date", group=group, read_only=True),
        _p(modified, "datetime", "date", group=group, read_only=True),
        _p("hubspot_owner_id", "enumeration", "select", group=group),
    ]


def _engagement(group: str, extra: list[PropertyDef]) -> list[PropertyDef]:
    props = _common(group, stamp_names=("hs_createdate", "hs_lastmodifieddate"))
    props.append(_p("hs_timestamp", "datetime", "date", group=group))
    return props + extra


def builtin_properties() -> dict[str, list[PropertyDef]]:
    """Fresh definitions per object type (the store mutates its own copy)."""
    g = "contactinformation"
    contacts = [
        *_common(g, stamp_names=("createdate", "lastmodifieddate")),
        _p("email"),
        _p("firstname"),
        _p("lastname"),
        _p("jobtitle"),
        _p("phone"),
        _p("company"),
        _p("website"),
        _p("industry"),
        _p("country"),
        _p("numemployees", "enumeration", "select", options=EMPLOYEE_RANGES),
        _p("lifecyclestage", "enumeration", "radio", options=LIFECYCLE_STAGES),
        _p("hs_lead_status", "enumeration", "radio", options=LEAD_STATUSES),
        _p("hs_merged_object_ids", "enumeration", "checkbox", read_only=True),
        _p("hs_additional_emails", "enumeration", "checkbox", read_only=True),
        # HubSpot stamps the moment a contact first reached each lifecycle stage.
        *(
            _p(lifecycle_date_property(stage), "datetime", "date", read_only=True)
            for stage in LIFECYCLE_STAGES
        ),
    ]
    analytics = "analyticsinformation"
    email_group = "emailinformation"
    for name, type_ in (
        ("hs_analytics_num_page_views", "number"),
        ("hs_analytics_num_visits", "number"),
        ("hs_analytics_first_visit_timestamp", "datetime"),
        ("hs_analytics_last_visit_timestamp", "datetime"),
        ("num_conversion_events", "number"),
        ("num_unique_conversion_events", "number"),
        ("first_conversion_event_name", "string"),
        ("first_conversion_date", "datetime"),
        ("recent_conversion_event_name", "string"),
        ("recent_conversion_date", "datetime"),
    ):
        contacts.append(
            _p(
                name,
                type_,
                "number" if type_ == "number" else "text",
                group=analytics,
                read_only=True,
            )
        )
    for name, type_ in (
        ("hs_email_delivered", "number"),
        ("hs_email_open", "number"),
        ("hs_email_click", "number"),
        ("hs_email_replied", "number"),
        ("hs_email_last_send_date", "datetime"),
        ("hs_email_last_open_date", "datetime"),
        ("hs_email_last_click_date", "datetime"),
        ("hs_email_last_reply_date", "datetime"),
        ("notes_last_contacted", "datetime"),
        ("notes_last_updated", "datetime"),
        ("hs_last_sales_activity_timestamp", "datetime"),
        ("num_contacted_notes", "number"),
        ("num_associated_deals", "number"),
    ):
        contacts.append(
            _p(
                name,
                type_,
                "number" if type_ == "number" else "text",
                group=email_group,
                read_only=True,
            )
        )
    contacts.append(_p("hs_email_optout", "bool", "booleancheckbox", group=email_group))

    dg = "dealinformation"
    deals = [
        *_common(dg, stamp_names=("createdate", "hs_lastmodifieddate")),
        _p("dealname", group=dg),
        _p("amount", "number", "number", group=dg),
        _p("pipeline", "enumeration", "select", group=dg, options=["default"]),
        _p("dealstage", "enumeration", "radio", group=dg, options=DEAL_STAGES),
        _p("closedate", "datetime", "date", group=dg),
        _p(
            "dealtype",
            "enumeration",
            "radio",
            group=dg,
            options=["newbusiness", "existingbusiness"],
        ),
        _p("description", "string", "textarea", group=dg),
        _p("hs_is_closed", "bool", "booleancheckbox", group=dg, read_only=True),
        _p("hs_is_closed_won", "bool", "booleancheckbox", group=dg, read_only=True),
        _p("hs_deal_stage_probability", "number", "number", group=dg, read_only=True),
        _p("hs_created_by_user_id", "number", "number", group=dg, read_only=True),
        _p("num_associated_contacts", "number", "number", group=dg, read_only=True),
    ]
    eg = "engagement"
    tasks = _engagement(
        "task",
        [
            _p("hs_task_subject", group="task"),
            _p("hs_task_body", "string", "textarea", group="task"),
            _p(
                "hs_task_status",
                "enumeration",
                "select",
                group="task",
                options=["NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"],
            ),
            _p(
                "hs_task_priority",
                "enumeration",
                "select",
                group="task",
                options=["NONE", "LOW", "MEDIUM", "HIGH"],
            ),
            _p(
                "hs_task_type",
                "enumeration",
                "select",
                group="task",
                options=["EMAIL", "CALL", "TODO", "LINKED_IN"],
            ),
        ],
    )
    emails = _engagement(
        "email",
        [
            _p(
                "hs_email_direction",
                "enumeration",
                "select",
                group="email",
                options=["EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"],
            ),
            _p("hs_email_subject", group="email"),
            _p("hs_email_text", "string", "textarea", group="email"),
            _p(
                "hs_email_status",
                "enumeration",
                "select",
                group="email",
                options=["BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"],
            ),
        ],
    )
    meetings = _engagement(
        "meeting",
        [
            _p("hs_meeting_title", group="meeting"),
            _p("hs_meeting_body", "string", "textarea", group="meeting"),
            _p("hs_meeting_start_time", "datetime", "date", group="meeting"),
            _p("hs_meeting_end_time", "datetime", "date", group="meeting"),
            _p(
                "hs_meeting_outcome",
                "enumeration",
                "select",
                group="meeting",
                options=["SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"],
            ),
        ],
    )
    calls = _engagement(
        "call",
        [
            _p("hs_call_title", group="call"),
            _p("hs_call_body", "string", "textarea", group="call"),
            _p("hs_call_duration", "number", "number", group="call"),
            _p(
                "hs_call_direction",
                "enumeration",
                "select",
                group="call",
                options=["INBOUND", "OUTBOUND"],
            ),
            _p(
                "hs_call_status",
                "enumeration",
                "select",
                group="call",
                options=[
                    "BUSY",
                    "CALLING_CRM_USER",
                    "CANCELED",
                    "COMPLETED",
                    "FAILED",
                    "NO_ANSWER",
                ],
            ),
        ],
    )
    notes = _engagement(eg, [_p("hs_note_body", "string", "textarea", group="note")])
    companies = [
        *_common("companyinformation", stamp_names=("createdate", "hs_lastmodifieddate")),
        _p("name", group="companyinformation"),
        _p("domain", group="companyinformation"),
    ]
    return {
        "contacts": contacts,
        "deals": deals,
        "tasks": tasks,
        "emails": emails,
        "meetings": meetings,
        "calls": calls,
        "notes": notes,
        "companies": companies,
    }


# properties every answer carries even when not asked for (HubSpot's "basic" set)
ALWAYS_RETURNED: dict[str, tuple[str, ...]] = {
    "contacts": ("createdate", "hs_object_id", "lastmodifieddate"),
    "companies": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    "deals": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
}
for _t in ENGAGEMENT_TYPES:
    ALWAYS_RETURNED[_t] = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")

# returned when the caller names no properties at all
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": (
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    "tasks": (
        "hs_createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
        "hs_task_subject",
        "hs_timestamp",
    ),
    "emails": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id", "hs_timestamp"),
    "meetings": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id", "hs_timestamp"),
    "calls": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id", "hs_timestamp"),
    "notes": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id", "hs_timestamp"),
}

MODIFIED_PROPERTY = {
    t: ("lastmodifieddate" if t == "contacts" else "hs_lastmodifieddate") for t in OBJECT_TYPES
}
CREATED_PROPERTY = {
    t: ("hs_createdate" if t in ENGAGEMENT_TYPES else "createdate") for t in OBJECT_TYPES
}
REQUIRED_ON_CREATE: dict[str, tuple[str, ...]] = {
    "deals": ("dealname", "dealstage"),
    "tasks": ("hs_timestamp",),
    "emails": ("hs_timestamp",),
    "meetings": ("hs_timestamp",),
    "calls": ("hs_timestamp",),
    "notes": ("hs_timestamp",),
}
