"""The coordinator over real processes: routing, hand-off with context, questions, escalation, hop limit."""

from __future__ import annotations

import pytest

from tests.coordination.support import AGENTS, Mesh, artifact, message, send, state, status_text

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    mesh = Mesh(tmp_path_factory.mktemp("mesh"))
    mesh.start_registry()
    try:
        for name in ("crm", "slots", "orders", "notify", "shop"):
            mesh.start(name, f"{AGENTS}:{name}")
        mesh.start("coordinator", "tests.coordination.coordinator_under_test:agent")
        yield mesh
    finally:
        mesh.stop()


@pytest.fixture
def coordinator(mesh):
    return mesh.processes["coordinator"].url


async def test_a_rule_routes_to_a_playbook_and_missing_facts_are_asked_for(mesh, coordinator):
    await mesh.wait_healthy("crm", "slots", "orders", "notify")
    first = await send(coordinator, message("I'd like an installation order please"))
    assert state(first) == "input-required", first
    assert "account id" in status_text(first).lower()
    ids = {"taskId": first["id"], "contextId": first["contextId"]}
    second = await send(coordinator, message("1002", **ids))
    assert state(second) == "input-required" and "address" in status_text(second).lower(), second
    done = await send(coordinator, message("1 Main Street", **ids))
    assert state(done) == "completed", done
    answer = artifact(done, "answer")
    assert "Alan Turing" in answer and "ORD-1002" in answer and "alan@example.com" in answer
    workflow = artifact(done, "workflow")
    assert workflow["plan"] == "order" and workflow["status"] == "completed"
    assert {s: v["status"] for s, v in workflow["steps"].items()} == dict.fromkeys(
        ["customer", "slot", "order", "confirm"], "completed")
    assert workflow["steps"]["customer"]["confidence"] == 1.0
    assert all(v["duration_ms"] > 0 for v in workflow["steps"].values())

    # the same conversation: the account and address are remembered, nothing is asked again
    again = await send(coordinator, message("Another install order, please", contextId=first["contextId"]))
    assert state(again) == "completed", again
    assert "Alan Turing" in artifact(again, "answer")


async def test_registry_search_routes_what_no_rule_covers(mesh, coordinator):
    await mesh.wait_healthy("shop")
    task = await send(coordinator, message("When does the shop open on Saturday?"))
    assert state(task) == "completed", task
    assert "9:00 to 18:00" in artifact(task, "answer")
    assert artifact(task, "workflow")["steps"]["answer"]["agent"] == "shop"


async def test_gibberish_gets_a_question_not_a_guess(coordinator):
    task = await send(coordinator, message("xqzt vlorp"))
    assert state(task) == "input-required"
    assert "what would you like to do" in status_text(task).lower()


async def test_the_hop_limit_stops_a_delegation_loop(coordinator):
    task = await send(coordinator, message("install order", metadata={"meshHops": 8}))
    assert state(task) == "rejected"
    assert "hop limit" in status_text(task)


async def test_asking_for_a_person_escalates_and_a_human_reply_resumes(mesh, coordinator):
    task = await send(coordinator, message("I want to talk to a person"))
    assert state(task) == "input-required" and "ESC-" in status_text(task)
    inbox = await send(coordinator, message(data={"skill": "inbox", "arguments": {}}))
    escalations = artifact(inbox, "inbox")
    mine = [e for e in escalations if e["workflow_id"] == task["id"]]
    assert len(mine) == 1 and mine[0]["reason"] == "the customer asked for a person"
    reply = await send(coordinator, message(data={"skill": "reply", "arguments": {
        "escalation_id": mine[0]["id"], "text": "Hello, this is Grace from support: I'll call you at 3pm."}}))
    result = artifact(reply, "reply")
    assert result["status"] == "completed" and result["task_state"] == "completed"
    from tests.coordination.support import get_task

    final = await get_task(coordinator, task["id"])
    assert state(final) == "completed"
    assert "Grace" in artifact(final, "answer")


async def test_an_mcp_client_asks_the_mesh_through_the_coordinators_ask_tool(mesh, coordinator):
    from mcp import Client

    await mesh.wait_healthy("shop")
    async with Client(coordinator + "/mcp") as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"ask", "run_plan", "inbox", "reply", "dead_letters", "redrive", "workflow"} <= tools
        result = await client.call_tool("ask", {"request": "When does the shop open on Saturday?"})
    assert not result.is_error, result
    texts = [block.text for block in result.content if getattr(block, "text", None)]
    assert any("9:00 to 18:00" in text for text in texts), texts
