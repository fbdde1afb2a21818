"""A seeded, realistic CRM world that both fake CRMs build their stores from.

The HubSpot and Salesforce sandboxes must hold *the same people* so that a model
scored against one flavour can be compared with the other, and the data must carry
a real signal so that demos and benchmarks of scoring mean something. Everything is
therefore drawn here, once, from one seed: companies, owners, people, ``days`` of
engagement and historical deals, all relative to ``now`` (the clock the sandbox runs
on), so a world made today tells the same story as one made a year ago.

The story, and where its signal lives: a hidden per-person ``propensity`` drives how
much a person engages and whether (and when) they convert; in the weeks before their
deal is created they engage more (a buying cycle). From the deal's creation on they
engage like someone who never converted, so that a score built on what happened
*before* a deal predicts it and nothing after the deal gives the label away. Fields a
CRM changes at conversion (lifecycle stage, Lead status, converted flags) change on
the conversion date and keep their dates. :meth:`World.simulate` continues the same
story past ``now`` for the sandboxes' simulated activity.

Engagement is kept columnar (a few numpy arrays sorted by person and time) because
100,000 people produce millions of events; Python objects per event would not fit
the sandbox's memory budget.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "ACTIVITY_TYPES",
    "CAMPAIGNS",
    "DEFAULT_DAYS",
    "FORMS",
    "PAGES",
    "PAGE_SECTIONS",
    "SITE",
    "TUNING",
    "WEBINARS",
    "Activities",
    "CompanySeed",
    "DealSeed",
    "OwnerSeed",
    "PersonSeed",
    "SimulatedEvent",
    "Tuning",
    "World",
    "generate_world",
]

DAY = 86_400.0
# The default clock of `generate_world` when none is given, for reproducible tests;
# the sandboxes always pass their own clock.
DEFAULT_NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
# History a sandbox holds by default: a year of weekly backtest snapshots, each with
# a 90-day horizon, plus the longest window of the starter model (365 days) before
# the first snapshot.
DEFAULT_DAYS = 365 + 90 + 365


@dataclass(frozen=True, slots=True)
class Tuning:
    """Every number that shapes the world's story, in one place.

    Engagement rates are events per day, as ``base + slope * propensity**power``,
    times the person's own activity level; the buying cycle adds events at a rate
    that rises linearly to ``ramp_*`` per day on the day the deal is created.
    """

    # Conversion: a per-day hazard, base + slope * propensity**power.
    convert_base_per_day: float = 0.00002
    convert_per_day: float = 0.0018
    convert_power: float = 1.5
    min_days_to_convert: float = 14.0  # nobody buys in their first two weeks
    ramp_days: float = 56.0  # the buying cycle before a deal is created
    ramp_interest: float = 0.75  # propensity-like interest while in the cycle
    # Most buying cycles stall: research that ends without a deal (a per-day hazard
    # of starting one, base + slope * propensity**power). They make a hot lead a good
    # bet, not a sure one.
    stall_base_per_day: float = 0.0001
    stall_per_day: float = 0.002
    stall_power: float = 1.0
    sales_cycle_min_days: float = 14.0
    sales_cycle_spread_days: float = 100.0
    win_slope: float = 10.0  # won with probability sigmoid(slope * (p - midpoint))
    win_midpoint: float = 0.4
    campaign_every_days: float = 7.5  # marketing e-mail: about one a week
    webinar_every_days: float = 22.0
    # (base, slope, power) per day, outside the buying cycle.
    sessions: tuple[float, float, float] = (0.008, 0.17, 1.3)
    forms: tuple[float, float, float] = (0.0007, 0.012, 1.2)
    meetings: tuple[float, float, float] = (0.00006, 0.009, 2.0)
    calls: tuple[float, float, float] = (0.0003, 0.014, 1.5)
    # Peak rates per day in the buying cycle.
    ramp_sessions: float = 0.5
    ramp_forms: float = 0.12
    ramp_meetings: float = 0.08
    ramp_calls: float = 0.1
    # Simulated activity (`World.simulate`): the chance, per person active, of each
    # kind of engagement, as base + slope * interest + cycle * progress (interest:
    # the propensity, or more in a buying cycle; progress: how far into the cycle,
    # 0 to 1). A buyer near the end of a cycle talks to sales.
    sim_email_open: tuple[float, float, float] = (1.0, 0.0, 0.0)  # a campaign brought them
    sim_email_click: tuple[float, float, float] = (0.1, 0.5, 0.2)
    sim_email_reply: tuple[float, float, float] = (0.02, 0.2, 0.4)
    sim_form: tuple[float, float, float] = (0.03, 0.3, 0.35)
    sim_meeting: tuple[float, float, float] = (0.002, 0.05, 0.5)
    # Raised hands (demo requests, "contact us"): a few per cent of the people
    # active, most of them in a cycle; base + slope * interest**2.
    sim_demo_request: tuple[float, float] = (0.008, 0.08)
    # How much more likely someone in a buying cycle is to be active on a given day
    # (added to their usual sessions per day, times 0.3 + progress).
    sim_cycle_weight: float = 1.0


TUNING = Tuning()

ACTIVITY_TYPES: tuple[str, ...] = (
    "page_view",
    "email_send",
    "email_open",
    "email_click",
    "email_reply",
    "form_submit",
    "meeting_booked",
    "meeting_cancelled",
    "call",
    "webinar_attended",
    "unsubscribe",
)
_K = {name: i for i, name in enumerate(ACTIVITY_TYPES)}
_EMAIL_KINDS = np.array(
    [_K["email_send"], _K["email_open"], _K["email_click"], _K["email_reply"]], dtype=np.uint8
)

SITE: str = "https://www.acmecloud.example"

# ----------------------------------------------------------------------------- pages

_PRICING_PATHS = (
    "/pricing",
    "/pricing/starter",
    "/pricing/professional",
    "/pricing/enterprise",
    "/plans",
    "/plans/compare",
    "/pricing/faq",
    "/pricing/calculator",
    "/demo",
    "/trial",
)
_PRODUCT_FEATURES = (
    "lead-scoring",
    "pipeline",
    "forecasting",
    "email-sequences",
    "workflows",
    "reporting",
    "dashboards",
    "integrations",
    "api",
    "mobile",
    "security",
    "data-enrichment",
    "territories",
    "quotes",
    "call-tracking",
    "ai-assistant",
    "landing-pages",
    "forms",
    "chat",
    "attribution",
)
_PRODUCT_PATHS = (
    "/product",
    "/product/tour",
    "/customers",
    "/customers/case-studies",
    *(f"/product/{f}" for f in _PRODUCT_FEATURES),
    "/integrations/salesforce",
    "/integrations/hubspot",
    "/integrations/slack",
    "/integrations/gmail",
    "/integrations/outlook",
    "/integrations/zapier",
)
_DOCS_TOPICS = (
    "getting-started",
    "installation",
    "authentication",
    "api-reference",
    "webhooks",
    "rate-limits",
    "data-import",
    "data-export",
    "field-mapping",
    "scoring-models",
    "workflows",
    "permissions",
    "sso",
    "audit-log",
    "sandbox",
    "release-notes",
    "troubleshooting",
    "faq",
    "sdk-python",
    "sdk-javascript",
    "changelog",
    "migration-guide",
    "best-practices",
    "glossary",
)
_DOCS_PATHS = ("/docs", *(f"/docs/{t}" for t in _DOCS_TOPICS))
_BLOG_WORDS_A = (
    "how-to",
    "why",
    "the-ultimate-guide-to",
    "5-ways-to",
    "what-is",
    "a-beginners-guide-to",
    "10-tips-for",
    "lessons-from",
    "the-state-of",
    "rethinking",
    "stop-ignoring",
)
_BLOG_WORDS_B = (
    "lead-scoring",
    "sales-pipeline-hygiene",
    "b2b-marketing",
    "account-based-marketing",
    "cold-email",
    "crm-data-quality",
    "revenue-operations",
    "sales-forecasting",
    "marketing-attribution",
    "demand-generation",
)
_BLOG_PATHS = (
    "/blog",
    *(f"/blog/{a}-{b}" for a in _BLOG_WORDS_A for b in _BLOG_WORDS_B),
)
_CAREERS_PATHS = (
    "/careers",
    "/careers/life-at-acme",
    "/careers/benefits",
    "/careers/account-executive",
    "/careers/sales-development-representative",
    "/careers/senior-backend-engineer",
    "/careers/frontend-engineer",
    "/careers/data-scientist",
    "/careers/product-designer",
    "/careers/customer-success-manager",
    "/careers/marketing-manager",
    "/careers/internships",
)
_ABOUT_PATHS = (
    "/",
    "/about",
    "/about/team",
    "/about/press",
    "/about/partners",
    "/contact",
    "/legal/privacy",
    "/legal/terms",
)

_SECTION_PATHS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pricing", _PRICING_PATHS),
    ("product", _PRODUCT_PATHS),
    ("docs", _DOCS_PATHS),
    ("blog", _BLOG_PATHS),
    ("careers", _CAREERS_PATHS),
    ("about", _ABOUT_PATHS),
)
PAGES: tuple[str, ...] = tuple(SITE + p for _, paths in _SECTION_PATHS for p in paths)
# Section of each page, aligned with PAGES, so consumers can aggregate without parsing URLs.
PAGE_SECTIONS: tuple[str, ...] = tuple(s for s, paths in _SECTION_PATHS for _ in paths)
_SECTION_NAMES = tuple(s for s, _ in _SECTION_PATHS)
_SECTION_START = np.cumsum([0] + [len(p) for _, p in _SECTION_PATHS])[:-1].astype(np.int32)
_SECTION_SIZE = np.array([len(p) for _, p in _SECTION_PATHS], dtype=np.int32)
# Share of page views per section for an uninterested and an eager visitor; a person's
# mix is interpolated by propensity, so buyers read pricing and docs, not careers.
_SECTION_W_LOW = np.array([0.03, 0.14, 0.05, 0.56, 0.14, 0.08])
_SECTION_W_HIGH = np.array([0.26, 0.30, 0.16, 0.18, 0.02, 0.08])

FORMS: tuple[str, ...] = (
    "newsletter",
    "ebook",
    "contact-us",
    "demo-request",
    "webinar-registration",
    "trial-signup",
)
_F = {name: i for i, name in enumerate(FORMS)}
_HAND_RAISERS = frozenset({_F["demo-request"], _F["contact-us"]})
# Webinar registrations are drawn with the webinars, so their weight here is zero.
_FORM_W_LOW = np.array([0.50, 0.36, 0.07, 0.02, 0.0, 0.05])
_FORM_W_HIGH = np.array([0.08, 0.17, 0.20, 0.33, 0.0, 0.22])

_CAMPAIGN_TOPICS: tuple[str, ...] = (
    "Newsletter: January digest",
    "Product update: Workflows 2.0",
    "Nurture 1: Why teams switch",
    "Nurture 2: Clean CRM data",
    "Nurture 3: Customer stories",
    "Webinar invite: Forecasting that works",
    "Newsletter: February digest",
    "E-book: The lead scoring playbook",
    "Product update: AI assistant beta",
    "Event: RevOps Summit meetup",
    "Newsletter: March digest",
    "Case study: Northwind doubles pipeline",
    "Webinar invite: ABM in practice",
    "Pricing update: new Professional plan",
    "Newsletter: April digest",
    "Nurture 4: Integrations tour",
    "Product update: Mobile app",
    "Survey: State of sales ops",
    "Newsletter: May digest",
    "Webinar invite: Attribution without tears",
    "Trial follow-up: Getting value fast",
    "Product update: Territories",
    "Newsletter: June digest",
    "Re-engagement: Still interested?",
)
# A campaign goes out every `Tuning.campaign_every_days`; later editions of the same
# topics keep every send its own campaign over the default history.
CAMPAIGNS: tuple[str, ...] = (
    *_CAMPAIGN_TOPICS,
    *(f"{topic} (edition {k})" for k in range(2, 6) for topic in _CAMPAIGN_TOPICS),
)

WEBINARS: tuple[str, ...] = (
    "Forecasting that works",
    "ABM in practice",
    "Lead scoring 101",
    "Attribution without tears",
    "Cleaning your CRM in a week",
    "From MQL to revenue",
    "RevOps roundtable",
    "Customer panel: scaling outbound",
)

# ----------------------------------------------------------------------------- records


@dataclass(slots=True)
class OwnerSeed:
    idx: int
    first_name: str
    last_name: str
    email: str
    kind: Literal["person", "queue"]
    active: bool


@dataclass(slots=True)
class CompanySeed:
    idx: int
    name: str
    domain: str
    size: int
    industry: str
    country: str
    is_competitor: bool


@dataclass(slots=True)
class PersonSeed:
    """One person, as both CRMs hold them.

    ``propensity`` is the hidden truth behind engagement and deal outcomes: sandboxes
    must not serve it, only tests and benchmarks may read it to judge a model.
    """

    idx: int
    company_idx: int
    first_name: str
    last_name: str
    email: str
    job_title: str | None
    phone: str | None
    # HubSpot values: subscriber, lead, marketingqualifiedlead, salesqualifiedlead,
    # opportunity, customer, other.
    lifecycle_stage: str
    # Salesforce Lead Status. "Closed - Converted" for converted leads and for contacts
    # that never were leads.
    lead_status: str
    owner_idx: int | None
    created_at: float
    sf_kind: Literal["lead", "converted_lead", "contact"]
    propensity: float
    duplicate_of: int | None
    # When the person's deal was created (their conversion): HubSpot moves the
    # lifecycle stage then, Salesforce converts the Lead. None: no deal yet.
    converted_at: float | None = None
    # HubSpot lifecycle stage -> when it was reached (``hs_lifecyclestage_<s>_date``).
    stage_dates: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class DealSeed:
    idx: int
    person_idx: int
    owner_idx: int
    name: str
    amount: float
    created_at: float
    stage: Literal["open", "won", "lost"]
    closed_at: float | None
    created_by_rep: bool


class Activities:
    """Engagement events as parallel arrays, sorted by (person, ts).

    ``kind`` indexes :data:`ACTIVITY_TYPES`; ``detail`` indexes :data:`PAGES`
    (page_view), :data:`FORMS` (form_submit), :data:`CAMPAIGNS` (email_*) or
    :data:`WEBINARS` (webinar_attended), and is -1 otherwise. ``ts`` is epoch seconds
    rounded to the millisecond.

    The arrays are read-only: several sandboxes (and ``/__sandbox/reset``) share one
    world, so an in-place change by one would silently alter the others.
    """

    __slots__ = ("_offsets", "detail", "kind", "person", "ts")

    def __init__(
        self,
        person: npt.ArrayLike,
        kind: npt.ArrayLike,
        ts: npt.ArrayLike,
        detail: npt.ArrayLike,
        n_people: int,
    ) -> None:
        p_a, k_a, t_a, d_a = (np.asarray(a) for a in (person, kind, ts, detail))
        n = len(p_a)
        if not (len(k_a) == len(t_a) == len(d_a) == n):
            raise ValueError("Activities: person, kind, ts and detail must have the same length")
        order = np.lexsort((t_a, p_a))
        self.person: npt.NDArray[np.int32] = np.ascontiguousarray(p_a[order], dtype=np.int32)
        self.kind: npt.NDArray[np.uint8] = np.ascontiguousarray(k_a[order], dtype=np.uint8)
        self.ts: npt.NDArray[np.float64] = np.ascontiguousarray(t_a[order], dtype=np.float64)
        self.detail: npt.NDArray[np.int32] = np.ascontiguousarray(d_a[order], dtype=np.int32)
        if n and (self.person[0] < 0 or self.person[-1] >= n_people):
            raise ValueError("Activities: person index out of range")
        counts = np.bincount(self.person, minlength=n_people)
        self._offsets = np.zeros(n_people + 1, dtype=np.int64)
        np.cumsum(counts, out=self._offsets[1:])
        for column in (self.person, self.kind, self.ts, self.detail, self._offsets):
            column.flags.writeable = False

    def __len__(self) -> int:
        return len(self.person)

    def for_person(self, idx: int) -> slice:
        """Rows of one person: ``acts.kind[acts.for_person(i)]``."""
        if not 0 <= idx < len(self._offsets) - 1:
            raise IndexError(f"person index {idx} out of range")
        return slice(int(self._offsets[idx]), int(self._offsets[idx + 1]))

    def counts(self) -> npt.NDArray[np.int64]:
        """Number of events per person (a copy)."""
        return np.diff(self._offsets)


@dataclass
class World:
    """Everything one seed produces; ``people[i].idx == i`` and likewise for the others."""

    seed: int
    now: float
    days: int
    owners: list[OwnerSeed]
    companies: list[CompanySeed]
    people: list[PersonSeed]
    activities: Activities
    deals: list[DealSeed]
    tuning: Tuning = TUNING
    # The hidden story per person, for `simulate` (never served by a sandbox):
    # when they convert (may lie after `now`; inf: never), their engagement level,
    # and the propensity they engage with once their deal exists.
    convert_at: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    cycle_end: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    activity_level: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    propensity_after: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def interest(self, at: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Per person at time ``at``: (how eager they are, how far into a buying cycle).

        Eagerness is the propensity before the deal and the after-deal propensity from
        its creation on; the cycle's progress runs from 0 to 1 over ``ramp_days``
        before the deal is created, and is 0 outside it.
        """
        p = np.array([x.propensity for x in self.people], dtype=np.float64)
        none = np.full(len(p), np.inf)
        conv = self.convert_at if len(self.convert_at) == len(p) else none
        end = self.cycle_end if len(self.cycle_end) == len(p) else none
        after = self.propensity_after if len(self.propensity_after) == len(p) else p
        eager = np.where(at < conv, p, after)
        ramp_len = self.tuning.ramp_days * DAY
        into = (at - (end - ramp_len)) / ramp_len
        cycle = np.where((into >= 0.0) & (at < end), np.clip(into, 0.0, 1.0), 0.0)
        return eager, cycle

    def simulate(
        self, count: int, *, at: float, seed: int = 0, among: npt.ArrayLike | None = None
    ) -> list[SimulatedEvent]:
        """Fresh engagement at ``at`` for ``count`` people, continuing the world's story.

        People are picked in proportion to how much they engage at ``at`` (so people in
        a buying cycle come back day after day) from ``among`` (person indexes; default
        everyone). Each does a few things in the hour before ``at``. The same arguments
        give the same events.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"count: expected a non-negative integer, got {count!r}")
        n = len(self.people)
        pool = np.arange(n, dtype=np.int64) if among is None else np.asarray(among, np.int64)
        pool = np.unique(pool[(pool >= 0) & (pool < n)])
        if count == 0 or len(pool) == 0:
            return []
        t = self.tuning
        rng = np.random.default_rng([self.seed, int(seed), 0x5EED])
        eager, cycle = self.interest(at)
        act = self.activity_level if len(self.activity_level) == n else np.ones(n)
        in_cycle = cycle[pool] > 0
        weight = act[pool] * _rate(t.sessions, eager[pool])
        weight += np.where(in_cycle, t.sim_cycle_weight * (0.3 + cycle[pool]), 0.0)
        weight = np.maximum(weight, 1e-9)
        k = min(count, len(pool))
        chosen = np.sort(rng.choice(pool, size=k, replace=False, p=weight / weight.sum()))
        out: list[SimulatedEvent] = []
        for person in chosen.tolist():
            mine = len(out)
            r = float(cycle[person])
            # In a buying cycle anyone reads, clicks and asks like an eager buyer.
            q = max(float(eager[person]), t.ramp_interest * (0.5 + 0.5 * r) if r > 0 else 0.0)
            when = at - 3600.0 + 600.0 * rng.random()

            def emit(kind: str, detail: int, *, person: int = person, gap: float = 120.0) -> None:
                nonlocal when
                when += gap * (0.25 + rng.random())
                out.append(SimulatedEvent(person, kind, round(when, 3), detail))

            # A visit to the site, maybe a form or a meeting booked, and the e-mail
            # that brought them read last (so the open is the freshest news).
            views = int(rng.integers(1, 6))
            section = _pick_by_rowweights(
                rng, _SECTION_W_LOW, _SECTION_W_HIGH, np.full(views, max(q, r))
            )
            within = (rng.random(views) ** 2.2 * _SECTION_SIZE[section]).astype(np.int64)
            for page in (_SECTION_START[section] + within).tolist():
                emit("page_view", int(page))
            campaign = int(rng.integers(0, len(CAMPAIGNS)))
            chance = {
                name: base + slope * q + cycle_bonus * r
                for name, (base, slope, cycle_bonus) in (
                    ("open", t.sim_email_open),
                    ("click", t.sim_email_click),
                    ("reply", t.sim_email_reply),
                    ("form", t.sim_form),
                    ("meeting", t.sim_meeting),
                )
            }
            draws = rng.random(7)
            if draws[3] < chance["form"]:
                form = int(_pick_by_rowweights(rng, _FORM_W_LOW, _FORM_W_HIGH, np.array([q]))[0])
                if form not in _HAND_RAISERS:  # those come from the draw below
                    emit("form_submit", form)
            base, slope = t.sim_demo_request
            if draws[4] < base + slope * max(q, r) ** 2:
                # A raised hand: mostly a demo request, sometimes "contact us".
                emit("form_submit", _F["demo-request"] if draws[6] < 0.7 else _F["contact-us"])
            if draws[5] < chance["meeting"]:
                emit("meeting_booked", -1)
            if draws[0] < chance["open"]:
                emit("email_open", campaign)
                # Within the same minute: the session ends with the e-mail.
                if draws[1] < chance["click"]:
                    emit("email_click", campaign, gap=0.0)
                if draws[2] < chance["reply"]:
                    emit("email_reply", campaign, gap=0.0)
            # The session ends at `at`: what they did is fresh when the sandbox is read.
            shift = at - out[-1].ts
            out[mine:] = [
                SimulatedEvent(e.person, e.kind, round(e.ts + shift, 3), e.detail)
                for e in out[mine:]
            ]
        return out


@dataclass(frozen=True, slots=True)
class SimulatedEvent:
    """One event of simulated activity; ``detail`` as in :class:`Activities`."""

    person: int
    kind: str  # one of ACTIVITY_TYPES
    ts: float
    detail: int


# ------------------------------------------------------------------------- vocabularies


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FIRST_NAMES = _words(
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Lisa Matthew Nancy "
    "Anthony Sandra Mark Ashley Steven Emily Andrew Michelle Paul Amanda Joshua Melissa "
    "Kevin Laura Brian Rebecca George Sharon Timothy Cynthia Jason Amy Ryan Anna Jacob "
    "Olivia Lukas Sophie Felix Hannah Jonas Lea Maximilian Emma Pierre Camille Louis Chloe "
    "Lucas Manon Hugo Ines Priya Arjun Ananya Rohan Aisha Wei Mei Hiroshi Yuki Sven Ingrid "
    "Lars Freya Mateo Sofia Diego Lucia Carlos Valentina Liam Noah Ava Mia Ethan Zoe Omar "
    "Fatima Daan Sanne Joao Beatriz Siobhan Connor Aoife Niamh Raj Kavya Tomas Elena"
)
_LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
    "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
    "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter "
    "Roberts Mueller Schmidt Schneider Fischer Weber Meyer Wagner Becker Hoffmann Schulz "
    "Dubois Laurent Bernard Moreau Lefebvre Girard Patel Sharma Gupta Singh Kumar Iyer Chen "
    "Wang Li Zhang Tanaka Suzuki Sato Andersson Johansson Larsson Nilsson Silva Santos "
    "Oliveira Costa Fernandez Ruiz Murphy Kelly OBrien Byrne DeVries Jansen Bakker Visser "
    "Rossi Russo Ferrari Novak Kowalski Nowak"
)

# (title, weight, effect on the propensity's log-odds). Buyers of a sales/marketing
# tool sit in sales and marketing leadership; students and recruiters rarely buy.
_TITLES: tuple[tuple[str, float, float], ...] = (
    ("CEO", 3, 0.5),
    ("Founder", 2, 0.4),
    ("CMO", 2, 0.8),
    ("CFO", 1, -0.1),
    ("CTO", 2, 0.2),
    ("VP of Sales", 3, 1.0),
    ("VP of Marketing", 3, 0.9),
    ("Head of Sales", 2, 0.9),
    ("Head of Growth", 2, 0.8),
    ("Head of Marketing", 2, 0.8),
    ("Head of Revenue Operations", 2, 1.0),
    ("Director of Sales", 3, 0.8),
    ("Director of Marketing", 3, 0.7),
    ("Director", 2, 0.4),
    ("Sales Lead", 4, 0.6),
    ("Sales Manager", 4, 0.5),
    ("Revenue Operations Manager", 3, 0.7),
    ("Marketing Manager", 5, 0.4),
    ("Senior Manager", 4, 0.3),
    ("Account Executive", 4, 0.2),
    ("Sales Development Representative", 4, 0.1),
    ("Product Manager", 3, 0.0),
    ("Operations Manager", 3, 0.0),
    ("Customer Success Manager", 3, 0.0),
    ("Marketing Associate", 6, -0.3),
    ("Marketing Coordinator", 3, -0.3),
    ("Consultant", 6, -0.5),
    ("Senior Consultant", 2, -0.4),
    ("Engineer", 3, -0.7),
    ("Software Engineer", 5, -0.7),
    ("Data Analyst", 3, -0.4),
    ("HR Manager", 2, -0.9),
    ("Recruiter", 2, -1.1),
    ("Office Manager", 2, -0.8),
    ("Freelancer", 2, -0.7),
    ("Intern", 2, -1.6),
    ("Student", 5, -2.2),
)
# Real CRMs hold the same title spelled many ways; scoring must cope with that.
_TITLE_VARIANTS: dict[str, tuple[str, ...]] = {
    "CEO": ("Chief Executive Officer", "ceo & co-founder", "CEO / Founder"),
    "CMO": ("Chief Marketing Officer", "cmo"),
    "CTO": ("Chief Technology Officer",),
    "VP of Sales": ("VP Sales", "Vice President, Sales", "vp of sales", "SVP Sales"),
    "VP of Marketing": ("VP Marketing", "Vice President of Marketing"),
    "Head of Sales": ("Head of Sales EMEA", "head of sales"),
    "Director of Sales": ("Sales Director", "Dir. Sales"),
    "Director of Marketing": ("Marketing Director",),
    "Sales Lead": ("Team Lead Sales", "sales lead"),
    "Senior Manager": ("Sr. Manager", "Senior Manager, Operations"),
    "Software Engineer": ("Senior Software Engineer", "software developer"),
    "Student": ("student", "MBA Student", "Graduate Student"),
    "Consultant": ("Independent Consultant", "consultant"),
}
_NO_TITLE_SHARE = 0.08
_VARIANT_SHARE = 0.15

# (industry, weight, effect on log-odds)
_INDUSTRIES: tuple[tuple[str, float, float], ...] = (
    ("Software", 18, 0.5),
    ("IT Services", 10, 0.3),
    ("Marketing & Advertising", 8, 0.4),
    ("Financial Services", 8, 0.1),
    ("Consulting", 7, 0.1),
    ("Healthcare", 7, -0.2),
    ("Manufacturing", 8, -0.1),
    ("Retail", 6, 0.0),
    ("Telecommunications", 4, 0.1),
    ("Media", 4, 0.1),
    ("Logistics", 4, -0.1),
    ("Real Estate", 4, -0.2),
    ("Education", 5, -0.6),
    ("Non-profit", 4, -0.7),
    ("Government", 3, -0.8),
)
# (country, weight, top-level domain, phone prefix, UTC offset in hours, DST ignored)
_COUNTRIES: tuple[tuple[str, float, str, str, float], ...] = (
    ("United States", 40, "com", "+1", -6.0),
    ("United Kingdom", 10, "co.uk", "+44", 0.0),
    ("Germany", 10, "de", "+49", 1.0),
    ("India", 6, "in", "+91", 5.5),
    ("Canada", 5, "ca", "+1", -5.0),
    ("France", 5, "fr", "+33", 1.0),
    ("Netherlands", 4, "nl", "+31", 1.0),
    ("Australia", 4, "com.au", "+61", 10.0),
    ("Spain", 3, "es", "+34", 1.0),
    ("Brazil", 3, "com.br", "+55", -3.0),
    ("Sweden", 2, "se", "+46", 1.0),
    ("Ireland", 2, "ie", "+353", 0.0),
    ("Switzerland", 2, "ch", "+41", 1.0),
    ("Singapore", 2, "sg", "+65", 8.0),
    ("Japan", 2, "jp", "+81", 9.0),
)
_LEGAL_FORM = {
    "United States": ("Inc.", "LLC", "", ""),
    "United Kingdom": ("Ltd", "plc", ""),
    "Germany": ("GmbH", "AG", "GmbH"),
    "Canada": ("Inc.", "Ltd.", ""),
    "France": ("SAS", "SA", ""),
    "Netherlands": ("B.V.", ""),
    "Australia": ("Pty Ltd", ""),
    "India": ("Pvt Ltd", "Ltd", ""),
    "Spain": ("S.L.", "S.A."),
    "Brazil": ("Ltda", ""),
    "Sweden": ("AB",),
    "Ireland": ("Ltd", "DAC"),
    "Switzerland": ("AG", "GmbH", "SA"),
    "Singapore": ("Pte Ltd",),
    "Japan": ("K.K.", ""),
}
_NAME_A = _words(
    "Northwind Contoso Fabrikam Blue Red Green Silver Golden Bright Clear Swift Nimbus Apex "
    "Summit Pioneer Vertex Quantum Stellar Atlas Orion Polar Harbor River Cedar Maple Oak "
    "Pine Granite Iron Copper Crystal Lunar Solar Nova Zenith Horizon Beacon Cobalt Falcon "
    "Eagle Lion Tiger Wolf Fox Hawk Alpine Coastal Urban Prairie Evergreen Sterling Crown "
    "Royal Liberty Union Frontier Keystone Lighthouse Meridian Pinnacle Radiant Sapphire "
    "Emerald Onyx Velvet Willow Birch Aspen Tidal Metro Prime Core True Bold Open Smart "
    "Rapid Global Nordic Pacific Atlantic Central"
)
_NAME_B = _words(
    "Analytics Systems Solutions Labs Logistics Health Foods Motors Energy Capital Media "
    "Software Networks Robotics Dynamics Partners Consulting Ventures Industries Retail "
    "Pharma Bank Insurance Telecom Studios Digital Cloud Data Security Learning Travel "
    "Apparel Brewing Construction Engineering Manufacturing Properties Outfitters Devices "
    "Materials Biotech Logic Works Supply Marine Aviation Goods Markets"
)
_NAME_C = ("", "Group", "Holdings", "International", "Global", "Partners", "& Co")
_COMPETITORS: tuple[tuple[str, str, int, str], ...] = (
    ("PipeRival", "piperival.com", 420, "United States"),
    ("Leadly", "leadly.io", 130, "United Kingdom"),
    ("ScoreForge", "scoreforge.com", 75, "Germany"),
    ("FunnelHound", "funnelhound.com", 260, "Canada"),
)
_FREE_MAIL: tuple[tuple[str, float], ...] = (
    ("gmail.com", 45),
    ("yahoo.com", 11),
    ("outlook.com", 11),
    ("hotmail.com", 9),
    ("icloud.com", 7),
    ("aol.com", 3),
    ("gmx.de", 4),
    ("web.de", 3),
    ("proton.me", 4),
    ("yahoo.co.uk", 3),
)
_FREE_MAIL_SHARE = 0.18
_COMPETITOR_PERSON_SHARE = 0.015
_DUPLICATE_SHARE = 0.015
_PHONE_SHARE = 0.62

_REPS: tuple[tuple[str, str], ...] = (
    ("Alex", "Morgan"),
    ("Jordan", "Reyes"),
    ("Taylor", "Brooks"),
    ("Sam", "Whitfield"),
    ("Casey", "Nakamura"),
    ("Riley", "Okafor"),
    ("Jamie", "Lindqvist"),
    ("Morgan", "Dietrich"),
    ("Avery", "Castellano"),
    ("Quinn", "Mahoney"),
    ("Parker", "Asante"),
    ("Drew", "Kovacs"),
)
# (deal name suffix, weight, price multiplier)
_DEAL_PRODUCTS: tuple[tuple[str, float, float], ...] = (
    ("Starter plan", 4, 0.35),
    ("Professional plan", 5, 1.0),
    ("Enterprise plan", 2, 3.5),
    ("Seat expansion", 2, 0.5),
    ("Annual renewal", 2, 1.2),
    ("Pilot", 1, 0.3),
)

# ----------------------------------------------------------------------------- helpers

_Rng = np.random.Generator
_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]


def _weights(values: tuple[float, ...] | list[float]) -> _F64:
    w = np.asarray(values, dtype=np.float64)
    out: _F64 = w / w.sum()
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _to_epoch(now: float | datetime | None) -> float:
    if now is None:
        return DEFAULT_NOW.timestamp()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now: datetime must be timezone-aware (e.g. tzinfo=UTC)")
        return now.timestamp()
    value = float(now)
    if not math.isfinite(value):
        raise ValueError(f"now: expected a finite epoch time, got {now!r}")
    return value


def _sigmoid(x: _F64) -> _F64:
    out: _F64 = np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)
    return out


def _pick_by_rowweights(rng: _Rng, w_low: _F64, w_high: _F64, p: _F64) -> _I64:
    """Draw a category per row from a mix of two weight vectors, interpolated by ``p``.

    Cumulates one category at a time so memory stays at a few arrays of the row count
    instead of a rows-by-categories matrix.
    """
    u = rng.random(len(p))
    out = np.zeros(len(p), dtype=np.int64)
    cum = np.zeros(len(p), dtype=np.float64)
    for c in range(len(w_low) - 1):
        cum += w_low[c] + (w_high[c] - w_low[c]) * p
        out += u >= cum
    return out


def _office_hours(rng: _Rng, ts: _F64, utc_offset_h: _F64) -> _F64:
    """Move times to 9:00-17:00 local on a working day: reps call and meet in office hours."""
    off = utc_offset_h * 3600.0
    day = np.floor((ts + off) / DAY)
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    day += np.where(weekday >= 5, 7 - weekday, 0)
    out: _F64 = day * DAY + (9.0 + 8.0 * rng.random(len(ts))) * 3600.0 - off
    return out


def _uniform_in(rng: _Rng, lo: _F64, hi: _F64) -> _F64:
    return lo + rng.random(len(lo)) * (hi - lo)


# ----------------------------------------------------------------------------- generator


def generate_world(
    n_contacts: int = 2000,
    *,
    seed: int = 7,
    now: float | datetime | None = None,
    days: int = 180,
    tuning: Tuning = TUNING,
) -> World:
    """Draw a complete CRM world; the same arguments always give the same world.

    Everything is drawn relative to ``now``: the same seed with another ``now`` gives
    the same story shifted in time. Sandboxes pass their clock; without one ``now``
    is 2026-06-30T12:00:00Z so that tests are reproducible. Every event lies in
    ``[now - days, now]``; ``days`` defaults to a short window that keeps tests fast,
    the sandboxes default to :data:`DEFAULT_DAYS`.
    """
    if isinstance(n_contacts, bool) or not isinstance(n_contacts, int) or n_contacts < 0:
        raise ValueError(f"n_contacts: expected a non-negative integer, got {n_contacts!r}")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days: expected a positive integer, got {days!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    now_s = _to_epoch(now)
    rng = np.random.default_rng(seed)

    owners = _make_owners(n_contacts)
    companies = _make_companies(rng, n_contacts)
    people_arrays = _draw_people(rng, n_contacts, companies, owners, now_s, days)
    # Conversions are planned before engagement: the buying cycle before each deal and
    # the switch to label-free engagement after it depend on when the deal is created.
    plan = _plan_deals(rng, people_arrays, now_s, days, tuning)
    activities, stats = _draw_activities(rng, people_arrays, plan, owners, now_s, days, tuning)
    deals = _deal_records(rng, people_arrays, plan, companies, owners)
    people = _finish_people(rng, people_arrays, stats, plan)
    return World(
        seed=seed,
        now=now_s,
        days=days,
        owners=owners,
        companies=companies,
        people=people,
        activities=activities,
        deals=deals,
        tuning=tuning,
        convert_at=plan.convert_at,
        cycle_end=plan.cycle_end,
        activity_level=people_arrays.activity,
        propensity_after=plan.propensity_after,
    )


def _make_owners(n_contacts: int) -> list[OwnerSeed]:
    n_reps = int(min(len(_REPS), max(6, 6 + n_contacts // 20_000)))
    owners = [
        OwnerSeed(
            idx=i,
            first_name=first,
            last_name=last,
            email=f"{first.lower()}.{last.lower()}@acmecloud.example",
            kind="person",
            # One rep has left the company but still owns records, as in every real CRM.
            active=i != n_reps - 1,
        )
        for i, (first, last) in enumerate(_REPS[:n_reps])
    ]
    owners.append(
        OwnerSeed(
            idx=n_reps,
            first_name="Inbound",
            last_name="Lead Queue",
            email="inbound-leads@acmecloud.example",
            kind="queue",
            active=True,
        )
    )
    return owners


def _make_companies(rng: _Rng, n_contacts: int) -> list[CompanySeed]:
    n_regular = max(3, round(n_contacts / 6))
    country_w = _weights([c[1] for c in _COUNTRIES])
    industry_w = _weights([i[1] for i in _INDUSTRIES])
    # Log-normal sizes: most firms are small, a few are huge (median ~40 employees).
    sizes = np.clip(np.rint(np.exp(rng.normal(np.log(40.0), 1.7, n_regular))), 1, 250_000)
    countries = rng.choice(len(_COUNTRIES), size=n_regular, p=country_w)
    industries = rng.choice(len(_INDUSTRIES), size=n_regular, p=industry_w)
    n_combos = len(_NAME_A) * len(_NAME_B) * len(_NAME_C)
    # Distinct draws; past the number of name combinations a round number tells them apart.
    draws = rng.choice(max(n_regular, n_combos), size=n_regular, replace=False)
    legal_u = rng.random(n_regular)

    companies: list[CompanySeed] = []
    used: set[str] = {domain for _, domain, _, _ in _COMPETITORS}
    for i in range(n_regular):
        round_no, combo = divmod(int(draws[i]), n_combos)
        a, rest = divmod(combo, len(_NAME_B) * len(_NAME_C))
        b, c = divmod(rest, len(_NAME_C))
        base = " ".join(x for x in (_NAME_A[a], _NAME_B[b], _NAME_C[c]) if x)
        if round_no:
            base = f"{base} {round_no + 1}"
        country, _, tld, _, _ = _COUNTRIES[int(countries[i])]
        forms = _LEGAL_FORM[country]
        legal = forms[int(legal_u[i] * len(forms))]
        domain = f"{_slug(base)}.{tld}"
        k = 2
        while domain in used:  # different names can share a slug
            domain = f"{_slug(base)}{k}.{tld}"
            k += 1
        used.add(domain)
        companies.append(
            CompanySeed(
                idx=i,
                name=f"{base} {legal}".strip(),
                domain=domain,
                size=int(sizes[i]),
                industry=_INDUSTRIES[int(industries[i])][0],
                country=country,
                is_competitor=False,
            )
        )
    for name, domain, size, country in _COMPETITORS:
        companies.append(
            CompanySeed(
                idx=len(companies),
                name=name,
                domain=domain,
                size=size,
                industry="Software",
                country=country,
                is_competitor=True,
            )
        )
    return companies


@dataclass(slots=True)
class _PeopleArrays:
    """Per-person columns shared by the later drawing steps (internal)."""

    n: int
    company: _I64
    first: _I64
    last: _I64
    title: list[str | None]
    title_effect: _F64
    email: list[str]
    freemail: npt.NDArray[np.bool_]
    competitor: npt.NDArray[np.bool_]
    phone: list[str | None]
    owner: _I64  # -1: unowned
    created: _F64
    propensity: _F64
    activity: _F64  # per-person engagement multiplier, independent of propensity
    duplicate_of: _I64  # -1: not a duplicate
    utc_offset: _F64  # hours, from the company's country


def _draw_people(
    rng: _Rng,
    n: int,
    companies: list[CompanySeed],
    owners: list[OwnerSeed],
    now: float,
    days: int,
) -> _PeopleArrays:
    regular = [c for c in companies if not c.is_competitor]
    competitors = [c for c in companies if c.is_competitor]
    sizes = np.array([c.size for c in regular], dtype=np.float64)
    # Bigger companies have more people in the CRM, but far less than proportionally.
    company_w = sizes**0.45
    company = rng.choice(len(regular), size=n, p=company_w / company_w.sum()).astype(np.int64)
    is_comp = rng.random(n) < _COMPETITOR_PERSON_SHARE
    if competitors:
        company[is_comp] = rng.choice([c.idx for c in competitors], size=int(is_comp.sum())).astype(
            np.int64
        )
    freemail = (rng.random(n) < _FREE_MAIL_SHARE) & ~is_comp
    first = rng.integers(0, len(_FIRST_NAMES), n)
    last = rng.integers(0, len(_LAST_NAMES), n)

    # Duplicates: a later record of an earlier person (same name and company).
    dup = np.full(n, -1, dtype=np.int64)
    if n >= 2:
        is_dup = rng.random(n) < _DUPLICATE_SHARE
        is_dup[0] = False
        dup_rows = np.flatnonzero(is_dup)
        dup[dup_rows] = (rng.random(len(dup_rows)) * dup_rows).astype(np.int64)
        # Chains (a duplicate of a duplicate) point at the original.
        for r in dup_rows:
            while dup[dup[r]] >= 0:
                dup[r] = dup[dup[r]]
        company[dup_rows] = company[dup[dup_rows]]
        first[dup_rows] = first[dup[dup_rows]]
        last[dup_rows] = last[dup[dup_rows]]
        is_comp[dup_rows] = is_comp[dup[dup_rows]]
        # The second record usually came in through a personal address.
        freemail[dup_rows] = rng.random(len(dup_rows)) < 0.6
        freemail &= ~is_comp

    # Titles
    title_w = _weights([t[1] for t in _TITLES])
    title_idx = rng.choice(len(_TITLES), size=n, p=title_w)
    no_title = rng.random(n) < _NO_TITLE_SHARE
    variant_u = rng.random(n)
    titles: list[str | None] = []
    title_effect = np.zeros(n, dtype=np.float64)
    for i in range(n):
        name, _, effect = _TITLES[int(title_idx[i])]
        title_effect[i] = effect
        if no_title[i]:
            titles.append(None)
            continue
        variants = _TITLE_VARIANTS.get(name)
        if variants and variant_u[i] < _VARIANT_SHARE:
            name = variants[int(variant_u[i] / _VARIANT_SHARE * len(variants))]
        titles.append(name)
    if n >= 2:
        for r in np.flatnonzero(dup >= 0):
            titles[r] = titles[dup[r]]
            title_effect[r] = title_effect[dup[r]]

    # Hidden propensity: fit (title, industry, size, address) plus individual noise.
    industry_effect = {name: eff for name, _, eff in _INDUSTRIES}
    comp_ind = np.array([industry_effect[c.industry] for c in companies], dtype=np.float64)
    comp_size = np.array([c.size for c in companies], dtype=np.float64)
    size_effect = np.where(
        (comp_size >= 50) & (comp_size <= 5000), 0.4, np.where(comp_size < 10, -0.5, 0.0)
    )
    # People at one company share part of their intent (a buying committee).
    company_effect = rng.normal(0.0, 0.5, len(companies))
    logit = (
        rng.normal(-1.6, 0.9, n)
        + company_effect[company]
        + title_effect
        + comp_ind[company]
        + size_effect[company]
        - 0.6 * freemail
        - 4.0 * is_comp
    )
    propensity = _sigmoid(logit)
    if n >= 2:
        rows = np.flatnonzero(dup >= 0)
        propensity[rows] = propensity[dup[rows]]
    activity = rng.gamma(4.0, 0.25, n)

    # Created: about half before the window (older database), the rest during it.
    span = days * DAY
    before = rng.random(n) < 0.5
    created = np.where(
        before,
        now - span - rng.exponential(365 * DAY, n),
        now - span + rng.random(n) * span * 0.97,
    )
    if n >= 2:
        rows = np.flatnonzero(dup >= 0)
        created[rows] = np.maximum(
            created[rows], created[dup[rows]] + rng.random(len(rows)) * DAY * 30
        )
        created[rows] = np.minimum(created[rows], now - 60.0)
    created = np.floor(created * 1000.0) / 1000.0

    # Owners: ~15% unowned, some with the queue, a few stuck with the rep who left.
    reps = [o.idx for o in owners if o.kind == "person" and o.active]
    inactive = [o.idx for o in owners if o.kind == "person" and not o.active]
    queue = [o.idx for o in owners if o.kind == "queue"]
    rep_w = _weights([1.0 + 0.5 * (k % 3) for k in range(len(reps))])
    owner = rng.choice(reps, size=n, p=rep_w).astype(np.int64)
    u = rng.random(n)
    owner[u < 0.15] = -1
    owner[(u >= 0.15) & (u < 0.25)] = queue[0]
    if inactive:
        owner[(u >= 0.25) & (u < 0.30)] = inactive[0]

    # E-mails and phones
    free_w = _weights([f[1] for f in _FREE_MAIL])
    free_dom = rng.choice(len(_FREE_MAIL), size=n, p=free_w)
    pattern = rng.choice(5, size=n, p=[0.5, 0.2, 0.1, 0.1, 0.1])
    digits = rng.integers(1, 99, n)
    has_phone = rng.random(n) < _PHONE_SHARE
    phone_digits = rng.integers(200_0000, 999_9999, n)
    phone_area = rng.integers(201, 989, n)
    country_prefix = {c[0]: c[3] for c in _COUNTRIES}
    offsets = {c[0]: c[4] for c in _COUNTRIES}
    used: set[str] = set()
    emails: list[str] = []
    phones: list[str | None] = []
    for i in range(n):
        fn = _slug(_FIRST_NAMES[int(first[i])])
        ln = _slug(_LAST_NAMES[int(last[i])])
        comp = companies[int(company[i])]
        if freemail[i]:
            domain = _FREE_MAIL[int(free_dom[i])][0]
            local = (
                f"{fn}.{ln}"
                if pattern[i] < 2
                else f"{fn}{ln}{digits[i]}"
                if pattern[i] < 4
                else f"{fn[0]}{ln}{digits[i]}"
            )
        else:
            domain = comp.domain
            p = int(pattern[i])
            if dup[i] >= 0:
                p = (p + 1) % 5  # a second record comes with another spelling
            local = (f"{fn}.{ln}", f"{fn[0]}{ln}", fn, f"{fn}{ln[0]}", f"{fn}_{ln}")[p]
        email = f"{local}@{domain}"
        k = 2
        while email in used:
            email = f"{local}{k}@{domain}"
            k += 1
        used.add(email)
        emails.append(email)
        if has_phone[i]:
            prefix = country_prefix[comp.country]
            d = int(phone_digits[i])
            phones.append(f"{prefix} {phone_area[i]} {d // 10000:03d} {d % 10000:04d}")
        else:
            phones.append(None)

    return _PeopleArrays(
        n=n,
        company=company,
        first=first,
        last=last,
        title=titles,
        title_effect=title_effect,
        email=emails,
        freemail=freemail,
        competitor=is_comp,
        phone=phones,
        owner=owner,
        created=created,
        propensity=propensity,
        activity=activity,
        duplicate_of=dup,
        utc_offset=np.array([offsets[companies[int(c)].country] for c in company]),
    )


@dataclass(slots=True)
class _ActivityStats:
    calls: _I64
    meetings: _I64
    forms: _I64
    unsubscribed: npt.NDArray[np.bool_]
    first_form: _F64  # first form submission, inf when none
    first_contact: _F64  # first call or meeting, inf when none


@dataclass(slots=True)
class _DealPlan:
    """Who converts and when, per person (internal; one deal per person at most).

    ``convert_at`` is the moment the person's deal is created; it may lie after
    ``now`` (the buying cycle is under way) or be ``inf`` (never, in this story).
    """

    convert_at: _F64
    cycle_end: _F64  # end of a buying cycle: convert_at, or when a cycle stalled; inf: none
    has_deal: npt.NDArray[np.bool_]  # convert_at <= now: a deal record exists
    closed: npt.NDArray[np.bool_]
    won: npt.NDArray[np.bool_]
    close_at: _F64  # nan for open deals
    propensity_after: _F64  # how the person engages once the deal exists


def _plan_deals(rng: _Rng, pa: _PeopleArrays, now: float, days: int, tuning: Tuning) -> _DealPlan:
    n = pa.n
    t0 = now - days * DAY
    p = pa.propensity
    eligible = (pa.duplicate_of < 0) & ~pa.competitor
    start = np.maximum(pa.created, t0)
    # A person can convert from `min_days_to_convert` after entering the CRM (or the
    # window) until a ramp's length after now: those are in their buying cycle today.
    lo = start + tuning.min_days_to_convert * DAY
    hi = np.full(n, now + tuning.ramp_days * DAY)
    span_days = np.maximum(hi - lo, 0.0) / DAY
    hazard = tuning.convert_base_per_day + tuning.convert_per_day * p**tuning.convert_power
    converts = eligible & (rng.random(n) < 1.0 - np.exp(-hazard * span_days))
    at = _uniform_in(rng, lo, hi)
    convert_at = np.where(converts, np.ceil(at * 1000.0) / 1000.0, np.inf)
    stall_hazard = tuning.stall_base_per_day + tuning.stall_per_day * p**tuning.stall_power
    stalls = ~converts & (rng.random(n) < 1.0 - np.exp(-stall_hazard * span_days))
    stall_at = _uniform_in(rng, lo, hi)
    cycle_end = np.where(converts, convert_at, np.where(stalls, stall_at, np.inf))
    has_deal = convert_at <= now - 60.0
    cycle = (tuning.sales_cycle_min_days + tuning.sales_cycle_spread_days * rng.random(n)) * DAY
    close_at = np.floor((convert_at + cycle) * 1000.0) / 1000.0
    closed = has_deal & (close_at <= now - DAY)
    # The outcome follows the hidden propensity: what a good lead score recovers.
    won = closed & (rng.random(n) < _sigmoid(tuning.win_slope * (p - tuning.win_midpoint)))
    # After the deal is created a person engages like someone who never converted:
    # a propensity drawn from the people who do not convert, so that engagement after
    # the deal carries no trace of the label.
    pool = p[(pa.duplicate_of < 0) & ~converts]
    if len(pool) == 0:
        pool = p if len(p) else np.zeros(1)
    after = pool[rng.integers(0, len(pool), n)]
    return _DealPlan(
        convert_at=convert_at,
        cycle_end=cycle_end,
        has_deal=has_deal,
        closed=closed,
        won=won,
        close_at=np.where(closed, close_at, np.nan),
        propensity_after=np.asarray(after, dtype=np.float64),
    )


def _rate(triple: tuple[float, float, float], p: _F64) -> _F64:
    base, slope, power = triple
    out: _F64 = base + slope * p**power
    return out


def _draw_activities(
    rng: _Rng,
    pa: _PeopleArrays,
    plan: _DealPlan,
    owners: list[OwnerSeed],
    now: float,
    days: int,
    tuning: Tuning,
) -> tuple[Activities, _ActivityStats]:
    n = pa.n
    span = days * DAY
    t0 = now - span
    now_ms = math.floor(now * 1000.0) / 1000.0
    t0_ms = math.ceil(t0 * 1000.0) / 1000.0
    start = np.maximum(pa.created, t0)
    p = pa.propensity
    act = pa.activity
    conv = plan.convert_at
    p_after = plan.propensity_after

    def p_at(person: _I64, ts: _F64) -> _F64:
        out: _F64 = np.where(ts < conv[person], p[person], p_after[person])
        return out

    # One random stream per kind of engagement: a count that depends on the calendar
    # (campaign weekdays, office hours) then changes no other kind's draws, so the
    # same seed tells the same story on another clock.
    streams = [
        np.random.default_rng(s)
        for s in np.random.SeedSequence(int(rng.integers(0, 2**63))).spawn(6)
    ]
    persons: list[_I64] = []
    kinds: list[npt.NDArray[np.uint8]] = []
    tss: list[_F64] = []
    details: list[_I64] = []

    def add(person: _I64, kind: int, ts: _F64, detail: _I64 | int) -> None:
        persons.append(person)
        kinds.append(np.full(len(person), kind, dtype=np.uint8))
        tss.append(ts)
        if isinstance(detail, int):
            details.append(np.full(len(person), detail, dtype=np.int64))
        else:
            details.append(detail)

    def office(person: _I64, ts: _F64) -> _F64:
        moved = _office_hours(rng, ts, pa.utc_offset[person])
        # Moving to office hours must not carry an event across the deal's creation:
        # what happened before the deal stays before it (a week earlier, same hour).
        crossed = (ts < conv[person]) & (moved >= conv[person])
        moved = np.where(crossed, moved - 7 * DAY, moved)
        return np.maximum(moved, start[person])

    # Regimes: before the deal a person engages by their propensity, after it like a
    # non-converter. Rows: (person, propensity, from, to).
    idx = np.arange(n, dtype=np.int64)
    pre_end = np.minimum(conv, now)
    has_after = conv < now
    seg_person = np.concatenate([idx, idx[has_after]])
    seg_p = np.concatenate([p, p_after[has_after]])
    seg_lo = np.concatenate([start, np.maximum(conv[has_after], start[has_after])])
    seg_hi = np.concatenate([pre_end, np.full(int(has_after.sum()), now)])
    seg_days = np.maximum(seg_hi - seg_lo, 0.0) / DAY
    seg_act = act[seg_person]

    def regime_events(triple: tuple[float, float, float]) -> tuple[_I64, _F64]:
        counts = rng.poisson(seg_act * seg_days * _rate(triple, seg_p))
        rows = np.repeat(np.arange(len(seg_person), dtype=np.int64), counts)
        ts = _uniform_in(rng, seg_lo[rows], seg_hi[rows])
        return seg_person[rows], ts

    # The buying cycle: in the `ramp_days` before a deal is created, engagement rises
    # towards it (linearly), whatever the person's usual habits.
    cycle_end = plan.cycle_end
    ramp = np.isfinite(cycle_end)
    r_len = tuning.ramp_days * DAY

    def ramp_events(per_day_at_peak: float) -> tuple[_I64, _F64]:
        mean = per_day_at_peak * tuning.ramp_days / 2.0 * np.sqrt(act)
        counts = np.where(ramp, rng.poisson(mean), 0)
        person = np.repeat(idx, counts)
        ts = cycle_end[person] - r_len * (1.0 - np.sqrt(rng.random(len(person))))
        kept = (ts >= start[person]) & (ts <= now)
        return person[kept], ts[kept]

    # Page views, in sessions of a few pages a couple of minutes apart.
    rng = streams[0]
    b_person, b_ts = regime_events(tuning.sessions)
    r_person, r_ts = ramp_events(tuning.ramp_sessions)
    s_person = np.concatenate([b_person, r_person])
    s_start = np.concatenate([b_ts, r_ts])
    # Section interest: a person in their buying cycle reads like an eager buyer.
    s_interest = np.concatenate(
        [p_at(b_person, b_ts), np.maximum(p[r_person], tuning.ramp_interest)]
    )
    s_pages = rng.geometric(0.4, len(s_person))
    pv_person = np.repeat(s_person, s_pages)
    step = rng.exponential(100.0, len(pv_person))
    csum = np.cumsum(step)
    first_row = np.cumsum(s_pages) - s_pages
    base = np.repeat(csum[first_row] - step[first_row], s_pages)
    pv_ts = np.repeat(s_start, s_pages) + (csum - base) - step  # first page at session start
    section = _pick_by_rowweights(
        rng, _SECTION_W_LOW, _SECTION_W_HIGH, np.repeat(s_interest, s_pages)
    )
    # Popular pages get most views: an index skewed towards the start of the section.
    within = (rng.random(len(pv_person)) ** 2.2 * _SECTION_SIZE[section]).astype(np.int64)
    add(pv_person, _K["page_view"], pv_ts, _SECTION_START[section] + within)
    del s_person, s_start, step, csum, base, section, within, s_interest

    # Marketing e-mail: each campaign goes out once, to the subscribed part of a segment.
    rng = streams[1]
    n_c = min(len(CAMPAIGNS), max(1, round(days / tuning.campaign_every_days)))
    send_at = t0 + (np.arange(n_c) + 0.2 + 0.6 * rng.random(n_c)) * (span / n_c)
    # Campaigns go out on a Tuesday to Thursday at 15:00 UTC, never in the last day.
    send_day = np.floor(send_at / DAY)
    weekday = (send_day + 3) % 7
    send_day += np.where((weekday >= 1) & (weekday <= 3), 0, (8 - weekday) % 7)
    send_at = send_day * DAY + 15 * 3600.0
    send_at = np.where(send_at > now - DAY, send_at - 7 * DAY, send_at)
    subscribed = (rng.random(n) < 0.85) & ~pa.competitor
    in_segment = rng.random((n, n_c)) < 0.7
    sent = in_segment & subscribed[:, None] & (pa.created[:, None] <= send_at[None, :])
    sent &= (send_at >= t0)[None, :]  # short windows: a campaign moved before the start
    p_send = np.where(send_at[None, :] < conv[:, None], p[:, None], p_after[:, None])
    unsub_p = 0.002 + 0.02 * (1.0 - p_send) ** 2
    unsub_hit = sent & (rng.random((n, n_c)) < unsub_p)
    unsubscribed: npt.NDArray[np.bool_] = np.asarray(unsub_hit.any(axis=1), dtype=np.bool_)
    unsub_col = np.where(unsubscribed, unsub_hit.argmax(axis=1), n_c)
    sent &= np.arange(n_c)[None, :] <= unsub_col[:, None]
    del in_segment, unsub_hit, p_send
    e_person, e_camp = np.nonzero(sent)
    e_person = e_person.astype(np.int64)
    e_camp = e_camp.astype(np.int64)
    del sent
    e_send = send_at[e_camp] + rng.random(len(e_person)) * 900.0  # batch goes out over 15 min
    add(e_person, _K["email_send"], e_send, e_camp)
    ep = p_at(e_person, e_send)
    # In the buying cycle people open and click what lands in their inbox.
    in_ramp = (e_send >= cycle_end[e_person] - r_len) & (e_send < cycle_end[e_person])
    ep = np.where(in_ramp, np.maximum(ep, tuning.ramp_interest), ep)
    is_unsub_mail = unsubscribed[e_person] & (e_camp == unsub_col[e_person])
    open_p = np.minimum(0.95, (0.12 + 0.6 * ep) * np.sqrt(act[e_person]))
    opened = (rng.random(len(e_person)) < open_p) | is_unsub_mail
    o_idx = np.flatnonzero(opened)
    o_ts = e_send[o_idx] + np.minimum(rng.lognormal(np.log(3 * 3600.0), 1.2, len(o_idx)), 6 * DAY)
    add(e_person[o_idx], _K["email_open"], o_ts, e_camp[o_idx])
    o_p = ep[o_idx]
    o_unsub = is_unsub_mail[o_idx]
    clicked = (rng.random(len(o_idx)) < 0.06 + 0.45 * o_p) & ~o_unsub
    c_ts = o_ts[clicked] + rng.exponential(40.0, int(clicked.sum())) + 2.0
    add(e_person[o_idx[clicked]], _K["email_click"], c_ts, e_camp[o_idx[clicked]])
    replied = (rng.random(len(o_idx)) < 0.004 + 0.05 * o_p) & ~o_unsub
    r_ts2 = o_ts[replied] + rng.exponential(4 * 3600.0, int(replied.sum())) + 60.0
    add(e_person[o_idx[replied]], _K["email_reply"], r_ts2, e_camp[o_idx[replied]])
    u_rows = o_idx[o_unsub]
    unsub_ts = np.full(n, np.inf)
    u_ts = o_ts[o_unsub] + 5.0 + rng.exponential(60.0, len(u_rows))
    unsub_ts[e_person[u_rows]] = u_ts
    add(e_person[u_rows], _K["unsubscribe"], u_ts, -1)
    del e_person, e_camp, e_send, ep, is_unsub_mail, opened, o_idx, o_ts, in_ramp

    # Forms (webinar registrations come with the webinars below).
    rng = streams[2]
    f_person, f_ts = regime_events(tuning.forms)
    f_kind = _pick_by_rowweights(rng, _FORM_W_LOW, _FORM_W_HIGH, p_at(f_person, f_ts))
    add(f_person, _K["form_submit"], f_ts, f_kind)
    rf_person, rf_ts = ramp_events(tuning.ramp_forms)
    rf_kind = _pick_by_rowweights(
        rng, _FORM_W_LOW, _FORM_W_HIGH, np.full(len(rf_person), tuning.ramp_interest)
    )
    add(rf_person, _K["form_submit"], rf_ts, rf_kind)

    # Webinars: register a few days before, some attend.
    rng = streams[3]
    n_w = max(len(WEBINARS), round(days / tuning.webinar_every_days))
    w_at = t0 + (np.arange(n_w) + 0.3 + 0.4 * rng.random(n_w)) * (span / n_w)
    reg_ts = w_at[None, :] - (1.0 + 13.0 * rng.random((n, n_w))) * DAY
    p_reg = np.where(reg_ts < conv[:, None], p[:, None], p_after[:, None])
    registered = (rng.random((n, n_w)) < 0.01 + 0.18 * p_reg) & (reg_ts >= start[:, None])
    wr_person, wr_web = np.nonzero(registered)
    wr_person = wr_person.astype(np.int64)
    wr_ts = reg_ts[wr_person, wr_web]
    add(wr_person, _K["form_submit"], wr_ts, _F["webinar-registration"])
    attended = rng.random(len(wr_person)) < 0.35 + 0.45 * p_at(wr_person, wr_ts)
    a_ts = w_at[wr_web[attended]] + rng.random(int(attended.sum())) * 600.0
    add(
        wr_person[attended],
        _K["webinar_attended"],
        a_ts,
        wr_web[attended].astype(np.int64) % len(WEBINARS),
    )
    del reg_ts, registered, p_reg

    # Meetings and calls. Reps call the people they own; unowned people get few calls.
    rng = streams[4]
    m_person, m_ts = regime_events(tuning.meetings)
    rm_person, rm_ts = ramp_events(tuning.ramp_meetings)
    m_person = np.concatenate([m_person, rm_person])
    m_ts = office(m_person, np.concatenate([m_ts, rm_ts]))
    add(m_person, _K["meeting_booked"], m_ts, -1)
    cancelled = rng.random(len(m_person)) < 0.3 - 0.15 * p_at(m_person, m_ts)
    mc_ts = m_ts[cancelled] + 3600.0 + rng.random(int(cancelled.sum())) * 3 * DAY
    # A meeting booked before the deal is cancelled before it too, if at all.
    mc_person = m_person[cancelled]
    before = m_ts[cancelled] < conv[mc_person]
    mc_ts = np.where(before, np.minimum(mc_ts, conv[mc_person] - 60.0), mc_ts)
    mc_ts = np.maximum(mc_ts, m_ts[cancelled])
    add(mc_person, _K["meeting_cancelled"], mc_ts, -1)
    rng = streams[5]
    owner_kind = np.array([o.kind == "person" for o in owners] + [False])  # [-1] -> False
    by_rep = owner_kind[pa.owner]
    c_person, c_ts = regime_events(tuning.calls)
    keep_call = rng.random(len(c_person)) < np.where(by_rep[c_person], 1.0, 0.25)
    c_person, c_ts = c_person[keep_call], c_ts[keep_call]
    rc_person, rc_ts = ramp_events(tuning.ramp_calls)
    c_person = np.concatenate([c_person, rc_person])
    add(c_person, _K["call"], office(c_person, np.concatenate([c_ts, rc_ts])), -1)

    person = np.concatenate(persons) if persons else np.zeros(0, dtype=np.int64)
    kind = np.concatenate(kinds) if kinds else np.zeros(0, dtype=np.uint8)
    ts = np.concatenate(tss) if tss else np.zeros(0, dtype=np.float64)
    detail = np.concatenate(details) if details else np.zeros(0, dtype=np.int64)
    for parts in (persons, kinds, tss, details):
        parts.clear()  # free the pieces before the sort needs its memory
    ts = np.round(ts * 1000.0) / 1000.0
    ts = np.maximum(ts, t0_ms)
    # Events that would fall after `now` have not happened yet; no e-mail engagement
    # after an unsubscribe.
    keep = ts <= now_ms
    keep &= ~(np.isin(kind, _EMAIL_KINDS) & (ts > unsub_ts[person]))
    acts = Activities(
        person[keep].astype(np.int32),
        kind[keep],
        ts[keep],
        detail[keep].astype(np.int32),
        n,
    )

    def first_of(*names: str) -> _F64:
        rows = np.flatnonzero(np.isin(acts.kind, [_K[k] for k in names]))
        out = np.full(n, np.inf)
        np.minimum.at(out, acts.person[rows], acts.ts[rows])
        return out

    def count_of(name: str) -> _I64:
        out: _I64 = np.bincount(acts.person[acts.kind == _K[name]], minlength=n).astype(np.int64)
        return out

    stats = _ActivityStats(
        calls=count_of("call"),
        meetings=count_of("meeting_booked"),
        forms=count_of("form_submit"),
        unsubscribed=unsubscribed,
        first_form=first_of("form_submit"),
        first_contact=first_of("call", "meeting_booked"),
    )
    return acts, stats


def _deal_records(
    rng: _Rng,
    pa: _PeopleArrays,
    plan: _DealPlan,
    companies: list[CompanySeed],
    owners: list[OwnerSeed],
) -> list[DealSeed]:
    n = pa.n
    reps = np.array([o.idx for o in owners if o.kind == "person" and o.active], dtype=np.int64)
    person_rep = np.array([o.kind == "person" and o.active for o in owners] + [False])
    by_hand_u = rng.random(n)
    fallback = rng.choice(reps, size=n)
    # Price follows the plan and, mildly, the customer's size.
    product = rng.choice(len(_DEAL_PRODUCTS), size=n, p=_weights([d[1] for d in _DEAL_PRODUCTS]))
    multiplier = np.array([d[2] for d in _DEAL_PRODUCTS])[product]
    sizes = np.array([c.size for c in companies], dtype=np.float64)
    base = np.exp(rng.normal(np.log(9000.0), 0.4, n))
    base *= (np.maximum(sizes[pa.company], 5) / 50.0) ** 0.25
    amount = np.maximum(np.round(base * multiplier, -2), 500.0)

    def owner_of(i: int) -> int:
        # Deals belong to active reps: the queue and the rep who left do not sell.
        o = int(pa.owner[i])
        return o if o >= 0 and person_rep[o] else int(fallback[i])

    deals: list[DealSeed] = []
    # In the order they were created, as a CRM lists them.
    rows = np.flatnonzero(plan.has_deal)
    for row in rows[np.argsort(plan.convert_at[rows], kind="stable")]:
        i = int(row)
        company = companies[int(pa.company[i])].name
        closed = bool(plan.closed[i])
        deals.append(
            DealSeed(
                idx=len(deals),
                person_idx=i,
                owner_idx=owner_of(i),
                name=f"{company} - {_DEAL_PRODUCTS[int(product[i])][0]}",
                amount=float(amount[i]),
                created_at=float(plan.convert_at[i]),
                stage=("won" if plan.won[i] else "lost") if closed else "open",
                closed_at=float(plan.close_at[i]) if closed else None,
                created_by_rep=bool(by_hand_u[i] < (0.7 if closed else 0.5)),
            )
        )
    return deals


def _finish_people(
    rng: _Rng, pa: _PeopleArrays, stats: _ActivityStats, plan: _DealPlan
) -> list[PersonSeed]:
    n = pa.n
    p = pa.propensity
    # Stages before a deal reflect what marketing and sales saw, so they follow
    # propensity noisily; the deal itself moves the stage on the day it is created.
    noisy = p * np.exp(rng.normal(0.0, 0.5, n))
    kind_u = rng.random(n)
    status_u = rng.random(n)
    people: list[PersonSeed] = []

    def is_student(title: str | None) -> bool:
        return title is not None and "student" in title.lower()

    for i in range(n):
        created = float(pa.created[i])
        dates: dict[str, float] = {}
        if pa.competitor[i] or (is_student(pa.title[i]) and status_u[i] < 0.5):
            pre = "other"
        elif noisy[i] > 0.45 and (stats.meetings[i] > 0 or stats.calls[i] > 1):
            pre = "salesqualifiedlead"
        elif noisy[i] > 0.25 and stats.forms[i] > 0:
            pre = "marketingqualifiedlead"
        elif stats.forms[i] > 0 or noisy[i] > 0.1:
            pre = "lead"
        else:
            pre = "subscriber"
        # The day each stage was reached, as HubSpot stamps it; stages only move forward.
        dates["subscriber" if pre == "subscriber" else "lead"] = created
        if pre == "other":
            dates = {"other": created}
        if pre == "salesqualifiedlead":
            sql = max(created, float(stats.first_contact[i]))
            dates["salesqualifiedlead"] = sql
            dates["marketingqualifiedlead"] = max(created, min(float(stats.first_form[i]), sql))
        elif pre == "marketingqualifiedlead":
            dates["marketingqualifiedlead"] = max(created, float(stats.first_form[i]))
        stage = pre
        converted_at: float | None = None
        if plan.has_deal[i]:
            converted_at = float(plan.convert_at[i])
            # A stage reached "after" the deal was reached before it, as far as the CRM
            # knows: the deal moves the contact on, never back.
            dates = {k: min(v, converted_at) for k, v in dates.items() if k != "other"}
            dates.setdefault("lead", min(created, converted_at))
            stage = "opportunity"
            dates["opportunity"] = converted_at
            if plan.won[i]:
                stage = "customer"
                dates["customer"] = float(plan.close_at[i])

        sf_kind: Literal["lead", "converted_lead", "contact"]
        if plan.has_deal[i]:
            sf_kind = "converted_lead" if kind_u[i] < 0.6 else "contact"
        elif kind_u[i] < 0.12:
            sf_kind = "contact"
        else:
            sf_kind = "lead"
        if sf_kind != "lead":
            status = "Closed - Converted"
        elif pre == "other" or (stats.unsubscribed[i] and status_u[i] < 0.7):
            status = "Closed - Not Converted"
        elif stats.calls[i] > 0 or stats.meetings[i] > 0:
            status = "Working - Contacted"
        else:
            status = "Open - Not Contacted"

        owner = int(pa.owner[i])
        dup = int(pa.duplicate_of[i])
        people.append(
            PersonSeed(
                idx=i,
                company_idx=int(pa.company[i]),
                first_name=_FIRST_NAMES[int(pa.first[i])],
                last_name=_LAST_NAMES[int(pa.last[i])],
                email=pa.email[i],
                job_title=pa.title[i],
                phone=pa.phone[i],
                lifecycle_stage=stage,
                lead_status=status,
                owner_idx=owner if owner >= 0 else None,
                created_at=created,
                sf_kind=sf_kind,
                propensity=float(p[i]),
                duplicate_of=dup if dup >= 0 else None,
                converted_at=converted_at,
                stage_dates=dates,
            )
        )
    return people
