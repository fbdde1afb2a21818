"""The seeded sandbox world: reproducible, well-formed, realistic, and carrying a signal.

Both fake CRMs build their stores from this world, and scoring demos and benchmarks
only mean something if engagement predicts outcomes; these tests pin that down.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import numpy.typing as npt
import pytest

from connectors.sandbox.world import (
    ACTIVITY_TYPES,
    CAMPAIGNS,
    DEFAULT_DAYS,
    FORMS,
    PAGE_SECTIONS,
    PAGES,
    SITE,
    WEBINARS,
    Activities,
    Tuning,
    World,
    _make_companies,
    generate_world,
)

K = {name: i for i, name in enumerate(ACTIVITY_TYPES)}
EMAIL_KINDS = [K["email_send"], K["email_open"], K["email_click"], K["email_reply"]]
FREE_MAIL = {
    "gmail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "aol.com",
    "gmx.de",
    "web.de",
    "proton.me",
}
N = 3000


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(N, seed=11)


def auc(pos: npt.ArrayLike, neg: npt.ArrayLike) -> float:
    """ROC AUC as the Mann-Whitney U statistic, with average ranks for ties."""
    pos_a = np.asarray(pos, dtype=np.float64)
    neg_a = np.asarray(neg, dtype=np.float64)
    values = np.concatenate([pos_a, neg_a])
    order = np.argsort(values, kind="stable")
    _, inverse, counts = np.unique(values[order], return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts)
    avg_rank = last_rank - (counts - 1) / 2.0  # 1-based average rank of each tie group
    ranks = np.empty(len(values))
    ranks[order] = avg_rank[inverse]
    r_pos = ranks[: len(pos_a)].sum()
    return float((r_pos - len(pos_a) * (len(pos_a) + 1) / 2.0) / (len(pos_a) * len(neg_a)))


# ---------------------------------------------------------------------------- helpers


def test_auc_helper_matches_known_cases() -> None:
    assert auc([3, 4], [1, 2]) == 1.0
    assert auc([1, 2], [3, 4]) == 0.0
    assert auc([1, 1], [1, 1]) == 0.5
    # 2 of 4 pairs won, 1 tied (counts half): (2 + 0.5) / 4
    assert auc([2, 3], [1, 3]) == pytest.approx(0.625)


# ------------------------------------------------------------------------ determinism


def test_same_arguments_give_identical_world() -> None:
    a = generate_world(800, seed=5)
    b = generate_world(800, seed=5)
    assert a.owners == b.owners
    assert a.companies == b.companies
    assert a.people == b.people
    assert a.deals == b.deals
    for col in ("person", "kind", "ts", "detail"):
        assert np.array_equal(getattr(a.activities, col), getattr(b.activities, col))


def test_other_seed_gives_other_world() -> None:
    a = generate_world(800, seed=5)
    b = generate_world(800, seed=6)
    assert [p.email for p in a.people] != [p.email for p in b.people]
    assert not np.array_equal(a.activities.ts[:100], b.activities.ts[:100])


def test_determinism_holds_across_processes() -> None:
    """Set iteration and string hashing vary per process; the world must not."""
    code = textwrap.dedent(
        """
        import hashlib
        from connectors.sandbox.world import generate_world
        w = generate_world(300, seed=2)
        h = hashlib.sha256()
        h.update(repr((w.owners, w.companies, w.people, w.deals)).encode())
        for col in (w.activities.person, w.activities.kind, w.activities.ts, w.activities.detail):
            h.update(col.tobytes())
        print(h.hexdigest())
        """
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
        ).stdout
        for hash_seed in (1, 2)
    }
    assert len(digests) == 1


def test_now_accepts_aware_datetime_or_epoch() -> None:
    at = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    a = generate_world(200, now=at)
    b = generate_world(200, now=at.timestamp())
    assert a.now == b.now == at.timestamp()
    assert a.people == b.people
    assert np.array_equal(a.activities.ts, b.activities.ts)
    assert generate_world(10).now == datetime(2026, 6, 30, 12, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"now": datetime(2026, 1, 1)}, "now: datetime must be timezone-aware"),
        ({"n_contacts": -1}, "n_contacts"),
        ({"days": 0}, "days"),
        ({"seed": -3}, "seed"),
        ({"now": float("nan")}, "now"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        generate_world(**kwargs)  # type: ignore[arg-type]


def test_empty_world_is_valid() -> None:
    w = generate_world(0)
    assert w.people == [] and w.deals == [] and len(w.activities) == 0


# ------------------------------------------------------------------ shape and ordering


def test_vocabularies() -> None:
    assert 150 <= len(PAGES) <= 250
    assert len(set(PAGES)) == len(PAGES)
    assert all(p.startswith(SITE + "/") for p in PAGES)
    assert len(PAGE_SECTIONS) == len(PAGES)
    assert set(PAGE_SECTIONS) == {"pricing", "product", "blog", "careers", "about", "docs"}
    assert FORMS == (
        "newsletter",
        "ebook",
        "contact-us",
        "demo-request",
        "webinar-registration",
        "trial-signup",
    )
    assert len(set(CAMPAIGNS)) == len(CAMPAIGNS) >= 12
    assert len(set(WEBINARS)) == len(WEBINARS) >= 4


def assert_well_formed(world: World) -> None:
    """Shape and ordering invariants every consumer of the world relies on."""
    acts = world.activities
    n = len(world.people)
    assert acts.person.dtype == np.int32
    assert acts.kind.dtype == np.uint8
    assert acts.ts.dtype == np.float64
    assert acts.detail.dtype == np.int32
    assert len(acts) == len(acts.person) == len(acts.kind) == len(acts.ts) == len(acts.detail)
    # sorted by (person, ts)
    same = acts.person[1:] == acts.person[:-1]
    assert np.all(acts.person[1:] >= acts.person[:-1])
    assert np.all(acts.ts[1:][same] >= acts.ts[:-1][same])
    assert acts.person.min() >= 0 and acts.person.max() < n
    assert acts.kind.max() < len(ACTIVITY_TYPES)
    # timestamps: millisecond precision, inside the window, never in the future
    assert np.all(acts.ts <= world.now)
    assert np.all(acts.ts >= world.now - world.days * 86_400)
    ms = acts.ts * 1000.0
    assert np.max(np.abs(ms - np.round(ms))) < 1e-3
    created = np.array([p.created_at for p in world.people])
    assert np.all(acts.ts >= created[acts.person])
    assert all(p.created_at <= world.now for p in world.people)
    for p in world.people:
        if p.duplicate_of is not None:
            assert world.people[p.duplicate_of].created_at <= p.created_at
    for d in world.deals:
        assert d.created_at <= world.now
        assert d.closed_at is None or d.created_at <= d.closed_at <= world.now


def test_activity_columns_are_compact_sorted_and_in_range(world: World) -> None:
    assert_well_formed(world)
    assert len(world.activities) > 20 * N  # 180 days of engagement, not a token amount


@pytest.mark.parametrize(
    ("now", "days"),
    [(1_780_000_000.1237, 180), (datetime(2026, 2, 3, 4, 5, 6, 789_000, tzinfo=UTC), 7), (None, 1)],
)
def test_odd_clocks_and_short_windows_stay_well_formed(
    now: float | datetime | None, days: int
) -> None:
    w = generate_world(400, seed=3, now=now, days=days)
    assert len(w.activities) > 0
    assert_well_formed(w)


def test_detail_indexes_the_right_vocabulary(world: World) -> None:
    acts = world.activities
    sizes = {
        "page_view": len(PAGES),
        "form_submit": len(FORMS),
        "webinar_attended": len(WEBINARS),
        **{k: len(CAMPAIGNS) for k in ("email_send", "email_open", "email_click", "email_reply")},
    }
    for name, k in K.items():
        d = acts.detail[acts.kind == k]
        assert len(d) > 0, f"no {name} events"
        if name in sizes:
            assert d.min() >= 0 and d.max() < sizes[name], name
        else:
            assert np.all(d == -1), name


def test_for_person_returns_exactly_that_persons_rows(world: World) -> None:
    acts = world.activities
    total = 0
    for i in range(N):
        rows = acts.for_person(i)
        assert np.all(acts.person[rows] == i)
        total += rows.stop - rows.start
    assert total == len(acts)
    with pytest.raises(IndexError):
        acts.for_person(N)
    with pytest.raises(IndexError):
        acts.for_person(-1)


def test_activities_sorts_unsorted_input() -> None:
    acts = Activities(
        person=np.array([1, 0, 1, 0], dtype=np.int32),
        kind=np.array([0, 1, 2, 3], dtype=np.uint8),
        ts=np.array([5.0, 9.0, 1.0, 2.0]),
        detail=np.array([-1, -1, -1, -1], dtype=np.int32),
        n_people=3,
    )
    assert acts.person.tolist() == [0, 0, 1, 1]
    assert acts.ts.tolist() == [2.0, 9.0, 1.0, 5.0]
    assert acts.kind.tolist() == [3, 1, 2, 0]
    assert acts.for_person(2) == slice(4, 4)


def _first_ts(acts: Activities, kind: int) -> dict[tuple[int, int], float]:
    first: dict[tuple[int, int], float] = {}
    m = acts.kind == kind
    for person, detail, ts in zip(acts.person[m], acts.detail[m], acts.ts[m], strict=True):
        key = (int(person), int(detail))
        first[key] = min(first.get(key, np.inf), float(ts))
    return first


def test_opens_follow_sends_and_clicks_follow_opens(world: World) -> None:
    acts = world.activities
    sends = _first_ts(acts, K["email_send"])
    opens = _first_ts(acts, K["email_open"])
    assert opens
    for key, ts in opens.items():
        assert key in sends and sends[key] <= ts, key
    for kind in ("email_click", "email_reply"):
        for key, ts in _first_ts(acts, K[kind]).items():
            assert key in opens and opens[key] <= ts, (kind, key)
    # one send per person and campaign
    m = acts.kind == K["email_send"]
    pairs = acts.person[m].astype(np.int64) * len(CAMPAIGNS) + acts.detail[m]
    assert len(np.unique(pairs)) == len(pairs)


def test_no_email_engagement_after_unsubscribe(world: World) -> None:
    acts = world.activities
    unsub = acts.kind == K["unsubscribe"]
    people = acts.person[unsub]
    assert len(people) > 0
    assert len(np.unique(people)) == len(people)  # once is enough
    unsub_at = dict(zip(people.tolist(), acts.ts[unsub].tolist(), strict=True))
    email = np.isin(acts.kind, EMAIL_KINDS)
    for person, ts in zip(acts.person[email].tolist(), acts.ts[email].tolist(), strict=True):
        assert ts <= unsub_at.get(person, np.inf)
    # the unsubscribe came from a mail the person received
    sent_to = set(acts.person[acts.kind == K["email_send"]].tolist())
    assert set(unsub_at) <= sent_to


def test_cancellations_follow_bookings(world: World) -> None:
    acts = world.activities
    for i in range(N):
        kinds = acts.kind[acts.for_person(i)]
        booked = np.cumsum(kinds == K["meeting_booked"])
        cancelled = np.cumsum(kinds == K["meeting_cancelled"])
        assert np.all(cancelled <= booked), i


def _weekday_and_hour(
    ts: npt.NDArray[np.float64], offset_h: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    local = ts + offset_h * 3600.0
    day = np.floor(local / 86_400.0)
    return ((day + 3) % 7).astype(np.int64), (local - day * 86_400.0) / 3600.0


def test_sales_work_happens_in_office_hours_and_campaigns_midweek(world: World) -> None:
    acts = world.activities
    tz = {
        "United States": -6.0, "United Kingdom": 0.0, "Germany": 1.0, "India": 5.5,
        "Canada": -5.0, "France": 1.0, "Netherlands": 1.0, "Australia": 10.0, "Spain": 1.0,
        "Brazil": -3.0, "Sweden": 1.0, "Ireland": 0.0, "Switzerland": 1.0, "Singapore": 8.0,
        "Japan": 9.0,
    }  # fmt: skip
    person_offset = np.array([tz[world.companies[p.company_idx].country] for p in world.people])
    m = np.isin(acts.kind, [K["call"], K["meeting_booked"]])
    weekday, hour = _weekday_and_hour(acts.ts[m], person_offset[acts.person[m]])
    in_hours = (weekday < 5) & (hour >= 9) & (hour <= 17)
    assert in_hours.mean() > 0.95
    sends = acts.ts[acts.kind == K["email_send"]]
    weekday, hour = _weekday_and_hour(sends, np.zeros(len(sends)))
    assert set(weekday.tolist()) <= {1, 2, 3}
    assert np.all((hour >= 15) & (hour <= 15.25))


def test_deals_are_consistent(world: World) -> None:
    owners = {o.idx: o for o in world.owners}
    stages = collections.Counter(d.stage for d in world.deals)
    assert stages["won"] > 0 and stages["lost"] > 0 and stages["open"] > 0
    for d in world.deals:
        person = world.people[d.person_idx]
        assert owners[d.owner_idx].kind == "person" and owners[d.owner_idx].active
        assert d.amount > 0
        assert person.created_at <= d.created_at <= world.now
        assert person.duplicate_of is None
        if d.stage == "open":
            assert d.closed_at is None
        else:
            assert d.closed_at is not None
            assert d.created_at <= d.closed_at <= world.now
        if d.stage == "won":
            assert person.lifecycle_stage == "customer"
        assert person.sf_kind != "lead"  # opportunities hang off contacts
    by_plan = collections.defaultdict(list)
    for d in world.deals:
        by_plan[d.name.rsplit(" - ", 1)[1]].append(d.amount)
        assert d.amount >= 500 and d.amount % 100 == 0
    assert np.median(by_plan["Enterprise plan"]) > 2 * np.median(by_plan["Starter plan"])
    open_by_rep = [d.created_by_rep for d in world.deals if d.stage == "open"]
    assert any(open_by_rep) and not all(open_by_rep)
    assert [d.idx for d in world.deals] == list(range(len(world.deals)))


# ---------------------------------------------------------------------------- the mix


def test_companies_look_real(world: World) -> None:
    comps = world.companies
    assert [c.idx for c in comps] == list(range(len(comps)))
    assert len({c.domain for c in comps}) == len(comps)
    assert len({c.name for c in comps}) == len(comps)
    sizes = np.array([c.size for c in comps if not c.is_competitor])
    assert sizes.min() >= 1
    # a long tail: most firms small, a few very large
    assert np.mean(sizes) > 1.5 * np.median(sizes)
    assert sizes.max() > 20 * np.median(sizes)
    assert len({c.industry for c in comps}) >= 10
    countries = collections.Counter(c.country for c in comps)
    assert len(countries) >= 10
    assert countries.most_common(1)[0][0] == "United States"
    assert 1 <= sum(c.is_competitor for c in comps) <= 10


def test_company_names_stay_unique_beyond_the_name_combinations() -> None:
    comps = _make_companies(np.random.default_rng(0), 200_000)
    assert len(comps) > 30_000
    assert len({c.domain for c in comps}) == len(comps)
    assert len({c.name for c in comps}) == len(comps)


def test_owners_reps_queue_and_one_inactive(world: World) -> None:
    kinds = collections.Counter(o.kind for o in world.owners)
    assert kinds["queue"] == 1 and kinds["person"] >= 5
    assert sum(not o.active for o in world.owners) == 1
    assert len({o.email for o in world.owners}) == len(world.owners)
    owned = collections.Counter(p.owner_idx for p in world.people)
    assert 0.10 <= owned[None] / N <= 0.20
    queue = next(o.idx for o in world.owners if o.kind == "queue")
    inactive = next(o.idx for o in world.owners if not o.active)
    assert owned[queue] > 0 and owned[inactive] > 0


def test_people_mix(world: World) -> None:
    people = world.people
    assert [p.idx for p in people] == list(range(N))
    emails = [p.email for p in people]
    assert len({e.lower() for e in emails}) == N
    domains = [e.split("@", 1)[1] for e in emails]
    free = sum(d in FREE_MAIL for d in domains) / N
    assert 0.10 <= free <= 0.30
    comp_domain = {c.idx: c.domain for c in world.companies}
    competitor = {c.idx for c in world.companies if c.is_competitor}
    at_competitor = [p for p in people if p.company_idx in competitor]
    assert 0.003 <= len(at_competitor) / N <= 0.05
    assert all(p.email.endswith("@" + comp_domain[p.company_idx]) for p in at_competitor)
    for p, d in zip(people, domains, strict=True):
        assert d in FREE_MAIL or d == comp_domain[p.company_idx]

    titles = collections.Counter(p.job_title for p in people)
    for t in ("VP of Sales", "CMO", "CEO", "Sales Lead", "Senior Manager", "Consultant"):
        assert titles[t] > 0, t
    for t in ("Marketing Associate", "Student", "Engineer", "Director"):
        assert titles[t] > 0, t
    assert any(t and t.startswith("Head of ") for t in titles)
    assert 0.03 <= titles[None] / N <= 0.15
    assert len(titles) >= 40  # spelling variants, as in real CRMs
    assert max(titles.values()) / N < 0.1

    stages = collections.Counter(p.lifecycle_stage for p in people)
    assert set(stages) == {
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "other",
    }
    kinds = collections.Counter(p.sf_kind for p in people)
    assert set(kinds) == {"lead", "converted_lead", "contact"}
    assert kinds["lead"] > N / 2
    statuses = collections.Counter(p.lead_status for p in people)
    assert set(statuses) == {
        "Open - Not Contacted",
        "Working - Contacted",
        "Closed - Converted",
        "Closed - Not Converted",
    }
    for p in people:
        if p.sf_kind != "lead":
            assert p.lead_status == "Closed - Converted"
        else:
            assert p.lead_status != "Closed - Converted"
        assert 0.0 < p.propensity < 1.0
        assert p.created_at <= world.now
    phones = sum(p.phone is not None for p in people) / N
    assert 0.4 <= phones <= 0.8


def test_duplicates_are_second_records_of_earlier_people(world: World) -> None:
    dups = [p for p in world.people if p.duplicate_of is not None]
    assert 0.005 <= len(dups) / N <= 0.03
    for d in dups:
        assert d.duplicate_of is not None
        orig = world.people[d.duplicate_of]
        assert orig.idx < d.idx and orig.duplicate_of is None
        assert (orig.first_name, orig.last_name, orig.company_idx) == (
            d.first_name,
            d.last_name,
            d.company_idx,
        )
        assert orig.email != d.email
        assert orig.created_at <= d.created_at


def test_engagement_mix(world: World) -> None:
    acts = world.activities
    counts = collections.Counter(ACTIVITY_TYPES[k] for k in acts.kind.tolist())
    assert counts["page_view"] > counts["form_submit"] > counts["meeting_booked"]
    assert counts["email_send"] > counts["email_open"] > counts["email_click"]
    assert counts["email_click"] > counts["email_reply"]
    assert counts["meeting_booked"] > counts["meeting_cancelled"]
    sections = collections.Counter(PAGE_SECTIONS[d] for d in acts.detail[acts.kind == 0])
    assert set(sections) == {"pricing", "product", "blog", "careers", "about", "docs"}
    assert len(np.unique(acts.detail[acts.kind == 0])) > 150  # the whole site gets visits
    forms = set(acts.detail[acts.kind == K["form_submit"]].tolist())
    assert forms == set(range(len(FORMS)))
    per_person = acts.counts()
    assert per_person.min() >= 0 and np.median(per_person) > 5
    assert np.percentile(per_person, 99) > 4 * np.median(per_person)  # a few very active


def test_propensity_drives_pricing_interest(world: World) -> None:
    """Buyers look at pricing; a model reading page sections should find that."""
    acts = world.activities
    prop = np.array([p.propensity for p in world.people])
    pv = acts.kind == K["page_view"]
    pricing = np.array([s == "pricing" for s in PAGE_SECTIONS])[acts.detail[pv]]
    share = np.bincount(acts.person[pv][pricing], minlength=N) / np.maximum(
        np.bincount(acts.person[pv], minlength=N), 1
    )
    high = prop > np.quantile(prop, 0.9)
    low = prop < np.quantile(prop, 0.5)
    assert share[high].mean() > 2 * share[low].mean()


# ------------------------------------------------------------------------- the signal


WINDOW = 60 * 86_400.0


@pytest.fixture(scope="module")
def long_world() -> World:
    """The sandboxes' default history, big enough that the AUCs below sit within
    +-0.03 of their true value (their standard error is about 0.01)."""
    return generate_world(6000, seed=11, days=DEFAULT_DAYS)


def _engagement(world: World, person: int, lo: float, hi: float) -> int:
    """What the person did in [lo, hi): every event but marketing's own sends."""
    acts = world.activities
    rows = acts.for_person(person)
    ts, kind = acts.ts[rows], acts.kind[rows]
    return int(((ts >= lo) & (ts < hi) & (kind != K["email_send"])).sum())


