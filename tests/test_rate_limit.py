"""Rate limits and quotas on a fake clock: bursts, refill, Retry-After, memory bound, windows, recovery."""

from __future__ import annotations

import pytest

from agents.settings import MeshSettings, SettingsError
from protocols.rate_limit import Limits, Quota, RateLimiter, Refusal, default_burst, retry_after_header


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_new_key_gets_its_burst_then_waits_for_a_token(clock):
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.acquire("alice") for _ in range(3)] == [None, None, None]
    assert limiter.acquire("alice") == pytest.approx(0.5)  # one token per half second
    clock.advance(0.2)
    assert limiter.acquire("alice") == pytest.approx(0.3)  # a refused call takes nothing
    clock.advance(0.3)
    assert limiter.acquire("alice") is None
    assert limiter.acquire("alice") == pytest.approx(0.5)


def test_refill_never_banks_more_than_the_burst(clock):
    limiter = RateLimiter(10.0, 2, clock=clock)
    limiter.acquire("k"), limiter.acquire("k")
    clock.advance(3600)
    assert [limiter.acquire("k") for _ in range(3)][:2] == [None, None]
    assert limiter.acquire("k") is not None


def test_keys_are_counted_apart(clock):
    limiter = RateLimiter(1.0, 1, clock=clock)
    assert limiter.acquire("alice") is None
    assert limiter.acquire("alice") is not None
    assert limiter.acquire("bob") is None


def test_only_the_most_recently_used_keys_are_kept(clock):
    limiter = RateLimiter(1.0, 1, max_keys=3, clock=clock)
    for key in ("a", "b", "c"):
        assert limiter.acquire(key) is None
    assert limiter.acquire("a") is not None  # "a" is now the most recent; "b" the oldest
    assert limiter.acquire("d") is None
    assert len(limiter) == 3
    assert limiter.acquire("a") is not None  # still remembered, still empty
    assert limiter.acquire("c") is not None
    assert limiter.acquire("b") is None  # forgotten, so it starts full again
    assert len(limiter) == 3


@pytest.mark.parametrize(("seconds", "header"), [
    (0.0, "1"), (0.001, "1"), (0.5, "1"), (1.0, "1"), (1.0000000001, "1"), (1.01, "2"), (2.5, "3"), (59.2, "60"),
])
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(seconds, header):
    assert retry_after_header(seconds) == header


def test_bad_limiter_parameters_are_refused():
    with pytest.raises(ValueError, match="rate_per_second"):
        RateLimiter(0, 1)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(1, 0)
    with pytest.raises(ValueError, match="limit"):
        Quota(0, 60)
    with pytest.raises(ValueError, match="window_seconds"):
        Quota(1, 0)


def test_a_quota_counts_calls_in_a_window_then_resets(clock):
    quota = Quota(3, 60, clock=clock)
    assert [quota.take("alice") for _ in range(3)] == [None, None, None]
    clock.advance(20)
    assert quota.take("alice") == pytest.approx(40)
    assert quota.take("bob") is None  # each caller has its own window
    clock.advance(39.5)
    assert quota.take("alice") == pytest.approx(0.5)
    clock.advance(0.5)
    assert [quota.take("alice") for _ in range(3)] == [None, None, None]
    assert quota.take("alice") == pytest.approx(60)


def test_a_quota_forgets_least_recently_used_keys(clock):
    quota = Quota(1, 60, max_keys=2, clock=clock)
    quota.take("a"), quota.take("b"), quota.take("c")
    assert len(quota) == 2
    assert quota.take("a") is None  # forgotten: a new window
    assert quota.take("c") is not None


def test_default_burst_is_twice_the_rate_and_at_least_one():
    assert default_burst(5) == 10
    assert default_burst(0.2) == 1
    assert default_burst(0.75) == 2


def _limits(clock: FakeClock, **settings: object) -> Limits:
    return Limits.from_settings(MeshSettings(**settings), clock=clock)


def test_no_settings_no_limits(clock):
    limits = _limits(clock)
    assert (limits.per_caller, limits.per_agent, limits.quota) == (None, None, None)
    assert not limits.enabled
    assert all(limits.check("alice", "echo") is None for _ in range(1000))


