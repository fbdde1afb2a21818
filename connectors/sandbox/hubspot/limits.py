"""HubSpot's auth and rate limits on an injectable clock.

Private-app tokens (the configured ones) get the tier's ten-second and daily
allowance; access tokens issued by ``/oauth/v1/token`` count as a public OAuth app
(110 per ten seconds, no daily cap, no daily headers). Search has its own limit of
about five requests a second and its answers carry no rate-limit headers.
Source: ``docs/crm-api-notes.md``, HubSpot "Limits".
"""

from __future__ import annotations

import math
import random
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

TIERS: dict[str, tuple[int, int]] = {
    "free": (100, 250_000),
    "starter": (100, 250_000),
    "pro": (190, 650_000),
    "professional": (190, 650_000),
    "enterprise": (190, 1_000_000),
}
OAUTH_TEN_SECONDLY = 110
SEARCH_PER_SECOND = 5
WINDOW = 10.0
TOKEN_TTL = 1800.0  # OAuth access tokens live 30 minutes


@dataclass(slots=True)
class Caller:
    app_kind: str  # "private" | "oauth"


@dataclass(slots=True)
class Verdict:
    """The outcome of counting one request against the limits."""

    allowed: bool
    policy: str = ""
    message: str = ""
    retry_after: float | None = None
    headers: dict[str, str] | None = None


def _refuse(policy: str, message: str, retry_after: float | None) -> Verdict:
    return Verdict(allowed=False, policy=policy, message=message, retry_after=retry_after)


class Limits:
    def __init__(self, tier: str, *, seed: int) -> None:
        if tier not in TIERS:
            raise ValueError(f"tier: expected one of {', '.join(sorted(TIERS))}, got {tier!r}")
        self.tier = tier
        self.ten_secondly, self.daily = TIERS[tier]
        self._seed = seed
        self.reset()

    def reset(self) -> None:
        self._windows: dict[str, deque[float]] = {"private": deque(), "oauth": deque()}
        self._search: deque[float] = deque()
        self._day = ""
        self._day_count = 0
        self._rng = random.Random(self._seed * 31 + 5)

    def _allowance(self, kind: str) -> int:
        return OAUTH_TEN_SECONDLY if kind == "oauth" else self.ten_secondly

    def check(self, caller: Caller, now: float, *, search: bool) -> Verdict:
        if search:
            window = self._search
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= SEARCH_PER_SECOND:
                return _refuse(
                    "SECONDLY",
                    "You have reached your secondly limit.",
                    self._maybe_retry_after(window[0] + 1.0 - now),
                )
            window.append(now)
            return Verdict(allowed=True)
        day = datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%d")
        if day != self._day:
            self._day, self._day_count = day, 0
        private = caller.app_kind == "private"
        if private and self._day_count >= self.daily:
            midnight = (math.floor(now / 86_400.0) + 1) * 86_400.0
            return _refuse(
                "DAILY",
                "You have reached your daily limit.",
                self._maybe_retry_after(midnight - now),
            )
        window = self._windows[caller.app_kind]
        while window and window[0] <= now - WINDOW:
            window.popleft()
        allowance = self._allowance(caller.app_kind)
        if len(window) >= allowance:
            return _refuse(
                "TEN_SECONDLY_ROLLING",
                "You have reached your ten secondly limit.",
                self._maybe_retry_after(window[0] + WINDOW - now),
            )
        window.append(now)
        if private:
            self._day_count += 1
        secondly = allowance // 10
        in_last_second = sum(1 for t in window if t > now - 1.0)
        headers = {
            "X-HubSpot-RateLimit-Max": str(allowance),
            "X-HubSpot-RateLimit-Remaining": str(allowance - len(window)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(WINDOW * 1000)),
            "X-HubSpot-RateLimit-Secondly": str(secondly),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, secondly - in_last_second)),
        }
        if private:
            headers["X-HubSpot-RateLimit-Daily"] = str(self.daily)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(self.daily - self._day_count)
        return Verdict(allowed=True, headers=headers)

    def _maybe_retry_after(self, wait: float) -> float | None:
        """HubSpot sends ``Retry-After`` only sometimes; which times is seeded."""
        return max(1.0, math.ceil(wait)) if self._rng.random() < 0.5 else None

    @staticmethod
    def body(verdict: Verdict, correlation_id: str) -> dict[str, str]:
        return {
            "status": "error",
            "message": verdict.message,
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id,
            "policyName": verdict.policy,
        }


class Tokens:
    """Configured private-app tokens plus OAuth access tokens issued on refresh."""

    def __init__(
        self,
        tokens: tuple[str, ...],
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
    ) -> None:
        self.configured = frozenset(tokens)
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.reset()

    def reset(self) -> None:
        self.configured_expired = False
        self.issued: dict[str, float] = {}

    def expire_all(self, now: float) -> None:
        """The ``expire_token_after`` fault: private-app tokens stop working and
        issued OAuth tokens expire now (and answer as expired, not unknown)."""
        self.configured_expired = True
        for token, expires in self.issued.items():
            self.issued[token] = min(expires, now)

    def issue(self, now: float) -> str:
        token = "sbx-oauth-" + secrets.token_hex(16)
        self.issued[token] = now + TOKEN_TTL
        return token

    def expired_at(self, token: str | None) -> float | None:
        """When an OAuth token this portal issued stopped working (None: unknown)."""
        return self.issued.get(token) if token else None

    def caller(self, token: str | None, now: float) -> Caller | None:
        if not token:
            return None
        if token in self.configured and not self.configured_expired:
            return Caller("private")
        expires = self.issued.get(token)
        if expires is not None and now < expires:
            return Caller("oauth")
        return None
