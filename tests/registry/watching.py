"""Read the registry's ``/v1/watch`` stream as a coordinator would: SSE over a real connection."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from protocols.sse import sse_events
from registry.models import Event

__all__ = ["Received", "Watch", "watching"]


@dataclass(frozen=True, slots=True)
class Received:
    id: int  # the SSE id: what a client sends back as Last-Event-ID
    type: str  # the SSE event name
    event: Event  # the SSE data, parsed
    at: float  # time.monotonic() on arrival, for latency bounds


class Watch:
    """The events of one open stream, read in the background as they arrive."""

    def __init__(self, response: httpx.Response) -> None:
        self._queue: asyncio.Queue[Received | BaseException] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read(response))

    async def next(self, timeout: float = 5.0) -> Received:
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            raise AssertionError(f"no event on the watch stream within {timeout} s") from None
        if isinstance(item, BaseException):
            raise AssertionError(f"the watch stream ended: {item!r}")
        return item

    async def take(self, count: int, timeout: float = 5.0) -> list[Received]:
        return [await self.next(timeout) for _ in range(count)]

    async def nothing_more(self, seconds: float) -> None:
        """Assert that no event arrives for ``seconds``: no duplicate, nothing unexpected."""
        with contextlib.suppress(TimeoutError):
            item = await asyncio.wait_for(self._queue.get(), seconds)
            raise AssertionError(f"unexpected on the watch stream: {item!r}")

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _read(self, response: httpx.Response) -> None:
        try:
            async for sse in sse_events(response.aiter_lines()):
                event = Event.model_validate_json(sse.data)
                self._queue.put_nowait(Received(int(sse.id or 0), sse.event, event, time.monotonic()))
            self._queue.put_nowait(EOFError("the registry closed the stream"))
        except Exception as exc:
            self._queue.put_nowait(exc)


@contextlib.asynccontextmanager
async def watching(base_url: str, *, since: int | None = None, last_event_id: int | None = None) -> AsyncIterator[Watch]:
    """An open ``/v1/watch`` stream; ``since`` as the query parameter, ``last_event_id`` as the header."""
    params = {"since": str(since)} if since is not None else {}
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(5.0, read=None)) as http:
        async with http.stream("GET", "/v1/watch", params=params, headers=headers) as response:
            assert response.status_code == 200, (await response.aread()).decode()
            assert response.headers["content-type"].startswith("text/event-stream")
            watch = Watch(response)
            try:
                yield watch
            finally:
                await watch.close()
