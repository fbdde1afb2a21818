"""The sObjects the sandbox serves and their fields, as ``describe`` reports them.

Only a realistic subset of each object's standard fields is modelled. Custom fields
(``*__c``) are not part of any object by default: real ones are created through the
Metadata API, so a connector must find out through ``describe`` whether, say,
``leadsync_score__c`` exists. Tests add them with ``SalesforceSandbox.add_custom_field``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict, Unpack

from ..framework import JSONValue
from .ids import KEY_PREFIXES

API_VERSION = "59.0"
BASE = f"/services/data/v{API_VERSION}"

FIELD_TYPES = frozenset(
    [
        "id",
        "string",
        "email",
        "phone",
        "url",
        "textarea",
        "picklist",
        "combobox",
        "boolean",
        "date",
        "datetime",
        "double",
        "currency",
        "percent",
        "int",
        "reference",
    ]
)
_SOAP = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: str
    label: str = ""
    custom: bool = False
    external_id: bool = False
    unique: bool = False
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    required: bool = False  # must be given on create (Salesforce: not nillable, no default)
    picklist: tuple[str, ...] = ()
    default: str | bool | None = None  # a picklist's or a checkbox's default
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    length: int = 0

    def describe(self) -> dict[str, JSONValue]:
        return {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "soapType": _SOAP.get(self.type, "xsd:string"),
            "length": self.length,
            "custom": self.custom,
            "externalId": self.external_id,
            "unique": self.unique,
            "idLookup": self.name == "Id" or self.external_id or self.name == "Email",
            "nillable": self.nillable,
            "createable": self.createable,
            "updateable": self.updateable,
            "defaultedOnCreate": self.default is not None or self.name in _SYSTEM_FIELDS,
            "defaultValue": self.default if self.type in ("picklist", "boolean") else None,
            "calculated": False,
            "filterable": self.type != "textarea",
            "sortable": self.type != "textarea",
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": value == self.default,
                    "label": value,
                    "validFor": None,
                    "value": value,
                }
                for value in self.picklist
            ],
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
        }


@dataclass(slots=True)
class SObjectSpec:
    name: str
    label: str
    label_plural: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)  # keyed by lower-cased name
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    relationships: dict[str, str] = field(default_factory=dict)  # lower relationship -> field name

    def add(self, spec: FieldSpec) -> None:
        self.fields[spec.name.lower()] = spec
        if spec.relationship_name:
            self.relationships[spec.relationship_name.lower()] = spec.name

    def get(self, name: str) -> FieldSpec | None:
        return self.fields.get(name.lower())

    @property
    def key_prefix(self) -> str:
        return KEY_PREFIXES[self.name]

    def url(self) -> str:
        return f"{BASE}/sobjects/{self.name}"

    def summary(self) -> dict[str, JSONValue]:
        return {
            "name": self.name,
            "label": self.label,
            "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix,
            "custom": False,
            "createable": self.createable,
            "updateable": self.updateable,
            "deletable": self.deletable,
            "queryable": True,
            "searchable": True,
            "urls": {
                "sobject": self.url(),
                "describe": f"{self.url()}/describe",
                "rowTemplate": f"{self.url()}/{{ID}}",
            },
        }

    def describe(self) -> dict[str, JSONValue]:
        out = self.summary()
        out["fields"] = [spec.describe() for spec in self.fields.values()]
        out["childRelationships"] = []
        out["recordTypeInfos"] = []
        return out


_SYSTEM_FIELDS = frozenset(
    {"Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
     "SystemModstamp"}
)  # fmt: skip


class _Flags(TypedDict, total=False):
    """FieldSpec options the helpers below pass through."""

    label: str
    custom: bool
    external_id: bool
    unique: bool
    nillable: bool
    required: bool


class _FieldFlags(_Flags, total=False):
    createable: bool
    updateable: bool


class _ReadOnlyFlags(_Flags, total=False):
    length: int


class _ObjectFlags(TypedDict, total=False):
    createable: bool
    updateable: bool
    deletable: bool


def _ro(name: str, type_: str, **kw: Unpack[_ReadOnlyFlags]) -> FieldSpec:
    return FieldSpec(name, type_, createable=False, updateable=False, **kw)


def _ref(name: str, to: str | tuple[str, ...], rel: str, **kw: Unpack[_FieldFlags]) -> FieldSpec:
    targets = (to,) if isinstance(to, str) else to
    return FieldSpec(
        name, "reference", reference_to=targets, relationship_name=rel, length=18, **kw
    )


def _pick(
    name: str, values: Sequence[str], default: str | None = None, **kw: Unpack[_FieldFlags]
) -> FieldSpec:
    return FieldSpec(name, "picklist", picklist=tuple(values), default=default, length=255, **kw)


def _s(name: str, type_: str = "string", length: int = 255, **kw: Unpack[_FieldFlags]) -> FieldSpec:
    return FieldSpec(name, type_, length=length, **kw)


def _system(owner: bool = True) -> list[FieldSpec]:
    fields = [
        FieldSpec("Id", "id", "Record ID", nillable=False, createable=False, updateable=False, length=18),
        _ro("IsDeleted", "boolean", label="Deleted", nillable=False),
        _ro("CreatedDate", "datetime", label="Created Date", nillable=False),
        FieldSpec("CreatedById", "reference", createable=False, updateable=False, nillable=False,
                  reference_to=("User",), relationship_name="CreatedBy", length=18),
        _ro("LastModifiedDate", "datetime", label="Last Modified Date", nillable=False),
        FieldSpec("LastModifiedById", "reference", createable=False, updateable=False, nillable=False,
                  reference_to=("User",), relationship_name="LastModifiedBy", length=18),
        _ro("SystemModstamp", "datetime", label="System Modstamp", nillable=False),
    ]  # fmt: skip
    if owner:
        fields.append(_ref("OwnerId", ("User", "Group"), "Owner", label="Owner ID", nillable=False))
    return fields


LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                 "Closed - Not Converted")  # fmt: skip
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
INDUSTRIES = ("Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
              "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
              "Entertainment", "Environmental", "Finance", "Food & Beverage", "Government",
              "Healthcare", "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media",
              "Not For Profit", "Recreation", "Retail", "Shipping", "Technology",
              "Telecommunications", "Transportation", "Utilities", "Other")  # fmt: skip
OPEN_STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition",
               "Id. Decision Makers", "Perception Analysis", "Proposal/Price Quote",
               "Negotiation/Review")  # fmt: skip
STAGE_PROBABILITY = dict(zip(OPEN_STAGES, (10, 10, 20, 50, 60, 70, 75, 90), strict=True)) | {
    "Closed Won": 100,
    "Closed Lost": 0,
}
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
CAMPAIGN_MEMBER_STATUSES = ("Sent", "Responded", "Registered", "Attended")
RESPONDED_STATUSES = frozenset({"Responded", "Attended"})


def standard_objects() -> dict[str, SObjectSpec]:
    """Fresh specs (custom fields are added to copies per sandbox)."""
    objects: dict[str, SObjectSpec] = {}

    def obj(
        name: str, label: str, plural: str, fields: list[FieldSpec], **kw: Unpack[_ObjectFlags]
    ) -> None:
        spec = SObjectSpec(name, label, plural, **kw)
        for f in fields:
            spec.add(replace(f, label=f.label or f.name))
        objects[name] = spec

    obj("User", "User", "Users", [
        *_system(owner=False),
        _s("Username", nillable=False, unique=True, length=80), _s("FirstName", length=40),
        _s("LastName", nillable=False, length=80), _ro("Name", "string", length=121),
        _s("Email", "email", nillable=False, length=128), _s("Alias", length=8),
        _s("Title", length=80), FieldSpec("IsActive", "boolean", nillable=False, default=True),
        _pick("UserType", ("Standard", "AutomatedProcess"), "Standard", createable=False,
              updateable=False),
    ], createable=False, updateable=False, deletable=False)  # fmt: skip
    obj("Group", "Group", "Groups", [
        *_system(owner=True),
        _s("Name", length=40), _s("DeveloperName", length=80), _s("Email", "email", length=255),
        _pick("Type", ("Queue", "Regular"), "Regular"),
    ], createable=False, updateable=False, deletable=False)  # fmt: skip
    obj("Account", "Account", "Accounts", [
        *_system(),
        _s("Name", required=True, nillable=False), _pick("Type", ("Prospect", "Customer - Direct",
        "Customer - Channel", "Channel Partner / Reseller", "Installation Partner",
        "Technology Partner", "Other")), _pick("Industry", INDUSTRIES),
        FieldSpec("AnnualRevenue", "currency"), FieldSpec("NumberOfEmployees", "int"),
        _s("Website", "url"), _s("Phone", "phone", length=40), _s("BillingCity", length=40),
        _s("BillingCountry", length=80), _s("Description", "textarea", length=32000),
        _ro("LastActivityDate", "date"),
    ])  # fmt: skip
    person = [
        _s("FirstName", length=40), _s("LastName", required=True, nillable=False, length=80),
        _ro("Name", "string", length=121), _s("Title", length=128), _s("Email", "email", length=80),
        _s("Phone", "phone", length=40), _s("MobilePhone", "phone", length=40),
        _pick("LeadSource", LEAD_SOURCES),
        FieldSpec("HasOptedOutOfEmail", "boolean", nillable=False, default=False),
        _s("Description", "textarea", length=32000), _ro("LastActivityDate", "date"),
    ]  # fmt: skip
    obj("Lead", "Lead", "Leads", [
        *_system(), *person,
        _s("Company", required=True, nillable=False), _s("Website", "url"),
        _pick("Industry", INDUSTRIES), FieldSpec("NumberOfEmployees", "int"),
        FieldSpec("AnnualRevenue", "currency"), _s("City", length=40), _s("Country", length=80),
        _pick("Status", LEAD_STATUSES, "Open - Not Contacted", nillable=False),
        _pick("Rating", ("Hot", "Warm", "Cold")),
        FieldSpec("IsConverted", "boolean", nillable=False, default=False, updateable=False),
        FieldSpec("ConvertedDate", "date", updateable=False),
        _ref("ConvertedAccountId", "Account", "ConvertedAccount", updateable=False),
        _ref("ConvertedContactId", "Contact", "ConvertedContact", updateable=False),
        _ref("ConvertedOpportunityId", "Opportunity", "ConvertedOpportunity", updateable=False),
        FieldSpec("IsUnreadByOwner", "boolean", nillable=False, default=False),
    ])  # fmt: skip
    obj("Contact", "Contact", "Contacts", [
        *_system(), *person, _ref("AccountId", "Account", "Account"),
        _s("Department", length=80), _s("MailingCity", length=40), _s("MailingCountry", length=80),
    ])  # fmt: skip
    obj("Opportunity", "Opportunity", "Opportunities", [
        *_system(), _ref("AccountId", "Account", "Account"),
        _s("Name", required=True, nillable=False, length=120),
        _s("Description", "textarea", length=32000),
        _pick("StageName", (*OPEN_STAGES, "Closed Won", "Closed Lost"), required=True,
              nillable=False),
        FieldSpec("Amount", "currency"), FieldSpec("Probability", "percent"),
        FieldSpec("CloseDate", "date", required=True, nillable=False),
        _pick("Type", ("Existing Customer - Upgrade", "Existing Customer - Replacement",
                       "Existing Customer - Downgrade", "New Customer")),
        _pick("LeadSource", LEAD_SOURCES),
        _ro("IsClosed", "boolean", nillable=False), _ro("IsWon", "boolean", nillable=False),
        _pick("ForecastCategoryName", ("Omitted", "Pipeline", "Best Case", "Commit", "Closed")),
        _ref("CampaignId", "Campaign", "Campaign"), _ref("ContactId", "Contact", "Contact"),
        _ro("LastActivityDate", "date"),
    ])  # fmt: skip
    obj("OpportunityContactRole", "Opportunity Contact Role", "Opportunity Contact Role", [
        *_system(owner=False),
        _ref("OpportunityId", "Opportunity", "Opportunity", required=True, nillable=False,
             updateable=False),
        _ref("ContactId", "Contact", "Contact", required=True, nillable=False),
        _pick("Role", ("Business User", "Decision Maker", "Economic Buyer", "Economic Decision Maker",
                       "Evaluator", "Executive Sponsor", "Influencer", "Technical Buyer", "Other")),
        FieldSpec("IsPrimary", "boolean", nillable=False, default=False),
    ])  # fmt: skip
    activity = [
        _ref("WhoId", ("Contact", "Lead"), "Who"),
        _ref("WhatId", ("Account", "Opportunity", "Campaign"), "What"),
        _s("Subject", "combobox"), _s("Description", "textarea", length=32000),
        FieldSpec("ActivityDate", "date"),
    ]  # fmt: skip
    obj("Task", "Task", "Tasks", [
        *_system(), *activity,
        _pick("Status", TASK_STATUSES, "Not Started", nillable=False),
        _pick("Priority", ("High", "Normal", "Low"), "Normal", nillable=False),
        _pick("Type", ("Call", "Email", "Meeting", "Other")),
        _pick("TaskSubtype", ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"),
              "Task", updateable=False),
        _ro("IsClosed", "boolean", nillable=False),
        FieldSpec("CallDurationInSeconds", "int"), _s("CallDisposition"),
        FieldSpec("CompletedDateTime", "datetime", createable=False, updateable=False),
    ])  # fmt: skip
    obj("Event", "Event", "Events", [
        *_system(), *activity, _s("Location"),
        FieldSpec("StartDateTime", "datetime"), FieldSpec("EndDateTime", "datetime"),
        FieldSpec("ActivityDateTime", "datetime"), FieldSpec("DurationInMinutes", "int"),
        FieldSpec("IsAllDayEvent", "boolean", nillable=False, default=False),
        _pick("Type", ("Call", "Email", "Meeting", "Other")),
        _pick("EventSubtype", ("Event",), "Event", updateable=False),
    ])  # fmt: skip
    obj("Campaign", "Campaign", "Campaigns", [
        *_system(), _s("Name", required=True, nillable=False, length=80),
        _pick("Type", ("Conference", "Webinar", "Trade Show", "Public Relations", "Partners",
                       "Referral Program", "Advertisement", "Banner Ads", "Direct Mail", "Email",
                       "Telemarketing", "Other")),
        _pick("Status", ("Planned", "In Progress", "Completed", "Aborted")),
        FieldSpec("StartDate", "date"), FieldSpec("EndDate", "date"),
        FieldSpec("IsActive", "boolean", nillable=False, default=False),
        _s("Description", "textarea", length=32000),
    ])  # fmt: skip
    obj("CampaignMember", "Campaign Member", "Campaign Members", [
        *_system(owner=False),
        _ref("CampaignId", "Campaign", "Campaign", required=True, nillable=False, updateable=False),
        _ref("LeadId", "Lead", "Lead", updateable=False),
        _ref("ContactId", "Contact", "Contact", updateable=False),
        _pick("Status", CAMPAIGN_MEMBER_STATUSES, "Sent"),
        _ro("HasResponded", "boolean", nillable=False),
        _ro("FirstRespondedDate", "date"),
        _ro("Email", "email"), _ro("FirstName", "string"), _ro("LastName", "string"),
    ])  # fmt: skip
    return objects


def custom_field(
    name: str,
    type_: str,
    *,
    label: str | None = None,
    external_id: bool = False,
    unique: bool = False,
    picklist: Sequence[str] = (),
    length: int | None = None,
) -> FieldSpec:
    """A ``__c`` field as the Metadata API would have created it."""
    if not name.endswith("__c") or not name[:-3].replace("_", "a").isalnum():
        raise ValueError(f"custom field {name!r}: API names of custom fields end in '__c'")
    if type_ not in FIELD_TYPES - {"id", "reference"}:
        raise ValueError(f"custom field {name!r}: unsupported type {type_!r}")
    if external_id and type_ not in ("string", "email", "int", "double"):
        raise ValueError(f"custom field {name!r}: external ids must be text, e-mail or number")
    return FieldSpec(
        name,
        type_,
        label=label or name[:-3].replace("_", " "),
        custom=True,
        external_id=external_id,
        unique=unique,
        picklist=tuple(picklist),
        length=length
        if length is not None
        else (255 if type_ in ("string", "email", "url") else 0),
    )


def custom_field_from_mapping(sobject: str, spec: Mapping[str, Any]) -> FieldSpec:
    """Constructor option ``custom_fields`` uses describe-style keys (``name``, ``type``, ``externalId``, ``unique``)."""
    try:
        name = str(spec["name"])
        type_ = str(spec.get("type", "string"))
    except KeyError:
        raise ValueError(f"custom_fields[{sobject!r}]: each field needs a 'name'") from None
    return custom_field(
        name,
        type_,
        label=spec.get("label"),
        external_id=bool(spec.get("externalId", spec.get("external_id", False))),
        unique=bool(spec.get("unique", False)),
        picklist=tuple(spec.get("picklistValues", ())),
    )