def _pre_and_post_counts(world: World) -> tuple[list[int], list[int], list[int], list[int]]:
    """Engagement in the 60 days before and after each deal's creation (converters),
    and before and after a date drawn from the deals' creation dates (everyone who
    never converts), for deals whose 60 days after lie within the history."""
    created_deal = {d.person_idx: d.created_at for d in world.deals}
    dates = np.array([t for t in created_deal.values() if t + WINDOW <= world.now])
    rng = np.random.default_rng(3)
    pos_pre, pos_post, neg_pre, neg_post = [], [], [], []
    for p in world.people:
        if p.duplicate_of is not None:
            continue
        if p.idx in created_deal:
            t = created_deal[p.idx]
            if t + WINDOW > world.now:
                continue
            pos_pre.append(_engagement(world, p.idx, t - WINDOW, t))
            pos_post.append(_engagement(world, p.idx, t, t + WINDOW))
        elif np.isinf(world.convert_at[p.idx]):
            t = float(rng.choice(dates))
            if t < p.created_at + 14 * 86_400.0:
                continue
            neg_pre.append(_engagement(world, p.idx, t - WINDOW, t))
            neg_post.append(_engagement(world, p.idx, t, t + WINDOW))
    return pos_pre, pos_post, neg_pre, neg_post


