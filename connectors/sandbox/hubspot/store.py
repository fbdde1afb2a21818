"""The HubSpot CRM core built from a seeded :class:`~connectors.sandbox.world.World`.

Contacts and deals are materialised at seed time (their properties must be
searchable); calls, e-mails, meetings and notes stay in the world's activity
columns until someone reads them. Contact aggregates HubSpot computes from
activity (``hs_analytics_num_page_views``, ``hs_email_open`` ...) are derived with
vectorised numpy passes, which is what keeps seeding 100,000 contacts fast.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from connectors.sandbox.hubspot.pipelines import deal_stage_properties
from connectors.sandbox.hubspot.schema import (
    ENGAGEMENT_TYPES,
    builtin_properties,
    employee_range,
    lifecycle_date_property,
)
from connectors.sandbox.hubspot.table import Props, Table
from connectors.sandbox.hubspot.webhooks import WebhookSender
from connectors.sandbox.world import (
    ACTIVITY_TYPES,
    CAMPAIGNS,
    FORMS,
    WEBINARS,
    World,
)

CONTACT_BASE = 2_147_480_001  # ids cross 2**31 early: HubSpot ids do not fit an int32
CONTACT_STRIDE = 7
DEAL_BASE = 9_300_000_001
DEAL_STRIDE = 3
OWNER_BASE = 71_200_000
USER_BASE = 9_100_000
ENGAGEMENT_BASE = {
    "emails": 41_000_000_000,
    "meetings": 42_000_000_000,
    "calls": 43_000_000_000,
    "notes": 44_000_000_000,
    "tasks": 45_000_000_000,
}
CREATED_OFFSET = 5_000_000_000  # ids of records created through the API, above seeded rows
K = {name: i for i, name in enumerate(ACTIVITY_TYPES)}
ENGAGEMENT_KINDS: dict[str, tuple[int, ...]] = {
    "emails": (K["email_reply"],),
    "meetings": (K["meeting_booked"], K["meeting_cancelled"]),
    "calls": (K["call"],),
    "notes": (K["webinar_attended"],),
}
LEAD_STATUS = {
    "Open - Not Contacted": "NEW",
    "Working - Contacted": "IN_PROGRESS",
    "Closed - Converted": "CONNECTED",
    "Closed - Not Converted": "UNQUALIFIED",
}
OPEN_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "contractsent")


def iso_array(seconds: np.ndarray) -> np.ndarray:
    """Vectorised ``2019-10-30T03:30:17.883Z`` strings."""
    ms = np.round(np.asarray(seconds, dtype=np.float64) * 1000.0).astype("int64")
    text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms")
    return np.char.add(text.astype(str), "Z")


@dataclass(slots=True)
class Owner:
    id: int
    user_id: int | None
    first_name: str
    last_name: str
    email: str
    kind: str  # PERSON | QUEUE
    archived: bool
    created_at: float


@dataclass(slots=True)
class ExtraActivity:
    """Activity simulated after seeding (``simulate_activity``)."""

    person: int
    kind: int
    ts: float
    detail: int


class WatchedContacts(Table):
    """The contacts table, telling a subscribed :class:`WebhookSender` what changes, as
    HubSpot's webhooks do: creations, changes of subscribed properties, deletions and
    merges. Every write of the API (and of ``simulate``) goes through here, so the
    deliveries cannot miss a change the API made. A merge archives both records for
    good and creates the survivor with ``hs_merged_object_ids``: those archives are
    held until the create tells a merge from a purge."""

    sender: WebhookSender | None = None
    _held: list[int]

    def _send(self) -> WebhookSender | None:
        sender = self.sender
        if sender is not None:
            self.release()
        return sender

    def release(self) -> None:
        """Send held removals that turned out not to be part of a merge."""
        held, self._held = getattr(self, "_held", []), []
        if self.sender is not None:
            for object_id in held:
                self.sender.contact_deleted(object_id)

    def create(self, props: Props, now: float) -> int:
        held = list(getattr(self, "_held", []))
        merged = [int(v) for v in props.get("hs_merged_object_ids", "").split(";") if v]
        absorbed = [i for i in held if i in merged]
        self._held = [i for i in held if i not in merged]
        slot = super().create(props, now)
        sender = self._send()
        if sender is not None:
            object_id = int(self.ids[slot])
            if absorbed:
                sender.contacts_merged(object_id, absorbed)
            else:
                sender.contact_created(object_id)
        return slot

    def update(self, slot: int, changes: Props, now: float) -> None:
        before = dict(self.props(slot))
        super().update(slot, changes, now)
        sender = self._send()
        if sender is not None:
            after = self.props(slot)
            for name in changes:
                if before.get(name) != after.get(name):
                    sender.property_changed(int(self.ids[slot]), name, after.get(name))

    def archive(self, slot: int, now: float, *, gone: bool = False) -> None:
        super().archive(slot, now, gone=gone)
        if self.sender is None:
            return
        if gone:
            self._held = [*getattr(self, "_held", []), int(self.ids[slot])]
        else:
            sender = self._send()
            if sender is not None:
                sender.contact_deleted(int(self.ids[slot]))


def attach_webhooks(store: Store, sender: WebhookSender | None) -> None:
    """Deliver the store's contact changes to ``sender`` (None: stop)."""
    table = store.tables["contacts"]
    if isinstance(table, WatchedContacts):
        table.sender = sender


