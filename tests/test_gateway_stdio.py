"""``mesh mcp``: the whole mesh as one stdio MCP server, driven by the MCP Inspector CLI and the mcp SDK.

A registry and the warehouse agent run as processes; the Inspector (``@modelcontextprotocol/inspector
--cli``, Node >= 22, the handshake an IDE host uses) starts ``mesh mcp`` itself, lists the mesh's
tools and calls one. The mcp SDK client then shows the caller's trace context in ``_meta``
continuing through the gateway into the agent.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from tests.coordination.support import Mesh
from tests.nodejs import NODE_BIN, node_path_env, require_node
from tests.support import ROOT
from tracing.span_store import SpanStore

MESH = str(Path(sys.executable).parent / "mesh")
INSPECTOR_MIN_NODE = (22, 19)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    mesh = Mesh(tmp_path_factory.mktemp("gateway-stdio"))
    mesh.start_registry()
    try:
        mesh.start("warehouse", "tests.gateway_agents:warehouse")
        asyncio.run(mesh.wait_healthy("warehouse"))
        yield mesh
    finally:
        mesh.stop()


def inspect(mesh: Mesh, *method_args: str) -> tuple[int, dict]:
    """Run the Inspector CLI against ``mesh mcp`` (which it starts over stdio); (exit code, its JSON)."""
    require_node("@modelcontextprotocol/inspector", min_version=INSPECTOR_MIN_NODE)
    env = {**node_path_env(), "HOME": str(mesh.home), "MESH_HOME": str(mesh.home)}
    run = subprocess.run(
        [str(NODE_BIN / "mcp-inspector"), "--cli", MESH, "mcp", "--registry", mesh.registry_url, *method_args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
    )
    try:
        return run.returncode, json.loads(run.stdout)
    except ValueError:
        pytest.fail(f"the Inspector printed no JSON (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")


@pytest.mark.node
def test_inspector_lists_the_mesh_agents_as_tools(mesh):
    code, listed = inspect(mesh, "--method", "tools/list")
    assert code == 0
    tools = {t["name"]: t for t in listed["tools"]}
    assert {"warehouse__stock_level", "warehouse__ship_order", "warehouse__count_shelves", "warehouse__full_audit",
            "find_agents", "ask_mesh"} <= set(tools)
    assert tools["warehouse__stock_level"]["inputSchema"]["required"] == ["sku"]


@pytest.mark.node
def test_inspector_calls_an_agent_and_gets_its_result(mesh):
    code, result = inspect(mesh, "--method", "tools/call", "--tool-name", "warehouse__stock_level",
                           "--tool-arg", "sku=SKU-42")
    assert code == 0 and result["isError"] is False
    assert result["structuredContent"] == {"sku": "SKU-42", "on_hand": 42}

    code, refused = inspect(mesh, "--method", "tools/call", "--tool-name", "warehouse__stock_level",
                            "--tool-arg", "sku=banana")
    assert code == 5 and refused["isError"] is True  # 5: the Inspector's exit code for a tool error
    assert "unknown SKU 'banana'" in refused["content"][0]["text"]


async def test_the_callers_trace_continues_through_the_gateway_into_the_agent(mesh):
    trace_id, caller_span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    server = StdioServerParameters(command=MESH, args=["mcp", "--registry", mesh.registry_url],
                                   env={"MESH_HOME": str(mesh.home), "PATH": node_path_env()["PATH"]}, cwd=str(ROOT))
    # the caller's span is current: the mcp SDK puts its context (or, when this process traces, its own
    # client span's, a child of ours) into the request's _meta, as a traced IDE host's client would
    caller = SpanContext(int(trace_id, 16), int(caller_span_id, 16), is_remote=True, trace_flags=TraceFlags(1))
    async with Client(server, mode="legacy") as client:
        with trace.use_span(NonRecordingSpan(caller)):
            result = await client.call_tool("warehouse__stock_level", {"sku": "SKU-1"})
    assert result.structured_content == {"sku": "SKU-1", "on_hand": 35}

    store = SpanStore(mesh.home / "traces.db")
    deadline = time.monotonic() + 30
    while True:  # each process exports its spans in batches
        spans = store.trace(trace_id)
        services = {s.service for s in spans}
        if {"mesh-gateway", "warehouse"} <= services or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    by_id = {s.span_id: s for s in spans}
    names = {(s.service, s.name) for s in spans}
    assert spans, f"no span of the trace; the store holds: {[(t.trace_id, t.services) for t in store.recent(10)]}"
    assert ("mesh-gateway", "tools/call warehouse__stock_level") in names
    assert ("mesh-gateway", "invoke_agent warehouse") in names
    assert ("warehouse", "execute_tool stock_level") in names
    roots = [s for s in spans if s.parent_id not in by_id]
    # the gateway's spans hang under the caller's; the agent's under the gateway's: one connected trace
    assert roots and {r.service for r in roots} == {"mesh-gateway"}, [(r.service, r.name) for r in roots]
    if not isinstance(trace.get_tracer_provider(), TracerProvider):  # nothing in between: the caller's span itself
        assert {r.parent_id for r in roots} == {caller_span_id}
