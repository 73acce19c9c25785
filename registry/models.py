"""The registry's boundary models: what its REST API, MCP face and store exchange."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AgentRecord",
    "Event",
    "EventType",
    "Heartbeat",
    "InstanceRecord",
    "InstanceState",
    "MCPServerSpec",
    "MCPToolSpec",
    "Policy",
    "RegisterRequest",
    "Registration",
    "SkillSummary",
    "Transition",
]


class InstanceState(str, Enum):
    healthy = "healthy"
    unhealthy = "unhealthy"
    evicted = "evicted"


class EventType(str, Enum):
    registered = "registered"
    updated = "updated"
    state_changed = "state_changed"
    evicted = "evicted"
    deregistered = "deregistered"


class Policy(str, Enum):
    round_robin = "round_robin"
    least_in_flight = "least_in_flight"
    random = "random"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MCPToolSpec(_Model):
    name: str = Field(min_length=1)
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class MCPServerSpec(_Model):
    """An MCP server: reached by URL (streamable HTTP) or started by a stdio command."""

    name: str = Field(min_length=1)
    version: str = "0.0.0"
    description: str = ""
    url: str | None = Field(default=None, description="streamable HTTP endpoint, e.g. http://host:port/mcp")
    command: list[str] | None = Field(default=None, description="stdio command line")
    tools: list[MCPToolSpec] | None = Field(default=None, description="listed by the registry when omitted for a URL")

    @model_validator(mode="after")
    def _one_way_in(self) -> MCPServerSpec:
        if (self.url is None) == (self.command is None):
            raise ValueError("give exactly one of url or command")
        if self.command is not None and self.tools is None:
            raise ValueError("a stdio server needs its tool list: the registry does not start processes")
        return self


class RegisterRequest(_Model):
    """Register one instance: an A2A agent by card URL or by card, or an MCP server."""

    card_url: str | None = Field(default=None, description="agent base URL or card URL; the registry fetches it")
    card: dict[str, Any] | None = Field(default=None, description="the card itself (A2A 1.0 or 0.3 JSON)")
    url: str | None = Field(default=None, description="instance base URL when posting a card (default: from the card)")
    mcp: MCPServerSpec | None = None
    lease_seconds: float | None = Field(default=None, gt=0, le=86400, description="heartbeat lease; none: probe only")

    @model_validator(mode="after")
    def _exactly_one(self) -> RegisterRequest:
        given = [name for name in ("card_url", "card", "mcp") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of card_url, card or mcp (got {', '.join(given) or 'none'})")
        return self


class Heartbeat(_Model):
    in_flight: int = Field(default=0, ge=0, description="requests the instance is serving now")


class Transition(_Model):
    state: InstanceState
    at: datetime
    reason: str


class InstanceRecord(_Model):
    id: str
    agent_id: str
    kind: Literal["a2a", "mcp"]
    url: str
    state: InstanceState
    state_since: datetime
    registered_at: datetime
    lease_seconds: float | None
    lease_expires_at: datetime | None
    last_heartbeat_at: datetime | None
    last_probe_at: datetime | None
    last_probe_ok_at: datetime | None
    in_flight: int
    transitions: list[Transition] = Field(default_factory=list)


class SkillSummary(_Model):
    id: str
    name: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    input_modes: list[str] = Field(default_factory=list)
    output_modes: list[str] = Field(default_factory=list)


class AgentRecord(_Model):
    """One logical agent (name + version); its instances are replicas."""

    id: str
    kind: Literal["a2a", "mcp"]
    name: str
    version: str
    description: str
    protocol_version: str
    skills: list[SkillSummary]
    verified: bool
    verification: str
    card: dict[str, Any]
    updated_at: datetime
    instances: list[InstanceRecord] = Field(default_factory=list)
    score: float | None = Field(default=None, description="text-search rank, higher is better")

    @property
    def healthy(self) -> list[InstanceRecord]:
        return [i for i in self.instances if i.state is InstanceState.healthy]


class Registration(_Model):
    """The answer to a registration: the instance to heartbeat and its agent."""

    instance_id: str
    agent_id: str
    created: bool
    heartbeat_url: str
    lease_seconds: float | None
    agent: AgentRecord


class Event(_Model):
    seq: int
    type: EventType
    agent_id: str
    instance_id: str | None
    state: InstanceState | None
    at: datetime
    detail: str = ""
