"""Stores beside the SDK's: a push-config cache, and the memory of idempotent deliveries.

``CachedPushConfigStore``: a2a-sdk looks up the push configs of a task for every event it saves:
three SQLAlchemy queries per SendMessage for tasks that have none, the common case. Writes still go
to the database; which tasks have configs at all is known in memory. Only valid while this process
is the database's only writer: the runtime uses it for its own SQLite file, never for a shared
``MESH_DATABASE_URL``.

``IdempotentTaskStore``: the task store as the request handler sees it. It notes which task each
idempotent first message started (see ``docs/runtime.md``, "Idempotent delivery"), so a re-sent
message is answered with that task instead of running the skill again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from a2a.server.context import ServerCallContext
from a2a.server.owner_resolver import OwnerResolver, resolve_user_scope
from a2a.server.tasks import DatabasePushNotificationConfigStore, PushNotificationConfigStore, TaskStore
from a2a.types import ListTasksRequest, ListTasksResponse, Message, Role, Task, TaskPushNotificationConfig
from sqlalchemy import select

from protocols.mesh_extensions import IDEMPOTENT_DELIVERY

__all__ = [
    "IDEMPOTENT_DELIVERY",
    "CachedPushConfigStore",
    "Delivery",
    "DeliveryIndex",
    "IdempotentTaskStore",
    "delivery_id",
    "is_idempotent",
]

# A client lists this in ``Message.extensions`` to ask that a re-send of the message (same
# messageId, same owner) be answered with the task it started instead of being executed again.
DELIVERY_MEMORY = 10_000  # messageIds remembered per process when the task store cannot keep them
MessageKey = tuple[str, str]  # (task owner, messageId)


def is_idempotent(message: Message) -> bool:
    return IDEMPOTENT_DELIVERY in message.extensions and bool(message.message_id)


def delivery_id(task: Task) -> str | None:
    """The messageId of the idempotent message that started ``task`` (its first user message), if any."""
    for message in task.history:
        if message.role == Role.ROLE_USER:
            return message.message_id if is_idempotent(message) else None
    return None


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


@runtime_checkable
class DeliveryIndex(Protocol):
    """A task store that itself keeps, durably, which task each idempotent message started."""

    async def task_for_message(self, message_id: str, context: ServerCallContext) -> str | None: ...


@dataclass(eq=False)
class Delivery:
    """An idempotent first message this process is handling now; duplicates wait on it."""

    key: MessageKey
    task_id: str | None = None  # set when its task is first saved
    reply: Message | None = None  # set when it was answered with a bare message
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # task saved, or handling ended
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class IdempotentTaskStore(TaskStore):
    """Wraps the agent's task store: remembers messageId → task, and wakes duplicates waiting for it.

    With a :class:`DeliveryIndex` store (our ``SqliteTaskStore``) the mapping is written by the
    store, in the same commit as the task, and survives a restart. With any other store (memory, or
    the SDK's ``DatabaseTaskStore`` behind ``MESH_DATABASE_URL``) it is kept in this process only,
    for the last ``capacity`` messages: lost on restart, and not shared between replicas.
    """

    def __init__(self, inner: TaskStore, capacity: int = DELIVERY_MEMORY) -> None:
        self.inner = inner
        self.owner_resolver: OwnerResolver = getattr(inner, "owner_resolver", resolve_user_scope)
        self.capacity = capacity
        self._durable = isinstance(inner, DeliveryIndex)
        self._recent: OrderedDict[MessageKey, str] = OrderedDict()
        self._pending: dict[MessageKey, Delivery] = {}

    def key(self, message_id: str, context: ServerCallContext) -> MessageKey:
        return self.owner_resolver(context), message_id

    async def accepted_task(self, key: MessageKey, context: ServerCallContext) -> str | None:
        """The id of the task the message of ``key`` started, if it was accepted before."""
        if isinstance(self.inner, DeliveryIndex):
            return await self.inner.task_for_message(key[1], context)
        return self._recent.get(key)

    def pending(self, key: MessageKey) -> Delivery | None:
        return self._pending.get(key)

    def begin(self, key: MessageKey) -> Delivery:
        delivery = self._pending[key] = Delivery(key)
        return delivery

    def end(self, delivery: Delivery) -> None:
        if self._pending.get(delivery.key) is delivery:
            del self._pending[delivery.key]
        delivery.ended.set()
        delivery.changed.set()

    async def save(self, task: Task, context: ServerCallContext) -> None:
        await self.inner.save(task, context)
        message_id = delivery_id(task)
        if message_id is None:
            return
        key = self.key(message_id, context)
        if not self._durable and self._recent.setdefault(key, task.id) == task.id:
            self._recent.move_to_end(key)
            while len(self._recent) > self.capacity:
                self._recent.popitem(last=False)
        delivery = self._pending.get(key)
        if delivery is not None and delivery.task_id is None:
            delivery.task_id = task.id
            delivery.changed.set()

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        return await self.inner.get(task_id, context)

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        return await self.inner.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        # A remembered id of a deleted task is harmless: the handler finds no task and runs the message.
        await self.inner.delete(task_id, context)