@dataclass
class Store:
    world: World
    tables: dict[str, Table]
    owners: list[Owner]
    # explicit associations, both directions: (from, to) -> from id -> {to ids}
    assoc: dict[tuple[str, str], dict[int, set[int]]] = field(default_factory=dict)
    merged_into: dict[int, int] = field(default_factory=dict)  # merged-away id -> survivor
    persons_of: dict[int, list[int]] = field(default_factory=dict)  # survivor id -> extra persons
    engagement_rows: dict[str, np.ndarray] = field(default_factory=dict)
    extra: list[ExtraActivity] = field(default_factory=list)
    custom_property_count: int = 0

    # ------------------------------------------------------------------ ids
    def contact_id_of_person(self, person: int) -> int:
        return self.resolve("contacts", CONTACT_BASE + CONTACT_STRIDE * person)

    def resolve(self, object_type: str, object_id: int) -> int:
        """A merged-away id answers as its survivor, as in HubSpot."""
        if object_type != "contacts":
            return object_id
        seen = 0
        while object_id in self.merged_into and seen < 100:
            object_id = self.merged_into[object_id]
            seen += 1
        return object_id

    # -------------------------------------------------------- associations
    def link(self, a_type: str, a_id: int, b_type: str, b_id: int) -> None:
        self.assoc.setdefault((a_type, b_type), {}).setdefault(a_id, set()).add(b_id)
        self.assoc.setdefault((b_type, a_type), {}).setdefault(b_id, set()).add(a_id)

    def unlink_all(self, a_type: str, a_id: int) -> list[tuple[str, int]]:
        """Drop every explicit edge of a record; returns the other ends."""
        ends: list[tuple[str, int]] = []
        for (f, t), by_id in self.assoc.items():
            if f != a_type:
                continue
            for other in by_id.pop(a_id, set()):
                ends.append((t, other))
                back = self.assoc.get((t, f), {}).get(other)
                if back is not None:
                    back.discard(a_id)
        return ends

    def associated(self, from_type: str, from_id: int, to_type: str) -> list[int]:
        out = set(self.assoc.get((from_type, to_type), {}).get(from_id, ()))
        acts = self.world.activities
        if from_type == "contacts" and to_type in ENGAGEMENT_KINDS:
            kinds = ENGAGEMENT_KINDS[to_type]
            persons = [*self._seed_person(from_id), *self.persons_of.get(from_id, [])]
            for person in persons:
                sl = acts.for_person(person)
                rows = np.flatnonzero(np.isin(acts.kind[sl], kinds)) + sl.start
                base = ENGAGEMENT_BASE[to_type]
                table = self.tables[to_type]
                for row in rows:
                    eid = base + int(row)
                    slot = table.slot_of(eid)
                    if slot is not None and not table.archived[slot]:
                        out.add(eid)
        elif to_type == "contacts" and from_type in ENGAGEMENT_KINDS:
            base = ENGAGEMENT_BASE[from_type]
            row = from_id - base
            if 0 <= row < len(acts) and from_id < base + CREATED_OFFSET:
                out.add(self.contact_id_of_person(int(acts.person[row])))
        if to_type == "contacts":
            out = {self.resolve("contacts", i) for i in out}
        target = self.tables.get(to_type)
        if target is not None:
            out = {i for i in out if (s := target.slot_of(i)) is not None and not target.gone[s]}
        return sorted(out)

    def _seed_person(self, contact_id: int) -> list[int]:
        off = contact_id - CONTACT_BASE
        if off < 0 or off % CONTACT_STRIDE:
            return []
        person = off // CONTACT_STRIDE
        return [person] if person < len(self.world.people) else []


