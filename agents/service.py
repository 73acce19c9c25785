"""Serve one agent definition: A2A 1.0 + MCP (streamable HTTP) in one Starlette app, or MCP on stdio.

Route order matters: a2a-sdk's HTTP+JSON routes end in a catch-all ``/{tenant}`` mount, so the card,
health, JSON-RPC and MCP routes come first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import uvicorn
from mcp.server import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agents.definition import Agent
from agents.settings import MeshSettings
from protocols.a2a_server import A2AServer, build_a2a_server
from protocols.cards import build_card, card_json
from protocols.http import BodySizeLimit
from protocols.mcp_server import build_mcp_server, transport_security_for

__all__ = ["AgentService", "bind_socket", "build_service", "serve", "serve_stdio"]

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
    asgi: BodySizeLimit = field(init=False)  # the app behind the body-size guard: what uvicorn runs
    accepting: bool = False

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
        async with self.mcp.session_manager.run():
            self.accepting = True
            try:
                yield
            finally:
                self.accepting = False
                await self.a2a.stop()


def build_service(agent: Agent, settings: MeshSettings, base_url: str) -> AgentService:
    card = build_card(agent, base_url)
    a2a = build_a2a_server(agent, card, settings)
    mcp = build_mcp_server(agent, card_json(card))
    mcp_app = mcp.streamable_http_app(
        streamable_http_path=MCP_PATH,
        max_request_body_size=settings.max_body_bytes,
        transport_security=transport_security_for(settings.host, settings.public_url),
        host=settings.host,
    )
    service = AgentService(agent, settings, base_url, a2a, mcp)
    routes = [
        *a2a.card_routes,
        Route("/healthz", service.healthz, methods=["GET"]),
        Route("/readyz", service.readyz, methods=["GET"]),
        *a2a.rpc_routes,
        *mcp_app.routes,
        *a2a.rest_routes,
    ]
    service.app = Starlette(routes=routes, lifespan=service.lifespan)
    service.asgi = BodySizeLimit(service.app, settings.max_body_bytes)
    return service


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before building the app, so a card built for port 0 names the real port.

    The socket is made with an explicit ``IPPROTO_TCP``: asyncio turns Nagle's algorithm off
    (``TCP_NODELAY``) only on accepted sockets whose ``proto`` says TCP, and a plain
    ``socket.socket(family, SOCK_STREAM)`` has ``proto == 0``. With Nagle on, every reply on a
    kept-alive connection waited for the peer's 40 ms delayed ACK (measured: 44 ms per
    SendMessage instead of ~2 ms; see ``bench/hop.py``). Setting it on the listener too covers
    platforms where accepted sockets inherit it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _base_url(settings: MeshSettings, sock: socket.socket) -> str:
    if settings.public_url:
        return settings.public_url
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(
    agent: Agent,
    settings: MeshSettings,
    *,
    on_ready: Callable[[AgentService], None] | None = None,
) -> None:
    """Serve ``agent`` over HTTP until cancelled or signalled (SIGINT/SIGTERM stop it cleanly)."""
    sock = bind_socket(settings.host, settings.port)
    service = build_service(agent, settings, _base_url(settings, sock))
    config = uvicorn.Config(
        service.asgi,
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.01)
        log.info("agent %s serving A2A at %s and MCP at %s%s", agent.name, service.base_url, service.base_url, MCP_PATH)
        if on_ready is not None:
            on_ready(service)

    watcher = asyncio.create_task(announce())
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        server.should_exit = True  # a cancelled caller still gets a clean shutdown
        await serving
        raise
    finally:
        watcher.cancel()
        sock.close()


def serve_stdio(agent: Agent, settings: MeshSettings) -> None:
    """Serve the MCP face on stdin/stdout (stdout carries the protocol: logs go to stderr)."""
    base = settings.public_url or f"http://{settings.host}:{settings.port or 8000}"
    build_mcp_server(agent, card_json(build_card(agent, base))).run("stdio")
