"""The A2A 1.0 server of one agent: request handler, persistent stores and Starlette routes.

JSON-RPC is served at ``/`` and HTTP+JSON under ``/a2a``; the card at
``/.well-known/agent-card.json``. Tasks and push-notification configs live in one SQLite file
per agent (``$MESH_HOME/agents/<name>/a2a.db``) unless memory is asked for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import httpx
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import (
    BasePushNotificationSender,
    DatabasePushNotificationConfigStore,
    DatabaseTaskStore,
    InMemoryPushNotificationConfigStore,
    InMemoryTaskStore,
)
from a2a.types import AgentCard
from a2a.utils.push_url_validator import validate_push_notification_url
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.routing import BaseRoute

from agents.definition import Agent
from agents.settings import MeshSettings
from protocols.a2a_executor import MeshAgentExecutor
from protocols.a2a_recovery import resume_interrupted_tasks
from protocols.cards import JSONRPC_PATH, REST_PATH

__all__ = ["A2AServer", "build_a2a_server"]

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
    stores: list[object] = field(default_factory=list)
    push_client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        for store in self.stores:
            initialize = getattr(store, "initialize", None)
            if initialize is not None:
                await initialize()
        task_store = self.stores[0] if self.stores else None
        if isinstance(task_store, DatabaseTaskStore):
            await resume_interrupted_tasks(task_store, self.handler)

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
        if self.push_client is not None:
            await self.push_client.aclose()
        if self.engine is not None:
            await self.engine.dispose()


def _database_url(agent: Agent, settings: MeshSettings) -> str:
    if settings.database_url:
        return settings.database_url
    path = settings.state_dir("agents", agent.name) / "a2a.db"
    return f"sqlite+aiosqlite:///{path.resolve()}"


async def _allow_any_url(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def build_a2a_server(agent: Agent, card: AgentCard, settings: MeshSettings) -> A2AServer:
    engine: AsyncEngine | None = None
    if settings.task_store == "memory":
        task_store: object = InMemoryTaskStore()
        push_store: object = InMemoryPushNotificationConfigStore()
    else:
        engine = create_async_engine(_database_url(agent, settings))
        task_store = DatabaseTaskStore(engine)
        push_store = DatabasePushNotificationConfigStore(engine)
    validator = _allow_any_url if settings.push_allow_private else validate_push_notification_url
    push_client = httpx.AsyncClient(timeout=settings.push_timeout_seconds)
    handler = DefaultRequestHandler(
        agent_executor=MeshAgentExecutor(agent),
        task_store=task_store,  # type: ignore[arg-type]
        agent_card=card,
        push_config_store=push_store,  # type: ignore[arg-type]
        push_sender=BasePushNotificationSender(push_client, push_store, push_url_validator=validator),  # type: ignore[arg-type]
        push_url_validator=validator,
    )
    return A2AServer(
        card=card,
        handler=handler,
        card_routes=list(create_agent_card_routes(card, cache_control=CARD_CACHE_CONTROL)),
        rpc_routes=list(create_jsonrpc_routes(handler, rpc_url=JSONRPC_PATH)),
        rest_routes=list(create_rest_routes(handler, path_prefix=REST_PATH)),
        engine=engine,
        stores=[task_store, push_store],
        push_client=push_client,
    )
