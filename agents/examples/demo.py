"""`make demo`: a registry and the bundled helpdesk agent as their own processes; talk to it over A2A and MCP.

    python -m agents.examples.demo [--port 8700] [--once]

The agent registers itself with the registry (port + 1). The demo finds it there by free text,
shows its card, a text message routed to a skill, a multi-turn conversation streamed over SSE,
the same skills as MCP tools over streamable HTTP and stdio, and the trace of the conversation
from the embedded span store; then it keeps both serving (Ctrl-C stops them) unless ``--once``.
State (task store, registry, traces) goes to ``$MESH_HOME`` (default ``.mesh/``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import httpx
from mcp import Client, StdioServerParameters

import tracing
from agents.settings import MeshSettings
from protocols.a2a_client import A2AConnection, user_message
from protocols.registry_client import RegistryClient
from tracing.render import render_waterfall
from tracing.span_store import SpanStore

TARGET = "agents.examples.helpdesk:agent"


def _title(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m")


def _start(what: str, args: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "agents.cli", *args, "--port", str(port)], env={**os.environ, **env})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the {what} exited with code {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the {what} did not become ready in 30 s")


async def _discover(registry_url: str) -> str:
    _title(f"Registry  GET {registry_url}/v1/agents?q=call me back")
    async with RegistryClient(registry_url) as registry:
        for _ in range(50):  # the agent registers right after it starts
            found = await registry.find(q="call me back")
            if found:
                break
            await asyncio.sleep(0.1)
        for agent in found:
            print(f"{agent.name} {agent.version}: {len(agent.healthy)} healthy instance(s), score {agent.score:.3g}, "
                  f"skills {', '.join(s.id for s in agent.skills)}")
        instance = await registry.resolve(found[0].id)
    print(f"resolve {found[0].id} -> {instance.url} ({instance.state.value})")
    return instance.url


def _state(event: dict) -> str:
    payload = event.get("task") or event.get("statusUpdate") or {}
    return payload.get("status", {}).get("state", "").removeprefix("TASK_STATE_").lower()


async def _talk(url: str) -> str | None:
    async with httpx.AsyncClient(timeout=30) as http:
        _title(f"A2A card  GET {url}/.well-known/agent-card.json")
        card = (await http.get(url + "/.well-known/agent-card.json")).json()
        print(json.dumps({k: card[k] for k in ("name", "version", "supportedInterfaces", "capabilities")}, indent=2))

        _title("A2A SendMessage (text, routed to a skill by its examples)")
        a2a = await A2AConnection.open(url, http)
        async for event in a2a.send(user_message("When is support open?")):
            task = event["task"]
            print(f"task {task['id'][:8]}… {_state(event)}: {task['artifacts'][0]['parts'][0]['text']}")

        _title("A2A SendStreamingMessage, multi-turn: the agent asks, we answer")
        streaming = await A2AConnection.open(url, http, streaming=True)
        message = user_message(data={"skill": "book_callback", "arguments": {"customer": "Ada"}})
        trace_id = None
        for answer in ("+44 20 7946 0000", "morning", None):
            last: dict = {}
            async for event in streaming.send(message):
                last = event
                trace_id = trace_id or streaming.trace_id
                kind = next(iter(event))
                print(f"  {kind:<14} {_state(event) or event[kind].get('artifact', {}).get('name', '')}")
            payload = last.get("statusUpdate") or last.get("task")
            if answer is None:
                break
            question = payload["status"]["message"]["parts"][0]["text"]
            print(f"  agent asks: {question!r} -> we answer {answer!r}")
            message = user_message(answer, task_id=payload["taskId"] if "taskId" in payload else payload["id"],
                                   context_id=payload["contextId"])
        task = (await http.post(url + "/", headers={"A2A-Version": "1.0"}, json={
            "jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": message.task_id}})).json()["result"]
        print(f"  booked: {json.dumps(task['artifacts'][0]['parts'][0]['data'])}")

    _title(f"MCP over streamable HTTP  {url}/mcp")
    async with Client(url + "/mcp", read_timeout_seconds=30) as mcp:
        tools = (await mcp.list_tools()).tools
        print("tools: " + ", ".join(t.name for t in tools))
        result = await mcp.call_tool("opening_hours", {"department": "billing"})
        print(f"tools/call opening_hours -> {result.structured_content}")

    _title("MCP over stdio  mesh serve … --stdio")
    params = StdioServerParameters(command=sys.executable, args=["-m", "agents.cli", "serve", TARGET, "--stdio"])
    async with Client(params) as mcp:
        result = await mcp.call_tool("opening_hours", {"department": "shop"})
        print(f"tools/call opening_hours -> {result.structured_content}")
    return trace_id


def _show_trace(trace_id: str | None) -> None:
    if trace_id is None:
        return
    _title(f"The trace of the conversation's first turn  mesh trace {trace_id[:12]}")
    tracing.configure("mesh-demo").flush()
    time.sleep(1.0)  # the agent's batch of spans reaches the store within its 0.5 s schedule
    store = SpanStore(tracing.span_store_path(MeshSettings.from_env()))
    print(render_waterfall(store.trace(trace_id)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("MESH_DEMO_PORT", "8700")))
    parser.add_argument("--once", action="store_true", help="stop the registry and the agent after the demo")
    args = parser.parse_args()
    url, registry_url = f"http://127.0.0.1:{args.port}", f"http://127.0.0.1:{args.port + 1}"
    tracing.configure("mesh-demo")
    processes = [_start("registry", ["registry"], args.port + 1, {})]
    try:
        processes.append(_start("agent", ["serve", TARGET], args.port, {"MESH_REGISTRY_URL": registry_url}))
        found_url = asyncio.run(_discover(registry_url))
        trace_id = asyncio.run(_talk(found_url))
        _show_trace(trace_id)
        if not args.once:
            print(f"\nThe registry serves at {registry_url}, the helpdesk agent at {url} (A2A) and {url}/mcp (MCP). Try:")
            print(f"  .venv/bin/mesh send {url} 'When is the shop open?'")
            print(f"  .venv/bin/mesh agents --registry {registry_url}")
            print("  .venv/bin/mesh traces")
            print("Ctrl-C stops them.")
            processes[-1].wait()
    except KeyboardInterrupt:
        pass
    finally:
        for proc in reversed(processes):  # the agent first: it deregisters from the running registry
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
