"""Rate limits and quotas, per caller and per agent: the building blocks the request guard calls.

Everything here lives in one process: each replica of a service counts on its own (see
docs/audit-and-limits.md). No locks: a service runs on one event loop and nothing here awaits.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.settings import MeshSettings

__all__ = ["Limits", "Quota", "RateLimiter", "Refusal", "default_burst", "retry_after_header"]

Clock = Callable[[], float]
DEFAULT_MAX_KEYS = 10_000


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class RateLimiter:
    """Token buckets keyed by a string: ``rate_per_second`` refill, at most ``burst`` tokens banked.

    A new key starts full. Only the ``max_keys`` most recently used keys are remembered; a forgotten
    key comes back with a full bucket, which only someone holding 10,000 other identities could use.
    """

    def __init__(self, rate_per_second: float, burst: int, *, max_keys: int = DEFAULT_MAX_KEYS,
                 clock: Clock = time.monotonic) -> None:
        if not rate_per_second > 0:
            raise ValueError(f"rate_per_second must be above 0, not {rate_per_second!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, not {max_keys!r}")
        self.rate = float(rate_per_second)
        self.burst = int(burst)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def acquire(self, key: str) -> float | None:
        """Take a token for ``key``: None when allowed, else the seconds until one is available."""
        now = self._clock()
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = _Bucket(float(self.burst), now)
            if len(buckets) > self.max_keys:
                buckets.popitem(last=False)
        else:
            buckets.move_to_end(key)
            elapsed = now - bucket.updated
            if elapsed > 0:  # a clock never goes back, but a test's might
                bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


class Quota:
    """At most ``limit`` calls per key in a fixed window of ``window_seconds``, from the key's first call.

    Bounded like ``RateLimiter``: beyond ``max_keys`` the least recently used key is forgotten (and
    starts a fresh window when it returns).
    """

    def __init__(self, limit: int, window_seconds: float, *, max_keys: int = DEFAULT_MAX_KEYS,
                 clock: Clock = time.monotonic) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit!r}")
        if not window_seconds > 0:
            raise ValueError(f"window_seconds must be above 0, not {window_seconds!r}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, not {max_keys!r}")
        self.limit = int(limit)
        self.window = float(window_seconds)
        self.max_keys = max_keys
        self._clock = clock
        self._windows: OrderedDict[str, _Bucket] = OrderedDict()  # tokens = calls so far, updated = start

    def take(self, key: str) -> float | None:
        """Count a call for ``key``: None when within the quota, else the seconds until the window resets."""
        now = self._clock()
        windows = self._windows
        window = windows.get(key)
        if window is None:
            window = windows[key] = _Bucket(0.0, now)
            if len(windows) > self.max_keys:
                windows.popitem(last=False)
        else:
            windows.move_to_end(key)
            if now - window.updated >= self.window:
                window.tokens, window.updated = 0.0, now
        if window.tokens < self.limit:
            window.tokens += 1.0
            return None
        return max(window.updated + self.window - now, 0.0)

    def __len__(self) -> int:
        return len(self._windows)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A call refused by a limit: when to retry, and which limit (never anything secret)."""

    retry_after: float
    reason: str


def default_burst(rate_per_second: float) -> int:
    """Twice the rate, at least one: a client may send a short burst after a pause."""
    return max(1, math.ceil(2 * rate_per_second))


def retry_after_header(seconds: float) -> str:
    """The ``Retry-After`` value: whole seconds, rounded up, at least 1."""
    # the epsilon keeps float noise (2.0000000001) from adding a whole second
    return str(max(1, math.ceil(seconds - 1e-9)))


class Limits:
    """The limits one service enforces; each part is None when its setting is unset.

    ``check`` applies them in order: the caller's rate (a flood from one caller is refused first,
    costing nobody else anything), the agent's rate, then the caller's quota, so a call refused by
    a rate limit does not use up quota. A call the agent's limit refuses has still spent one of the
    caller's tokens: it was an attempt.
    """

    def __init__(self, per_caller: RateLimiter | None = None, per_agent: RateLimiter | None = None,
                 quota: Quota | None = None) -> None:
        self.per_caller = per_caller
        self.per_agent = per_agent
        self.quota = quota
        # built once: the refusal path should be as cheap as the allowed one
        self._caller_reason = self._quota_reason = ""
        if per_caller is not None:
            self._caller_reason = f"rate limit of {per_caller.rate:g} requests/s per caller exceeded"
        if quota is not None:
            self._quota_reason = f"quota of {quota.limit} calls per {quota.window:g} s per caller exceeded"

    @classmethod
    def from_settings(cls, settings: MeshSettings, *, clock: Clock = time.monotonic) -> Limits:
        per_caller = per_agent = quota = None
        if settings.rate_limit_per_caller is not None:
            rate = settings.rate_limit_per_caller
            per_caller = RateLimiter(rate, settings.rate_limit_burst or default_burst(rate), clock=clock)
        if settings.rate_limit_per_agent is not None:
            rate = settings.rate_limit_per_agent
            per_agent = RateLimiter(rate, default_burst(rate), clock=clock)
        if settings.quota_per_caller is not None:
            quota = Quota(settings.quota_per_caller, settings.quota_window_seconds, clock=clock)
        return cls(per_caller, per_agent, quota)

    @property
    def enabled(self) -> bool:
        return self.per_caller is not None or self.per_agent is not None or self.quota is not None

    def check(self, caller: str, agent: str) -> Refusal | None:
        """Count one call by ``caller`` to ``agent``: None when allowed, else why and when to retry."""
        if self.per_caller is not None:
            wait = self.per_caller.acquire(caller)
            if wait is not None:
                return Refusal(wait, self._caller_reason)
        if self.per_agent is not None:
            wait = self.per_agent.acquire("agent:" + agent)
            if wait is not None:
                return Refusal(wait, f"rate limit of {self.per_agent.rate:g} requests/s for agent {agent} exceeded")
        if self.quota is not None:
            wait = self.quota.take(caller)
            if wait is not None:
                return Refusal(wait, self._quota_reason)
        return None
