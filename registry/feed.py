"""The change feed behind ``/v1/watch``: the store's event log, fanned out to live watchers.

Writers of this process poke the feed after each commit; on PostgreSQL a ``LISTEN`` connection
pokes it when another replica commits; a slow periodic poke catches anything missed. Each poke
reads the log past the last delivered sequence number, so every watcher sees every change once,
in order, and a watcher that reconnects with ``Last-Event-ID`` resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine

import asyncpg

from registry.models import Event
from registry.store import NOTIFY_CHANNEL, RegistryStore, StoreError

__all__ = ["ChangeFeed"]

log = logging.getLogger("registry.feed")
_QUEUE_LIMIT = 1000


class ChangeFeed:
    def __init__(self, store: RegistryStore, poll_interval: float = 2.0) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self.last_seq = 0
        self._watchers: set[asyncio.Queue[Event | None]] = set()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: object | None = None
        self._listener_warned = False

    async def start(self) -> None:
        self.last_seq = await self.store.last_seq()
        self.store.on_change.append(self.poke)
        self._spawn(self._poll())
        if self.store.dialect == "postgresql":
            await self._listen()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()  # type: ignore[attr-defined]
        for queue in self._watchers:
            queue.put_nowait(None)

    async def poke(self) -> None:
        """Deliver every logged event past the last one delivered."""
        async with self._lock:
            while True:
                batch = await self.store.events_since(self.last_seq)
                if not batch:
                    return
                for event in batch:
                    for queue in list(self._watchers):
                        if queue.full():  # a watcher that stopped reading is dropped, not waited for
                            self._watchers.discard(queue)
                            queue.put_nowait(None)
                        else:
                            queue.put_nowait(event)
                self.last_seq = batch[-1].seq

    async def watch(self, since: int | None = None) -> AsyncIterator[Event]:
        """Events after ``since`` (replayed from the log), then live ones, until the feed stops."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(_QUEUE_LIMIT + 1)
        self._watchers.add(queue)
        try:
            delivered = since if since is not None else self.last_seq
            if since is not None:
                while True:
                    backlog = await self.store.events_since(delivered)
                    if not backlog:
                        break
                    for event in backlog:
                        yield event
                    delivered = backlog[-1].seq
            while True:
                event = await queue.get()
                if event is None:
                    return
                if event.seq > delivered:
                    delivered = event.seq
                    yield event
        finally:
            self._watchers.discard(queue)

    def _spawn(self, coro: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            if self.store.dialect == "postgresql" and self._listener_lost():
                await self._listen()  # e.g. after a PostgreSQL restart: until then the poll delivers
            try:
                await self.poke()
            except StoreError as exc:
                log.warning("change feed: %s", exc)

    def _listener_lost(self) -> bool:
        return self._listener is None or self._listener.is_closed()  # type: ignore[attr-defined]

    async def _listen(self) -> None:
        dsn = self.store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            connection = await asyncpg.connect(dsn, timeout=5)
        except Exception as exc:  # the periodic poke still delivers, only later
            if self._listener is None or not self._listener_warned:
                log.warning("change feed: LISTEN unavailable (%s); polling every %ss", exc, self.poll_interval)
            self._listener_warned = True
            return
        self._listener_warned = False

        def notified(*_: object) -> None:
            self._spawn(self._safe_poke())

        await connection.add_listener(NOTIFY_CHANNEL, notified)
        self._listener = connection

    async def _safe_poke(self) -> None:
        try:
            await self.poke()
        except StoreError as exc:
            log.warning("change feed: %s", exc)
