"""Intake: turn a registration request into a validated, verified agent description.

Cards are fetched (or taken from the body), validated field by field, and their JWS signatures
checked against the trusted keys; MCP servers reached by URL have their tools listed. Every URL
the registry would fetch or probe passes the SSRF guard first (``protocols.url_guard``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from protocols.a2a_client import WELL_KNOWN_CARD, CardFetchError, fetch_card
from protocols.card_signing import CardTrust
from protocols.cards import CardProblem, validate_card
from protocols.url_guard import UrlGuard, UrlRefused, guarded_transport2
from registry.models import MCPServerSpec, MCPToolSpec, RegisterRequest
from registry.records import AgentDescription, describe_card, describe_mcp, instance_url_of

__all__ = ["Intake", "IntakeError"]


class IntakeError(Exception):
    """A registration refused: ``status`` is the HTTP status, ``problems`` the card's wrong fields."""

    def __init__(self, status: int, message: str, problems: list[CardProblem] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.problems = status, message, problems or []


@dataclass
class Intake:
    http: httpx.AsyncClient
    trust: CardTrust
    url_guard: UrlGuard | None = None
    mcp_timeout: float = 10.0

    async def describe(self, request: RegisterRequest) -> tuple[AgentDescription, str]:
        """(description, instance URL) of what ``request`` registers, or IntakeError."""
        if request.mcp is not None:
            return await self._mcp(request.mcp)
        if request.card_url is not None:
            await self._guard(request.card_url)
            try:
                card, problems = await fetch_card(request.card_url, self.http)
            except CardFetchError as exc:
                raise IntakeError(502, str(exc)) from None
            url = request.url or _base_of(request.card_url, card)
        else:
            card = request.card or {}
            problems = validate_card(card)
            url = request.url or (instance_url_of(card) if not problems else "")
        if problems:
            raise IntakeError(422, "invalid agent card", problems)
        if url.startswith(("http://", "https://")):  # the instance is probed later: refuse what we may not reach
            await self._guard(url)
        return self._verified(card), url.rstrip("/")

    async def _guard(self, url: str) -> None:
        if self.url_guard is None:
            return
        try:
            await self.url_guard.check(url)
        except UrlRefused as exc:
            raise IntakeError(422, f"URL refused: {exc}") from None

    def _verified(self, card: dict[str, Any]) -> AgentDescription:
        check, problem = self.trust.judge(card)
        if problem is not None:
            raise IntakeError(422, f"card refused: {problem.reason}", [problem])
        description = describe_card(card)
        description.verified, description.verification = check.verified, check.detail
        return description

    async def _mcp(self, spec: MCPServerSpec) -> tuple[AgentDescription, str]:
        if spec.url is not None:
            await self._guard(spec.url)
        if spec.url is not None and spec.tools is None:
            spec = spec.model_copy(update={"tools": await self._list_tools(spec.url)})
        url = spec.url or "stdio:" + shlex.join(spec.command or [])
        return describe_mcp(spec), url

    async def _list_tools(self, url: str) -> list[MCPToolSpec]:
        try:
            # our own client: explicit timeouts, and connections only where the URL guard allows
            transport = guarded_transport2(self.url_guard) if self.url_guard is not None else None
            timeout = httpx2.Timeout(self.mcp_timeout, connect=5.0)
            async with httpx2.AsyncClient(timeout=timeout, transport=transport) as http:
                session = Client(streamable_http_client(url, http_client=http), read_timeout_seconds=self.mcp_timeout)
                async with session as client:
                    tools = (await client.list_tools()).tools
        except Exception as exc:
            raise IntakeError(502, f"cannot list the tools of {url}: {type(exc).__name__}: {exc}") from None
        return [MCPToolSpec(name=t.name, description=t.description or "", input_schema=t.input_schema) for t in tools]


def _base_of(card_url: str, card: dict[str, Any]) -> str:
    if card_url.endswith(WELL_KNOWN_CARD):
        return card_url[: -len(WELL_KNOWN_CARD)]
    if not card_url.endswith(".json"):
        return card_url
    return instance_url_of(card)
