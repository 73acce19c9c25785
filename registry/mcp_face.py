"""The registry over MCP: an IDE assistant discovers the mesh with ``find_agents``, ``get_agent`` and
``resolve``, and reads each agent's card as a resource."""

from __future__ import annotations

import json

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from pydantic import BaseModel, Field

from registry.models import AgentRecord, InstanceRecord, Policy
from registry.selection import Selector
from registry.store import AgentQuery, RegistryStore, StoreError

__all__ = ["build_registry_mcp"]

CARD_URI = "a2a://registry/agents/{agent_id}/card"


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
        url=healthy[0].url if healthy else None, card_resource=CARD_URI.format(agent_id=agent.id),
    )


def build_registry_mcp(store: RegistryStore, selector: Selector) -> MCPServer:
    server: MCPServer = MCPServer(
        "agent-mesh-registry",
        instructions="Discover the agents of this mesh: search by text, skill or tag, then resolve one to call it over A2A.",
    )

    async def guarded(call):  # type: ignore[no-untyped-def]
        try:
            return await call
        except StoreError as exc:
            raise ToolError(str(exc)) from None

    @server.tool()
    async def find_agents(
        query: str | None = None, skill: str | None = None, tag: str | None = None, include_unhealthy: bool = False
    ) -> Found:
        """Find agents by free text (ranked), skill id or tag. Only agents with a healthy instance unless include_unhealthy."""
        agents = await guarded(store.find(AgentQuery(text=query, skill=skill, tag=tag, include_all=include_unhealthy)))
        return Found(agents=[_summary(a) for a in agents])

    @server.tool()
    async def get_agent(agent_id: str) -> AgentRecord:
        """Everything the registry knows about one agent: card, skills, instances and their health history."""
        agent = await guarded(store.agent(agent_id))
        if agent is None:
            raise ToolError(f"no agent {agent_id!r} is registered")
        return agent

    @server.tool()
    async def resolve(agent_id: str, policy: Policy = Policy.round_robin) -> InstanceRecord:
        """One healthy instance of an agent to call, chosen by policy (round_robin, least_in_flight, random)."""
        agent = await guarded(store.agent(agent_id))
        if agent is None:
            raise ToolError(f"no agent {agent_id!r} is registered")
        if not agent.healthy:
            raise ToolError(f"agent {agent_id!r} has no healthy instance")
        return selector.pick(agent_id, agent.healthy, policy)

    @server.resource(CARD_URI, name="agent-card", description="The A2A card of a registered agent", mime_type="application/json")
    async def agent_card(agent_id: str) -> str:
        agent = await store.agent(agent_id)
        if agent is None:
            raise ResourceError(f"no agent {agent_id!r} is registered")
        return json.dumps(agent.card, indent=2)

    return server
