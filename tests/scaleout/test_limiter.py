"""The shared API budget against the real Redis: every worker sees one count."""

from __future__ import annotations

import threading

from scheduler.scaleout.limiter import Budget, RedisCallLimiter


def make(redis_url: str, prefix: str, **budget: object) -> RedisCallLimiter:
    budget.setdefault("headroom", 1.0)
    return RedisCallLimiter(redis_url, {"hubspot": Budget(**budget)}, key_prefix=prefix)  # type: ignore[arg-type]


def test_the_window_allows_its_rate_then_says_how_long_to_wait(redis_url: str, unique: str) -> None:
    lim = make(redis_url, unique, window="5 per 10 seconds")
    assert [lim.reserve("hubspot:abc") for _ in range(5)] == [0.0] * 5
    wait = lim.reserve("hubspot:abc")
    assert 0 < wait <= 10
    # another portal has its own count
    assert lim.reserve("hubspot:other") == 0.0


def test_two_limiters_share_one_count(redis_url: str, unique: str) -> None:
    """Two workers (two limiter objects, two connection pools) on one bucket."""
    a = make(redis_url, unique, window="6 per 10 seconds")
    b = make(redis_url, unique, window="6 per 10 seconds")
    results = [lim.reserve("hubspot:p") for _ in range(3) for lim in (a, b)]
    assert results == [0.0] * 6
    assert a.reserve("hubspot:p") > 0 and b.reserve("hubspot:p") > 0


def test_many_threads_never_exceed_the_window(redis_url: str, unique: str) -> None:
    lim = make(redis_url, unique, window="50 per 10 seconds")
    granted: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = [lim.reserve("hubspot:x") for _ in range(20)]
        with lock:
            granted.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert granted.count(0.0) == 50
    assert len(granted) == 160


def test_the_daily_share_caps_the_day(redis_url: str, unique: str) -> None:
    lim = make(redis_url, unique, window="100 per 10 seconds", daily=10, daily_share=0.5)
    assert [lim.reserve("hubspot:d") for _ in range(5)] == [0.0] * 5
    wait = lim.reserve("hubspot:d")
    assert 0 < wait <= 86_400
    usage = lim.usage("hubspot:d")
    assert (usage.daily_limit, usage.daily_remaining) == (5, 0)
    assert (usage.window_limit, usage.window_remaining) == (100, 95)


def test_searches_have_their_own_rate_but_spend_the_same_day(redis_url: str, unique: str) -> None:
    lim = make(redis_url, unique, window="100 per 10 seconds", search="2 per 1 second", daily=4)
    assert [lim.reserve("hubspot:s:search") for _ in range(2)] == [0.0, 0.0]
    assert 0 < lim.reserve("hubspot:s:search") <= 1
    assert [lim.reserve("hubspot:s") for _ in range(2)] == [0.0, 0.0]
    assert lim.reserve("hubspot:s") > 0  # the day's 4 are spent


def test_a_crm_without_a_budget_is_not_limited_here(redis_url: str, unique: str) -> None:
    lim = make(redis_url, unique, window="1 per 10 seconds")
    assert [lim.reserve("files:local") for _ in range(10)] == [0.0] * 10


def test_headroom_keeps_a_margin_under_the_crm_s_rate(redis_url: str, unique: str) -> None:
    lim = make(redis_url, unique, window="10 per 10 seconds", headroom=0.8)
    assert [lim.reserve("hubspot:h") for _ in range(9)].count(0.0) == 8
    assert lim.usage("hubspot:h").window_limit == 8
