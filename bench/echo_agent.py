"""The agent the hop benchmark serves with ``mesh serve``: one echo skill.

``agent``'s skill is ``async def``, like the bare servers' echo, so no side pays a worker-thread hop
the other does not. ``sync_agent``'s is a plain ``def``: the mcp SDK, and so the runtime on both
faces, runs sync functions on a worker thread; its row in the benchmark shows what that costs.
"""

from __future__ import annotations

from agents import Agent

agent = Agent("echo", "Echoes its input back", version="1.0.0")
sync_agent = Agent("echo", "Echoes its input back", version="1.0.0")


@agent.skill(id="echo", tags=["echo"])
async def echo(text: str) -> str:
    """Echo the text back."""
    return text


@sync_agent.skill(id="echo", tags=["echo"])
def echo_sync(text: str) -> str:
    """Echo the text back."""
    return text
