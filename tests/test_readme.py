"""The README's 15-line agent is real: it loads, serves both faces and answers."""

from __future__ import annotations

import re

import httpx
from mcp import Client

from agents.cli import load_agent
from tests.support import A2A_HEADERS, ROOT, rpc, running_agent, skill_message


def readme_agent_source() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## An agent in 15 lines", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_agent_is_fifteen_lines():
    lines = [line for line in readme_agent_source().splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) <= 15, len(lines)


async def test_the_readme_agent_serves_a2a_and_mcp(tmp_path):
    path = tmp_path / "weather.py"
    path.write_text(readme_agent_source())
    agent = load_agent(f"{path}:agent")
    async with running_agent(agent, tmp_path / "home") as service:
        async with httpx.AsyncClient(base_url=service.base_url, headers=A2A_HEADERS) as http:
            body = (await http.post("/", json=rpc("SendMessage", {"message": skill_message("forecast", {"city": "Oslo"}, "r1")}))).json()
        task = body["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED"
        assert task["artifacts"][0]["parts"][0]["data"] == {"city": "Oslo", "celsius": 21.5}
        async with Client(service.base_url + "/mcp") as mcp:
            tool = (await mcp.list_tools()).tools[0]
            result = await mcp.call_tool("forecast", {"city": "Oslo", "days": 2})
        assert tool.name == "forecast" and set(tool.input_schema["properties"]) == {"city", "days"}
        assert result.structured_content == {"city": "Oslo", "celsius": 21.5}
