"""How the coordinator calls agents that may fail: retries with backoff, circuit breakers, fail-over.

Protocol-neutral: a call is any coroutine function. What is worth retrying is decided by
:func:`is_transient`, which knows the exceptions our A2A client really raises (measured against
live servers, see ``tests/coordination/test_resilience.py``):

* refused port: ``A2AClientError`` caused by ``httpx.ConnectError`` (``ConnectionRefusedError``);
* reset / closed connection: ``A2AClientError`` caused by ``httpx.ReadError`` / ``RemoteProtocolError``;
* HTTP 429/503/…: ``A2AClientError`` caused by ``httpx.HTTPStatusError`` (the status is on its response);
* hanging server: ``TimeoutError`` from our ``asyncio.timeout``, or ``A2AClientTimeoutError`` from httpx's;
* JSON-RPC errors: the ``a2a.utils.errors`` class of the code (``InternalError`` for -32603,
  ``InvalidParamsError`` for -32602…); unknown codes: a bare ``A2AClientError``.

A task that ends ``failed`` or ``rejected`` is not an exception at all: it is the skill's answer.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from a2a.client.errors import A2AClientTimeoutError
from a2a.utils.errors import JSON_RPC_ERROR_CODE_MAP, A2AError, InternalError
from pydantic import BaseModel, ConfigDict

from agents.errors import describe_exception
from agents.settings import MeshSettings

__all__ = [
    "Attempt",
    "BreakerState",
    "BreakerStatus",
    "Breakers",
    "CallFailed",
    "CircuitBreaker",
    "RetryPolicy",
    "call_with_failover",
    "call_with_retries",
    "describe_failure",
    "is_transient",
]

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
OnAttempt = Callable[["Attempt"], Any]  # may return an awaitable (e.g. to persist the attempt)

TRANSIENT_STATUS = frozenset({408, 429, 502, 503, 504})
# JSON-RPC errors that mean "the agent is there but cannot serve now"; every other mapped code is an answer.
_TRY_LATER_ERRORS: tuple[type[A2AError], ...] = (InternalError,)
_TIMEOUTS = (TimeoutError, httpx.TimeoutException, A2AClientTimeoutError)
_CONNECTION = (httpx.NetworkError, httpx.RemoteProtocolError, ConnectionError)
CIRCUIT_OPEN = "circuit open"


# -- classification ------------------------------------------------------------------------


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and its causes, outermost first.

    An implicit ``__context__`` is followed only when the raiser hid it with ``from None`` (e.g.
    ``CardFetchError``): then it *is* this failure, shortened; otherwise it is an earlier, other one.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (current.__context__ if current.__suppress_context__ else None)


def is_transient(error: BaseException) -> bool:
    """True when the same call may well succeed later: connection refused/reset, timeouts,
    HTTP 408/429/502/503/504, JSON-RPC internal errors. False for answers (invalid arguments,
    unknown task or method, invalid card, …) and for anything unknown."""
    for exc in _chain(error):
        if isinstance(exc, CallFailed):
            return exc.transient
        if isinstance(exc, _TRY_LATER_ERRORS) or isinstance(exc, _TIMEOUTS):
            return True
        if type(exc) in JSON_RPC_ERROR_CODE_MAP:  # an A2A answer such as -32602: decisive even over HTTP 4xx
            return False
        if isinstance(exc, httpx.HTTPStatusError):
            return exc.response.status_code in TRANSIENT_STATUS
        if isinstance(exc, _CONNECTION):
            return True
    return False


def describe_failure(error: BaseException) -> str:
    """A short reason for a person: ``connection refused``, ``HTTP 503 Service Unavailable``,
    ``timed out``, ``InvalidParamsError -32602: …``; otherwise the exception's type and text."""
    if isinstance(error, CallFailed):
        return str(error)
    chain = list(_chain(error))
    for exc in chain:
        if isinstance(exc, A2AError) and type(exc) in JSON_RPC_ERROR_CODE_MAP:
            return f"{type(exc).__name__} {JSON_RPC_ERROR_CODE_MAP[type(exc)]}: {exc.message}"
    if any(isinstance(exc, _TIMEOUTS) for exc in chain):
        return "timed out"
    for exc in chain:
        if isinstance(exc, httpx.HTTPStatusError):
            return f"HTTP {exc.response.status_code} {exc.response.reason_phrase}".rstrip()
    for exc in chain:
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, ConnectionResetError):
            return "connection reset"
    for exc in chain:
        if isinstance(exc, httpx.TransportError):
            return describe_exception(exc)
    return describe_exception(error)


