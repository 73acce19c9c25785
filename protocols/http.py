"""HTTP guards shared by every mesh service: body size and JSON depth limits, error responses without tracebacks."""

from __future__ import annotations

import json
import logging
import re
from itertools import accumulate

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimit", "InFlight", "json_depth_exceeds", "json_error_body"]

log = logging.getLogger("protocols.http")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# A JSON string literal (escapes included); what is left after removing these is structure only.
# Possessive, and an unterminated string runs to the end: linear time on any input, no backtracking.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth_exceeds(body: bytes, max_depth: int) -> bool:
    """True when the JSON text ``body`` nests arrays/objects deeper than ``max_depth``.

    Cheap first: a body with at most ``max_depth`` opening brackets cannot be too deep, and
    counting bytes runs at C speed. Only otherwise are string literals cut out (brackets inside
    strings do not nest) and the running depth of the remaining brackets computed.
    """
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    brackets = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", body))
    return max(accumulate(_STEP[b] for b in brackets), default=0) > max_depth


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def json_error_body(status: int, message: str, *, jsonrpc: bool, code: int = -32600) -> bytes:
    """A JSON error body; JSON-RPC shaped (``code``, default -32600) where the caller speaks JSON-RPC."""
    if jsonrpc:
        body: dict[str, object] = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    else:
        body = {"error": {"status": status, "message": message}}
    return json.dumps(body).encode()


class BodySizeLimit:
    """Refuse request bodies above ``max_bytes`` with 413, by Content-Length or while streaming,
    and JSON bodies nested deeper than ``max_json_depth`` or not UTF-8 with 400.

    Bodies are cut off as they arrive, so an oversize chunked upload is never read whole.
    Only POST/PUT/PATCH bodies are buffered; streams such as MCP's GET pass straight through.
    The depth limit keeps recursive parsers and validators behind us (json, pydantic, protobuf)
    from exhausting the stack on ``[[[[...]]]]``; it applies to any body that starts like JSON,
    whatever its content type says, since some handlers parse without looking at it.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        jsonrpc_paths: frozenset[str] = frozenset({"/"}),
        max_json_depth: int | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.jsonrpc_paths = jsonrpc_paths
        self.max_json_depth = max_json_depth

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
                    await self._refuse(send, 413, message, jsonrpc)
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
                await self._refuse(send, 413, message, jsonrpc)
                return
            chunks.append(chunk)
            more = event.get("more_body", False)
        body = b"".join(chunks)
        if self._too_deep(body):
            too_deep = f"JSON body nests deeper than the limit of {self.max_json_depth} levels"
            await self._refuse(send, 400, too_deep, jsonrpc)
            return
        if not _is_utf8(body):  # every body we serve is JSON; a2a-sdk answers these with 500 / -32603
            await self._refuse(send, 400, "request body is not UTF-8 JSON text", jsonrpc, code=-32700)
            return
        pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)

    def _too_deep(self, body: bytes) -> bool:
        if self.max_json_depth is None or body.lstrip()[:1] not in (b"{", b"["):
            return False
        return json_depth_exceeds(body, self.max_json_depth)

    @staticmethod
    async def _refuse(send: Send, status: int, message: str, jsonrpc: bool, code: int = -32600) -> None:
        body = json_error_body(status, message, jsonrpc=jsonrpc, code=code)
        await send(
            {
                "type": "http.response.start",
                "status": status,
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
