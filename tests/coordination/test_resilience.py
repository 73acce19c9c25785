"""Retries, circuit breakers and fail-over: the policies with a fake clock, then over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from a2a.utils.errors import InvalidParamsError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agents.coordination.resilience import (
    Attempt,
    BreakerState,
    Breakers,
    CallFailed,
    CircuitBreaker,
    RetryPolicy,
    call_with_failover,
    call_with_retries,
    describe_failure,
    is_transient,
)
from agents.definition import Agent
from agents.settings import MeshSettings
from protocols.a2a_client import A2AConnection, CardFetchError, user_message
from protocols.cards import build_card
from tests.support import free_port, serving_app


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def unavailable() -> Exception:
    """What the A2A client raises for an HTTP 503 (an A2AClientError caused by the status error)."""
    request = httpx.Request("POST", "http://agent/")
    status = httpx.HTTPStatusError("503", request=request, response=httpx.Response(503, request=request))
    try:
        raise RuntimeError("HTTP Error 503") from status
    except RuntimeError as error:
        return error


# -- policy ----------------------------------------------------------------------------------


def test_policy_from_settings():
    settings = MeshSettings.from_env({}, step_retries=4, retry_backoff_seconds=0.5, retry_backoff_max_seconds=3,
                                     step_timeout_seconds=7)
    policy = RetryPolicy.from_settings(settings)
    assert (policy.attempts, policy.base_delay, policy.max_delay, policy.timeout) == (5, 0.5, 3.0, 7.0)


def test_backoff_doubles_up_to_the_cap_with_full_jitter():
    policy = RetryPolicy(base_delay=0.2, max_delay=5.0, rng=random.Random(7))
    assert [policy.ceiling(n) for n in range(7)] == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])
    assert policy.ceiling(10_000) == 5.0
    for retry in range(7):
        delays = [policy.delay(retry) for _ in range(2000)]
        assert all(0 <= d <= policy.ceiling(retry) for d in delays)
        # full jitter: the whole range is used, not a band around the ceiling
        assert min(delays) < 0.05 * policy.ceiling(retry) and max(delays) > 0.95 * policy.ceiling(retry)
    same = RetryPolicy(rng=random.Random(7)), RetryPolicy(rng=random.Random(7))
    assert [same[0].delay(3) for _ in range(5)] == [same[1].delay(3) for _ in range(5)]


# -- breaker ---------------------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_only():
    clock = FakeClock()
    breaker = CircuitBreaker(failures=3, reset_seconds=30, clock=clock)
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()  # not consecutive any more
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow() and not breaker.available


def test_half_open_lets_exactly_one_probe_through():
    clock = FakeClock()
    breaker = CircuitBreaker(failures=1, reset_seconds=30, clock=clock)
    breaker.record_failure()
    clock.now += 29.9
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN and breaker.available
    assert breaker.allow()  # the probe
    assert not breaker.allow() and not breaker.available  # concurrent callers are refused while it runs
    breaker.record_failure()  # the probe failed: open for a full period again
    assert breaker.state is BreakerState.OPEN
    clock.now += 29
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0
    assert breaker.allow() and breaker.allow()


def test_a_cancelled_probe_frees_the_slot():
    clock = FakeClock()
    breaker = CircuitBreaker(failures=1, reset_seconds=5, clock=clock)
    breaker.record_failure()
    clock.now += 5
    assert breaker.allow() and not breaker.allow()
    breaker.release()
    assert breaker.allow()


def test_board_creates_breakers_on_demand_and_snapshots_them():
    clock = FakeClock()
    board = Breakers(failures=2, reset_seconds=10, clock=clock)
    assert board.state("http://b:1/") is BreakerState.CLOSED
    board.record_failure("http://a:1")
    board.record_failure("http://a:1/")  # same instance: the trailing slash does not matter
    clock.now += 4
    snapshot = {s.url: s for s in board.snapshot()}
    assert set(snapshot) == {"http://a:1", "http://b:1"}
    assert snapshot["http://a:1"].state is BreakerState.OPEN and snapshot["http://a:1"].failures == 2
    assert snapshot["http://a:1"].probe_in_seconds == pytest.approx(6)
    assert snapshot["http://b:1"].state is BreakerState.CLOSED and snapshot["http://b:1"].probe_in_seconds is None


# -- retries and fail-over with a fake clock ----------------------------------------------------


async def test_transient_failures_are_retried_with_backoff():
    clock = FakeClock()
    policy = RetryPolicy(attempts=4, base_delay=1, max_delay=10, rng=random.Random(1))
    board = Breakers(failures=10, reset_seconds=30, clock=clock)
    calls, seen = [], []

    async def call() -> str:
        calls.append(clock.now)
        if len(calls) < 3:
            raise ConnectionRefusedError("refused")
        return "done"

    result = await call_with_retries(call, policy, breakers=board, url="http://a", on_attempt=seen.append, sleep=clock.sleep)
    assert result == "done" and len(calls) == 3
    assert [a.attempt for a in seen] == [1, 2] and all(a.transient for a in seen)
    assert seen[0].reason == "connection refused"
    assert len(clock.slept) == 2 and 0 <= clock.slept[0] <= 1 and 0 <= clock.slept[1] <= 2
    assert board.breaker("http://a").failures == 0  # the success closed the count


async def test_non_transient_errors_are_not_retried():
    clock = FakeClock()
    board = Breakers(failures=1, reset_seconds=30, clock=clock)
    calls = []

    async def call() -> None:
        calls.append(1)
        raise InvalidParamsError("city: field required")

    with pytest.raises(CallFailed) as failed:
        await call_with_retries(call, RetryPolicy(attempts=5), breakers=board, url="http://a", sleep=clock.sleep)
    assert len(calls) == 1 and clock.slept == []
    assert failed.value.attempts == [
        Attempt(url="http://a", attempt=1, reason="InvalidParamsError -32602: city: field required", transient=False)
    ]
    assert not failed.value.transient
    assert board.state("http://a") is BreakerState.CLOSED  # the instance answered: it is up


async def test_retries_stop_when_the_breaker_opens():
    clock = FakeClock()
    board = Breakers(failures=2, reset_seconds=30, clock=clock)
    calls = []

    async def call() -> None:
        calls.append(1)
        raise unavailable()

    with pytest.raises(CallFailed) as failed:
        await call_with_retries(call, RetryPolicy(attempts=5), breakers=board, url="http://a", sleep=clock.sleep)
    assert len(calls) == 2
    assert [a.reason for a in failed.value.attempts] == ["HTTP 503 Service Unavailable"] * 2 + ["circuit open"]
    assert failed.value.transient and str(failed.value) == "http://a: HTTP 503 Service Unavailable ×2, circuit open"


async def test_a_slow_call_times_out_and_counts_as_transient():
    board = Breakers(failures=5, reset_seconds=30)
    never = asyncio.Event()

    async def call() -> None:
        await never.wait()

    with pytest.raises(CallFailed) as failed:
        await call_with_retries(call, RetryPolicy(attempts=2, base_delay=0.01, timeout=0.05), breakers=board, url="http://a")
    assert [a.reason for a in failed.value.attempts] == ["no answer in 0.05 s"] * 2
    assert board.breaker("http://a").failures == 2


async def test_cancelling_a_probe_releases_it():
    clock = FakeClock()
    board = Breakers(failures=1, reset_seconds=5, clock=clock)
    board.record_failure("http://a")
    clock.now += 5
    started, never = asyncio.Event(), asyncio.Event()

    async def call() -> None:
        started.set()
        await never.wait()

    task = asyncio.create_task(call_with_retries(call, RetryPolicy(), breakers=board, url="http://a"))
    await started.wait()
    assert not board.allow("http://a")  # the probe is running
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert board.allow("http://a")


async def test_failover_goes_in_order_and_skips_open_circuits():
    clock = FakeClock()
    board = Breakers(failures=2, reset_seconds=30, clock=clock)
    board.record_failure("http://a")
    board.record_failure("http://a")  # a's circuit is open
    tried: list[str] = []

    async def call_for(url: str) -> str:
        tried.append(url)
        if url == "http://b":
            raise ConnectionResetError("reset")
        return f"answer from {url}"

    policy = RetryPolicy(attempts=2, rng=random.Random(3))
    result = await call_with_failover(["http://a", "http://b", "http://c", "http://d"], call_for, policy, board,
                                      sleep=clock.sleep)
    assert result == "answer from http://c"
    assert tried == ["http://b", "http://b", "http://c"]
    assert board.state("http://b") is BreakerState.OPEN


async def test_failover_gives_up_with_every_attempt():
    clock = FakeClock()
    board = Breakers(failures=5, reset_seconds=30, clock=clock)

    async def call_for(url: str) -> str:
        raise TimeoutError

    with pytest.raises(CallFailed) as failed:
        await call_with_failover(["http://a", "http://b"], call_for, RetryPolicy(attempts=2), board, sleep=clock.sleep)
    assert [(a.url, a.attempt, a.reason) for a in failed.value.attempts] == [
        ("http://a", 1, "timed out"), ("http://a", 2, "timed out"), ("http://b", 1, "timed out"), ("http://b", 2, "timed out"),
    ]
    assert is_transient(failed.value) and describe_failure(failed.value) == "http://a: timed out ×2; http://b: timed out ×2"


async def test_failover_stops_at_an_answer():
    tried: list[str] = []

    async def call_for(url: str) -> str:
        tried.append(url)
        raise InvalidParamsError("bad arguments")

    with pytest.raises(CallFailed) as failed:
        await call_with_failover(["http://a", "http://b"], call_for, RetryPolicy(), Breakers(5, 30))
    assert tried == ["http://a"] and not failed.value.transient


# -- over real sockets -------------------------------------------------------------------------


def completed_task(request_id: Any) -> dict:
    task = {"id": "t-1", "contextId": "c-1", "status": {"state": "TASK_STATE_COMPLETED"}}
    return {"jsonrpc": "2.0", "id": request_id, "result": {"task": task}}


class FakeAgent:
    """A JSON-RPC endpoint that plays ``script`` (one entry per request, the last repeats)."""

    def __init__(self, *script: str) -> None:
        self.script = list(script)
        self.requests = 0
        self.released = asyncio.Event()  # ends hanging requests, so the server stops at once

    async def rpc(self, request: Request) -> Response:
        body = await request.json()
        step = self.script[min(self.requests, len(self.script) - 1)]
        self.requests += 1
        if step.isdigit():
            return Response("unavailable", status_code=int(step))
        if step == "hang":
            await self.released.wait()
            return Response("too late", status_code=503)
        if step.startswith("-32"):
            return JSONResponse({"jsonrpc": "2.0", "id": body["id"], "error": {"code": int(step), "message": "no"}})
        return JSONResponse(completed_task(body["id"]))


@contextlib.asynccontextmanager
async def fake_agent(*script: str) -> AsyncIterator[tuple[str, FakeAgent]]:
    fake = FakeAgent(*script)
    async with serving_app(lambda url: Starlette(routes=[Route("/", fake.rpc, methods=["POST"])]), "fake agent") as url:
        try:
            yield url, fake
        finally:
            fake.released.set()


def sender(http: httpx.AsyncClient):
    """call_for_url: one SendMessage to the instance, through our A2A client, the last event as the result."""

    async def send(url: str) -> dict:
        connection = A2AConnection(build_card(Agent("flaky", "fails on purpose"), url), http, bindings=("JSONRPC",))
        return [event async for event in connection.send(user_message("hello"))][-1]

    return send


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    ("script", "transient", "reason"),
    [
        ("503", True, "HTTP 503 Service Unavailable"),
        ("429", True, "HTTP 429 Too Many Requests"),
        ("502", True, "HTTP 502 Bad Gateway"),
        ("500", False, "HTTP 500 Internal Server Error"),
        ("404", False, "HTTP 404 Not Found"),
        ("-32603", True, "InternalError -32603: no"),
        ("-32602", False, "InvalidParamsError -32602: no"),
        ("-32001", False, "TaskNotFoundError -32001: no"),
        ("hang", True, "timed out"),
    ],
)
async def test_what_the_a2a_client_raises_is_classified(http, script, transient, reason):
    async with fake_agent(script) as (url, _):
        with pytest.raises(Exception) as raised:
            async with asyncio.timeout(0.5):
                await sender(http)(url)
    assert is_transient(raised.value) is transient
    assert describe_failure(raised.value) == reason


async def test_a_refused_port_is_transient(http):
    with pytest.raises(Exception) as raised:
        await sender(http)(f"http://127.0.0.1:{free_port()}")
    assert is_transient(raised.value) and describe_failure(raised.value) == "connection refused"


async def test_card_problems_are_answers_but_an_unreachable_card_is_transient(http):
    with pytest.raises(CardFetchError) as refused:
        await A2AConnection.open(f"http://127.0.0.1:{free_port()}", http)
    assert is_transient(refused.value) and describe_failure(refused.value) == "connection refused"
    async with fake_agent("ok") as (url, _):  # it serves no card: 404
        with pytest.raises(CardFetchError) as missing:
            await A2AConnection.open(url, http)
    assert not is_transient(missing.value) and "HTTP 404" in describe_failure(missing.value)


async def test_503_twice_then_success_is_retried(http):
    async with fake_agent("503", "503", "ok") as (url, fake):
        seen: list[Attempt] = []
        result = await call_with_retries(lambda: sender(http)(url), RetryPolicy(attempts=3, base_delay=0.01),
                                         breakers=Breakers(5, 30), url=url, on_attempt=seen.append)
    assert result["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert fake.requests == 3 and [a.reason for a in seen] == ["HTTP 503 Service Unavailable"] * 2


async def test_an_instance_that_always_503s_opens_its_circuit(http):
    board = Breakers(failures=3, reset_seconds=60)
    async with fake_agent("503") as (url, fake):
        with pytest.raises(CallFailed) as failed:
            await call_with_retries(lambda: sender(http)(url), RetryPolicy(attempts=10, base_delay=0.01),
                                    breakers=board, url=url)
        assert fake.requests == 3 and board.state(url) is BreakerState.OPEN
        assert failed.value.attempts[-1].reason == "circuit open"
        with pytest.raises(CallFailed):  # refused without a request while open
            await call_with_retries(lambda: sender(http)(url), RetryPolicy(), breakers=board, url=url)
        assert fake.requests == 3


async def test_a_refused_port_fails_over_to_a_healthy_instance(http):
    dead = f"http://127.0.0.1:{free_port()}"
    seen: list[Attempt] = []
    async with fake_agent("ok") as (healthy, fake):
        result = await call_with_failover([dead, healthy], sender(http), RetryPolicy(attempts=2, base_delay=0.01),
                                          Breakers(5, 30), on_attempt=seen.append)
    assert result["task"]["id"] == "t-1" and fake.requests == 1
    assert [(a.url, a.reason) for a in seen] == [(dead, "connection refused")] * 2