# -- attempts and the final failure ----------------------------------------------------------


class Attempt(BaseModel):
    """One failed try of one instance (``attempt`` counts from 1 per instance)."""

    model_config = ConfigDict(frozen=True)

    url: str
    attempt: int
    reason: str
    transient: bool


class CallFailed(Exception):
    """Every option is exhausted; ``attempts`` lists each failed try, in order."""

    def __init__(self, attempts: Sequence[Attempt]) -> None:
        self.attempts = list(attempts)
        super().__init__(self._summary())

    @property
    def transient(self) -> bool:
        """True when every failure was transient: trying again later may succeed."""
        return all(a.transient for a in self.attempts)

    def _summary(self) -> str:
        if not self.attempts:
            return "no instance to call"
        by_url: dict[str, list[str]] = {}
        for attempt in self.attempts:
            by_url.setdefault(attempt.url, []).append(attempt.reason)
        parts = []
        for url, reasons in by_url.items():
            counted = {reason: reasons.count(reason) for reason in reasons}  # keeps first-seen order
            parts.append(f"{url}: " + ", ".join(r if n == 1 else f"{r} ×{n}" for r, n in counted.items()))
        return "; ".join(parts)


# -- retry policy ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Tries per instance, per-try timeout, and exponential backoff with full jitter.

    The n-th retry (n from 0) waits ``uniform(0, min(max_delay, base_delay * 2**n))``: full jitter
    spreads the retries of many callers hit by the same outage instead of synchronising them.
    """

    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 5.0
    timeout: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_delay <= 0 or self.max_delay <= 0 or self.timeout <= 0:
            raise ValueError("a retry policy needs attempts >= 1 and positive delays and timeout")

    @classmethod
    def from_settings(cls, settings: MeshSettings, rng: random.Random | None = None) -> RetryPolicy:
        return cls(
            attempts=settings.step_retries + 1,
            base_delay=settings.retry_backoff_seconds,
            max_delay=settings.retry_backoff_max_seconds,
            timeout=settings.step_timeout_seconds,
            rng=rng or random.Random(),
        )

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry ``retry`` (0-based)."""
        return min(self.max_delay, self.base_delay * 2 ** min(retry, 64))

    def delay(self, retry: int) -> float:
        return self.rng.uniform(0, self.ceiling(retry))


# -- circuit breakers ------------------------------------------------------------------------


