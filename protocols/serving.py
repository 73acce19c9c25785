"""Running an ASGI app with uvicorn on a socket bound first, for every mesh service.

Binding before building lets a service started on port 0 write its real URL into what it serves
(an agent's card). A cancelled caller still gets uvicorn's graceful shutdown.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp

__all__ = ["base_url_for", "bind_socket", "serve_asgi"]


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def base_url_for(sock: socket.socket, public_url: str | None) -> str:
    """The URL callers use: ``public_url`` when set, else the bound address (wildcards as loopback)."""
    if public_url:
        return public_url.rstrip("/")
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve_asgi(app: ASGIApp, sock: socket.socket, log_level: str, on_started: Callable[[], None]) -> None:
    """Serve until cancelled or signalled (SIGINT/SIGTERM shut down gracefully)."""
    config = uvicorn.Config(app, log_level=log_level.lower(), access_log=False, lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.01)
        on_started()

    watcher = asyncio.create_task(announce())
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        server.should_exit = True
        await serving
        raise
    finally:
        watcher.cancel()
        sock.close()
