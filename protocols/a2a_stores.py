"""A cache in front of the SDK's push-config store, for a process that owns its database file.

a2a-sdk looks up the push configs of a task for every event it saves: three SQLAlchemy queries per
SendMessage for tasks that have none, the common case. Writes still go to the database; which
tasks have configs at all is known in memory.

Only valid while this process is the database's only writer: the runtime uses it for its own
SQLite file, never for a shared ``MESH_DATABASE_URL``.
"""

from __future__ import annotations

from a2a.server.context import ServerCallContext
from a2a.server.tasks import DatabasePushNotificationConfigStore, PushNotificationConfigStore
from a2a.types import TaskPushNotificationConfig
from sqlalchemy import select

__all__ = ["CachedPushConfigStore"]


class CachedPushConfigStore(PushNotificationConfigStore):
    """Knows which tasks have push configs, so dispatch for every other task skips the database.

    The set is read from the table at start and kept exact on every write (this process is the
    database's only writer); the configs themselves are always read from the database.
    """

    def __init__(self, inner: DatabasePushNotificationConfigStore) -> None:
        self.inner = inner
        self._with_configs: set[str] = set()

    async def initialize(self) -> None:
        await self.inner.initialize()
        async with self.inner.async_session_maker() as session:
            rows = await session.execute(select(self.inner.config_model.task_id).distinct())
            self._with_configs = {task_id for (task_id,) in rows}

    async def set_info(
        self, task_id: str, notification_config: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig | None:
        self._with_configs.add(task_id)  # before the write: a dispatch racing it looks in the database
        return await self.inner.set_info(task_id, notification_config, context)

    async def get_info(self, task_id: str, context: ServerCallContext) -> list[TaskPushNotificationConfig]:
        return await self.inner.get_info(task_id, context)

    async def get_info_for_dispatch(self, task_id: str) -> list[TaskPushNotificationConfig]:
        if task_id not in self._with_configs:
            return []
        return await self.inner.get_info_for_dispatch(task_id)

    async def delete_info(self, task_id: str, context: ServerCallContext, config_id: str | None = None) -> None:
        await self.inner.delete_info(task_id, context, config_id)
        if not await self.inner.get_info_for_dispatch(task_id):
            self._with_configs.discard(task_id)