# ---------------------------------------------------------------------- seeding


def build_store(world: World, *, lag: float, seed: int) -> Store:
    defs = builtin_properties()
    tables = {
        name: (WatchedContacts if name == "contacts" else Table)(
            name,
            props,
            next_id=ENGAGEMENT_BASE[name] + CREATED_OFFSET if name in ENGAGEMENT_BASE else 1,
            lag=lag,
        )
        for name, props in defs.items()
    }
    owners = _owners(world)
    store = Store(world=world, tables=tables, owners=owners)
    _seed_contacts(store, seed)
    _seed_deals(store)
    _seed_engagements(store)
    tables["companies"].next_id = 18_000_000_001
    for name, table in tables.items():
        for p in table.defs.values():
            p.created_at = world.now - world.days * 86_400.0
        if name == "contacts":
            owner_ids = [str(o.id) for o in owners]
            table.defs["hubspot_owner_id"].options = owner_ids
        elif "hubspot_owner_id" in table.defs:
            table.defs["hubspot_owner_id"].options = [str(o.id) for o in owners]
    return store


def _owners(world: World) -> list[Owner]:
    start = world.now - (world.days + 400) * 86_400.0
    out: list[Owner] = []
    for o in world.owners:
        queue = o.kind == "queue"
        out.append(
            Owner(
                id=OWNER_BASE + 17 * o.idx,
                user_id=None if queue else USER_BASE + o.idx,
                first_name=o.first_name,
                last_name=o.last_name,
                email=o.email,
                kind="QUEUE" if queue else "PERSON",
                archived=not o.active,
                created_at=start + 86_400.0 * o.idx,
            )
        )
    return out


