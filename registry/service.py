"""The registry service: REST under /v1, watch, MCP at /mcp, liveness monitor; one Starlette app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import tracing
from agents.settings import MeshSettings
from protocols.card_signing import CardTrust
from protocols.http import BodySizeLimit
from protocols.mcp_server import transport_security_for
from protocols.serving import base_url_for, bind_socket, serve_asgi
from protocols.url_guard import UrlGuard, guarded_transport
from registry.api import RegistryAPI
from registry.auth import Credentials
from registry.feed import ChangeFeed
from registry.intake import Intake
from registry.liveness import LivenessMonitor, LivenessPolicy
from registry.mcp_face import RegistryMCP, build_registry_mcp, gateway_http
from registry.selection import Selector
from registry.store import RegistryStore
from registry.views import StoreView
from tracing.propagation import ExtractTraceContext

__all__ = ["RegistryService", "build_registry", "default_db_url", "serve_registry"]

log = logging.getLogger("registry")


def default_db_url(settings: MeshSettings) -> str:
    return settings.registry_db or f"sqlite:///{(settings.state_dir('registry') / 'registry.db').resolve()}"


@dataclass
class RegistryService:
    settings: MeshSettings
    store: RegistryStore
    feed: ChangeFeed
    monitor: LivenessMonitor
    http: httpx.AsyncClient
    mcp: RegistryMCP = field(init=False)
    app: Starlette = field(init=False)
    asgi: BodySizeLimit = field(init=False)
    base_url: str = ""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def healthz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive", "service": "registry"})

    async def readyz(self, request: Request) -> JSONResponse:
        ok = await self.store.ping()
        return JSONResponse({"status": "ready" if ok else "not ready", "store": ok}, status_code=200 if ok else 503)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.store.initialize()
        await self.feed.start()
        self.monitor.grace_from = time.time()  # the grace period runs from when the store is back
        self._tasks.append(asyncio.create_task(self.monitor.run()))
        self._tasks.append(asyncio.create_task(self.mcp.follow()))
        async with self.mcp.session_manager.run():
            try:
                yield
            finally:
                for task in self._tasks:
                    task.cancel()
                await self.feed.stop()
                await self.http.aclose()
                await self.mcp.bridge.http.aclose()
                await self.store.close()


def build_registry(settings: MeshSettings, db_url: str | None = None) -> RegistryService:
    # configuration files are read before anything that holds a connection is made
    trust, gateway_trust = CardTrust.for_registry(settings), CardTrust.for_clients(settings)
    credentials = Credentials.from_settings(settings)
    store = RegistryStore(db_url or default_db_url(settings))
    url_guard = UrlGuard.from_settings(settings)  # cards and probes connect only where the guard allows
    http = httpx.AsyncClient(timeout=10, follow_redirects=False, transport=guarded_transport(url_guard))
    policy = LivenessPolicy(
        probe_interval=settings.registry_probe_seconds,
        evict_after=settings.registry_evict_seconds,
        grace=settings.registry_lease_seconds,
    )
    service = RegistryService(settings, store, ChangeFeed(store), LivenessMonitor(store, policy, http), http)
    intake = Intake(http, trust, url_guard=url_guard)
    selector = Selector()
    api = RegistryAPI(store, service.feed, intake, credentials, selector)
    service.mcp = build_registry_mcp(StoreView(store, service.feed, selector), gateway_http(settings),
                                     trust=gateway_trust)
    mcp_app = service.mcp.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=transport_security_for(settings.host, settings.public_url),
        host=settings.host,
    )
    routes = [
        Route("/healthz", service.healthz, methods=["GET"]),
        Route("/readyz", service.readyz, methods=["GET"]),
        *api.routes(),
        # the MCP face reads what /v1 reads, so it sits behind the same read guard
        *(Route(r.path, endpoint=api.guard_reads(r.endpoint)) for r in mcp_app.routes if isinstance(r, Route)),
    ]
    service.app = Starlette(routes=routes, lifespan=service.lifespan)
    service.asgi = BodySizeLimit(
        ExtractTraceContext(service.app), settings.max_body_bytes, frozenset({"/mcp"}), settings.max_json_depth
    )
    return service


async def serve_registry(
    settings: MeshSettings, db_url: str | None = None, on_ready: Callable[[RegistryService], None] | None = None
) -> None:
    """Serve the registry until cancelled or signalled."""
    tracing.configure("registry", settings)
    sock = bind_socket(settings.host, settings.port)
    service = build_registry(settings, db_url)
    service.base_url = base_url_for(sock, settings.public_url)

    def started() -> None:
        log.info("registry serving at %s (store: %s)", service.base_url, service.store.dialect)
        if on_ready is not None:
            on_ready(service)

    await serve_asgi(service.asgi, sock, settings.log_level, started)
