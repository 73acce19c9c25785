"""`mesh adopt` over real processes: the npm memory server behind A2A, in the registry and in a workflow;
a Python stdio server's questions, progress, images and crash; an HTTP MCP server (one of our agents' /mcp)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters

from protocols.mesh_extensions import skill_schemas
from tracing.span_store import SpanStore
from tests.coordination.support import Mesh, artifact, message, send, state, status_text
from tests.nodejs import NODE_DIR, require_node
from tests.support import ROOT, AgentProcess
from tests.test_a2a_runtime import sse_events

pytestmark = pytest.mark.timeout(120)

MEMORY_JS = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-memory" / "dist" / "index.js"
FIXTURE = ROOT / "tests" / "adopt_fixture_server.py"
MEMORY_TOOLS = {"create_entities", "create_relations", "add_observations", "delete_entities", "delete_observations",
                "delete_relations", "read_graph", "search_nodes", "open_nodes"}


class AdoptProcess(AgentProcess):
    """``mesh adopt [OPTIONS] -- COMMAND...`` (or ``mesh adopt URL``) in its own process."""

    def __init__(self, upstream: list[str], home: Path, options: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        super().__init__("adopt", home, env=env)
        self.upstream = upstream
        self.options = options or []

    def command(self) -> list[str]:
        separator = [] if self.upstream[0].startswith("http") else ["--"]
        return ["adopt", "--port", str(self.port), *self.options, *separator, *self.upstream]


def call(skill: str, arguments: dict, **ids: str) -> dict:
    return message(data={"skill": skill, "arguments": arguments}, **ids)


def data_of(task: dict, name: str) -> dict:
    value = artifact(task, name)
    assert isinstance(value, dict), task
    return value


# --- the npm memory server over stdio, registered, and used by the coordinator -------------------------------


@pytest.fixture(scope="module")
def memory_mesh(tmp_path_factory):
    node = require_node("@modelcontextprotocol/server-memory")
    home = tmp_path_factory.mktemp("adopt-memory")
    mesh = Mesh(home)
    mesh.start_registry()
    try:
        adopted = AdoptProcess([node, str(MEMORY_JS)], home,
                               env={**mesh.env, "MEMORY_FILE_PATH": str(home / "memory.jsonl")})
        mesh.processes["memory"] = adopted.start()
        mesh.start("coordinator", "tests.coordination.coordinator_under_test:agent")
        yield mesh
    finally:
        mesh.stop()


@pytest.mark.node
async def test_the_adopted_memory_server_is_in_the_registry_with_its_tools_and_schemas(memory_mesh):
    await memory_mesh.wait_healthy("memory-server")
    async with memory_mesh.registry_client() as registry:
        [record] = await registry.find(name="memory-server")
    assert record.kind == "a2a" and record.version == "0.6.3"  # the server's own serverInfo
    assert {s.id for s in record.skills} == MEMORY_TOOLS
    search = next(s for s in record.skills if s.id == "search_nodes")
    assert "search" in search.tags and "nodes" in search.tags and search.description

    # the card carries each tool's input schema exactly as the server lists it
    async with Client(StdioServerParameters(command=require_node(), args=[str(MEMORY_JS)])) as direct:
        listed = {t.name: t.input_schema for t in (await direct.list_tools()).tools}
    assert skill_schemas(record.card) == listed


@pytest.mark.node
async def test_a2a_calls_reach_the_memory_server_and_its_errors_come_back_verbatim(memory_mesh):
    url = memory_mesh.processes["memory"].url
    ada = {"name": "Ada Lovelace", "entityType": "person", "observations": ["wrote the first program"]}
    created = await send(url, call("create_entities", {"entities": [ada]}))
    assert state(created) == "completed", created
    assert data_of(created, "create_entities") == {"entities": [ada]}  # structuredContent → a data part
    found = await send(url, call("open_nodes", {"names": ["Ada Lovelace"]}))
    assert data_of(found, "open_nodes")["entities"] == [ada]

    # isError: the task fails with the server's own text
    missing = await send(url, call("add_observations", {"observations": [{"entityName": "Nobody", "contents": ["x"]}]}))
    assert state(missing) == "failed" and status_text(missing) == "Entity with name Nobody not found"

    # invalid arguments never reach the server: the validator names the field
    bad = await send(url, call("create_entities", {"entities": [{"name": "Grace", "entityType": 7}]}))
    assert state(bad) == "failed"
    assert status_text(bad) == ("invalid arguments for skill 'create_entities': entities.0: 'observations' is a "
                                "required property; entities.0.entityType: 7 is not of type 'string'")


@pytest.mark.node
async def test_the_coordinator_runs_a_workflow_over_the_adopted_memory_server(memory_mesh):
    await memory_mesh.wait_healthy("memory-server", "coordinator")
    turing = {"name": "Alan Turing", "entityType": "person", "observations": ["broke Enigma"]}
    plan = {"name": "remember", "steps": [
        {"id": "remember", "agent": "memory-server", "skill": "create_entities", "arguments": {"entities": [turing]}},
        {"id": "recall", "agent": "memory-server", "skill": "search_nodes", "arguments": {"query": "Enigma"},
         "depends_on": ["remember"]},
    ], "answer": "Found: {entities}"}
    done = await send(memory_mesh.processes["coordinator"].url, call("run_plan", {"plan": plan}))
    assert state(done) == "completed", done
    workflow = artifact(done, "workflow")
    assert {s: v["status"] for s, v in workflow["steps"].items()} == {"remember": "completed", "recall": "completed"}
    assert "Alan Turing" in artifact(done, "answer")  # found by the second step in what the first one stored


# --- a Python MCP server on stdio: questions, progress, images, a crash ------------------------------------------


@pytest.fixture(scope="module")
def fixture_agent(tmp_path_factory):
    home = tmp_path_factory.mktemp("adopt-fixture")
    process = AdoptProcess([sys.executable, str(FIXTURE)], home, options=["--name", "stationery"])
    try:
        yield process.start()
    finally:
        process.stop()


async def test_a_question_of_the_server_becomes_input_required_and_the_answer_completes_the_call(fixture_agent):
    async with httpx.AsyncClient(base_url=fixture_agent.url, timeout=30, headers={"A2A-Version": "1.0"}) as client:
        request = {"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": {"message": call("order", {"item": "pens"})}}
        events = [e["result"] for e in await sse_events(client, "/", request)]
    statuses = [e["statusUpdate"]["status"] for e in events if "statusUpdate" in e]
    working = [s for s in statuses if s["state"] == "TASK_STATE_WORKING"]
    assert any("checking the stock of pens" in p.get("text", "") for s in working for p in s["message"]["parts"])
    last = statuses[-1]
    assert last["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert last["message"]["parts"][0]["text"] == "How many pens?"
    task_id, context_id = last["message"]["taskId"], last["message"]["contextId"]

    # a wrong answer is asked again; the right one completes the task with the server's result
    again = await send(fixture_agent.url, message("a dozen", taskId=task_id, contextId=context_id))
    assert state(again) == "input-required" and "How many pens?" in status_text(again)
    assert "not of type 'integer'" in status_text(again)
    done = await send(fixture_agent.url, message("12", taskId=task_id, contextId=context_id))
    assert state(done) == "completed", done
    assert artifact(done, "order") == {"result": "ordered 12 pens"}  # the structured content, as the server sent it


async def test_the_adopted_agents_own_mcp_face_asks_its_client_in_place(fixture_agent):
    import mcp_types

    asked = []

    async def answer(context, params):
        asked.append(params.message)
        return mcp_types.ElicitResult(action="accept", content={"answer": "3"})

    async with Client(fixture_agent.url + "/mcp", mode="legacy", elicitation_callback=answer) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["order"].input_schema["required"] == ["item"] and tools["order"].title == "Order stationery"
        result = await client.call_tool("order", {"item": "clips"})
        invalid = await client.call_tool("order", {"item": 5})
    assert asked == ["How many clips?"]
    assert invalid.is_error and invalid.content[0].text == "invalid arguments for skill 'order': item: 5 is not of type 'string'"
    assert not result.is_error and result.structured_content == {"result": "ordered 3 clips"}


async def test_an_image_becomes_a_file_artifact(fixture_agent):
    from tests.adopt_fixture_server import PIXEL

    task = await send(fixture_agent.url, call("pixel", {}))
    assert state(task) == "completed", task
    [part] = task["artifacts"][0]["parts"]
    assert part["mediaType"] == "image/png" and base64.b64decode(part["raw"]) == PIXEL


async def test_a_server_that_dies_mid_call_fails_that_call_clearly_and_the_next_call_restarts_it(fixture_agent):
    before = artifact(await send(fixture_agent.url, call("pid", {})), "pid")
    crashed = await send(fixture_agent.url, call("crash", {}))
    assert state(crashed) == "failed"
    assert "closed the connection (did it exit?); the next call starts it again" in status_text(crashed)
    after = await send(fixture_agent.url, call("pid", {}))
    assert state(after) == "completed", after
    assert artifact(after, "pid") != before
    assert httpx.get(fixture_agent.url + "/readyz").status_code == 200


# --- an HTTP MCP server: one of our agents' /mcp ---------------------------------------------------------------


async def test_adopting_a_url_maps_calls_questions_and_errors_of_an_http_mcp_server(tmp_path):
    with AgentProcess("tests.agents_under_test:agent", tmp_path) as upstream, \
            AdoptProcess([upstream.url + "/mcp"], tmp_path, options=["--name", "bench", "--header", "X-Test: 1"]) as adopted:
        card = httpx.get(adopted.url + "/.well-known/agent-card.json").json()
        assert card["name"] == "bench" and card["version"] == "2.1.0"
        assert skill_schemas(card)["add"]["required"] == ["a", "b"]
        added = await send(adopted.url, call("add", {"a": 2, "b": 3}))
        assert artifact(added, "add") == {"result": 5}

        # two questions of the upstream skill, answered over A2A one after the other (replayed on each turn)
        first = await send(adopted.url, call("survey", {}))
        assert state(first) == "input-required" and status_text(first) == "Favourite colour?"
        ids = {"taskId": first["id"], "contextId": first["contextId"]}
        second = await send(adopted.url, message("blue", **ids))
        assert state(second) == "input-required" and status_text(second) == "Favourite animal?"
        done = await send(adopted.url, message("cat", **ids))
        assert data_of(done, "survey") == {"colour": "blue", "animal": "cat"}

        async with Client(upstream.url + "/mcp") as direct:
            upstream_error = (await direct.call_tool("quota", {"customer": "c-7"})).content[0].text
        failed = await send(adopted.url, call("quota", {"customer": "c-7"}))
        assert state(failed) == "failed" and status_text(failed) == upstream_error
        assert "c-7 is over quota" in upstream_error

    # the call to the upstream is part of the A2A request's trace (the stops above flushed both processes' spans)
    store = SpanStore(tmp_path / "traces.db")
    [executed] = [s for t in store.recent(50) for s in store.trace(t.trace_id)
                  if s.name == "invoke_agent bench" and s.attributes.get("a2a.task.id") == added["id"]]
    spans = store.trace(executed.trace_id)
    [client_call] = [s for s in spans if s.name == "tools/call add" and s.kind == "CLIENT"]
    [server_call] = [s for s in spans if s.name == "tools/call add" and s.kind == "SERVER"]
    assert (client_call.service, server_call.service) == ("bench", "testbench")
    assert server_call.parent_id == client_call.span_id  # the trace context went in the request's _meta


def test_an_upstream_that_cannot_start_is_one_clear_line_and_a_failed_exit(tmp_path):
    for upstream in (["--", str(tmp_path / "no-such-server")], ["http://127.0.0.1:9/mcp"]):
        result = subprocess.run([sys.executable, "-m", "agents.cli", "adopt", "--start-timeout", "10", *upstream],
                                cwd=ROOT, capture_output=True, text=True, timeout=60,
                                env={**os.environ, "MESH_HOME": str(tmp_path)})
        assert result.returncode == 1, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mesh adopt: cannot start "), result.stderr
        assert "Traceback" not in result.stderr
    usage = subprocess.run([sys.executable, "-m", "agents.cli", "adopt"], cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
    assert usage.returncode == 2 and "give the server's URL, or its command after --" in usage.stderr



# --- the pieces, without processes ---------------------------------------------------------------------------


def test_tool_names_become_skill_ids_and_tags():
    from mcp_types import Tool, ToolAnnotations

    from agents.adopted import skill_id_for, tags_for

    assert skill_id_for("search_nodes", set()) == "search_nodes"
    assert skill_id_for("files/read file", set()) == "files_read_file"
    assert skill_id_for("files/read file", {"files_read_file"}) == "files_read_file_2"
    assert len(skill_id_for("x" * 100, set())) == 64
    tool = Tool(name="readGraphNodes", input_schema={"type": "object"},
                annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False))
    assert tags_for(tool) == ["read", "graph", "nodes", "read-only"]


def test_schema_skills_refuse_schemas_they_cannot_check():
    from agents import Agent

    async def handler(arguments, ctx):
        return arguments

    agent = Agent("schemas", "Schema skills")
    with pytest.raises(ValueError, match="skill 'broken': the input schema is not a valid JSON Schema"):
        agent.add_schema_skill("broken", handler, input_schema={"type": "object", "properties": 3}, description="x")
    with pytest.raises(ValueError, match="must describe an object"):
        agent.add_schema_skill("listy", handler, input_schema={"type": "array"}, description="x")
    with pytest.raises(ValueError, match="must match"):
        agent.add_schema_skill("bad id", handler, input_schema={"type": "object"}, description="x")
    skill = agent.add_schema_skill("ok", handler, input_schema={"type": "object", "required": ["q"]},
                                   output_schema={"type": "object"}, description="Fine.")
    assert skill.input_schema == {"type": "object", "required": ["q"]} and skill.output_schema == {"type": "object"}
    assert skill.required_arguments == ["q"]
