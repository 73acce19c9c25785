"""What the coordinator knows of the mesh: agents, their skills with argument schemas, their instances.

Built from registry records (``registry.models.AgentRecord``); the schemas come from our
skill-schemas card extension, so foreign agents simply have none (they are sent text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocols.mesh_extensions import NEGOTIATION, declared_extensions, skill_schemas
from registry.models import AgentRecord

__all__ = ["AgentInfo", "SkillInfo"]


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
    score: float | None = None  # the registry's text-search rank, when found by text
    in_flight: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: AgentRecord) -> AgentInfo:
        schemas = skill_schemas(record.card)
        skills = {
            s.id: SkillInfo(s.id, s.name, s.description, tuple(s.tags), schemas.get(s.id)) for s in record.skills
        }
        healthy = record.healthy
        return cls(
            id=record.id,
            name=record.name,
            description=record.description,
            card=record.card,
            skills=skills,
            urls=tuple(i.url for i in healthy),
            negotiates=NEGOTIATION in declared_extensions(record.card),
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
