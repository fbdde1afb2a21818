"""How the shared world becomes Salesforce records.

* Owners who are people become Users (after the integration user the API runs as);
  the lead queue becomes a queue ``Group`` that owns leads (Contacts, Accounts and
  Opportunities cannot be owned by queues, so theirs fall back to the integration user).
* Companies with a Contact or a deal become Accounts.
* People are Leads, converted Leads (``IsConverted``, ``ConvertedContactId``,
  ``ConvertedAccountId``) plus their Contact, or Contacts only.
* Calls become Tasks (``TaskSubtype`` Call); marketing e-mail sends become ListEmail
  Tasks, replies Email Tasks. Activities of people with a Contact hang off the Contact
  (conversion moves them), others off the Lead.
* Meetings booked become Events; cancelled meetings are deleted Events, visible only
  through ``queryAll``.
* E-mail campaigns, webinars and forms become Campaigns; one CampaignMember per person
  and campaign (Sent, Responded, Attended), ``FirstRespondedDate`` from the first click,
  form submission or attendance.
* Unsubscribes set ``HasOptedOutOfEmail``.
* Deals become Opportunities on the company's Account, with an OpportunityContactRole
  when the person has a Contact (Opportunities cannot reference Leads).
* Page views and e-mail opens have no Salesforce core object and are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .ids import make_id, parse_id
from .schema import OPEN_STAGES, RESPONDED_STATUSES, STAGE_PROBABILITY, SObjectSpec
from .table import Row, Table, fmt_date, ms

if TYPE_CHECKING:
    from connectors.sandbox.world import World

DAY = 86_400.0
ACTIVITY_TYPES = (
    "page_view", "email_send", "email_open", "email_click", "email_reply", "form_submit",
    "meeting_booked", "meeting_cancelled", "call", "webinar_attended", "unsubscribe",
)  # fmt: skip
_K = {name: i for i, name in enumerate(ACTIVITY_TYPES)}
INTEGRATION_USER = make_id("User", 0)


def _system(created: float, stamp: float, created_by: str, *, deleted: bool = False) -> Row:
    return {
        "IsDeleted": deleted,
        "CreatedDate": ms(created),
        "CreatedById": created_by,
        "LastModifiedDate": ms(stamp),
        "LastModifiedById": created_by,
        "SystemModstamp": ms(stamp),
    }


@dataclass
class Seed:
    """Everything derived from the world once; tables are rebuilt from it on reset."""

    world: World
    username: str
    campaign_names: list[str]
    campaign_types: list[str]
    n_email_campaigns: int
    n_webinars: int
    person_lead: npt.NDArray[np.int64]  # Lead seq per person, -1 if none
    person_contact: npt.NDArray[np.int64]
    lead_person: npt.NDArray[np.int64]
    contact_person: npt.NDArray[np.int64]
    company_account: npt.NDArray[np.int64]
    account_company: npt.NDArray[np.int64]
    owner_user: list[str | None]
    owner_group: list[str | None]
    person_stamp: npt.NDArray[np.float64]
    person_last_activity: npt.NDArray[np.float64]  # NaN when none
    person_opted_out: npt.NDArray[np.bool_]
    converted_at: npt.NDArray[np.float64]
    task_rows: npt.NDArray[np.int64]
    event_rows: npt.NDArray[np.int64]
    cm_person: npt.NDArray[np.int64]
    cm_campaign: npt.NDArray[np.int64]
    cm_created: npt.NDArray[np.float64]
    cm_first_response: npt.NDArray[np.float64]
    cm_status: npt.NDArray[np.uint8]  # index into CM_STATUS
    deal_contact_role: list[int]  # deal idx per OpportunityContactRole seq
    emails_lead: dict[str, list[int]]
    emails_contact: dict[str, list[int]]


CM_STATUS = ("Sent", "Responded", "Attended")


def build_seed(world: World, username: str) -> Seed:
    people = world.people
    n = len(people)
    acts = world.activities
    sf_kinds = [p.sf_kind for p in people]
    person_lead = np.full(n, -1, dtype=np.int64)
    person_contact = np.full(n, -1, dtype=np.int64)
    lead_person: list[int] = []
    contact_person: list[int] = []
    for i, sf_kind in enumerate(sf_kinds):
        if sf_kind in ("lead", "converted_lead"):
            person_lead[i] = len(lead_person)
            lead_person.append(i)
        if sf_kind in ("converted_lead", "contact"):
            person_contact[i] = len(contact_person)
            contact_person.append(i)

    # Accounts: companies of Contacts and of deals.
    used = np.zeros(len(world.companies), dtype=bool)
    for i in contact_person:
        used[people[i].company_idx] = True
    for deal in world.deals:
        used[people[deal.person_idx].company_idx] = True
    account_company = np.flatnonzero(used).astype(np.int64)
    company_account = np.full(len(world.companies), -1, dtype=np.int64)
    company_account[account_company] = np.arange(len(account_company))

    owner_user: list[str | None] = []
    owner_group: list[str | None] = []
    users = groups = 0
    for owner in world.owners:
        if owner.kind == "person":
            users += 1
            owner_user.append(make_id("User", users))
            owner_group.append(None)
        else:
            owner_user.append(None)
            owner_group.append(make_id("Group", groups))
            groups += 1

    kind = acts.kind
    person = acts.person.astype(np.int64)
    ts = acts.ts
    task_rows = np.flatnonzero(np.isin(kind, [_K["call"], _K["email_send"], _K["email_reply"]]))
    event_rows = np.flatnonzero(np.isin(kind, [_K["meeting_booked"], _K["meeting_cancelled"]]))

    # Campaigns: e-mail campaigns, webinars, forms.
    from connectors.sandbox import world as world_module

    campaign_names = (
        list(world_module.CAMPAIGNS)
        + [f"Webinar: {w}" for w in world_module.WEBINARS]
        + [f"Form: {f}" for f in world_module.FORMS]
    )
    n_email = len(world_module.CAMPAIGNS)
    n_web = len(world_module.WEBINARS)
    campaign_types = ["Email"] * n_email + ["Webinar"] * n_web + ["Other"] * len(world_module.FORMS)
    n_campaigns = len(campaign_names)
    member_kinds = [_K["email_send"], _K["email_click"], _K["email_reply"], _K["webinar_attended"],
                    _K["form_submit"]]  # fmt: skip
    mrows = np.flatnonzero(np.isin(kind, member_kinds) & (acts.detail >= 0))
    mkind = kind[mrows]
    offset = np.where(
        mkind == _K["webinar_attended"],
        n_email,
        np.where(mkind == _K["form_submit"], n_email + n_web, 0),
    )
    mcampaign = acts.detail[mrows].astype(np.int64) + offset
    key = person[mrows] * n_campaigns + mcampaign
    keys, first = np.unique(key, return_index=True)  # rows are sorted by (person, ts)
    responded = mkind != _K["email_send"]
    rkeys, rfirst = np.unique(key[responded], return_index=True)
    first_response = np.full(len(keys), np.nan)
    first_response[np.searchsorted(keys, rkeys)] = ts[mrows[responded][rfirst]]
    cm_campaign = keys % n_campaigns
    status = np.where(np.isnan(first_response), 0, 1).astype(np.uint8)
    status[(cm_campaign >= n_email) & (cm_campaign < n_email + n_web)] = 2

    # Person stamps: creation, conversion, modelled activity, opt-out.
    # A Lead is converted when its deal is created: the Opportunity comes with it.
    converted_at = np.array(
        [p.converted_at if k == "converted_lead" and p.converted_at is not None else np.nan
         for p, k in zip(people, sf_kinds, strict=True)],
        dtype=np.float64,
    )  # fmt: skip
    created = np.array([p.created_at for p in people], dtype=np.float64)
    stamp = np.fmax(created, converted_at)
    last_activity = np.full(n, np.nan)
    act_rows = np.concatenate([task_rows, event_rows])
    np.fmax.at(last_activity, person[act_rows], ts[act_rows])
    stamp = np.fmax(stamp, last_activity)
    cm_person = keys // n_campaigns
    cm_stamp = np.fmax(ts[mrows[first]], first_response)
    np.fmax.at(stamp, cm_person, cm_stamp)
    unsub = np.flatnonzero(kind == _K["unsubscribe"])
    opted = np.zeros(n, dtype=bool)
    opted[person[unsub]] = True
    np.fmax.at(stamp, person[unsub], ts[unsub])

    deal_roles = [d.idx for d in world.deals if person_contact[d.person_idx] >= 0]
    emails_lead: dict[str, list[int]] = {}
    emails_contact: dict[str, list[int]] = {}
    for seq, i in enumerate(lead_person):
        emails_lead.setdefault(people[i].email.casefold(), []).append(seq)
    for seq, i in enumerate(contact_person):
        emails_contact.setdefault(people[i].email.casefold(), []).append(seq)

    return Seed(
        world=world,
        username=username,
        campaign_names=campaign_names,
        campaign_types=campaign_types,
        n_email_campaigns=n_email,
        n_webinars=n_web,
        person_lead=person_lead,
        person_contact=person_contact,
        lead_person=np.array(lead_person, dtype=np.int64),
        contact_person=np.array(contact_person, dtype=np.int64),
        company_account=company_account,
        account_company=account_company,
        owner_user=owner_user,
        owner_group=owner_group,
        person_stamp=stamp,
        person_last_activity=last_activity,
        person_opted_out=opted,
        converted_at=converted_at,
        task_rows=task_rows.astype(np.int64),
        event_rows=event_rows.astype(np.int64),
        cm_person=cm_person.astype(np.int64),
        cm_campaign=cm_campaign.astype(np.int64),
        cm_created=ts[mrows[first]],
        cm_first_response=first_response,
        cm_status=status,
        deal_contact_role=deal_roles,
        emails_lead=emails_lead,
        emails_contact=emails_contact,
    )


def build_tables(seed: Seed, schema: dict[str, SObjectSpec]) -> dict[str, Table]:
    return _Builder(seed, schema).tables()


class _Builder:
    def __init__(self, seed: Seed, schema: dict[str, SObjectSpec]) -> None:
        self.s = seed
        self.w = seed.world
        self.schema = schema
        self.deal_of = {d.person_idx: d.idx for d in seed.world.deals}

    # helpers ---------------------------------------------------------------
    def owner(self, owner_idx: int | None, *, allow_queue: bool = False) -> str:
        if owner_idx is None or not 0 <= owner_idx < len(self.s.owner_user):
            return INTEGRATION_USER
        user = self.s.owner_user[owner_idx]
        if user is not None:
            return user
        group = self.s.owner_group[owner_idx]
        return group if allow_queue and group is not None else INTEGRATION_USER

    def who(self, person: int) -> str:
        contact = int(self.s.person_contact[person])
        if contact >= 0:
            return make_id("Contact", contact)
        return make_id("Lead", int(self.s.person_lead[person]))

    def last_activity_date(self, person: int) -> str | None:
        value = float(self.s.person_last_activity[person])
        return None if np.isnan(value) else fmt_date(value)

    def _range_lookup(
        self, sorted_person: npt.NDArray[np.int64], sobjects: tuple[str, ...]
    ) -> Callable[[Any], range]:
        """Rows of the person behind an id, for tables sorted by person."""
        s = self.s

        def lookup(key: Any) -> range:
            parsed = parse_id(str(key))
            if parsed is None or parsed[0] not in sobjects:
                return range(0)
            sobject, seq = parsed
            people = s.lead_person if sobject == "Lead" else s.contact_person
            if not 0 <= seq < len(people):
                return range(0)
            p = int(people[seq])
            lo = int(np.searchsorted(sorted_person, p, "left"))
            hi = int(np.searchsorted(sorted_person, p, "right"))
            return range(lo, hi)

        return lookup

    def tables(self) -> dict[str, Table]:
        return {
            "User": self.users(),
            "Group": self.groups(),
            "Account": self.accounts(),
            "Lead": self.leads(),
            "Contact": self.contacts(),
            "Opportunity": self.opportunities(),
            "OpportunityContactRole": self.contact_roles(),
            "Task": self.tasks(),
            "Event": self.events(),
            "Campaign": self.campaigns(),
            "CampaignMember": self.members(),
        }

    @staticmethod
    def _dict_table(spec: SObjectSpec, rows: list[Row]) -> Table:
        table = Table(spec)
        for row in rows:
            table.append(row)
        return table

    # small objects ----------------------------------------------------------
    def users(self) -> Table:
        start = self.w.now - self.w.days * DAY - 30 * DAY
        rows = [
            {"Username": self.s.username, "FirstName": "Integration", "LastName": "User",
             "Name": "Integration User", "Email": self.s.username, "Alias": "integ",
             "Title": "API integration", "IsActive": True, "UserType": "Standard",
             **_system(start, start, INTEGRATION_USER)}
        ]  # fmt: skip
        for owner in self.w.owners:
            if owner.kind != "person":
                continue
            rows.append(
                {"Username": owner.email, "FirstName": owner.first_name, "LastName": owner.last_name,
                 "Name": f"{owner.first_name} {owner.last_name}", "Email": owner.email,
                 "Alias": (owner.first_name[:1] + owner.last_name[:4]).lower(), "Title": "Account Executive",
                 "IsActive": owner.active, "UserType": "Standard",
                 **_system(start, start, INTEGRATION_USER)}
            )  # fmt: skip
        return self._dict_table(self.schema["User"], rows)

    def groups(self) -> Table:
        start = self.w.now - self.w.days * DAY - 30 * DAY
        rows = [
            {"Name": f"{o.first_name} {o.last_name}".strip(), "Email": o.email, "Type": "Queue",
             "DeveloperName": f"{o.first_name}_{o.last_name}".replace(" ", "_"),
             "OwnerId": INTEGRATION_USER, **_system(start, start, INTEGRATION_USER)}
            for o in self.w.owners if o.kind == "queue"
        ]  # fmt: skip
        return self._dict_table(self.schema["Group"], rows)

    def accounts(self) -> Table:
        rows: list[Row] = []
        start = self.w.now - self.w.days * DAY
        for c in self.s.account_company:
            company = self.w.companies[int(c)]
            rows.append(
                {"Name": company.name, "Type": "Prospect", "Industry": company.industry,
                 "NumberOfEmployees": company.size, "Website": f"https://{company.domain}",
                 "BillingCountry": company.country, "OwnerId": INTEGRATION_USER,
                 **_system(start, start, INTEGRATION_USER)}
            )  # fmt: skip
        return self._dict_table(self.schema["Account"], rows)

    def campaigns(self) -> Table:
        start = self.w.now - self.w.days * DAY
        rows = [
            {"Name": name, "Type": kind, "Status": "In Progress", "IsActive": True,
             "StartDate": fmt_date(start), "OwnerId": INTEGRATION_USER,
             **_system(start, start, INTEGRATION_USER)}
            for name, kind in zip(self.s.campaign_names, self.s.campaign_types, strict=True)
        ]  # fmt: skip
        return self._dict_table(self.schema["Campaign"], rows)

    def account_id(self, person: int) -> str | None:
        account = int(self.s.company_account[self.w.people[person].company_idx])
        return make_id("Account", account) if account >= 0 else None

    def opportunities(self) -> Table:
        rows: list[Row] = []
        for deal in self.w.deals:
            if deal.stage == "open":
                stage = OPEN_STAGES[(deal.idx * 7) % len(OPEN_STAGES)]
                close = deal.created_at + (30 + deal.idx % 60) * DAY
                stamp = deal.created_at
            else:
                stage = "Closed Won" if deal.stage == "won" else "Closed Lost"
                close = deal.closed_at if deal.closed_at is not None else deal.created_at
                stamp = close
            owner = self.owner(deal.owner_idx)
            contact = int(self.s.person_contact[deal.person_idx])
            creator = owner if deal.created_by_rep else INTEGRATION_USER
            rows.append(
                {"AccountId": self.account_id(deal.person_idx), "Name": deal.name,
                 "StageName": stage, "Amount": float(deal.amount),
                 "Probability": float(STAGE_PROBABILITY[stage]), "CloseDate": fmt_date(close),
                 "Type": "New Customer", "LeadSource": "Web",
                 "IsClosed": deal.stage != "open", "IsWon": deal.stage == "won",
                 "ForecastCategoryName": {"open": "Pipeline", "won": "Closed", "lost": "Omitted"}[deal.stage],
                 "ContactId": make_id("Contact", contact) if contact >= 0 else None,
                 "OwnerId": owner, **_system(deal.created_at, stamp, creator)}
            )  # fmt: skip
            rows[-1]["LastModifiedById"] = owner
        return self._dict_table(self.schema["Opportunity"], rows)

    def contact_roles(self) -> Table:
        rows: list[Row] = []
        for deal_idx in self.s.deal_contact_role:
            deal = self.w.deals[deal_idx]
            contact = int(self.s.person_contact[deal.person_idx])
            rows.append(
                {"OpportunityId": make_id("Opportunity", deal_idx),
                 "ContactId": make_id("Contact", contact), "Role": "Decision Maker",
                 "IsPrimary": True, **_system(deal.created_at, deal.created_at, self.owner(deal.owner_idx))}
            )  # fmt: skip
        return self._dict_table(self.schema["OpportunityContactRole"], rows)

    # people --------------------------------------------------------------------
    def _person_fields(self, i: int) -> Row:
        p = self.w.people[i]
        return {
            "FirstName": p.first_name, "LastName": p.last_name,
            "Name": f"{p.first_name} {p.last_name}".strip(), "Title": p.job_title,
            "Email": p.email, "Phone": p.phone, "MobilePhone": None, "LeadSource": "Web",
            "HasOptedOutOfEmail": bool(self.s.person_opted_out[i]), "Description": None,
            "LastActivityDate": self.last_activity_date(i),
        }  # fmt: skip

    def leads(self) -> Table:
        s, w = self.s, self.w

        def row(seq: int) -> Row:
            i = int(s.lead_person[seq])
            p = w.people[i]
            company = w.companies[p.company_idx]
            converted = p.sf_kind == "converted_lead"
            status = p.lead_status
            if converted:
                status = "Closed - Converted"
            elif status == "Closed - Converted":
                status = "Working - Contacted"
            contact = int(s.person_contact[i])
            # A converted Lead is frozen: later activity lands on its Contact.
            stamp = float(s.converted_at[i]) if converted else float(s.person_stamp[i])
            out: Row = {
                "Id": make_id("Lead", seq), **self._person_fields(i),
                "Company": company.name, "Website": f"https://{company.domain}",
                "Industry": company.industry, "NumberOfEmployees": company.size,
                "AnnualRevenue": None, "City": None, "Country": company.country,
                "Status": status, "Rating": None, "IsConverted": converted,
                "ConvertedDate": fmt_date(float(s.converted_at[i])) if converted else None,
                "ConvertedAccountId": self.account_id(i) if converted else None,
                "ConvertedContactId": make_id("Contact", contact) if converted else None,
                "ConvertedOpportunityId": (
                    make_id("Opportunity", self.deal_of[i]) if converted and i in self.deal_of
                    else None), "IsUnreadByOwner": False,
                "OwnerId": self.owner(p.owner_idx, allow_queue=True),
                **_system(p.created_at, stamp, INTEGRATION_USER),
            }  # fmt: skip
            return out

        created = np.array([w.people[int(i)].created_at for i in s.lead_person], dtype=np.float64)
        stamp = np.zeros(0)
        if len(s.lead_person):
            converted = s.converted_at[s.lead_person]
            stamp = np.where(np.isnan(converted), s.person_stamp[s.lead_person], converted)
        emails = s.emails_lead
        return Table(
            self.schema["Lead"],
            n_base=len(s.lead_person),
            base_row=row,
            created=np.round(created * 1000) / 1000,
            stamp=np.round(stamp * 1000) / 1000,
            base_lookups={"email": lambda key: emails.get(key, ())},
            base_columns={
                "isconverted": np.array(
                    [w.people[int(i)].sf_kind == "converted_lead" for i in s.lead_person],
                    dtype=bool,
                ),
                "hasoptedoutofemail": s.person_opted_out[s.lead_person],
            },
        )

    def contacts(self) -> Table:
        s, w = self.s, self.w

        def created_at(i: int) -> float:
            converted = float(s.converted_at[i])
            return w.people[i].created_at if np.isnan(converted) else converted

        def row(seq: int) -> Row:
            i = int(s.contact_person[seq])
            p = w.people[i]
            company = w.companies[p.company_idx]
            return {
                "Id": make_id("Contact", seq), **self._person_fields(i),
                "AccountId": self.account_id(i), "Department": None, "MailingCity": None,
                "MailingCountry": company.country, "OwnerId": self.owner(p.owner_idx),
                **_system(created_at(i), float(s.person_stamp[i]), INTEGRATION_USER),
            }  # fmt: skip

        created = np.array([created_at(int(i)) for i in s.contact_person], dtype=np.float64)
        stamp = s.person_stamp[s.contact_person] if len(s.contact_person) else np.zeros(0)
        emails = s.emails_contact
        return Table(
            self.schema["Contact"],
            n_base=len(s.contact_person),
            base_row=row,
            created=np.round(created * 1000) / 1000,
            stamp=np.round(stamp * 1000) / 1000,
            base_lookups={"email": lambda key: emails.get(key, ())},
            base_columns={"hasoptedoutofemail": s.person_opted_out[s.contact_person]},
        )

    # activities ----------------------------------------------------------------
    def tasks(self) -> Table:
        s, w = self.s, self.w
        acts = w.activities
        from connectors.sandbox import world as world_module

        campaigns = world_module.CAMPAIGNS

        def row(seq: int) -> Row:
            r = int(s.task_rows[seq])
            i = int(acts.person[r])
            kind = ACTIVITY_TYPES[int(acts.kind[r])]
            ts = float(acts.ts[r])
            detail = int(acts.detail[r])
            topic = campaigns[detail] if 0 <= detail < len(campaigns) else "Follow-up"
            owner = self.owner(w.people[i].owner_idx)
            base: Row = {
                "Id": make_id("Task", seq), "WhoId": self.who(i), "WhatId": None,
                "ActivityDate": fmt_date(ts), "Status": "Completed", "Priority": "Normal",
                "IsClosed": True, "OwnerId": owner, "Description": None,
                "CompletedDateTime": ms(ts), "CallDurationInSeconds": None, "CallDisposition": None,
                **_system(ts, ts, owner),
            }  # fmt: skip
            if kind == "call":
                base |= {"Subject": "Call", "Type": "Call", "TaskSubtype": "Call",
                         "CallDurationInSeconds": 60 + (r * 37) % 1200, "CallDisposition": "Connected"}  # fmt: skip
            elif kind == "email_send":
                base |= {"Subject": f"List Email: {topic}", "Type": "Email", "TaskSubtype": "ListEmail"}  # fmt: skip
            else:
                base |= {"Subject": f"Email: Re: {topic}", "Type": "Email", "TaskSubtype": "Email"}  # fmt: skip
            return base

        ts = np.round(acts.ts[s.task_rows] * 1000) / 1000
        person = acts.person[s.task_rows].astype(np.int64)
        return Table(
            self.schema["Task"],
            n_base=len(s.task_rows),
            base_row=row,
            created=ts,
            stamp=ts,
            base_lookups={"whoid": self._range_lookup(person, ("Lead", "Contact"))},
        )

    def events(self) -> Table:
        s, w = self.s, self.w
        acts = w.activities
        cancelled = _K["meeting_cancelled"]

        def row(seq: int) -> Row:
            r = int(s.event_rows[seq])
            i = int(acts.person[r])
            ts = float(acts.ts[r])
            start = (ts // 3600 + 48) * 3600  # booked two days ahead, on the hour
            owner = self.owner(w.people[i].owner_idx)
            return {
                "Id": make_id("Event", seq), "WhoId": self.who(i), "WhatId": None,
                "Subject": "Meeting", "Type": "Meeting", "EventSubtype": "Event",
                "Location": "Video call", "StartDateTime": start, "ActivityDateTime": start,
                "EndDateTime": start + 1800, "DurationInMinutes": 30, "IsAllDayEvent": False,
                "ActivityDate": fmt_date(start), "Description": None, "OwnerId": owner,
                **_system(ts, ts, owner, deleted=int(acts.kind[r]) == cancelled),
            }  # fmt: skip

        ts = np.round(acts.ts[s.event_rows] * 1000) / 1000
        person = acts.person[s.event_rows].astype(np.int64)
        return Table(
            self.schema["Event"],
            n_base=len(s.event_rows),
            base_row=row,
            created=ts,
            stamp=ts,
            deleted=acts.kind[s.event_rows] == cancelled,
            base_lookups={"whoid": self._range_lookup(person, ("Lead", "Contact"))},
        )

    def members(self) -> Table:
        s, w = self.s, self.w

        def row(seq: int) -> Row:
            i = int(s.cm_person[seq])
            p = w.people[i]
            lead = int(s.person_lead[i])
            contact = int(s.person_contact[i])
            first = float(s.cm_first_response[seq])
            created = float(s.cm_created[seq])
            status = CM_STATUS[int(s.cm_status[seq])]
            stamp = created if np.isnan(first) else max(created, first)
            return {
                "Id": make_id("CampaignMember", seq),
                "CampaignId": make_id("Campaign", int(s.cm_campaign[seq])),
                "LeadId": make_id("Lead", lead) if lead >= 0 else None,
                "ContactId": make_id("Contact", contact) if contact >= 0 else None,
                "Status": status, "HasResponded": status in RESPONDED_STATUSES,
                "FirstRespondedDate": None if np.isnan(first) else fmt_date(first),
                "Email": p.email, "FirstName": p.first_name, "LastName": p.last_name,
                **_system(created, stamp, INTEGRATION_USER),
            }  # fmt: skip

        created = np.round(s.cm_created * 1000) / 1000
        stamp = np.round(np.fmax(s.cm_created, s.cm_first_response) * 1000) / 1000
        lookup = self._range_lookup(s.cm_person, ("Lead", "Contact"))
        return Table(
            self.schema["CampaignMember"],
            n_base=len(s.cm_person),
            base_row=row,
            created=created,
            stamp=stamp,
            base_lookups={"leadid": lookup, "contactid": lookup},
            base_columns={"hasresponded": s.cm_status != 0},
        )
