"""The API budgets every worker shares, in Redis, with the ``limits`` library.

Celery's own ``rate_limit`` is per worker; a portal's limit is per portal and app, so
the count must live where every worker (and a ``serve`` process) sees it. A bucket is
the connector's ``bucket`` (``"hubspot:<hash of the token>"``, ``"salesforce:<org>"``);
its CRM (the part before the first ``:``) picks the deployment's budget for it. A
bucket ending in ``:search`` counts against the budget's ``search`` rate instead of its
window (HubSpot limits its search endpoints separately).

Two limits per bucket: a moving window (HubSpot's ten-second rolling limit is a moving
window, so a fixed window would let twice the rate through at a window edge) and a
daily share of the account's quota (a fixed window per UTC day, like the CRM's own).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerDay, parse
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from scheduler.scaleout.deployment import Deployment

MIN_WAIT = 0.05  # never ask a connector to spin


@dataclass(frozen=True, slots=True)
class Budget:
    """One CRM's limits, as the limiter applies them to each of its buckets."""

    window: str | None = None  # "190 per 10 seconds"
    daily: int | None = None  # the account's daily quota
    daily_share: float = 1.0  # the part of it leadsync may spend
    search: str | None = None  # "4 per 1 second"
    # The part of each rate actually used: a call counted here reaches the CRM a few
    # milliseconds later, so a budget at exactly the CRM's rate meets the odd 429 when
    # the arrival order differs from the order of counting.
    headroom: float = 0.9

    def daily_allowance(self) -> int | None:
        if self.daily is None:
            return None
        return max(1, int(self.daily * self.daily_share))


@dataclass(frozen=True, slots=True)
class BucketUsage:
    """What ``status`` shows per tenant: calls left in the window and today."""

    window_remaining: int | None
    window_limit: int | None
    daily_remaining: int | None
    daily_limit: int | None


class RedisCallLimiter:
    """A ``CallLimiter`` (see ``connectors.base``) shared through Redis.

    ``reserve(bucket)`` counts one call and returns 0.0, or counts nothing and returns
    the seconds to wait before asking again. A bucket whose CRM has no budget is not
    limited here (the connector's own pacing still applies)."""

    def __init__(
        self,
        redis_url: str,
        budgets: Mapping[str, Budget],
        *,
        key_prefix: str = "leadsync:limits",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = RedisStorage(redis_url, key_prefix=key_prefix)
        self.moving = MovingWindowRateLimiter(self.storage)
        self.fixed = FixedWindowRateLimiter(self.storage)
        self.budgets = dict(budgets)
        self.clock = clock
        self._items: dict[tuple[str, bool], tuple[RateLimitItem | None, RateLimitItem | None]] = {}

    def _limits(self, bucket: str) -> tuple[RateLimitItem | None, RateLimitItem | None]:
        crm = bucket.split(":", 1)[0]
        search = bucket.endswith(":search")
        cached = self._items.get((crm, search))
        if cached is not None:
            return cached
        budget = self.budgets.get(crm)
        window: RateLimitItem | None = None
        daily: RateLimitItem | None = None
        if budget is not None:
            rate = budget.search if search else budget.window
            if rate:
                item = parse(rate)
                amount = max(1, int(item.amount * budget.headroom))
                window = type(item)(amount, item.multiples, item.namespace)
            allowance = budget.daily_allowance()
            daily = RateLimitItemPerDay(allowance) if allowance else None
        self._items[(crm, search)] = (window, daily)
        return window, daily

    def reserve(self, bucket: str) -> float:
        window, daily = self._limits(bucket)
        day_key = bucket.removesuffix(":search")  # searches spend the same daily quota
        if daily is not None and not self.fixed.test(daily, day_key):
            return self._wait(self.fixed, daily, day_key)
        if window is not None and not self.moving.hit(window, bucket):
            return self._wait(self.moving, window, bucket)
        if daily is not None and not self.fixed.hit(daily, day_key):
            # Another worker took the day's last call between the test and the hit;
            # the window call counted above is lost, which errs on the safe side.
            return self._wait(self.fixed, daily, day_key)
        return 0.0

    def _wait(
        self,
        strategy: MovingWindowRateLimiter | FixedWindowRateLimiter,
        item: RateLimitItem,
        key: str,
    ) -> float:
        stats = strategy.get_window_stats(item, key)
        return max(MIN_WAIT, stats.reset_time - self.clock())

    def usage(self, bucket: str) -> BucketUsage:
        window, daily = self._limits(bucket)
        w = self.moving.get_window_stats(window, bucket) if window else None
        d = self.fixed.get_window_stats(daily, bucket.removesuffix(":search")) if daily else None
        return BucketUsage(
            window_remaining=w.remaining if w else None,
            window_limit=window.amount if window else None,
            daily_remaining=d.remaining if d else None,
            daily_limit=daily.amount if daily else None,
        )

    def clear(self, bucket: str) -> None:
        window, daily = self._limits(bucket)
        if window is not None:
            self.moving.clear(window, bucket)
        if daily is not None:
            self.fixed.clear(daily, bucket.removesuffix(":search"))


def limiter_for(deployment: Deployment) -> RedisCallLimiter:
    """The deployment's limiter (budgets from its ``budgets`` section)."""
    budgets = {
        crm: Budget(
            window=b.window,
            daily=b.daily,
            daily_share=b.daily_share,
            search=b.search,
            headroom=b.headroom,
        )
        for crm, b in deployment.budgets.items()
    }
    return RedisCallLimiter(deployment.redis, budgets, key_prefix=deployment.key("limits"))