def _last_and_first(
    person: np.ndarray, ts: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per person: count, first ts, last ts, row of the last event (rows sorted by person, ts)."""
    counts = np.bincount(person, minlength=n)
    first = np.full(n, np.nan)
    last = np.full(n, np.nan)
    last_row = np.full(n, -1, dtype=np.int64)
    if len(person):
        starts = np.flatnonzero(np.r_[True, person[1:] != person[:-1]])
        ends = np.r_[starts[1:], len(person)] - 1
        first[person[starts]] = ts[starts]
        last[person[ends]] = ts[ends]
        last_row[person[ends]] = ends
    return counts, first, last, last_row


def _seed_contacts(store: Store, seed: int) -> None:
    world = store.world
    people = world.people
    n = len(people)
    acts = world.activities
    kinds = acts.kind
    ids = CONTACT_BASE + CONTACT_STRIDE * np.arange(n, dtype=np.int64)
    created = np.array([p.created_at for p in people], dtype=np.float64)
    last_any = created.copy()
    if len(acts):
        _, _, last_act, _ = _last_and_first(acts.person, acts.ts, n)
        last_any = np.fmax(created, last_act)
        for person in people:
            if person.duplicate_of is not None:
                target = person.duplicate_of
                while people[target].duplicate_of is not None:
                    target = people[target].duplicate_of  # type: ignore[assignment]
                last_any[target] = max(last_any[target], last_any[person.idx])

    columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # prop -> (mask, string values)

    def add_count(name: str, counts: np.ndarray) -> None:
        columns[name] = (counts > 0, counts.astype(str))

    def add_time(name: str, times: np.ndarray) -> None:
        ok = ~np.isnan(times)
        strings = np.full(n, "", dtype=object)
        if ok.any():
            strings[ok] = iso_array(times[ok])
        columns[name] = (ok, strings)

    # a merged duplicate's activity counts for the survivor, as after a HubSpot merge
    contact_of = np.arange(n, dtype=np.int64)
    for person in people:
        if person.duplicate_of is not None:
            target = person.duplicate_of
            while people[target].duplicate_of is not None:
                target = people[target].duplicate_of  # type: ignore[assignment]
            contact_of[person.idx] = target
    any_merged = bool((contact_of != np.arange(n)).any())

    def select(kind_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mask = np.isin(kinds, [K[k] for k in kind_names])
        rows = np.flatnonzero(mask)
        owners = contact_of[acts.person[rows]]
        times = acts.ts[rows]
        if any_merged:
            order = np.lexsort((times, owners))
            owners, times, rows = owners[order], times[order], rows[order]
        return owners, times, rows

    pv_p, pv_t, _ = select(("page_view",))
    counts, first, last, _ = _last_and_first(pv_p, pv_t, n)
    add_count("hs_analytics_num_page_views", counts)
    add_time("hs_analytics_first_visit_timestamp", first)
    add_time("hs_analytics_last_visit_timestamp", last)
    if len(pv_p):
        sessions = np.unique(pv_p.astype(np.int64) * 10_000_000 + (pv_t // 1800).astype(np.int64))
        add_count("hs_analytics_num_visits", np.bincount(sessions // 10_000_000, minlength=n))
    fs_p, fs_t, fs_rows = select(("form_submit",))
    counts, first, last, last_row = _last_and_first(fs_p, fs_t, n)
    add_count("num_conversion_events", counts)
    add_time("first_conversion_date", first)
    add_time("recent_conversion_date", last)
    form_names = np.array(FORMS, dtype=object)
    if len(fs_p):
        starts = np.flatnonzero(np.r_[True, fs_p[1:] != fs_p[:-1]])
        first_names = np.full(n, "", dtype=object)
        first_names[fs_p[starts]] = form_names[acts.detail[fs_rows[starts]]]
        columns["first_conversion_event_name"] = (counts > 0, first_names)
        recent = np.full(n, "", dtype=object)
        ok = last_row >= 0
        recent[ok] = form_names[acts.detail[fs_rows[last_row[ok]]]]
        columns["recent_conversion_event_name"] = (ok, recent)
        uniq = np.unique(fs_p.astype(np.int64) * 100 + acts.detail[fs_rows])
        add_count("num_unique_conversion_events", np.bincount(uniq // 100, minlength=n))
    for kind, count_name, date_name in (
        ("email_send", "hs_email_delivered", "hs_email_last_send_date"),
        ("email_open", "hs_email_open", "hs_email_last_open_date"),
        ("email_click", "hs_email_click", "hs_email_last_click_date"),
        ("email_reply", "hs_email_replied", "hs_email_last_reply_date"),
    ):
        p, t, _ = select((kind,))
        counts, _, last, _ = _last_and_first(p, t, n)
        add_count(count_name, counts)
        add_time(date_name, last)
    p, t, _ = select(("call", "meeting_booked", "email_reply"))
    counts, _, last, _ = _last_and_first(p, t, n)
    add_time("notes_last_contacted", last)
    add_count("num_contacted_notes", counts)
    p, _, _ = select(("unsubscribe",))
    unsub = np.bincount(p, minlength=n) > 0
    columns["hs_email_optout"] = (unsub, np.where(unsub, "true", "false").astype(object))
    deal_counts = np.bincount(
        contact_of[np.array([d.person_idx for d in world.deals], dtype=np.int64)], minlength=n
    )
    add_count("num_associated_deals", deal_counts[:n])

    owner_ids = [str(o.id) for o in store.owners]
    names = list(columns)
    masks = [columns[k][0].tolist() for k in names]
    values = [columns[k][1].tolist() for k in names]
    props_list: list[Props] = []
    companies = world.companies
    for i, person in enumerate(people):
        company = companies[person.company_idx]
        props: Props = {
            "email": person.email,
            "firstname": person.first_name,
            "lastname": person.last_name,
            "company": company.name,
            "website": company.domain,
            "industry": company.industry,
            "country": company.country,
            "numemployees": employee_range(company.size),
            "lifecyclestage": person.lifecycle_stage,
            "hs_lead_status": LEAD_STATUS.get(person.lead_status, "OPEN"),
        }
        for stage, at in person.stage_dates.items():
            props[lifecycle_date_property(stage)] = str(iso_array(np.array([at]))[0])
        if person.job_title:
            props["jobtitle"] = person.job_title
        if person.phone:
            props["phone"] = person.phone
        if person.owner_idx is not None:
            props["hubspot_owner_id"] = owner_ids[person.owner_idx]
        for j, name in enumerate(names):
            if masks[j][i]:
                props[name] = values[j][i]
        props_list.append(props)
    table = store.tables["contacts"]
    table.load_seed(ids, np.round(created * 1000.0), np.round(last_any * 1000.0), props_list)
    table.next_id = int(ids[-1]) + 1 if n else CONTACT_BASE

    # duplicates: merged into the earlier record, as a tidy HubSpot portal would have
    for person in people:
        if person.duplicate_of is None:
            continue
        dup_id = int(ids[person.idx])
        survivor_slot = person.duplicate_of
        while people[survivor_slot].duplicate_of is not None:
            survivor_slot = people[survivor_slot].duplicate_of  # type: ignore[assignment]
        survivor_id = int(ids[survivor_slot])
        _seed_merge(store, table, person.idx, survivor_slot, dup_id, survivor_id)

    # a few archived contacts (in the recycle bin), chosen by the seed
    rng = random.Random(seed * 7919 + 11)
    with_deals = {d.person_idx for d in world.deals}
    for i in range(n):
        if table.gone[i] or i in with_deals or people[i].duplicate_of is not None:
            continue
        if rng.random() < 0.01:
            table.archived[i] = True
            table.archived_ms[i] = table.updated_ms[i]
            table.s_visible[i] = False
            table._index(i, table.props(i), {})


def _seed_merge(
    store: Store, table: Table, dup_slot: int, survivor_slot: int, dup_id: int, survivor_id: int
) -> None:
    dup = table.props(dup_slot)
    survivor = dict(table.props(survivor_slot))
    merged = [v for v in survivor.get("hs_merged_object_ids", "").split(";") if v]
    merged.append(str(dup_id))
    survivor["hs_merged_object_ids"] = ";".join(merged)
    extra = [v for v in survivor.get("hs_additional_emails", "").split(";") if v]
    if dup.get("email") and dup["email"].lower() != survivor.get("email", "").lower():
        extra.append(dup["email"])
    if extra:
        survivor["hs_additional_emails"] = ";".join(extra)
    for key, value in dup.items():
        survivor.setdefault(key, value)
    table.live[survivor_slot] = survivor
    table.s_props[survivor_slot] = survivor
    table.gone[dup_slot] = True
    table.s_visible[dup_slot] = False
    if dup.get("email"):
        table.unique["email"][dup["email"].lower()] = survivor_slot
    store.merged_into[dup_id] = survivor_id
    store.persons_of.setdefault(survivor_id, []).append(dup_slot)
    store.persons_of[survivor_id].extend(store.persons_of.pop(dup_id, []))


def _seed_deals(store: Store) -> None:
    world = store.world
    deals = world.deals
    n = len(deals)
    ids = DEAL_BASE + DEAL_STRIDE * np.arange(n, dtype=np.int64)
    created = np.array([d.created_at for d in deals], dtype=np.float64)
    updated = np.array([d.closed_at or d.created_at for d in deals], dtype=np.float64)
    props_list: list[Props] = []
    for d in deals:
        owner = store.owners[d.owner_idx]
        if d.stage == "won":
            stage = "closedwon"
        elif d.stage == "lost":
            stage = "closedlost"
        else:
            stage = OPEN_STAGES[d.idx % len(OPEN_STAGES)]
        close = d.closed_at if d.closed_at is not None else d.created_at + 45 * 86_400.0
        props: Props = {
            "dealname": d.name,
            "amount": _num(d.amount),
            "pipeline": "default",
            "dealstage": stage,
            "closedate": str(iso_array(np.array([close]))[0]),
            "dealtype": "newbusiness",
            "hubspot_owner_id": str(owner.id),
            **deal_stage_properties(stage),
            "num_associated_contacts": "1",
        }
        if d.created_by_rep and owner.user_id is not None:
            props["hs_created_by_user_id"] = str(owner.user_id)
        props_list.append(props)
    table = store.tables["deals"]
    table.load_seed(ids, np.round(created * 1000.0), np.round(updated * 1000.0), props_list)
    table.next_id = int(ids[-1]) + 1 if n else DEAL_BASE
    for d, deal_id in zip(deals, ids.tolist(), strict=True):
        store.link("deals", deal_id, "contacts", store.contact_id_of_person(d.person_idx))


def _seed_engagements(store: Store) -> None:
    acts = store.world.activities
    for name, kinds in ENGAGEMENT_KINDS.items():
        rows = np.flatnonzero(np.isin(acts.kind, kinds)).astype(np.int64)
        store.engagement_rows[name] = rows
        ts_ms = np.round(acts.ts[rows] * 1000.0)
        table = store.tables[name]
        table.load_seed(ENGAGEMENT_BASE[name] + rows, ts_ms, ts_ms, None, _lazy(store, name, rows))
        table.next_id = ENGAGEMENT_BASE[name] + CREATED_OFFSET
    store.engagement_rows.setdefault("tasks", np.zeros(0, dtype=np.int64))
    assert set(store.engagement_rows) == set(ENGAGEMENT_TYPES)


def _lazy(store: Store, name: str, rows: np.ndarray) -> Callable[[int], Props]:
    world = store.world
    acts = world.activities
    owner_ids = [str(o.id) for o in store.owners]

    def build(slot: int) -> Props:
        row = int(rows[slot])
        person = world.people[int(acts.person[row])]
        ts = float(acts.ts[row])
        detail = int(acts.detail[row])
        stamp = str(iso_array(np.array([ts]))[0])
        props: Props = {"hs_timestamp": stamp}
        if person.owner_idx is not None:
            props["hubspot_owner_id"] = owner_ids[person.owner_idx]
        kind = ACTIVITY_TYPES[int(acts.kind[row])]
        if name == "emails":
            campaign = CAMPAIGNS[detail] if 0 <= detail < len(CAMPAIGNS) else "your e-mail"
            props.update(
                hs_email_direction="INCOMING_EMAIL",
                hs_email_subject=f"Re: {campaign}",
                hs_email_text=f"Thanks, {person.first_name} here: tell me more.",
                hs_email_status="SENT",
            )
        elif name == "meetings":
            end = str(iso_array(np.array([ts + 1800.0]))[0])
            outcome = (
                "CANCELED"
                if kind == "meeting_cancelled"
                else ("COMPLETED" if ts < world.now else "SCHEDULED")
            )
            props.update(
                hs_meeting_title=f"Demo with {person.first_name} {person.last_name}",
                hs_meeting_start_time=stamp,
                hs_meeting_end_time=end,
                hs_meeting_outcome=outcome,
            )
        elif name == "calls":
            props.update(
                hs_call_title=f"Call with {person.first_name} {person.last_name}",
                hs_call_direction="OUTBOUND",
                hs_call_duration=str((row * 7919 % 900 + 60) * 1000),
                hs_call_status="COMPLETED",
            )
        elif name == "notes":
            webinar = WEBINARS[detail] if 0 <= detail < len(WEBINARS) else "a webinar"
            props["hs_note_body"] = f"Attended webinar: {webinar}"
        return props

    return build


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
