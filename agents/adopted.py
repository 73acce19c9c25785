"""An MCP server adopted into the mesh: an :class:`Agent` with one schema-defined skill per tool.

The agent is an ordinary agent of our runtime (A2A 1.0 on both bindings, its own MCP face, a card
with the skill-schemas extension, registry registration, tracing, persistent tasks); each skill
calls its tool on the server through :class:`protocols.mcp_upstream.McpUpstream`. ``mesh adopt``
builds and serves it (docs/adopt.md).
"""

from __future__ import annotations

import json
import logging
import re

from mcp_types import Tool

from agents.context import ToolContext
from agents.definition import Agent, SchemaHandler
from protocols.mcp_upstream import McpUpstream, UpstreamServer

__all__ = ["adopted_agent", "skill_id_for", "tags_for"]

log = logging.getLogger("agents.adopt")
_NOT_ID = re.compile(r"[^A-Za-z0-9_.-]+")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_MAX_ID = 64
_HINT_TAGS = (("read_only_hint", "read-only"), ("destructive_hint", "destructive"),
              ("idempotent_hint", "idempotent"), ("open_world_hint", "open-world"))


def skill_id_for(tool_name: str, taken: set[str]) -> str:
    """The tool's name when it is a valid skill id, else a sanitised one (unique among ``taken``)."""
    base = _NOT_ID.sub("_", tool_name).lstrip(".-")[:_MAX_ID] or "tool"
    candidate, n = base, 2
    while candidate in taken:
        suffix = f"_{n}"
        candidate, n = base[: _MAX_ID - len(suffix)] + suffix, n + 1
    return candidate


def tags_for(tool: Tool) -> list[str]:
    """The words of the tool's name (``search_nodes`` → search, nodes) and what its annotations promise."""
    tags = [w.lower() for w in _WORD.findall(tool.name)]
    annotations = tool.annotations
    if annotations is not None:
        tags += [tag for attr, tag in _HINT_TAGS if getattr(annotations, attr) is True]
    return list(dict.fromkeys(tags))


def _examples(tool: Tool) -> list[str]:
    """Example arguments the input schema gives (JSON Schema ``examples``), as JSON text."""
    examples = tool.input_schema.get("examples")
    return [json.dumps(e) for e in examples if isinstance(e, dict)] if isinstance(examples, list) else []


def _caller(upstream: McpUpstream, tool_name: str) -> SchemaHandler:
    async def call(arguments: dict[str, object], ctx: ToolContext) -> object:
        return await upstream.call(tool_name, arguments, ctx)

    return call


def adopted_agent(server: UpstreamServer, upstream: McpUpstream, *, name: str | None = None) -> Agent:
    """The agent in front of ``server``: named after its ``serverInfo`` unless ``name`` is given."""
    agent_name = name or _NOT_NAME.sub("-", server.name).strip("-.") or "mcp-server"
    tool_names = ", ".join(t.name for t in server.tools) or "no tools"
    description = (server.instructions or "").strip() or (
        f"The MCP server {server.name} {server.version}, adopted into the mesh; its tools: {tool_names}.")
    agent = Agent(agent_name, description, version=server.version)
    for tool in server.tools:
        skill_id = skill_id_for(tool.name, set(agent.skills))
        title = tool.title or (tool.annotations.title if tool.annotations else None)
        try:
            agent.add_schema_skill(
                skill_id, _caller(upstream, tool.name),
                input_schema=tool.input_schema, output_schema=tool.output_schema,
                description=(tool.description or title or f"The MCP tool {tool.name}.").strip(),
                name=title, tags=tags_for(tool), examples=_examples(tool),
            )
        except ValueError as exc:  # a tool whose schema we cannot check is left out, loudly
            log.warning("adopting %s: tool %r left out: %s", agent_name, tool.name, exc)
    agent.on_stop(upstream.close)
    return agent
