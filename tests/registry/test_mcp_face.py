"""The registry's MCP face at /mcp, on SQLite and PostgreSQL, as an IDE assistant reaches it over HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp_types import INVALID_PARAMS

from agents import Agent
from registry.mcp_face import CARD_URI, card_uri
from registry.models import InstanceState
from tests.registry.support import card_for, client_for, running_registry

MODES = ["auto", "legacy"]  # 2026-07-28 sessionless, and the initialize handshake IDE hosts use

concierge = Agent("concierge", "Books tables and answers opening hours", version="2.0.0")


@concierge.skill(tags=["booking", "restaurant"], examples=["a table for two at eight"])
def book_table(guests: int, time: str) -> str:
    """Book a restaurant table."""
    return f"{guests} at {time}"


archivist = Agent("archivist", "Finds documents in the archive", version="1.0.0")


@archivist.skill(tags=["search"])
def find_document(query: str) -> list[str]:
    """Search archived documents by keyword."""
    return [query]


@pytest.fixture
async def registry(tmp_path, store_url):
    async with running_registry(tmp_path, store_url) as service:
        yield service


async def register(registry, agent: Agent, port: int) -> str:
    async with client_for(registry) as client:
        return (await client.register(card=card_for(agent, f"http://127.0.0.1:{port}"), lease_seconds=60)).agent_id


@pytest.mark.parametrize("mode", MODES)
async def test_tools_discover_and_resolve(registry, mode):
    concierge_id = await register(registry, concierge, 9701)
    await register(registry, concierge, 9702)
    archivist_id = await register(registry, archivist, 9703)
    async with Client(registry.base_url + "/mcp", mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        # the meta-tools, then every skill of every agent with a healthy instance (one set per agent name)
        assert set(tools) == {"find_agents", "get_agent", "resolve", "ask_mesh", "concierge__book_table",
                              "archivist__find_document"}
        assert tools["concierge__book_table"].input_schema["required"] == ["guests", "time"]
        assert set(tools["find_agents"].input_schema["properties"]) == {"query", "skill", "tag", "include_unhealthy"}
        assert tools["get_agent"].input_schema["required"] == ["agent_id"]
        assert "healthy_instances" in json.dumps(tools["find_agents"].output_schema)

        by_text = await client.call_tool("find_agents", {"query": "reserve a restaurant table for dinner"})
        by_skill = await client.call_tool("find_agents", {"skill": "find_document"})
        by_tag = await client.call_tool("find_agents", {"tag": "BOOKING"})
        nothing = await client.call_tool("find_agents", {"tag": "zebra"})
        (found,) = by_text.structured_content["agents"][:1]
        assert found["id"] == concierge_id and found["healthy_instances"] == 2 and found["skills"] == ["book_table"]
        assert found["url"] in ("http://127.0.0.1:9701", "http://127.0.0.1:9702")
        assert found["card_resource"] == card_uri(concierge_id) and found["verified"] is False
        assert found["tools"] == ["concierge__book_table"]
        assert [a["id"] for a in by_skill.structured_content["agents"]] == [archivist_id]
        assert [a["id"] for a in by_tag.structured_content["agents"]] == [concierge_id]
        assert nothing.structured_content == {"agents": []} and not nothing.is_error

        agent = await client.call_tool("get_agent", {"agent_id": archivist_id})
        assert agent.structured_content["card"]["name"] == "archivist"
        assert [i["url"] for i in agent.structured_content["instances"]] == ["http://127.0.0.1:9703"]
        unknown = await client.call_tool("get_agent", {"agent_id": "nobody@9"})
        assert unknown.is_error and "'nobody@9'" in unknown.content[0].text

        picks = [(await client.call_tool("resolve", {"agent_id": concierge_id})).structured_content["url"] for _ in range(2)]
        assert sorted(picks) == ["http://127.0.0.1:9701", "http://127.0.0.1:9702"]  # round robin over both
        (instance,) = (await registry.store.agent(archivist_id)).instances
        await registry.store.set_state(instance.id, InstanceState.unhealthy, "made unhealthy by the test")
        down = await client.call_tool("resolve", {"agent_id": archivist_id})
        assert down.is_error and f"agent {archivist_id!r} has no healthy instance" in down.content[0].text
        assert (await client.call_tool("find_agents", {"skill": "find_document"})).structured_content == {"agents": []}
        hidden = await client.call_tool("find_agents", {"skill": "find_document", "include_unhealthy": True})
        assert hidden.structured_content["agents"][0]["healthy_instances"] == 0
        assert hidden.structured_content["agents"][0]["url"] is None


@pytest.mark.parametrize("mode", MODES)
async def test_each_card_is_a_listed_and_readable_resource(registry, mode):
    concierge_id = await register(registry, concierge, 9711)
    archivist_id = await register(registry, archivist, 9712)
    async with Client(registry.base_url + "/mcp", mode=mode) as client:
        (template,) = (await client.list_resource_templates()).resource_templates
        assert template.uri_template == CARD_URI and template.mime_type == "application/json"
        listed = {r.name: r for r in (await client.list_resources()).resources}
        assert set(listed) == {concierge_id, archivist_id}
        assert str(listed[concierge_id].uri) == card_uri(concierge_id)
        assert listed[concierge_id].mime_type == "application/json" and listed[concierge_id].title == "concierge 2.0.0"

        (contents,) = (await client.read_resource(str(listed[concierge_id].uri))).contents
        assert contents.mime_type == "application/json"
        assert json.loads(contents.text) == card_for(concierge, "http://127.0.0.1:9711")

        with pytest.raises(MCPError) as missing:
            await client.read_resource(card_uri("nobody@9"))
        assert missing.value.error.code == INVALID_PARAMS and "'nobody@9'" in missing.value.error.message


async def next_event(subscription) -> object:
    return await asyncio.wait_for(anext(subscription), timeout=5)


async def test_card_list_changes_are_announced_from_the_change_feed(registry):
    concierge_id = "concierge@2.0.0"
    async with Client(registry.base_url + "/mcp") as client:
        assert (await client.list_resources()).resources == []
        assert client.server_capabilities.resources.list_changed
        async with client.listen(resources_list_changed=True, resource_subscriptions=[card_uri(concierge_id)]) as events:
            assert await register(registry, concierge, 9721) == concierge_id
            seen = {await next_event(events), await next_event(events)}
            assert seen == {ResourcesListChanged(), ResourceUpdated(uri=card_uri(concierge_id))}
            assert [r.name for r in (await client.list_resources()).resources] == [concierge_id]

            async with client_for(registry) as rest:
                await rest.deregister_agent(concierge_id)
            assert await next_event(events) == ResourcesListChanged()
            assert (await client.list_resources()).resources == []
