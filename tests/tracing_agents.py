"""A front-desk agent that calls another agent over A2A (streaming) and over MCP: a three-hop trace."""

from __future__ import annotations

import os

import httpx
from mcp import Client

from agents import Agent
from protocols.a2a_client import A2AConnection, user_message

frontdesk = Agent("frontdesk", "Relays questions to the back office", version="1.0.0")


@frontdesk.skill(tags=["relay"])
async def relay(text: str) -> dict[str, str]:
    """Ask the back office to echo over A2A (streamed), then add over MCP."""
    backend = os.environ["BACKEND_URL"]
    echoed = ""
    async with httpx.AsyncClient(timeout=30) as http:
        connection = await A2AConnection.open(backend, http, streaming=True)
        async for event in connection.send(user_message(data={"skill": "echo", "arguments": {"text": text}})):
            artifact = event.get("artifactUpdate", {}).get("artifact")
            if artifact:
                echoed = artifact["parts"][0]["text"]
    async with Client(backend + "/mcp") as mcp:
        total = (await mcp.call_tool("add", {"a": 2, "b": 3})).structured_content["result"]
    return {"echo": echoed, "sum": str(total)}
