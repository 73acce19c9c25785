"""HTTP guards shared by every mesh service: body size limit and error responses without tracebacks."""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimit", "InFlight", "json_error_body"]

log = logging.getLogger("protocols.http")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def json_error_body(status: int, message: str, *, jsonrpc: bool) -> bytes:
    """A JSON error body; JSON-RPC shaped (code -32600) where the caller speaks JSON-RPC."""
    if jsonrpc:
        body: dict[str, object] = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}
    else:
        body = {"error": {"status": status, "message": message}}
    return json.dumps(body).encode()


class BodySizeLimit:
    """Refuse request bodies above ``max_bytes`` with 413, by Content-Length or while streaming.

    Bodies are cut off as they arrive, so an oversize chunked upload is never read whole.
    Only POST/PUT/PATCH bodies are buffered; streams such as MCP's GET pass straight through.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, jsonrpc_paths: frozenset[str] = frozenset({"/"})) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.jsonrpc_paths = jsonrpc_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body exceeds the limit of {self.max_bytes} bytes"
        jsonrpc = scope.get("path") in self.jsonrpc_paths
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(send, message, jsonrpc)
                    return
        # Read the whole body first (at most max_bytes): handlers that catch errors themselves
        # (a2a-sdk answers JSON-RPC with HTTP 200) then never see an oversize body at all.
        if scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            event = await receive()
            if event["type"] != "http.request":
                break
            chunk = event.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await self._refuse(send, message, jsonrpc)
                return
            chunks.append(chunk)
            more = event.get("more_body", False)
        pending: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, message: str, jsonrpc: bool) -> None:
        body = json_error_body(413, message, jsonrpc=jsonrpc)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class InFlight:
    """Counts HTTP requests being served (health probes excluded): the load a registry balances on."""

    def __init__(self, app: ASGIApp, ignore: frozenset[str] = frozenset({"/healthz", "/readyz"})) -> None:
        self.app = app
        self.ignore = ignore
        self.count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.ignore:
            await self.app(scope, receive, send)
            return
        self.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.count -= 1
