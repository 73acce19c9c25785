"""`make demo`: serve the bundled helpdesk agent as its own process and talk to it over A2A and MCP.

    python -m agents.examples.demo [--port 8700] [--once]

It shows the card, a text message routed to a skill, a multi-turn conversation streamed over
SSE, the same skills as MCP tools over streamable HTTP and stdio; then it keeps the agent serving
(Ctrl-C stops it) unless ``--once`` is given.
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

from protocols.a2a_client import A2AConnection, user_message

TARGET = "agents.examples.helpdesk:agent"


def _title(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m")


def _start_agent(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "agents.cli", "serve", TARGET, "--port", str(port)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the agent exited with code {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the agent did not become ready in 30 s")


def _state(event: dict) -> str:
    payload = event.get("task") or event.get("statusUpdate") or {}
    return payload.get("status", {}).get("state", "").removeprefix("TASK_STATE_").lower()


async def _talk(url: str) -> None:
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
        for answer in ("+44 20 7946 0000", "morning", None):
            last: dict = {}
            async for event in streaming.send(message):
                last = event
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
    async with Client(url + "/mcp") as mcp:
        tools = (await mcp.list_tools()).tools
        print("tools: " + ", ".join(t.name for t in tools))
        result = await mcp.call_tool("opening_hours", {"department": "billing"})
        print(f"tools/call opening_hours -> {result.structured_content}")

    _title("MCP over stdio  mesh serve … --stdio")
    params = StdioServerParameters(command=sys.executable, args=["-m", "agents.cli", "serve", TARGET, "--stdio"])
    async with Client(params) as mcp:
        result = await mcp.call_tool("opening_hours", {"department": "shop"})
        print(f"tools/call opening_hours -> {result.structured_content}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("MESH_DEMO_PORT", "8700")))
    parser.add_argument("--once", action="store_true", help="stop the agent after the demo")
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    proc = _start_agent(args.port)
    try:
        asyncio.run(_talk(url))
        if not args.once:
            print(f"\nThe helpdesk agent keeps serving at {url} (A2A) and {url}/mcp (MCP). Try:")
            print(f"  .venv/bin/mesh send {url} 'When is the shop open?'")
            print("Ctrl-C stops it.")
            proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
