"""Send one step to one agent instance over A2A and read the outcome.

Each instance's card is fetched once and cached (a failed call drops it, so a restarted instance
is re-read). A blocking send normally returns a terminal task; a task still running (e.g. a
re-sent message the agent recognised as a duplicate) is polled until it settles.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from protocols.a2a_client import A2AConnection, user_message
from protocols.a2a_results import CallOutcome, outcome_of
from protocols.card_signing import CardTrust
from protocols.credentials import OutboundCredentials, credential_hook
from protocols.mesh_extensions import IDEMPOTENT_DELIVERY

__all__ = ["AgentCaller", "HOPS_KEY", "STEP_KEY", "WORKFLOW_KEY"]

HOPS_KEY = "meshHops"  # message metadata: delegations this request has crossed so far
WORKFLOW_KEY = "meshWorkflow"
STEP_KEY = "meshStep"
_POLL_SECONDS = 0.2


class AgentCaller:
    """Calls agent instances, each through an httpx client of its own.

    One pool per instance, not one for all: httpcore looks through every connection of a pool for
    each request, which under load (many workflows, many agents) grew to a fifth of the
    coordinator's CPU with a single shared pool.
    """

    def __init__(self, new_client: Callable[[], httpx.AsyncClient], card_ttl: float = 60.0,
                 credentials: OutboundCredentials | None = None, trust: CardTrust | None = None) -> None:
        self.new_client = new_client
        self.card_ttl = card_ttl
        self.trust = trust  # checked on every card fetch: a card changed since signing is never called
        self.credentials = credentials if credentials is not None and credentials.active else None
        self._credentialed: set[str] = set()
        self._connections: dict[str, tuple[float, A2AConnection]] = {}
        self._clients: dict[str, httpx.AsyncClient] = {}

    async def _connection(self, url: str) -> A2AConnection:
        cached = self._connections.get(url)
        if cached is not None and time.monotonic() - cached[0] < self.card_ttl:
            return cached[1]
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = self.new_client()
        connection = await A2AConnection.open(url, client, trust=self.trust)
        if self.credentials is not None and url not in self._credentialed:
            # the card (always open) names the agent: tokens for this instance are for that audience
            hooks = client.event_hooks
            client.event_hooks = {**hooks, "request": [*hooks["request"], credential_hook(self.credentials, connection.card.name)]}
            self._credentialed.add(url)
        self._connections[url] = (time.monotonic(), connection)
        return connection

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        self._connections.clear()
        self._credentialed.clear()
        for client in clients:
            await client.aclose()

    async def call(
        self,
        url: str,
        *,
        message_id: str,
        text: str | None = None,
        data: Any = None,
        task_id: str | None = None,
        context_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> CallOutcome:
        """One blocking send; raises on transport and protocol errors (the caller retries or fails over)."""
        message = user_message(text, data, task_id=task_id, context_id=context_id, message_id=message_id,
                               metadata=metadata)
        if not task_id:  # a re-send after a crash must find the task the first send started, not run again
            message.extensions.append(IDEMPOTENT_DELIVERY)
        try:
            connection = await self._connection(url)
            outcome = outcome_of(await connection.call(message))
            while not outcome.terminal and outcome.task_id:
                await asyncio.sleep(_POLL_SECONDS)
                outcome = outcome_of(await connection.get_task(outcome.task_id))
            return outcome
        except BaseException:
            self._connections.pop(url, None)
            raise

    async def task(self, url: str, task_id: str) -> CallOutcome:
        """The task as the agent has it now."""
        return outcome_of(await (await self._connection(url)).get_task(task_id))
