"""The MCP face over streamable HTTP: the same skills as tools, with schemas, errors and elicitation."""

from __future__ import annotations

import json

import pytest
from mcp import Client
from mcp_types import ElicitResult

from tests.agents_under_test import agent
from tests.support import running_agent

MODES = ["auto", "legacy"]  # 2026-07-28 sessionless, and the initialize handshake IDE hosts use


@pytest.fixture
async def mcp_url(tmp_path):
    async with running_agent(agent, tmp_path) as svc:
        yield svc.base_url + "/mcp"


@pytest.mark.parametrize("mode", MODES)
async def test_tools_carry_input_and_output_schemas(mcp_url, mode):
    async with Client(mcp_url, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == set(agent.skills)
    profile = tools["profile"]
    assert profile.description == "Build a person's profile."
    assert profile.input_schema["required"] == ["name", "age"]
    assert profile.input_schema["properties"]["age"]["type"] == "integer"
    assert profile.output_schema["properties"]["adult"]["type"] == "boolean"
    assert "ctx" not in tools["slow"].input_schema["properties"]


@pytest.mark.parametrize("mode", MODES)
async def test_call_returns_structured_content(mcp_url, mode):
    async with Client(mcp_url, mode=mode) as client:
        result = await client.call_tool("profile", {"name": "Ada", "age": 36})
        added = await client.call_tool("add", {"a": 2, "b": 40})
    assert not result.is_error
    assert result.structured_content == {"name": "Ada", "age": 36, "adult": True}
    assert added.structured_content == {"result": 42}


@pytest.mark.parametrize("mode", MODES)
async def test_errors_are_tool_errors_naming_the_problem(mcp_url, mode):
    async with Client(mcp_url, mode=mode) as client:
        invalid = await client.call_tool("add", {"a": "two", "b": 1})
        unknown = await client.call_tool("teleport", {})
        crash = await client.call_tool("boom", {"reason": "disk full"})
        refused = await client.call_tool("refuse", {"why": "policy"})
        quota = await client.call_tool("quota", {"customer": "1002"})
        still_fine = await client.call_tool("echo", {"text": "ok"})
    assert invalid.is_error and "invalid arguments for skill 'add': a:" in invalid.content[0].text
    assert unknown.is_error and "teleport" in unknown.content[0].text
    assert crash.is_error and crash.content[0].text == "Error executing tool boom: RuntimeError: disk full"
    assert refused.is_error and "not allowed: policy" in refused.content[0].text
    assert quota.is_error and quota.content[0].text.endswith("customer 1002 is over quota")
    assert not still_fine.is_error and still_fine.structured_content == {"result": "ok"}


async def test_artifacts_and_replies_become_content(mcp_url):
    async with Client(mcp_url) as client:
        report = await client.call_tool("report", {"title": "Q3"})
        hello = await client.call_tool("hello", {"name": "Grace"})
        streamed = await client.call_tool("chunks", {"count": 2})
    assert report.content[0].text == "# Q3"
    assert report.content[1].resource.mime_type == "text/plain"
    assert report.content[2].text == "https://example.com/report.pdf"
    assert [c.text for c in hello.content] == ["Hello, Grace!"]
    assert [c.text for c in streamed.content] == ["chunk-0 ", "chunk-1 "]


async def test_agent_card_is_a_resource(mcp_url):
    async with Client(mcp_url) as client:
        resources = (await client.list_resources()).resources
        (card_resource,) = [r for r in resources if r.name == "agent-card"]
        contents = (await client.read_resource(str(card_resource.uri))).contents
    card = json.loads(contents[0].text)
    assert card["name"] == "testbench"
    assert {s["id"] for s in card["skills"]} == set(agent.skills)


@pytest.mark.parametrize("mode", MODES)
async def test_questions_become_elicitations(mcp_url, mode):
    answers = iter(["green", "otter"])
    asked = []

    async def answer(context, params):
        asked.append(params.message)
        return ElicitResult(action="accept", content={"answer": next(answers)})

    async with Client(mcp_url, mode=mode, elicitation_callback=answer) as client:
        result = await client.call_tool("survey", {})
    assert asked == ["Favourite colour?", "Favourite animal?"]
    assert result.structured_content == {"colour": "green", "animal": "otter"}


@pytest.mark.parametrize("mode", MODES)
async def test_declined_question_is_a_clear_error(mcp_url, mode):
    async def decline(context, params):
        return ElicitResult(action="decline")

    async with Client(mcp_url, mode=mode, elicitation_callback=decline) as client:
        result = await client.call_tool("survey", {})
    assert result.is_error and "declined" in result.content[0].text


async def test_progress_is_reported(mcp_url):
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async with Client(mcp_url, mode="legacy") as client:
        result = await client.call_tool("slow", {"seconds": 0.05}, progress_callback=on_progress)
    assert result.structured_content == {"result": "slept 0.05"}
    assert seen == [(0, 1, "started")]
