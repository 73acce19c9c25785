"""The mesh behind one MCP endpoint (the registry's ``/mcp``), as an IDE assistant reaches it over HTTP.

A registry and the warehouse agent run as real processes; every call crosses MCP → registry →
A2A → agent. Each MCP protocol era is tested: the initialize handshake IDE hosts use ("legacy")
and 2026-07-28 ("auto"), where questions travel in InputRequiredResult and changes on
``subscriptions/listen``.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from mcp import Client
from mcp.shared.subscriptions import ToolsListChanged
from mcp_types import ElicitResult, ToolListChangedNotification

from tests.coordination.support import Mesh

MODES = ["legacy", "auto"]
WAREHOUSE_TOOLS = {"warehouse__stock_level", "warehouse__ship_order", "warehouse__count_shelves",
                   "warehouse__full_audit"}
META_TOOLS = {"find_agents", "get_agent", "resolve", "ask_mesh"}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    mesh = Mesh(tmp_path_factory.mktemp("gateway"))
    mesh.start_registry()
    try:
        mesh.start("warehouse", "tests.gateway_agents:warehouse")
        mesh.start("shop", "tests.coordination.mesh_agents:shop")
        mesh.start("coordinator", "tests.coordination.coordinator_under_test:agent")
        asyncio.run(mesh.wait_healthy("warehouse", "shop", "coordinator"))
        yield mesh
    finally:
        mesh.stop()


@pytest.fixture
def mcp_url(mesh) -> str:
    return mesh.registry_url + "/mcp"


@pytest.mark.parametrize("mode", MODES)
async def test_agent_skills_are_tools_with_their_schemas(mcp_url, mode):
    async with Client(mcp_url, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert WAREHOUSE_TOOLS | META_TOOLS <= set(tools)
        stock = tools["warehouse__stock_level"]
        assert stock.input_schema["required"] == ["sku"] and "sku" in stock.input_schema["properties"]
        assert stock.title == "warehouse: Stock level"
        assert stock.description.startswith("How many units of a SKU are on hand.")

        result = await client.call_tool("warehouse__stock_level", {"sku": "SKU-42"})
    assert not result.is_error
    assert result.structured_content == {"sku": "SKU-42", "on_hand": 42}


@pytest.mark.parametrize("mode", MODES)
async def test_failures_keep_the_agents_words(mcp_url, mode):
    async with Client(mcp_url, mode=mode) as client:
        refused = await client.call_tool("warehouse__stock_level", {"sku": "banana"})
        invalid = await client.call_tool("warehouse__stock_level", {"sku": 7, "bins": 2})
        unknown = await client.call_tool("warehouse__teleport", {})
    assert refused.is_error and "unknown SKU 'banana': SKUs look like SKU-123" in refused.content[0].text
    assert invalid.is_error and "sku" in invalid.content[0].text
    assert unknown.is_error and "Unknown tool: warehouse__teleport" in unknown.content[0].text


@pytest.mark.parametrize("mode", MODES)
async def test_a_question_becomes_an_elicitation_and_the_task_resumes(mcp_url, mode):
    asked = []

    async def answer(context, params):
        asked.append(params.message)
        return ElicitResult(action="accept", content={"answer": "Royal Mail"})

    async with Client(mcp_url, mode=mode, elicitation_callback=answer) as client:
        result = await client.call_tool("warehouse__ship_order", {"order": "ORD-7"})
    assert asked == ["Which carrier should take order ORD-7?"]
    assert not result.is_error and result.structured_content == {"order": "ORD-7", "carrier": "Royal Mail"}


@pytest.mark.parametrize("mode", MODES)
async def test_a_declined_question_stops_the_task(mcp_url, mode):
    async def decline(context, params):
        return ElicitResult(action="decline")

    async with Client(mcp_url, mode=mode, elicitation_callback=decline) as client:
        result = await client.call_tool("warehouse__ship_order", {"order": "ORD-8"})
    assert result.is_error and "was not answered" in result.content[0].text


async def test_a_working_task_reports_progress(mcp_url):
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async with Client(mcp_url, mode="legacy") as client:
        result = await client.call_tool("warehouse__count_shelves", {"shelves": 3}, progress_callback=on_progress)
    assert result.content[0].text == "3 shelves counted"
    assert seen == [(1, 3, "counted shelf 1 of 3"), (2, 3, "counted shelf 2 of 3"), (3, 3, "counted shelf 3 of 3")]


async def test_cancelling_the_call_cancels_the_task(mesh, mcp_url):
    marker = mesh.home / "ledger.txt"
    marker.unlink(missing_ok=True)
    async with Client(mcp_url, mode="legacy") as client:
        call = asyncio.create_task(client.call_tool("warehouse__full_audit", {}))
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert marker.read_text() == "started\n", "the audit never started"
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        deadline = time.monotonic() + 10
        while "cancelled" not in marker.read_text() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    assert marker.read_text() == "started\ncancelled\n"  # the skill itself was stopped
    warehouse = mesh.processes["warehouse"]
    async with httpx.AsyncClient(base_url=warehouse.url, headers={"A2A-Version": "1.0"}) as http:
        tasks = (await http.get("/a2a/tasks")).json()["tasks"]
    audits = [t for t in tasks if "full_audit" in str(t.get("history", ""))]
    assert audits and {t["status"]["state"] for t in audits} == {"TASK_STATE_CANCELED"}


@pytest.mark.parametrize("mode", MODES)
async def test_ask_mesh_hands_the_request_to_the_coordinator(mcp_url, mode):
    async with Client(mcp_url, mode=mode) as client:
        assert "coordinator__run_plan" in {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("ask_mesh", {"request": "When does the shop open on Saturday?"})
    assert not result.is_error, result
    assert "9:00 to 18:00" in result.content[0].text  # the coordinator found the shop agent in the registry


async def _wait_for(predicate, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_registry_changes_change_the_tool_list_on_handshake_sessions(mesh, mcp_url):
    notices = []

    async def on_message(message):
        if isinstance(message, ToolListChangedNotification):
            notices.append(message)

    async with Client(mcp_url, mode="legacy", message_handler=on_message) as client:
        assert "courier__book_courier" not in {t.name for t in (await client.list_tools()).tools}
        courier = mesh.start("courier", "tests.gateway_agents:courier")
        try:
            await _wait_for(lambda: len(notices) >= 1)
            assert "courier__book_courier" in {t.name for t in (await client.list_tools()).tools}
            booked = await client.call_tool("courier__book_courier", {"postcode": "EH1 1AA"})
            assert booked.content[0].text == "courier booked to EH1 1AA" and not booked.is_error
        finally:
            courier.stop()  # SIGTERM: the agent deregisters
        await _wait_for(lambda: len(notices) >= 2)
        assert "courier__book_courier" not in {t.name for t in (await client.list_tools()).tools}


async def test_registry_changes_reach_listen_streams(mesh, mcp_url):
    async with Client(mcp_url) as client:
        assert client.server_capabilities.tools.list_changed
        async with client.listen(tools_list_changed=True) as events:
            courier = mesh.start("courier", "tests.gateway_agents:courier")
            try:
                assert await asyncio.wait_for(anext(events), timeout=15) == ToolsListChanged()
                assert "courier__book_courier" in {t.name for t in (await client.list_tools()).tools}
            finally:
                courier.stop()
            assert await asyncio.wait_for(anext(events), timeout=15) == ToolsListChanged()