class BreakerState(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"  # the reset time has passed: one probe call may go through


class BreakerStatus(BaseModel):
    """One instance's circuit, for display (``mesh`` shows the board)."""

    url: str
    state: BreakerState
    failures: int
    probing: bool
    probe_in_seconds: float | None  # open: how long until a probe is let through


class CircuitBreaker:
    """One instance's circuit: opens after ``failures`` consecutive failures, probes after ``reset_seconds``.

    Half-open lets exactly one call through; callers arriving while it runs are refused. Its
    success closes the circuit, its failure re-opens it for another ``reset_seconds``. ``allow``
    *claims* the probe, so a caller that got ``True`` must end with ``record_success``,
    ``record_failure`` or ``release``. Not thread-safe; safe between tasks of one event loop (no
    method awaits).
    """

    def __init__(self, failures: int, reset_seconds: float, clock: Clock = time.monotonic) -> None:
        if failures < 1 or reset_seconds <= 0:
            raise ValueError("a breaker needs failures >= 1 and a positive reset time")
        self.threshold = failures
        self.reset_seconds = reset_seconds
        self._clock = clock
        self.failures = 0  # consecutive
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._probing or self._clock() - self._opened_at >= self.reset_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def available(self) -> bool:
        """Would ``allow`` say yes now? (Does not claim the probe: for choosing among instances.)"""
        state = self.state
        return state is BreakerState.CLOSED or (state is BreakerState.HALF_OPEN and not self._probing)

    def allow(self) -> bool:
        if not self.available:
            return False
        if self.state is BreakerState.HALF_OPEN:
            self._probing = True
        return True

    def record_success(self) -> None:
        self.failures = 0
        self._opened_at = None
        self._probing = False

    def record_failure(self) -> None:
        self.failures += 1
        if self._opened_at is not None or self.failures >= self.threshold:
            self._opened_at = self._clock()  # a failed probe re-opens for a full reset period
        self._probing = False

    def release(self) -> None:
        """The probe ended without a verdict (cancelled): let the next caller probe."""
        self._probing = False

    def status(self, url: str) -> BreakerStatus:
        wait = None
        if self.state is BreakerState.OPEN and self._opened_at is not None:
            wait = max(0.0, self.reset_seconds - (self._clock() - self._opened_at))
        return BreakerStatus(url=url, state=self.state, failures=self.failures, probing=self._probing,
                             probe_in_seconds=wait)


class Breakers:
    """The circuits of every instance called, keyed by base URL (created on first use)."""

    def __init__(self, failures: int, reset_seconds: float, clock: Clock = time.monotonic) -> None:
        self.failures = failures
        self.reset_seconds = reset_seconds
        self.clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    @classmethod
    def from_settings(cls, settings: MeshSettings, clock: Clock = time.monotonic) -> Breakers:
        return cls(settings.breaker_failures, settings.breaker_reset_seconds, clock)

    def breaker(self, url: str) -> CircuitBreaker:
        key = url.rstrip("/")
        found = self._breakers.get(key)
        if found is None:
            found = self._breakers[key] = CircuitBreaker(self.failures, self.reset_seconds, self.clock)
        return found

    def allow(self, url: str) -> bool:
        """May a call go to ``url`` now? Claims the half-open probe (see :class:`CircuitBreaker`)."""
        return self.breaker(url).allow()

    def available(self, url: str) -> bool:
        """Would ``allow`` say yes? Claims nothing: use it to rank or filter instances."""
        return self.breaker(url).available

    def record_success(self, url: str) -> None:
        self.breaker(url).record_success()

    def record_failure(self, url: str) -> None:
        self.breaker(url).record_failure()

    def release(self, url: str) -> None:
        self.breaker(url).release()

    def state(self, url: str) -> BreakerState:
        return self.breaker(url).state

    def snapshot(self) -> list[BreakerStatus]:
        return [breaker.status(url) for url, breaker in sorted(self._breakers.items())]


# -- calling ---------------------------------------------------------------------------------


async def _report(on_attempt: OnAttempt | None, attempt: Attempt) -> None:
    if on_attempt is not None:
        result = on_attempt(attempt)
        if inspect.isawaitable(result):
            await result


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    breakers: Breakers,
    url: str,
    on_attempt: OnAttempt | None = None,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """``call()`` on one instance, each try bounded by ``policy.timeout``, transient failures retried.

    The instance's breaker is asked before every try and told every outcome: a transient failure
    counts against it; any answer, even an error answer such as invalid arguments, shows the
    instance is up. A non-transient error is not retried. ``on_attempt`` sees each failed try as it
    happens. Raises :class:`CallFailed` with every failed try when it gives up.
    """
    failed: list[Attempt] = []
    for number in range(1, policy.attempts + 1):
        if not breakers.allow(url):
            failed.append(attempt := Attempt(url=url, attempt=number, reason=CIRCUIT_OPEN, transient=True))
            await _report(on_attempt, attempt)
            break
        try:
            async with asyncio.timeout(policy.timeout) as deadline:
                result = await call()
        except Exception as error:
            transient = is_transient(error)
            reason = f"no answer in {policy.timeout:g} s" if deadline.expired() else describe_failure(error)
            if transient:
                breakers.record_failure(url)
            else:
                breakers.record_success(url)
            failed.append(attempt := Attempt(url=url, attempt=number, reason=reason, transient=transient))
            await _report(on_attempt, attempt)
            if not transient:
                raise CallFailed(failed) from error
            if number < policy.attempts and breakers.state(url) is BreakerState.CLOSED:
                await sleep(policy.delay(number - 1))
            continue
        except BaseException:  # cancelled: no verdict on the instance
            breakers.release(url)
            raise
        breakers.record_success(url)
        return result
    raise CallFailed(failed)


async def call_with_failover(
    urls: Sequence[str],
    call_for_url: Callable[[str], Awaitable[T]],
    policy: RetryPolicy,
    breakers: Breakers,
    *,
    on_attempt: OnAttempt | None = None,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Try each instance in order (retries included) until one answers.

    Instances whose circuit is open are skipped (recorded as a ``circuit open`` attempt). A
    non-transient failure ends the fail-over at once: another instance would give the same answer.
    """
    failed: list[Attempt] = []
    for url in urls:
        if not breakers.available(url):
            failed.append(attempt := Attempt(url=url, attempt=1, reason=CIRCUIT_OPEN, transient=True))
            await _report(on_attempt, attempt)
            continue
        try:
            return await call_with_retries(
                lambda url=url: call_for_url(url), policy,
                breakers=breakers, url=url, on_attempt=on_attempt, sleep=sleep,
            )
        except CallFailed as failure:
            failed.extend(failure.attempts)
            if not failure.transient:
                raise CallFailed(failed) from failure
    raise CallFailed(failed)