def test_engagement_before_a_deal_predicts_it(long_world: World) -> None:
    pos_pre, _, neg_pre, _ = _pre_and_post_counts(long_world)
    assert len(pos_pre) >= 300 and len(neg_pre) >= 1000
    assert auc(pos_pre, neg_pre) >= 0.8


def test_engagement_after_a_deal_does_not_give_the_label_away(long_world: World) -> None:
    _, pos_post, _, neg_post = _pre_and_post_counts(long_world)
    assert len(pos_post) >= 300 and len(neg_post) >= 1000
    assert 0.45 <= auc(pos_post, neg_post) <= 0.55
    random_score = np.random.default_rng(1234).random(len(pos_post) + len(neg_post))
    assert 0.45 <= auc(random_score[: len(pos_post)], random_score[len(pos_post) :]) <= 0.55


def test_won_deals_come_from_more_eager_people(long_world: World) -> None:
    """Outcomes follow the hidden propensity, which engagement before the deal shows."""
    won = [long_world.people[d.person_idx].propensity for d in long_world.deals if d.stage == "won"]
    lost = [
        long_world.people[d.person_idx].propensity for d in long_world.deals if d.stage == "lost"
    ]
    assert len(won) >= 100 and len(lost) >= 100
    assert auc(won, lost) >= 0.7


