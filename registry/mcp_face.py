"""The mesh behind one MCP endpoint: ``/mcp`` on the registry, and ``mesh mcp`` on stdio.

Tools: every skill of every healthy A2A agent (``<agent>__<skill>``, its argument schema; calls
go over A2A with tasks, questions, progress and cancellation kept: ``protocols.mcp_bridge``), plus
``find_agents``, ``get_agent``, ``resolve`` and ``ask_mesh`` (the coordinator). Resources: each
registered agent's card. Lists are read from the registry on every request, so every replica
answers alike; ``follow`` turns registry changes into list-changed notifications, on
``subscriptions/listen`` streams (2026-07-28) and on handshake-era sessions alike.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any, TypeVar

import httpx
from mcp.server import MCPServer, NotificationOptions
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourcesListChanged, ResourceUpdated, ToolsListChanged
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INTERNAL_ERROR,
    CallToolResult,
    InputRequiredResult,
    ListToolsResult,
    PaginatedRequestParams,
    ResourceListChangedNotification,
    ToolListChangedNotification,
)
from mcp_types import Resource as MCPResource
from mcp_types import Tool as MCPTool
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field

from agents.settings import MeshSettings
from protocols.card_signing import CardTrust
from protocols.credentials import outbound_client
from protocols.mcp_bridge import AgentBridge, AgentTool, BridgeError, agent_tools, tool_name
from registry.models import AgentRecord, EventType, InstanceRecord, Policy
from registry.views import MeshView, ViewError

__all__ = ["ASK_MESH", "CARD_URI", "RegistryMCP", "build_registry_mcp", "card_uri", "gateway_http"]

log = logging.getLogger("registry.mcp")
CARD_URI = "a2a://registry/agents/{agent_id}/card"
CARD_MIME = "application/json"
LISTED_CARDS = 1000  # resources/list is one page here; past this, cards stay readable through the template
SESSIONS_KEPT = 1024  # handshake-era sessions told about list changes (the oldest are forgotten first)
SETTLE_SECONDS = 0.2  # registry events come in bursts (register + probe): one notification per burst
T = TypeVar("T")
ASK_MESH = MCPTool(
    name="ask_mesh",
    title="Ask the mesh",
    description="Hand a request in plain language to the mesh's coordinator, which plans it across the agents "
                "and may ask you questions on the way.",
    input_schema={"type": "object", "properties": {"request": {"type": "string", "description": "What you need"}},
                  "required": ["request"]},
)


def card_uri(agent_id: str) -> str:
    return CARD_URI.format(agent_id=agent_id)


class AgentSummary(BaseModel):
    id: str
    kind: str
    name: str
    version: str
    description: str
    skills: list[str]
    tools: list[str] = Field(description="the MCP tools of this gateway that call its skills")
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
        skills=[s.id for s in agent.skills], tools=[tool_name(agent.name, s.id) for s in agent.skills] if healthy else [],
        healthy_instances=len(healthy), verified=agent.verified,
        url=healthy[0].url if healthy else None, card_resource=card_uri(agent.id),
    )


class RegistryMCP(MCPServer):
    """An MCP server whose agent tools and card resources are what the registry holds now."""

    def __init__(self, view: MeshView, bridge: AgentBridge, coordinator: str = "coordinator") -> None:
        self.view = view
        self.bridge = bridge
        self.coordinator = coordinator
        self.bus = InMemorySubscriptionBus()
        self._sessions: OrderedDict[str, ServerSession] = OrderedDict()
        super().__init__(
            "agent-mesh",
            instructions="The agents of this mesh as tools (<agent>__<skill>). find_agents searches the mesh; "
                         "ask_mesh hands a request in plain language to the coordinator.",
            subscriptions=self.bus,
        )
        # handshake-era capabilities come from these options: the lists here do change
        low = self._lowlevel_server
        low.create_initialization_options = functools.partial(  # type: ignore[method-assign]
            low.create_initialization_options, NotificationOptions(tools_changed=True, resources_changed=True))

    async def _agent_tools(self) -> tuple[list[AgentRecord], dict[str, AgentTool]]:
        records = await _read(self.view.find())
        return records, agent_tools(records)

    async def _handle_list_tools(self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
                                 ) -> ListToolsResult:
        self._remember(ctx)
        return await super()._handle_list_tools(ctx, params)

    def _remember(self, ctx: ServerRequestContext[Any]) -> None:
        """Keep a handshake-era session to tell it when the lists change (modern ones listen instead)."""
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return
        key = (ctx.request.headers.get("mcp-session-id") if ctx.request is not None else None) or "stdio"
        self._sessions[key] = ctx.session
        self._sessions.move_to_end(key)
        while len(self._sessions) > SESSIONS_KEPT:
            self._sessions.popitem(last=False)

    async def list_tools(self) -> list[MCPTool]:
        _, tools = await self._agent_tools()
        return [*await super().list_tools(), ASK_MESH, *(t.definition for t in tools.values())]

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
                        ) -> CallToolResult | InputRequiredResult:
        if self._tool_manager.get_tool(name) is not None:
            return await super().call_tool(name, arguments, context)
        records, tools = await self._agent_tools()
        if name == ASK_MESH.name:
            tool = tools.get(tool_name(self.coordinator, "ask"))
            if tool is None:
                raise ToolError(f"no healthy coordinator ({self.coordinator!r} with an 'ask' skill) is in the mesh")
            arguments = {"request": arguments.get("request")}
        else:
            tool = tools.get(name)
            if tool is None:
                raise ToolError(f"Unknown tool: {name} (no healthy agent of this mesh offers it now)")
        assert context is not None
        record = next(r for r in records if r.id == tool.agent_id)
        return await self.call_agent(tool, record, arguments, context)

    async def call_agent(self, tool: AgentTool, record: AgentRecord, arguments: dict[str, Any],
                         context: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
        if tool.skill is None and not str(arguments.get("text") or "").strip():
            raise ToolError(f"{tool.definition.name}: 'text' is required (what to ask agent {tool.agent_name!r})")
        try:
            instance = await self.view.resolve(record, Policy.least_in_flight)
            return await self.bridge.call(tool, instance.url, arguments, context, [i.url for i in record.healthy])
        except (ViewError, BridgeError) as exc:
            raise ToolError(str(exc)) from None

    async def list_resources(self) -> list[MCPResource]:
        try:
            agents = await self.view.find(include_all=True)
        except ViewError as exc:
            raise MCPError(code=INTERNAL_ERROR, message=str(exc)) from None
        cards = [
            MCPResource(uri=card_uri(a.id), name=a.id, title=f"{a.name} {a.version}", description=a.description,
                        mime_type=CARD_MIME)
            for a in agents[:LISTED_CARDS]
        ]
        return [*await super().list_resources(), *cards]

    async def follow(self) -> None:
        """Announce tool-list, card-list and card changes until cancelled."""
        tools = await self._tool_names()
        while True:  # a watch ends when the feed dropped a slow watcher: watch again
            async for event in self.view.watch():
                if event.type in (EventType.registered, EventType.deregistered, EventType.evicted):
                    await self._announce(ResourcesListChanged(), ResourceListChangedNotification())
                if event.type in (EventType.registered, EventType.updated):
                    await self.bus.publish(ResourceUpdated(uri=card_uri(event.agent_id)))
                await asyncio.sleep(SETTLE_SECONDS)
                now = await self._tool_names()
                if now is not None and now != tools:
                    tools = now
                    await self._announce(ToolsListChanged(), ToolListChangedNotification())
            await self._announce(ResourcesListChanged(), ResourceListChangedNotification())

    async def _tool_names(self) -> frozenset[str] | None:
        try:
            return frozenset((await self._agent_tools())[1])
        except ToolError:
            return None  # the registry is away: compare again after the next event

    async def _announce(self, event: Any, notification: Any) -> None:
        await self.bus.publish(event)
        for key, session in list(self._sessions.items()):
            try:
                await session.send_notification(notification)
            except Exception:  # the session is gone
                self._sessions.pop(key, None)


async def _read(call: Awaitable[T]) -> T:
    try:
        return await call
    except ViewError as exc:
        raise ToolError(str(exc)) from None


def gateway_http(settings: MeshSettings) -> httpx.AsyncClient:
    """The client the gateway calls agents with: a streamed task may stay quiet up to the idle limit."""
    return outbound_client(settings, "mesh-gateway", timeout=httpx.Timeout(10, read=settings.gateway_idle_seconds),
                           follow_redirects=False)


def build_registry_mcp(view: MeshView, http: httpx.AsyncClient, coordinator: str = "coordinator",
                       trust: CardTrust | None = None) -> RegistryMCP:
    server = RegistryMCP(view, AgentBridge(http, trust=trust), coordinator)

    @server.tool()
    async def find_agents(
        query: str | None = None, skill: str | None = None, tag: str | None = None, include_unhealthy: bool = False
    ) -> Found:
        """Find agents by free text (ranked), skill id or tag. Only agents with a healthy instance unless include_unhealthy."""
        agents = await _read(view.find(text=query, skill=skill, tag=tag, include_all=include_unhealthy))
        return Found(agents=[_summary(a) for a in agents])

    @server.tool()
    async def get_agent(agent_id: str) -> AgentRecord:
        """Everything the registry knows about one agent: card, skills, instances and their health history."""
        agent = await _read(view.agent(agent_id))
        if agent is None:
            raise ToolError(f"no agent {agent_id!r} is registered")
        return agent

    @server.tool()
    async def resolve(agent_id: str, policy: Policy = Policy.round_robin) -> InstanceRecord:
        """One healthy instance of an agent to call, chosen by policy (round_robin, least_in_flight, random)."""
        agent = await _read(view.agent(agent_id))
        if agent is None:
            raise ToolError(f"no agent {agent_id!r} is registered")
        return await _read(view.resolve(agent, policy))

    @server.resource(CARD_URI, name="agent-card", description="The A2A card of a registered agent", mime_type=CARD_MIME)
    async def agent_card(agent_id: str) -> str:
        try:
            agent = await server.view.agent(agent_id)
        except ViewError as exc:
            raise ResourceError(str(exc)) from None
        if agent is None:
            raise ResourceNotFoundError(f"no agent {agent_id!r} is registered")
        return json.dumps(agent.card, indent=2)

    return server

