"""Running an ASGI app with uvicorn on a socket bound first, for every mesh service.

Binding before building lets a service started on port 0 write its real URL into what it serves
(an agent's card). A cancelled caller still gets uvicorn's graceful shutdown.
"""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp

__all__ = ["base_url_for", "bind_socket", "freeze_startup_heap", "serve_asgi"]


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket whose accepted connections have Nagle's algorithm off.

    The explicit ``IPPROTO_TCP`` matters: asyncio sets ``TCP_NODELAY`` only on accepted sockets
    whose ``proto`` says TCP, and ``socket.socket(family, SOCK_STREAM)`` has ``proto == 0``. With
    Nagle on, each reply on a kept-alive connection waited for the client's 40 ms delayed ACK
    (measured by ``bench/hop.py``: 44 ms per SendMessage instead of 2-4 ms). ``TCP_NODELAY`` on the
    listener as well covers kernels where accepted sockets inherit it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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


def freeze_startup_heap() -> None:
    """Keep what start-up built out of the cyclic garbage collector's full collections.

    Modules, SDK schemas, pydantic models and routes live as long as the process, yet every
    generation-2 collection walks all of them. An agent process holds ~170k tracked objects (a bare
    a2a-sdk server ~110k), and a2a-sdk's per-request objects trigger a full collection every few
    hundred SendMessage calls. Measured in the ``bench/hop.py`` servers (``bench/profile_hop.py``
    reports GC time): a full collection took ~110 ms before freezing and ~35 ms after, ~170 µs less
    CPU per request. Call it once the service is up, and only in a process that *is* the service
    (``mesh serve``): frozen objects are never collected, so a test process that starts and stops
    many services must not.
    """
    gc.collect()
    gc.freeze()
