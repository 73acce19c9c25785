"""The A2A 1.0 server of one agent: request handler, persistent stores and Starlette routes.

JSON-RPC is served at ``/`` and HTTP+JSON under ``/a2a``; the card at
``/.well-known/agent-card.json``. Tasks and push-notification configs live in one SQLite file
per agent (``$MESH_HOME/agents/<name>/a2a.db``) unless memory is asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import (
    DatabasePushNotificationConfigStore,
    DatabaseTaskStore,
    InMemoryPushNotificationConfigStore,
    InMemoryTaskStore,
    PushNotificationConfigStore,
    TaskStore,
)
from a2a.types import AgentCard
from a2a.utils.errors import InvalidParamsError
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.routing import BaseRoute

from agents.definition import Agent
from agents.settings import MeshSettings
from protocols.a2a_executor import MeshAgentExecutor
from protocols.a2a_handler import MeshPushSender, MeshRequestHandler
from protocols.a2a_recovery import resume_interrupted_tasks
from protocols.a2a_stores import CachedPushConfigStore
from protocols.sqlite_task_store import SqliteTaskStore
from protocols.url_guard import UrlGuard, UrlRefused, guarded_transport
from protocols.cards import JSONRPC_PATH, REST_PATH
from tracing.conventions import agent_attributes
from tracing.propagation import traced_httpx

__all__ = ["A2AServer", "build_a2a_server"]

log = logging.getLogger("agents.a2a")
CARD_CACHE_CONTROL = "public, max-age=60"


@dataclass
class A2AServer:
    """Everything the A2A face owns; ``start``/``stop`` run in the host app's lifespan."""

    card: AgentCard
    handler: MeshRequestHandler
    card_routes: list[BaseRoute]
    rpc_routes: list[BaseRoute]
    rest_routes: list[BaseRoute]
    engine: AsyncEngine | None
    task_store: TaskStore
    push_store: PushNotificationConfigStore
    push_client: httpx.AsyncClient

    async def start(self) -> None:
        """Create tables; on the agent's own SQLite file, resume the tasks a crash cut off.

        Never on a shared ``MESH_DATABASE_URL``: a task ``working`` there may be another replica's.
        """
        for store in (self.task_store, self.push_store):
            initialize = getattr(store, "initialize", None)
            if initialize is not None:
                await initialize()
        if isinstance(self.task_store, SqliteTaskStore):
            await resume_interrupted_tasks(self.task_store, self.handler)

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
        if isinstance(self.task_store, SqliteTaskStore):
            await self.task_store.close()
        if self.engine is not None:
            await self.engine.dispose()


def _database_path(agent: Agent, settings: MeshSettings) -> Path:
    return (settings.state_dir("agents", agent.name) / "a2a.db").resolve()


def _create_engine(url: str) -> AsyncEngine:
    """The task-store engine; SQLite files get a write-ahead log and ``synchronous=NORMAL``.

    a2a-sdk commits the task after every event, three times per ``SendMessage`` that returns a
    completed task. SQLite's default rollback journal fsyncs the journal and the database file on
    each commit; with WAL and ``synchronous=NORMAL`` a commit is an append to the log and fsyncs
    happen at checkpoints only: measured, the store's wall time per save/get/save went from
    ~15 ms to ~9 ms (its CPU, ~9 ms of SQLAlchemy ORM work, is unchanged; see ``bench/README.md``).
    A committed task still survives a crash of the process (only an OS crash or power loss can
    drop the last commits), which is what a task store needs.
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


def _push_config_validator(guard: UrlGuard) -> Callable[[str], Awaitable[bool]]:
    """The SDK's push_url_validator for new configs: a refusal is InvalidParams saying what is wrong.

    A name that does not resolve yet is accepted: deliveries resolve and check it each time.

    The SDK's own message is only "Invalid push notification URL"; raising our error keeps the reason.
    """

    async def validate(url: str) -> bool:
        try:
            await guard.check(url, unresolvable_ok=True)  # each delivery is checked (and pinned) again
        except UrlRefused as exc:
            raise InvalidParamsError(message=f"push notification URL refused: {exc}") from None
        return True

    return validate


def build_a2a_server(agent: Agent, card: AgentCard, settings: MeshSettings) -> A2AServer:
    engine: AsyncEngine | None = None
    task_store: TaskStore
    push_store: PushNotificationConfigStore
    if settings.task_store == "memory":
        task_store = InMemoryTaskStore()
        push_store = InMemoryPushNotificationConfigStore()
    elif settings.database_url:  # shared by replicas: the SDK's stores, no cache, no recovery
        engine = _create_engine(settings.database_url)
        task_store, push_store = DatabaseTaskStore(engine), DatabasePushNotificationConfigStore(engine)
    else:  # the agent's own SQLite file: our task store; push configs cached (we are the only writer)
        path = _database_path(agent, settings)
        engine = _create_engine(f"sqlite+aiosqlite:///{path}")
        task_store = SqliteTaskStore(path)
        push_store = CachedPushConfigStore(DatabasePushNotificationConfigStore(engine))
    # Configs are checked when set; deliveries connect only to addresses the guard allows (no rebinding).
    guard = UrlGuard.from_settings(settings, push=True)
    push_client = traced_httpx(timeout=settings.push_timeout_seconds, transport=guarded_transport(guard))
    handler = MeshRequestHandler(
        agent_executor=MeshAgentExecutor(agent),
        task_store=task_store,
        agent_card=card,
        push_config_store=push_store,
        push_sender=MeshPushSender(push_client, push_store, push_url_validator=guard.allows),
        push_url_validator=_push_config_validator(guard),
        agent_attributes=agent_attributes(agent.name, agent.version, agent.description),
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
