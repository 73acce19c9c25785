"""The registry over MCP: an IDE assistant discovers the mesh with ``find_agents``, ``get_agent`` and
``resolve``, and reads each agent's card as a resource (listed, and readable through a template)."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import TypeVar

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourcesListChanged, ResourceUpdated
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR
from mcp_types import Resource as MCPResource
from pydantic import BaseModel, Field

from registry.feed import ChangeFeed
from registry.models import AgentRecord, EventType, InstanceRecord, Policy
from registry.selection import Selector
from registry.store import AgentQuery, RegistryStore, StoreError

__all__ = ["CARD_URI", "RegistryMCP", "build_registry_mcp", "card_uri"]

CARD_URI = "a2a://registry/agents/{agent_id}/card"
CARD_MIME = "application/json"
LISTED_CARDS = 1000  # resources/list is one page here; past this, cards stay readable through the template
T = TypeVar("T")


def card_uri(agent_id: str) -> str:
    return CARD_URI.format(agent_id=agent_id)


class AgentSummary(BaseModel):
    id: str
    kind: str
    name: str
    version: str
    description: str
    skills: list[str]
    healthy_instances: int
    verified: bool
    url: str | None = Field(description="one healthy instance's base URL")
    card_resource: str


class Found(BaseModel):
    agents: list[AgentSummary]


def _summary(agent: AgentRecord) -> AgentSummary:
    healthy = agent.healthy
    return AgentSummary(
        id=agent.id, kind=agent.kind, name=agent.name, version=agent.version, description=agent.description,
        skills=[s.id for s in agent.skills], healthy_instances=len(healthy), verified=agent.verified,
        url=healthy[0].url if healthy else None, card_resource=card_uri(agent.id),
    )


class RegistryMCP(MCPServer):
    """An MCP server whose resource list is the registered agents' cards.

    The list is read from the store on each ``resources/list`` rather than kept in the server, so
    every replica lists the same cards; ``follow`` turns the change feed into list-changed and
    card-updated events for ``subscriptions/listen`` streams, which the capabilities advertise.
    """

    def __init__(self, store: RegistryStore) -> None:
        self.store = store
        self.bus = InMemorySubscriptionBus()
        super().__init__(
            "agent-mesh-registry",
            instructions="Discover the agents of this mesh: search by text, skill or tag, then resolve one to call it over A2A.",
            subscriptions=self.bus,
        )

    async def list_resources(self) -> list[MCPResource]:
        try:
            agents = await self.store.find(AgentQuery(include_all=True, limit=LISTED_CARDS))
        except StoreError as exc:
            raise MCPError(code=INTERNAL_ERROR, message=str(exc)) from None
        cards = [
            MCPResource(uri=card_uri(a.id), name=a.id, title=f"{a.name} {a.version}", description=a.description,
                        mime_type=CARD_MIME)
            for a in agents
        ]
        return [*await super().list_resources(), *cards]

    async def follow(self, feed: ChangeFeed) -> None:
        """Publish card-list and card changes until cancelled."""
        while True:  # the feed drops a watcher that fell behind: watch again, and say the list may have changed
            async for event in feed.watch():
                if event.type in (EventType.registered, EventType.deregistered):
                    await self.bus.publish(ResourcesListChanged())
                if event.type in (EventType.registered, EventType.updated):
                    await self.bus.publish(ResourceUpdated(uri=card_uri(event.agent_id)))
            await self.bus.publish(ResourcesListChanged())


async def _tool_call(call: Awaitable[T]) -> T:
    try:
        return await call
    except StoreError as exc:
        raise ToolError(str(exc)) from None


def build_registry_mcp(store: RegistryStore, selector: Selector) -> RegistryMCP:
    server = RegistryMCP(store)

    @server.tool()
    async def find_agents(
        query: str | None = None, skill: str | None = None, tag: str | None = None, include_unhealthy: bool = False
    ) -> Found:
        """Find agents by free text (ranked), skill id or tag. Only agents with a healthy instance unless include_unhealthy."""
        agents = await _tool_call(store.find(AgentQuery(text=query, skill=skill, tag=tag, include_all=include_unhealthy)))
        return Found(agents=[_summary(a) for a in agents])

    @server.tool()
    async def get_agent(agent_id: str) -> AgentRecord:
        """Everything the registry knows about one agent: card, skills, instances and their health history."""
        agent = await _tool_call(store.agent(agent_id))
        if agent is None:
            raise ToolError(f"no agent {agent_id!r} is registered")
        return agent

    @server.tool()
    async def resolve(agent_id: str, policy: Policy = Policy.round_robin) -> InstanceRecord:
        """One healthy instance of an agent to call, chosen by policy (round_robin, least_in_flight, random)."""
        agent = await _tool_call(store.agent(agent_id))
        if agent is None:
            raise ToolError(f"no agent {agent_id!r} is registered")
        if not agent.healthy:
            raise ToolError(f"agent {agent_id!r} has no healthy instance ({len(agent.instances)} registered)")
        return selector.pick(agent_id, agent.healthy, policy)

    @server.resource(CARD_URI, name="agent-card", description="The A2A card of a registered agent", mime_type=CARD_MIME)
    async def agent_card(agent_id: str) -> str:
        try:
            agent = await store.agent(agent_id)
        except StoreError as exc:
            raise ResourceError(str(exc)) from None
        if agent is None:
            raise ResourceNotFoundError(f"no agent {agent_id!r} is registered")
        return json.dumps(agent.card, indent=2)

    return server
