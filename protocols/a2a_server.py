"""The A2A 1.0 server of one agent: request handler, persistent stores and Starlette routes.

JSON-RPC is served at ``/`` and HTTP+JSON under ``/a2a``; the card at
``/.well-known/agent-card.json``. Tasks and push-notification configs live in one SQLite file
per agent (``$MESH_HOME/agents/<name>/a2a.db``) unless memory is asked for.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import httpx
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import (
    BasePushNotificationSender,
    DatabasePushNotificationConfigStore,
    DatabaseTaskStore,
    InMemoryPushNotificationConfigStore,
    InMemoryTaskStore,
    PushNotificationConfigStore,
    TaskStore,
)
from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.types import AgentCard, Message, SendMessageRequest, Task
from a2a.utils.push_url_validator import validate_push_notification_url
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.routing import BaseRoute

from agents.definition import Agent
from agents.settings import MeshSettings
from protocols.a2a_executor import MeshAgentExecutor
from protocols.a2a_recovery import resume_interrupted_tasks
from protocols.cards import JSONRPC_PATH, REST_PATH

__all__ = ["A2AServer", "MeshRequestHandler", "build_a2a_server"]

log = logging.getLogger("agents.a2a")
CARD_CACHE_CONTROL = "public, max-age=60"


@dataclass
class A2AServer:
    """Everything the A2A face owns; ``start``/``stop`` run in the host app's lifespan."""

    card: AgentCard
    handler: DefaultRequestHandler
    card_routes: list[BaseRoute]
    rpc_routes: list[BaseRoute]
    rest_routes: list[BaseRoute]
    engine: AsyncEngine | None
    task_store: TaskStore
    push_store: PushNotificationConfigStore
    push_client: httpx.AsyncClient

    async def start(self) -> None:
        """Create tables, then resume the tasks a crash cut off."""
        if isinstance(self.task_store, DatabaseTaskStore):
            await self.task_store.initialize()
            await resume_interrupted_tasks(self.task_store, self.handler)
        if isinstance(self.push_store, DatabasePushNotificationConfigStore):
            await self.push_store.initialize()

    async def ready(self) -> bool:
        """True when the task store answers."""
        if self.engine is None:
            return True
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            log.warning("task store is not answering", exc_info=True)
            return False
        return True

    async def stop(self) -> None:
        await self.handler.aclose()
        await self.push_client.aclose()
        if self.engine is not None:
            await self.engine.dispose()


def _database_url(agent: Agent, settings: MeshSettings) -> str:
    if settings.database_url:
        return settings.database_url
    path = settings.state_dir("agents", agent.name) / "a2a.db"
    return f"sqlite+aiosqlite:///{path.resolve()}"


def _create_engine(url: str) -> AsyncEngine:
    """The task-store engine; SQLite files get a write-ahead log and ``synchronous=NORMAL``.

    a2a-sdk commits the task after every event, three times per ``SendMessage`` that returns a
    completed task. SQLite's default rollback journal fsyncs the journal and the database file on
    each commit: measured ~25 ms of server CPU per request on loopback (``bench/hop.py``), ten times
    the SDK's own cost. With WAL and ``synchronous=NORMAL`` a commit is an append to the log and
    fsyncs happen at checkpoints only; a committed task still survives a crash of the process
    (only an OS crash or power loss can drop the last commits), which is what a task store needs.
    """
    engine = create_async_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


class MeshRequestHandler(DefaultRequestHandler):
    """a2a-sdk's request handler, inferring the contextId of a follow-up that names only its task.

    The spec says the agent infers contextId from the task when a message gives only ``taskId``;
    a2a-sdk 1.3 instead builds the request with a freshly generated contextId
    (a2aproject/a2a-python#1206). The executor's events then carry a context that is not the task's,
    and the SDK's task manager refuses the next follow-up that adds to the history ("Context in
    event doesn't match TaskManager"): the A2A TCK's history scenario, and any taskId-only answer to
    an ``input-required`` task after a restart, failed that way. Filling in the task's contextId
    before the SDK sees the message fixes the ids everywhere (request, events, stored history).
    """

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        await self._infer_context_id(params, context)
        return await super().on_message_send(params, context)

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        await self._infer_context_id(params, context)
        stream = super().on_message_send_stream(params, context)
        try:
            async for event in stream:
                yield event
        finally:
            await stream.aclose()

    async def _infer_context_id(self, params: SendMessageRequest | None, context: ServerCallContext) -> None:
        message = params.message if params is not None else None
        if message is None or not message.task_id or message.context_id:
            return
        task = await self.task_store.get(message.task_id, context)
        if task is not None:  # an unknown task is the SDK's to report (TaskNotFound)
            message.context_id = task.context_id


async def _allow_any_url(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def build_a2a_server(agent: Agent, card: AgentCard, settings: MeshSettings) -> A2AServer:
    engine: AsyncEngine | None = None
    task_store: TaskStore
    push_store: PushNotificationConfigStore
    if settings.task_store == "memory":
        task_store = InMemoryTaskStore()
        push_store = InMemoryPushNotificationConfigStore()
    else:
        engine = _create_engine(_database_url(agent, settings))
        task_store = DatabaseTaskStore(engine)
        push_store = DatabasePushNotificationConfigStore(engine)
    validator = _allow_any_url if settings.push_allow_private else validate_push_notification_url
    push_client = httpx.AsyncClient(timeout=settings.push_timeout_seconds)
    handler = MeshRequestHandler(
        agent_executor=MeshAgentExecutor(agent),
        task_store=task_store,
        agent_card=card,
        push_config_store=push_store,
        push_sender=BasePushNotificationSender(push_client, push_store, push_url_validator=validator),
        push_url_validator=validator,
    )
    return A2AServer(
        card=card,
        handler=handler,
        card_routes=list(create_agent_card_routes(card, cache_control=CARD_CACHE_CONTROL)),
        rpc_routes=list(create_jsonrpc_routes(handler, rpc_url=JSONRPC_PATH)),
        rest_routes=list(create_rest_routes(handler, path_prefix=REST_PATH)),
        engine=engine,
        task_store=task_store,
        push_store=push_store,
        push_client=push_client,
    )
