"""A2A 1.0 client helpers: fetch and validate a card, send a message, read the replies as JSON."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.helpers import new_data_part, new_text_part
from a2a.types import AgentCard, Message, Role, SendMessageRequest
from google.protobuf.json_format import MessageToDict

from protocols.cards import CardProblem, InvalidCard, parse_card, validate_card

__all__ = ["A2AConnection", "CardFetchError", "card_url", "fetch_card", "user_message"]

WELL_KNOWN_CARD = "/.well-known/agent-card.json"


class CardFetchError(RuntimeError):
    """The card could not be fetched: the message carries the URL and the HTTP error."""


def card_url(url: str) -> str:
    """The card URL of an agent base URL (a URL that already names a ``.json`` file is kept)."""
    return url if url.endswith(".json") else url.rstrip("/") + WELL_KNOWN_CARD


async def fetch_card(url: str, http: httpx.AsyncClient) -> tuple[dict[str, Any], list[CardProblem]]:
    """The card's JSON and its problems (empty when valid)."""
    target = card_url(url)
    try:
        response = await http.get(target)
    except httpx.HTTPError as exc:
        raise CardFetchError(f"cannot fetch {target}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise CardFetchError(f"cannot fetch {target}: HTTP {response.status_code} {response.reason_phrase}")
    try:
        data = response.json()
    except ValueError as exc:
        raise CardFetchError(f"{target} is not JSON: {exc}") from None
    return data, validate_card(data)


def user_message(
    text: str | None = None,
    data: Any = None,
    *,
    task_id: str | None = None,
    context_id: str | None = None,
    message_id: str | None = None,
) -> Message:
    parts = []
    if text:
        parts.append(new_text_part(text))
    if data is not None:
        parts.append(new_data_part(data))
    if not parts:
        raise ValueError("a message needs text or data")
    return Message(
        message_id=message_id or str(uuid.uuid4()),
        role=Role.ROLE_USER,
        parts=parts,
        task_id=task_id or "",
        context_id=context_id or "",
    )


@dataclass
class A2AConnection:
    """A client for one agent, created from its validated card."""

    card: AgentCard
    http: httpx.AsyncClient
    streaming: bool = False
    bindings: tuple[str, ...] = ("JSONRPC", "HTTP+JSON")

    @classmethod
    async def open(cls, url: str, http: httpx.AsyncClient, **options: Any) -> A2AConnection:
        data, problems = await fetch_card(url, http)
        if problems:
            raise InvalidCard(problems)
        return cls(card=parse_card(data), http=http, **options)

    async def send(self, message: Message, *, return_immediately: bool = False) -> AsyncIterator[dict[str, Any]]:
        """Send ``message``; yields each StreamResponse as JSON (one when not streaming)."""
        config = ClientConfig(
            httpx_client=self.http,
            streaming=self.streaming,
            supported_protocol_bindings=list(self.bindings),
            use_client_preference=True,
        )
        client = ClientFactory(config).create(self.card)
        request = SendMessageRequest(message=message)
        if return_immediately:
            request.configuration.return_immediately = True
        try:
            async for event in client.send_message(request):
                yield MessageToDict(event)
        finally:
            await client.close()
