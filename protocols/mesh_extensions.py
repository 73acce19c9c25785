"""agent-mesh's A2A extensions, declared in ``capabilities.extensions`` of our cards.

* ``SKILL_SCHEMAS``: the JSON Schema of each skill's arguments, so a coordinator hands an agent
  exactly the arguments its skill declares (A2A skills carry no schema of their own).
* ``NEGOTIATION``: the agent answers calls for proposals (see ``protocols.negotiation``).
* ``IDEMPOTENT_DELIVERY``: a new message that lists this URI in its ``extensions`` is run once per
  messageId; a re-send gets the task the first one started (docs/runtime.md, idempotent delivery).

Both are optional: clients that do not know them ignore them, and agents without them are still
called (with text, or as plain candidates).
"""

from __future__ import annotations

from typing import Any

from a2a.types import AgentExtension
from google.protobuf.struct_pb2 import Struct

__all__ = ["IDEMPOTENT_DELIVERY", "NEGOTIATION", "idempotent_delivery_extension", "SKILL_SCHEMAS", "declared_extensions", "skill_schemas", "skill_schemas_extension"]

SKILL_SCHEMAS = "https://agent-mesh.dev/a2a/ext/skill-schemas/v1"
NEGOTIATION = "https://agent-mesh.dev/a2a/ext/negotiation/v1"
IDEMPOTENT_DELIVERY = "https://agent-mesh.dev/a2a/ext/idempotent-delivery/v1"


def skill_schemas_extension(schemas: dict[str, dict[str, Any]]) -> AgentExtension:
    params = Struct()
    params.update({"skills": schemas})
    return AgentExtension(
        uri=SKILL_SCHEMAS,
        description="JSON Schema of each skill's arguments (data part {skill, arguments}).",
        required=False,
        params=params,
    )


def idempotent_delivery_extension() -> AgentExtension:
    return AgentExtension(
        uri=IDEMPOTENT_DELIVERY,
        description="A new message listing this URI in its extensions runs once per messageId.",
        required=False,
    )


def declared_extensions(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The card's extensions (JSON form) by URI, each with its params."""
    extensions = (card.get("capabilities") or {}).get("extensions") or []
    return {e["uri"]: e.get("params") or {} for e in extensions if isinstance(e, dict) and isinstance(e.get("uri"), str)}


def skill_schemas(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Skill id → argument schema, from a card (JSON form) that declares ``SKILL_SCHEMAS``; else empty."""
    schemas = declared_extensions(card).get(SKILL_SCHEMAS, {}).get("skills")
    return {k: v for k, v in schemas.items() if isinstance(v, dict)} if isinstance(schemas, dict) else {}
