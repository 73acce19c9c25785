"""Write-through caches in front of the SDK's database stores, for a process that owns its file.

a2a-sdk reads the task back after each event it saves, and looks up push configs for every event;
through the SQLAlchemy stores that was ~6x the CPU of the in-memory store per SendMessage
(bench/hop.py). Every write still goes to the database before it returns, so a crash loses
nothing; reads of recent tasks, and the "no push config for this task" answer, come from memory.

Only valid while this process is the database's only writer: the runtime uses them for its own
SQLite file, never for a shared ``MESH_DATABASE_URL``.
"""

from __future__ import annotations

from collections import OrderedDict

from a2a.server.context import ServerCallContext
from a2a.server.tasks import DatabasePushNotificationConfigStore, DatabaseTaskStore, PushNotificationConfigStore, TaskStore
from a2a.types import ListTasksRequest, ListTasksResponse, Task, TaskPushNotificationConfig

__all__ = ["CachedPushConfigStore", "CachedTaskStore"]


class CachedTaskStore(TaskStore):
    """The most recently used tasks in memory (copies: callers may mutate what they get)."""

    def __init__(self, inner: DatabaseTaskStore, capacity: int = 2048) -> None:
        self.inner = inner
        self.capacity = capacity
        self._tasks: OrderedDict[tuple[str, str], Task] = OrderedDict()

    async def initialize(self) -> None:
        await self.inner.initialize()

    def _key(self, task_id: str, context: ServerCallContext) -> tuple[str, str]:
        return self.inner.owner_resolver(context), task_id

    def _remember(self, key: tuple[str, str], task: Task) -> None:
        copy = Task()
        copy.CopyFrom(task)
        self._tasks[key] = copy
        self._tasks.move_to_end(key)
        while len(self._tasks) > self.capacity:
            self._tasks.popitem(last=False)

    async def save(self, task: Task, context: ServerCallContext) -> None:
        await self.inner.save(task, context)
        self._remember(self._key(task.id, context), task)

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        key = self._key(task_id, context)
        cached = self._tasks.get(key)
        if cached is None:
            task = await self.inner.get(task_id, context)
            if task is None:
                return None
            self._remember(key, task)
            return task
        self._tasks.move_to_end(key)
        copy = Task()
        copy.CopyFrom(cached)
        return copy

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        return await self.inner.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        await self.inner.delete(task_id, context)
        self._tasks.pop(self._key(task_id, context), None)


class CachedPushConfigStore(PushNotificationConfigStore):
    """Remembers which tasks have no push config, so dispatch skips the database for them."""

    def __init__(self, inner: DatabasePushNotificationConfigStore, capacity: int = 10_000) -> None:
        self.inner = inner
        self.capacity = capacity
        self._without_configs: OrderedDict[str, None] = OrderedDict()
        self._writes = 0  # a lookup that raced a write must not cache its (stale) empty answer

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def set_info(
        self, task_id: str, notification_config: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig | None:
        self._writes += 1
        self._without_configs.pop(task_id, None)
        return await self.inner.set_info(task_id, notification_config, context)

    async def get_info(self, task_id: str, context: ServerCallContext) -> list[TaskPushNotificationConfig]:
        return await self.inner.get_info(task_id, context)

    async def get_info_for_dispatch(self, task_id: str) -> list[TaskPushNotificationConfig]:
        if task_id in self._without_configs:
            return []
        writes = self._writes
        configs = await self.inner.get_info_for_dispatch(task_id)
        if not configs and writes == self._writes:
            self._without_configs[task_id] = None
            while len(self._without_configs) > self.capacity:
                self._without_configs.popitem(last=False)
        return configs

    async def delete_info(self, task_id: str, context: ServerCallContext, config_id: str | None = None) -> None:
        await self.inner.delete_info(task_id, context, config_id)
