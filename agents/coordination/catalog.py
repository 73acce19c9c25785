"""What the coordinator knows of the mesh: agents, their skills with argument schemas, their instances.

Built from registry records (``registry.models.AgentRecord``); the schemas come from our
skill-schemas card extension. An agent whose card lacks it is *foreign* (another vendor's, or
A2A 0.3): it is sent text and plain data, never our ``{skill, arguments}`` call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from protocols.mesh_extensions import NEGOTIATION, SKILL_SCHEMAS, declared_extensions, skill_schemas
from protocols.registry_client import RegistryError
from registry.models import AgentRecord

__all__ = ["AgentInfo", "Directory", "SkillInfo"]


@dataclass(frozen=True, slots=True)
class SkillInfo:
    id: str
    name: str
    description: str
    tags: tuple[str, ...] = ()
    schema: dict[str, Any] | None = None  # JSON Schema of the arguments, when the card declares it

    @property
    def parameters(self) -> list[str]:
        return list((self.schema or {}).get("properties", {}))

    @property
    def required(self) -> list[str]:
        return list((self.schema or {}).get("required", []))


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """One agent of the mesh as the coordinator sees it; ``urls`` are its healthy instances' base URLs."""

    id: str
    name: str
    description: str
    card: dict[str, Any]
    skills: dict[str, SkillInfo]
    urls: tuple[str, ...]
    negotiates: bool = False
    foreign: bool = False  # no skill-schemas extension on the card: not on our runtime
    score: float | None = None  # the registry's text-search rank, when found by text
    in_flight: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: AgentRecord) -> AgentInfo:
        schemas = skill_schemas(record.card)
        skills = {
            s.id: SkillInfo(s.id, s.name, s.description, tuple(s.tags), schemas.get(s.id)) for s in record.skills
        }
        healthy = record.healthy
        extensions = declared_extensions(record.card)
        return cls(
            id=record.id,
            name=record.name,
            description=record.description,
            card=record.card,
            skills=skills,
            urls=tuple(i.url for i in healthy),
            negotiates=NEGOTIATION in extensions,
            foreign=SKILL_SCHEMAS not in extensions,
            score=record.score,
            in_flight={i.url: i.in_flight for i in healthy},
        )

    def describe(self) -> dict[str, Any]:
        """A compact description for planners (and LLM prompts): name, description, skills with arguments."""
        return {
            "agent": self.name,
            "description": self.description,
            "skills": [
                {"skill": s.id, "description": s.description, "arguments": (s.schema or {}).get("properties", {}),
                 "required": s.required}
                for s in self.skills.values()
            ],
        }


class Directory:
    """Finds agents in the registry by name or by text, with a short cache so a busy coordinator
    does not ask the registry on every step (health changes reach it within ``ttl`` seconds)."""

    def __init__(self, registry: Any, ttl: float = 2.0, exclude: tuple[str, ...] = ()) -> None:
        self.registry = registry  # protocols.registry_client.RegistryClient
        self.ttl = ttl
        self.exclude = set(exclude)  # e.g. the coordinator itself: never a candidate for its own steps
        self._cache: dict[tuple[str, str], tuple[float, list[AgentInfo]]] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[list[AgentInfo]]] = {}

    async def _find(self, key: tuple[str, str], **filters: Any) -> list[AgentInfo]:
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        pending = self._pending.get(key)
        if pending is None:  # one lookup per key at a time: a busy coordinator must not stampede the registry
            pending = asyncio.ensure_future(self._lookup(key, filters))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        try:
            return await asyncio.shield(pending)
        except RegistryError:
            if cached is not None:  # the registry is away: what it said a moment ago beats nothing
                return cached[1]
            raise

    async def _lookup(self, key: tuple[str, str], filters: dict[str, Any]) -> list[AgentInfo]:
        try:
            records = await self.registry.find(**filters)
        except RegistryError:
            await asyncio.sleep(0.2)  # one more try: a registry restarting or shedding load
            records = await self.registry.find(**filters)
        found = [AgentInfo.from_record(r) for r in records if r.kind == "a2a" and r.name not in self.exclude]
        self._cache[key] = (time.monotonic(), found)
        return found

    async def by_name(self, name: str) -> AgentInfo | None:
        """The agent called ``name`` (its newest version when several are registered)."""
        found = [a for a in await self._find(("name", name), name=name) if a.urls]
        return found[0] if found else None

    async def search(self, text: str, limit: int = 5) -> list[AgentInfo]:
        """Agents matching ``text``, best first, with at least one healthy instance."""
        return [a for a in await self._find(("text", text), q=text, limit=limit) if a.urls]

    async def all(self) -> list[AgentInfo]:
        return [a for a in await self._find(("all", ""),) if a.urls]

    def forget(self) -> None:
        self._cache.clear()
