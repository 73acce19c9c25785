"""agent-mesh runtime: define an agent once, serve it as A2A 1.0 and MCP.

    from agents import Agent

    agent = Agent("greeter", "Greets people by name", version="1.0.0")

    @agent.skill(tags=["greeting"], examples=["say hello to Ada"])
    def greet(name: str) -> str:
        '''Greet someone by name.'''
        return f"Hello, {name}!"

Serve it with ``mesh serve mymodule:agent``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.context import Artifact, InputNeeded, Reject, Reply, ToolContext, ToolError
    from agents.definition import Agent, Provider, Skill

__all__ = ["Agent", "Artifact", "InputNeeded", "Provider", "Reject", "Reply", "Skill", "ToolContext", "ToolError"]

# Loaded on first use: the definitions pull in the mcp SDK (~1 s), which `mesh agents` and other
# client commands never need.
_HOME = {name: "agents.definition" for name in ("Agent", "Provider", "Skill")} | {
    name: "agents.context" for name in ("Artifact", "InputNeeded", "Reject", "Reply", "ToolContext", "ToolError")
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