def test_deals_spread_over_the_history_with_open_ones_recent(long_world: World) -> None:
    w = long_world
    created = np.array([d.created_at for d in w.deals])
    age_days = (w.now - created) / 86_400.0
    # created all along the history, not bunched at one end
    counts, _ = np.histogram(age_days, bins=4, range=(0, w.days))
    assert counts.min() >= 0.5 * counts.mean()
    open_age = age_days[[d.stage == "open" for d in w.deals]]
    closed_age = age_days[[d.stage != "open" for d in w.deals]]
    assert len(open_age) >= 20 and np.median(open_age) < 90 < np.median(closed_age)
    for d in w.deals:
        if d.closed_at is not None:
            assert 14 * 86_400.0 <= d.closed_at - d.created_at <= 115 * 86_400.0


def test_conversion_fields_change_on_the_conversion_date(long_world: World) -> None:
    """Lifecycle stage and Lead conversion move when the deal is created, and keep the
    date, so that a backtest can tell what a field said at any earlier time."""
    deal_of = {d.person_idx: d for d in long_world.deals}
    for p in long_world.people:
        d = deal_of.get(p.idx)
        dates = p.stage_dates
        assert dates and all(t <= long_world.now for t in dates.values())
        assert min(dates.values()) >= p.created_at - 1e-3
        if d is None:
            assert p.converted_at is None
            assert p.lifecycle_stage not in ("opportunity", "customer")
            assert p.sf_kind != "converted_lead"
            assert max(dates, key=lambda s: dates[s]) == p.lifecycle_stage or (
                # stages reached on the same day: the later one in the funnel counts
                dates[p.lifecycle_stage] == max(dates.values())
            )
            continue
        assert p.converted_at == d.created_at
        assert dates["opportunity"] == d.created_at
        assert all(t <= d.created_at for s, t in dates.items() if s not in ("customer",))
        if d.stage == "won":
            assert p.lifecycle_stage == "customer" and dates["customer"] == d.closed_at
        else:
            assert p.lifecycle_stage == "opportunity" and "customer" not in dates
            assert "customer" not in dates


