"""Turn what is registered (an A2A card, an MCP server spec) into the registry's agent description."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from registry.models import MCPServerSpec, SkillSummary
from registry.search import Searchable

__all__ = ["AgentDescription", "agent_id_for", "describe_card", "describe_mcp", "instance_id_for", "instance_url_of"]

_SLUG = re.compile(r"[^a-z0-9._-]+")


def agent_id_for(name: str, version: str) -> str:
    """A readable, URL-safe id; a hash suffix keeps distinct names that slug alike apart."""
    slug = _SLUG.sub("-", name.lower()).strip("-") or "agent"
    if slug != name:
        slug += "-" + hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{slug}@{_SLUG.sub('-', version.lower()) or '0'}"


def instance_id_for(agent_id: str, url: str) -> str:
    """Stable per (agent, URL): registering the same instance twice is idempotent."""
    return "i-" + hashlib.sha256(f"{agent_id}\n{url.rstrip('/')}".encode()).hexdigest()[:20]


@dataclass
class AgentDescription:
    id: str
    kind: str
    name: str
    version: str
    description: str
    protocol_version: str
    card: dict[str, Any]
    skills: list[SkillSummary]
    verified: bool = False
    verification: str = "unsigned"
    facets: list[tuple[str, str]] = field(default_factory=list)

    @property
    def searchable(self) -> Searchable:
        skills = " ".join(
            " ".join([s.id.replace("_", " "), s.name, s.description, *s.tags, *s.examples]) for s in self.skills
        )
        return Searchable(name=self.name, skills=skills, description=self.description)


def _facets(skills: list[SkillSummary], input_modes: list[str], output_modes: list[str]) -> list[tuple[str, str]]:
    facets = {("skill", s.id) for s in skills}
    facets |= {("tag", t.lower()) for s in skills for t in s.tags}
    facets |= {("input_mode", m) for m in input_modes} | {("input_mode", m) for s in skills for m in s.input_modes}
    facets |= {("output_mode", m) for m in output_modes} | {("output_mode", m) for s in skills for m in s.output_modes}
    return sorted(facets)


def instance_url_of(card: dict[str, Any]) -> str:
    """The base URL of the agent a card describes: its first interface (1.0) or ``url`` (0.3)."""
    interfaces = card.get("supportedInterfaces") or []
    url = interfaces[0]["url"] if interfaces else card.get("url", "")
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else url


def describe_card(card: dict[str, Any]) -> AgentDescription:
    """A validated card (``protocols.cards.validate_card`` found no problem) as an agent description."""
    legacy = "supportedInterfaces" not in card
    skills = [
        SkillSummary(
            id=s["id"],
            name=s["name"],
            description=s.get("description", ""),
            tags=list(s.get("tags", [])),
            examples=list(s.get("examples", [])),
            input_modes=list(s.get("inputModes", [])),
            output_modes=list(s.get("outputModes", [])),
        )
        for s in card.get("skills", [])
    ]
    protocol = card.get("protocolVersion", "0.3") if legacy else card["supportedInterfaces"][0]["protocolVersion"]
    return AgentDescription(
        id=agent_id_for(card["name"], card["version"]),
        kind="a2a",
        name=card["name"],
        version=card["version"],
        description=card["description"],
        protocol_version=protocol,
        card=card,
        skills=skills,
        facets=_facets(skills, card.get("defaultInputModes", []), card.get("defaultOutputModes", [])),
    )


def describe_mcp(spec: MCPServerSpec) -> AgentDescription:
    tools = spec.tools or []
    skills = [SkillSummary(id=t.name, name=t.name, description=t.description, tags=["mcp"]) for t in tools]
    card = spec.model_dump(mode="json", exclude_none=True)
    return AgentDescription(
        id=agent_id_for(spec.name, spec.version),
        kind="mcp",
        name=spec.name,
        version=spec.version,
        description=spec.description or f"MCP server {spec.name}",
        protocol_version="mcp",
        card=card,
        skills=skills,
        facets=_facets(skills, ["application/json"], ["application/json"]),
    )
