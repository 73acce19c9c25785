"""The servers the hop benchmark compares, each run in its own process the same way.

    python bench/servers.py KIND PORT [--core N] [--profile OUT.prof]

KIND is one of:

* ``runtime``        our runtime serving the echo agent (A2A + MCP), in-memory task store;
* ``runtime-sqlite`` the same with the runtime's default SQLite task store;
* ``a2a-bare``       a bare a2a-sdk server (card + JSON-RPC routes) whose executor does the same echo;
* ``mcp-bare``       a bare ``MCPServer`` with an ``echo`` tool on its streamable HTTP app;
* ``floor``          a plain Starlette JSON echo (the HTTP floor, for context).

Every kind is served by uvicorn, one worker, on 127.0.0.1, in an asyncio loop, with access logs off;
the bare kinds let uvicorn bind its own socket (the reference), the runtime kinds go through
``agents.service.serve`` (what ``mesh serve`` runs), which binds its socket first and then configures
uvicorn with the same options. ``--profile`` runs the process under cProfile and writes the stats on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import signal
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KINDS = ("runtime", "runtime-sqlite", "a2a-bare", "mcp-bare", "floor")
UVICORN_OPTIONS = {"log_level": "warning", "access_log": False, "lifespan": "on", "timeout_graceful_shutdown": 5}


def echo_agent():  # type: ignore[no-untyped-def]
    from agents import Agent

    agent = Agent("echo", "Echoes its input back", version="1.0.0")

    @agent.skill(tags=["echo"])
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    return agent


def bare_a2a_app(base_url: str):  # type: ignore[no-untyped-def]
    """The minimal a2a-sdk 1.3 server: the executor replies with a completed task and one text artifact."""
    from a2a.helpers import get_message_text, new_task_from_user_message
    from a2a.server.agent_execution import AgentExecutor, RequestContext
    from a2a.server.events import EventQueue
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
    from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
    from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, Part
    from starlette.applications import Starlette

    class Echo(AgentExecutor):
        async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
            text = get_message_text(context.message)
            task = new_task_from_user_message(context.message)
            await event_queue.enqueue_event(task)
            updater = TaskUpdater(event_queue, task.id, task.context_id)
            await updater.add_artifact([Part(text=text)], name="echo", last_chunk=True)
            await updater.complete()

        async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
            await TaskUpdater(event_queue, context.task_id or "", context.context_id or "").cancel()

    card = AgentCard(
        name="echo",
        description="Echoes its input back",
        version="1.0.0",
        supported_interfaces=[AgentInterface(protocol_binding="JSONRPC", protocol_version="1.0", url=base_url + "/")],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="Echo", description="Echo the text back.", tags=["echo"])],
    )
    handler = DefaultRequestHandler(agent_executor=Echo(), task_store=InMemoryTaskStore(), agent_card=card)
    return Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/")])


def bare_mcp_app():  # type: ignore[no-untyped-def]
    from mcp.server import MCPServer

    server = MCPServer("echo", version="1.0.0", instructions="Echoes its input back")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    return server.streamable_http_app(streamable_http_path="/mcp")


def floor_app():  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def echo(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": body.get("params")})

    return Starlette(routes=[Route("/", echo, methods=["POST"])])


async def _serve_plain(app, port: int) -> None:  # type: ignore[no-untyped-def]
    """uvicorn's own socket setup: the reference the runtime's ``serve`` must match."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=port, **UVICORN_OPTIONS)  # type: ignore[arg-type]
    await uvicorn.Server(config).serve()


async def run(kind: str, port: int) -> None:
    if kind.startswith("runtime"):
        from agents.service import serve
        from agents.settings import MeshSettings

        home = Path(tempfile.mkdtemp(prefix="bench-mesh-"))
        store = "sqlite" if kind == "runtime-sqlite" else "memory"
        settings = MeshSettings.from_env({}, home=home, port=port, task_store=store, log_level="WARNING")
        await serve(echo_agent(), settings)
        return
    if kind == "a2a-bare":
        app = bare_a2a_app(f"http://127.0.0.1:{port}")
    elif kind == "mcp-bare":
        app = bare_mcp_app()
    else:
        app = floor_app()
    await _serve_plain(app, port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("port", type=int)
    parser.add_argument("--core", type=int, default=None, help="pin the process to this CPU core")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats here on exit")
    args = parser.parse_args(argv)
    if args.core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})  # threads started later (aiosqlite) inherit it
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        # SIGUSR1 starts collecting and SIGUSR2 stops and writes, so start-up and warm-up stay out
        signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
        signal.signal(signal.SIGUSR2, lambda *_: (profiler.disable(), profiler.dump_stats(args.profile)))
    asyncio.run(run(args.kind, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