def test_the_world_is_relative_to_its_clock() -> None:
    """The same seed a year on tells the same story a year on: same people, same deals
    and the same events, every date shifted. 52 weeks keep the weekdays, so campaign
    days and office hours line up exactly; 365 days move them by one weekday, which
    changes no count by more than a few events."""
    now = datetime(2026, 6, 30, 12, tzinfo=UTC)
    a = generate_world(800, seed=5, now=now, days=400)
    for shift, exact in ((timedelta(weeks=52), True), (timedelta(days=365), False)):
        b = generate_world(800, seed=5, now=now + shift, days=400)
        s = shift.total_seconds()
        assert b.now - a.now == s
        assert [(p.email, p.sf_kind) for p in a.people] == [(p.email, p.sf_kind) for p in b.people]
        stages_differ = sum(
            x.lifecycle_stage != y.lifecycle_stage for x, y in zip(a.people, b.people, strict=True)
        )
        assert stages_differ == 0 if exact else stages_differ <= 0.01 * len(a.people)
        assert [p.created_at + s for p in a.people] == pytest.approx(
            [p.created_at for p in b.people], abs=2e-3
        )
        assert [(d.person_idx, d.stage, d.amount) for d in a.deals] == [
            (d.person_idx, d.stage, d.amount) for d in b.deals
        ]
        assert [d.created_at + s for d in a.deals] == pytest.approx(
            [d.created_at for d in b.deals], abs=2e-3
        )
        kinds_a = np.bincount(a.activities.kind, minlength=len(ACTIVITY_TYPES))
        kinds_b = np.bincount(b.activities.kind, minlength=len(ACTIVITY_TYPES))
        if exact:
            assert np.array_equal(kinds_a, kinds_b)
            assert np.array_equal(a.activities.person, b.activities.person)
            assert np.allclose(a.activities.ts + s, b.activities.ts, atol=2e-3)
        else:
            assert np.abs(kinds_a - kinds_b).max() <= max(10, 0.01 * len(a.activities))
        # what the sandboxes simulate continues the same story
        sim_a = a.simulate(30, at=a.now + 86_400.0, seed=2)
        sim_b = b.simulate(30, at=b.now + 86_400.0, seed=2)
        assert [(e.person, e.kind, e.detail) for e in sim_a] == [
            (e.person, e.kind, e.detail) for e in sim_b
        ]


