"""Serve one agent definition: A2A 1.0 + MCP (streamable HTTP) in one Starlette app, or MCP on stdio.

Route order matters: a2a-sdk's HTTP+JSON routes end in a catch-all ``/{tenant}`` mount, so the card,
health, JSON-RPC and MCP routes come first.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from a2a.types import AgentCard
from mcp.server import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import tracing
from agents.access import ServiceAccess
from agents.definition import Agent
from agents.registration import RegistryLink
from agents.settings import MeshSettings
from protocols.a2a_server import A2AServer, build_a2a_server
from protocols.card_signing import load_signing_key, sign_card
from protocols.cards import build_card, card_json
from protocols.http import BodySizeLimit, InFlight
from protocols.mcp_server import build_mcp_server, transport_security_for
from protocols.serving import base_url_for, bind_socket, serve_asgi
from tracing.propagation import ExtractTraceContext

__all__ = ["AgentService", "build_service", "serve", "serve_stdio"]

log = logging.getLogger("agents.service")
MCP_PATH = "/mcp"


@dataclass
class AgentService:
    """One agent wired to both faces; ``app`` is the ASGI application to run."""

    agent: Agent
    settings: MeshSettings
    base_url: str
    a2a: A2AServer
    mcp: MCPServer
    app: Starlette = field(init=False)
    asgi: BodySizeLimit = field(init=False)  # the app behind the guards: what uvicorn runs
    in_flight: InFlight = field(init=False)
    access: ServiceAccess | None = None
    accepting: bool = False
    registry: RegistryLink | None = None

    async def healthz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive", "agent": self.agent.name})

    async def readyz(self, request: Request) -> JSONResponse:
        store_ok = await self.a2a.ready()
        ready = self.accepting and store_ok
        body = {"status": "ready" if ready else "not ready", "accepting": self.accepting, "task_store": store_ok}
        return JSONResponse(body, status_code=200 if ready else 503)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.a2a.start()
        if self.access is not None:
            await self.access.start()
        async with self.mcp.session_manager.run():
            self.accepting = True
            if self.settings.registry_url:
                self.registry = RegistryLink(self.settings, self.base_url, lambda: self.in_flight.count)
                await self.registry.start()
            try:
                yield
            finally:
                self.accepting = False
                if self.registry is not None:  # leave the registry before refusing work
                    await self.registry.stop()
                await self.a2a.stop()
                if self.access is not None:
                    await self.access.stop()


def card_of(agent: Agent, settings: MeshSettings, base_url: str, *, secured: bool = False) -> AgentCard:
    """The card this service serves: signed when ``MESH_CARD_SIGNING_KEY`` names a key."""
    card = build_card(agent, base_url, secured=secured)
    if settings.card_signing_key:
        card = sign_card(card, load_signing_key(settings.card_signing_key))
    return card


def build_service(agent: Agent, settings: MeshSettings, base_url: str) -> AgentService:
    access = ServiceAccess.from_settings(settings, agent.name)
    card = card_of(agent, settings, base_url, secured=access.authenticator is not None)
    a2a = build_a2a_server(agent, card, settings)
    mcp = build_mcp_server(agent, card_json(card), access.mcp_auth(base_url, MCP_PATH))
    mcp_app = mcp.streamable_http_app(
        streamable_http_path=MCP_PATH,
        max_request_body_size=settings.max_body_bytes,
        transport_security=transport_security_for(settings.host, settings.public_url),
        host=settings.host,
    )
    service = AgentService(agent, settings, base_url, a2a, mcp, access=access if access.active else None)
    routes = [
        *a2a.card_routes,
        Route("/healthz", service.healthz, methods=["GET"]),
        Route("/readyz", service.readyz, methods=["GET"]),
        *a2a.rpc_routes,
        *mcp_app.routes,
        *a2a.rest_routes,
    ]
    service.app = Starlette(routes=routes, lifespan=service.lifespan)
    service.in_flight = InFlight(ExtractTraceContext(service.app))
    guarded = access.wrap(service.in_flight, list(agent.skills), base_url, MCP_PATH)
    service.asgi = BodySizeLimit(guarded, settings.max_body_bytes, frozenset({"/", MCP_PATH}), settings.max_json_depth)
    return service


async def serve(
    agent: Agent,
    settings: MeshSettings,
    *,
    on_ready: Callable[[AgentService], None] | None = None,
) -> None:
    """Serve ``agent`` over HTTP until cancelled or signalled (SIGINT/SIGTERM stop it cleanly)."""
    tracing.configure(agent.name, settings)
    sock = bind_socket(settings.host, settings.port)
    service = build_service(agent, settings, base_url_for(sock, settings.public_url))

    def started() -> None:
        log.info("agent %s serving A2A at %s and MCP at %s%s", agent.name, service.base_url, service.base_url, MCP_PATH)
        if on_ready is not None:
            on_ready(service)

    # the agent's start hooks run before the server, so a refusal (a SettingsError) ends the process
    # with its one-line reason, not a server's startup traceback
    try:
        for start in agent.start_hooks:
            await start(service.base_url, settings)
    except BaseException:
        sock.close()
        raise
    try:
        await serve_asgi(service.asgi, sock, settings.log_level, started)
    finally:
        for stop in reversed(agent.stop_hooks):
            await stop()


def serve_stdio(agent: Agent, settings: MeshSettings) -> None:
    """Serve the MCP face on stdin/stdout (stdout carries the protocol: logs go to stderr)."""
    tracing.configure(agent.name, settings)
    base = settings.public_url or f"http://{settings.host}:{settings.port or 8000}"
    build_mcp_server(agent, card_json(card_of(agent, settings, base))).run("stdio")