def test_settings_come_from_the_environment():
    settings = MeshSettings.from_env({"MESH_RATE_LIMIT_PER_CALLER": "5", "MESH_RATE_LIMIT_BURST": "7",
                                      "MESH_RATE_LIMIT_PER_AGENT": "50", "MESH_QUOTA_PER_CALLER": "1000",
                                      "MESH_QUOTA_WINDOW_SECONDS": "60"})
    limits = Limits.from_settings(settings)
    assert limits.per_caller is not None and (limits.per_caller.rate, limits.per_caller.burst) == (5, 7)
    assert limits.per_agent is not None and (limits.per_agent.rate, limits.per_agent.burst) == (50, 100)
    assert limits.quota is not None and (limits.quota.limit, limits.quota.window) == (1000, 60)
    with pytest.raises(SettingsError, match="MESH_RATE_LIMIT_PER_CALLER"):
        MeshSettings.from_env({"MESH_RATE_LIMIT_PER_CALLER": "0"})
    with pytest.raises(SettingsError, match="MESH_QUOTA_PER_CALLER"):
        MeshSettings.from_env({"MESH_QUOTA_PER_CALLER": "lots"})


def test_the_per_caller_limit_refuses_one_caller_and_recovers(clock):
    limits = _limits(clock, rate_limit_per_caller=5, rate_limit_burst=5)
    assert all(limits.check("alice", "echo") is None for _ in range(5))
    refusal = limits.check("alice", "echo")
    assert refusal == Refusal(pytest.approx(0.2), "rate limit of 5 requests/s per caller exceeded")
    assert retry_after_header(refusal.retry_after) == "1"
    assert limits.check("bob", "echo") is None  # another caller is not affected
    clock.advance(refusal.retry_after)
    assert limits.check("alice", "echo") is None  # recovered


def test_the_per_agent_limit_counts_all_callers_together(clock):
    limits = _limits(clock, rate_limit_per_agent=1)  # burst 2
    assert limits.check("alice", "echo") is None
    assert limits.check("bob", "echo") is None
    refusal = limits.check("carol", "echo")
    assert refusal is not None and refusal.reason == "rate limit of 1 requests/s for agent echo exceeded"
    assert refusal.retry_after == pytest.approx(1.0)
    assert limits.check("carol", "other-agent") is None  # each agent has its own bucket
    clock.advance(1.0)
    assert limits.check("carol", "echo") is None


def test_a_caller_refused_by_its_own_limit_costs_the_agent_nothing(clock):
    limits = _limits(clock, rate_limit_per_caller=1, rate_limit_burst=1, rate_limit_per_agent=1)
    assert limits.check("alice", "echo") is None
    assert limits.check("alice", "echo") is not None  # refused by alice's limit: no agent token spent
    assert limits.check("bob", "echo") is None  # the agent's second (burst) token is still there


def test_the_quota_refuses_until_its_window_resets(clock):
    limits = _limits(clock, quota_per_caller=2, quota_window_seconds=600)
    assert limits.check("alice", "echo") is None
    clock.advance(100)
    assert limits.check("alice", "echo") is None
    refusal = limits.check("alice", "echo")
    assert refusal == Refusal(pytest.approx(500), "quota of 2 calls per 600 s per caller exceeded")
    assert retry_after_header(refusal.retry_after) == "500"
    assert limits.check("bob", "echo") is None
    clock.advance(500)
    assert limits.check("alice", "echo") is None


def test_calls_refused_by_a_rate_limit_do_not_use_up_the_quota(clock):
    limits = _limits(clock, rate_limit_per_caller=1, rate_limit_burst=1, quota_per_caller=2)
    assert limits.check("alice", "echo") is None
    for _ in range(10):
        refusal = limits.check("alice", "echo")
        assert refusal is not None and "rate limit" in refusal.reason
    clock.advance(1)
    assert limits.check("alice", "echo") is None  # the quota's second call
    clock.advance(1)
    refusal = limits.check("alice", "echo")
    assert refusal is not None and refusal.reason.startswith("quota of 2 calls")