def test_default_history_covers_a_year_of_backtests_and_the_models_windows() -> None:
    """A year of weekly snapshots with a 90-day horizon, and before the first snapshot
    the longest window of the packaged starter model."""
    from importlib.resources import files

    from scoring.model import load_models

    text = files("scoring").joinpath("data/models/starter.yaml").read_text()
    models = load_models(text, "starter.yaml")
    longest = max(
        r.window_days or 0 for m in models.models for r in m.rules if r.kind == "behavior"
    )
    assert 365 + 90 + longest <= DEFAULT_DAYS


def test_tunable_numbers_live_in_one_place() -> None:
    """Every number of the story is a field of Tuning; another Tuning, another story."""
    quiet = generate_world(
        500, seed=4, tuning=Tuning(convert_per_day=0.0, convert_base_per_day=0.0)
    )
    assert quiet.deals == [] and np.isinf(quiet.convert_at).all()
    assert generate_world(500, seed=4).deals


def test_simulated_activity_returns_to_people_in_a_buying_cycle() -> None:
    """Over a simulated week, people in a buying cycle are active most days, and demo
    requests come from a few per cent of the people active, not one in ten."""
    w = generate_world(2000, seed=7, days=DEFAULT_DAYS)
    _, cycle = w.interest(w.now)
    in_cycle = set(np.flatnonzero(cycle > 0).tolist())
    assert len(in_cycle) >= 10
    days_active: collections.Counter[int] = collections.Counter()
    active: set[int] = set()
    demo = 0
    for day in range(7):
        events = w.simulate(200, at=w.now + day * 86_400.0, seed=day)
        people = {e.person for e in events}
        assert len(people) == 200
        assert all(w.now + (day - 1) * 86_400.0 < e.ts <= w.now + day * 86_400.0 for e in events)
        days_active.update(people)
        active |= people
        demo += sum(e.kind == "form_submit" and FORMS[e.detail] == "demo-request" for e in events)
    cycle_days = [days_active[i] for i in in_cycle]
    others = [days_active[i] for i in active - in_cycle]
    assert np.mean(cycle_days) >= 4 > 2 * np.mean(others)
    assert 0.01 <= demo / len(active) <= 0.06
    assert w.simulate(200, at=w.now, seed=1) == w.simulate(200, at=w.now, seed=1)


