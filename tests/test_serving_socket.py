"""The socket every mesh service is served on: Nagle's algorithm must be off on accepted connections.

With it on, a reply on a kept-alive connection waits for the client's delayed ACK (40 ms on Linux):
one A2A hop measured 44 ms instead of a few. ``bench/hop.py`` shows it as a p50 ratio; this test
catches it without a benchmark.
"""

from __future__ import annotations

import asyncio
import socket

from protocols.serving import bind_socket


async def test_accepted_connections_have_nodelay() -> None:
    sock = bind_socket("127.0.0.1", 0)
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted = writer.get_extra_info("socket")
        seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accept, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        assert await asyncio.wait_for(seen, 5) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
