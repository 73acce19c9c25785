"""agent-mesh runtime: define an agent once, serve it as A2A 1.0 and MCP.

    from agents import Agent

    agent = Agent("greeter", "Greets people by name", version="1.0.0")

    @agent.skill(tags=["greeting"], examples=["say hello to Ada"])
    def greet(name: str) -> str:
        '''Greet someone by name.'''
        return f"Hello, {name}!"

Serve it with ``mesh serve mymodule:agent``.
"""

from agents.context import Artifact, InputNeeded, Reject, Reply, ToolContext, ToolError
from agents.definition import Agent, Provider, Skill

__all__ = ["Agent", "Artifact", "InputNeeded", "Provider", "Reject", "Reply", "Skill", "ToolContext", "ToolError"]