# ---------------------------------------------------------------------- size and speed


@pytest.mark.slow
def test_100k_contacts_are_fast_and_fit_in_memory() -> None:
    """Measured in a fresh process so that the peak RSS is the generator's own."""
    code = textwrap.dedent(
        """
        import resource, time
        from connectors.sandbox.world import generate_world
        t = time.perf_counter()
        w = generate_world(100_000)
        elapsed = time.perf_counter() - t
        # VmHWM is this process's own peak: ru_maxrss keeps the peak of the process
        # that forked it (a test worker, perhaps large) across exec.
        try:
            with open("/proc/self/status") as f:
                peak = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
        except OSError:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(elapsed, peak, len(w.activities))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    elapsed, max_rss_kib, n_events = float(out[0]), int(out[1]), int(out[2])
    assert n_events > 2_000_000
    assert elapsed < 30.0
    assert max_rss_kib * 1024 < 1024**3


def test_activities_are_read_only_and_refuse_bad_columns(world: World) -> None:
    """Sandboxes share one world; an in-place edit by one must fail, not leak."""
    for column in (world.activities.person, world.activities.ts):
        with pytest.raises(ValueError, match="read-only"):
            column[0] = column[1]
    with pytest.raises(ValueError, match="same length"):
        Activities(person=[0, 1], kind=[0], ts=[1.0, 2.0], detail=[-1, -1], n_people=2)
    with pytest.raises(ValueError, match="person index out of range"):
        Activities(person=[0, 5], kind=[0, 0], ts=[1.0, 2.0], detail=[-1, -1], n_people=2)
