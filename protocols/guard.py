"""The gate of every agent service: who is calling, may they call this, are they calling too often.

One ASGI middleware in front of A2A (JSON-RPC at ``/``, HTTP+JSON under ``/a2a``) and MCP
(``/mcp``). The card, health and OAuth metadata paths stay open. For every other request:

1. **authenticate** (``protocols.credentials``; MCP bearer tokens through the mcp SDK's
   ``BearerAuthBackend``): failure → 401 with a ``WWW-Authenticate`` challenge naming the reason;
2. **rate-limit** per caller and per agent (``protocols.rate_limit``): 429 with ``Retry-After``;
3. **authorize**: a call that names a skill (A2A data part, MCP ``tools/call``) needs the
   scope ``<agent>:<skill>``; anything else needs a scope on at least one of the agent's skills:
   failure → 403 (``insufficient_scope`` on MCP).

Refusals are audited here; allowed skill calls are audited by the runtime with their outcome.
The caller is published in ``scope["user"]`` (a2a-sdk keys tasks by it, so callers see only their
own tasks; the mcp SDK's ``get_access_token`` reads it) and in ``protocols.credentials.current_caller``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, BearerAuthBackend
from starlette.authentication import AuthCredentials
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agents.policy import Gate, Policy, current_gate, skill_scope
from protocols.credentials import API_KEY_HEADER, Authenticator, AuthFailure, Identity, MeshTokenVerifier, current_caller
from protocols.rate_limit import Limits, retry_after_header

__all__ = ["Guard", "GuardConfig"]

log = logging.getLogger("protocols.guard")
OPEN_PATHS = frozenset({"/.well-known/agent-card.json", "/healthz", "/readyz"})
OPEN_PREFIXES = ("/.well-known/oauth-protected-resource",)
_MESSAGE_METHODS = frozenset({"SendMessage", "SendStreamingMessage"})


@dataclass
class GuardConfig:
    service: str
    skills: list[str]
    authenticator: Authenticator | None  # None: no authentication (limits and audit only)
    policy: Policy | None
    limits: Limits | None
    audit: Callable[[Any], Any] | None  # AuditLog.record
    resource_metadata_url: str | None = None  # RFC 9728 document of the MCP endpoint


@dataclass(frozen=True, slots=True)
class _Request:
    protocol: str  # "a2a" or "mcp"
    operation: str
    skill: str | None
    jsonrpc: bool


class Guard:
    def __init__(self, app: ASGIApp, config: GuardConfig) -> None:
        self.app = app
        self.config = config
        self._mcp_backend = (BearerAuthBackend(MeshTokenVerifier(config.authenticator))
                             if config.authenticator is not None else None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        body, receive = await _buffered(receive) if scope.get("method") == "POST" else (b"", receive)
        request = _classify(path, scope.get("method", "GET"), body)
        caller: Identity | None = None
        if self.config.authenticator is not None:
            try:
                caller = await self._authenticate(scope, request)
            except AuthFailure as failure:
                await self._refuse(scope, send, request, None, 401, "unauthenticated", str(failure))
                return
        limits = self.config.limits
        if limits is not None:
            refusal = limits.check(caller.subject if caller else _remote(scope), self.config.service)
            if refusal is not None:
                await self._refuse(scope, send, request, caller, 429, "rate_limited", refusal.reason,
                                   retry_after=refusal.retry_after)
                return
        if caller is not None and self.config.policy is not None:
            reason = self._forbidden(caller, request)
            if reason is not None:
                await self._refuse(scope, send, request, caller, 403, "denied", reason)
                return
        gate = Gate(self.config.service, request.protocol, request.operation, caller, self.config.policy,
                    self.config.audit, _remote(scope))
        caller_token, gate_token = current_caller.set(caller), current_gate.set(gate)
        try:
            if caller is not None:
                scope["user"] = AuthenticatedUser(caller.to_access_token(""))
                scope["auth"] = AuthCredentials(sorted(caller.token_scopes or ()))
            await self.app(scope, receive, send)
        finally:
            current_caller.reset(caller_token)
            current_gate.reset(gate_token)
        if request.skill is None and self.config.audit is not None and request.operation not in _MESSAGE_METHODS:
            # skill calls are audited where they run, with their outcome; everything else is audited here
            self._audit(scope, request, caller, "allowed", None, "")

    async def _authenticate(self, scope: Scope, request: _Request) -> Identity:
        assert self.config.authenticator is not None and self._mcp_backend is not None
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        authorization = headers.get("authorization")
        if request.protocol == "mcp" and authorization:
            result = await self._mcp_backend.authenticate(HTTPConnection(scope))
            if result is not None:
                return Identity.from_access_token(result[1].access_token)
        # A2A, an API key, or a refused MCP token: check again here to say why
        return self.config.authenticator.verify_headers(authorization, headers.get(API_KEY_HEADER))

    def _forbidden(self, caller: Identity, request: _Request) -> str | None:
        policy = self.config.policy
        assert policy is not None
        if request.skill is not None:
            decision = policy.allows(caller, skill_scope(self.config.service, request.skill))
            return None if decision.allowed else decision.reason
        if request.protocol == "mcp" and request.operation != "tools/call":
            return None  # the handshake, lists and the card resource: any authenticated caller
        if policy.allows_any(caller, self.config.service, self.config.skills):
            return None
        return f"{caller.subject!r} holds no scope on agent {self.config.service!r}"

    async def _refuse(self, scope: Scope, send: Send, request: _Request, caller: Identity | None, status: int,
                      outcome: str, reason: str, retry_after: float | None = None) -> None:
        self._audit(scope, request, caller, outcome, status, reason)
        headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
        if status == 401:
            headers.append((b"www-authenticate", _challenge("invalid_token", reason, self.config.resource_metadata_url)))
        elif status == 403 and request.protocol == "mcp":
            headers.append((b"www-authenticate", _challenge("insufficient_scope", reason, self.config.resource_metadata_url)))
        elif retry_after is not None:
            headers.append((b"retry-after", retry_after_header(retry_after).encode()))
        body = _error_body(status, reason, request)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _audit(self, scope: Scope, request: _Request, caller: Identity | None, outcome: str, status: int | None,
               reason: str) -> None:
        Gate(self.config.service, request.protocol, request.operation, caller, None, self.config.audit,
             _remote(scope)).record(request.skill, outcome, reason, status)  # type: ignore[arg-type]


def _challenge(error: str, description: str, resource_metadata: str | None) -> bytes:
    text = f'Bearer error="{error}", error_description="{description.replace(chr(34), chr(39))}"'
    if resource_metadata:
        text += f', resource_metadata="{resource_metadata}"'
    return text.encode("latin-1", "replace")


_JSONRPC_CODES = {401: -32001, 403: -32003, 429: -32029}  # server-defined range; the HTTP status says the rest


def _error_body(status: int, reason: str, request: _Request) -> bytes:
    if request.jsonrpc:
        code = -32600 if request.protocol == "a2a" else _JSONRPC_CODES.get(status, -32600)
        return json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": reason,
                                                                   "data": {"httpStatus": status}}}).encode()
    return json.dumps({"error": {"status": status, "message": reason}}).encode()


def _remote(scope: Scope) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body (BodySizeLimit already bounded it) and a receive that replays it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return body, replay


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None  # the protocol layer answers malformed bodies with its own error


def _skill_of_message(params: Any) -> str | None:
    message = params.get("message") if isinstance(params, dict) else None
    parts = message.get("parts") if isinstance(message, dict) else None
    for part in parts if isinstance(parts, list) else []:
        data = part.get("data") if isinstance(part, dict) else None
        if isinstance(data, dict) and isinstance(data.get("skill"), str):
            return data["skill"]
    return None


def _classify(path: str, method: str, body: bytes) -> _Request:
    if path == "/mcp" or path.startswith("/mcp/"):
        payload = _json(body)
        rpc_method = payload.get("method") if isinstance(payload, dict) else None
        params = payload.get("params") if isinstance(payload, dict) else None
        tool = params.get("name") if rpc_method == "tools/call" and isinstance(params, dict) else None
        return _Request("mcp", str(rpc_method or method), tool if isinstance(tool, str) else None, True)
    if path == "/":
        payload = _json(body)
        rpc_method = str(payload.get("method")) if isinstance(payload, dict) else "invalid"
        skill = _skill_of_message(payload.get("params")) if rpc_method in _MESSAGE_METHODS else None
        return _Request("a2a", rpc_method, skill, True)
    operation = path.removeprefix("/a2a").lstrip("/") or path
    if operation.startswith("message:"):
        kind = "SendStreamingMessage" if operation.endswith(":stream") else "SendMessage"
        return _Request("a2a", kind, _skill_of_message(_json(body)), False)
    return _Request("a2a", f"{method} {operation}", None, False)

