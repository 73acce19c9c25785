"""The servers the hop benchmark compares, each run in its own process the same way.

    python bench/servers.py KIND PORT [--profile OUT.prof]

KIND is one of:

* ``runtime``        ``mesh serve bench/echo_agent.py:agent`` (A2A + MCP), in-memory task store;
* ``runtime-sqlite`` the same with the runtime's default SQLite task store;
* ``runtime-sync``   the same as ``runtime`` with the skill written as a plain ``def``;
* ``runtime-notrace`` the same as ``runtime`` with ``OTEL_SDK_DISABLED=true`` (no spans, no span store);
* ``runtime-otlp-dead`` the same as ``runtime`` exporting over OTLP/HTTP as well, to a dead endpoint;
* ``runtime-secured`` the same as ``runtime`` with ``MESH_AUTH_MODE=required``: every request's JWT
                     checked, its scope looked up in a policy, the call written to the audit log;
* ``a2a-bare``       a bare a2a-sdk server (card + JSON-RPC routes, in-memory task store) whose
                     executor does the same echo: a Task, one text artifact, completed;
* ``mcp-bare``       a bare ``MCPServer`` with an ``async def echo`` tool on its streamable HTTP app;
* ``floor``          a plain Starlette JSON echo (the HTTP floor, for context).

Every kind is served by uvicorn, one worker, asyncio loop, on 127.0.0.1, access log off, log level
warning. The bare kinds let uvicorn bind its own socket (the reference); the runtime kinds run the
``mesh serve`` command's code in-process (``agents.cli.main``), exactly what a deployment runs.
The bare processes import only their SDK. ``--profile`` runs cProfile between SIGUSR1 and SIGUSR2
and writes the stats file at SIGUSR2, so start-up and warm-up stay out of the profile.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KINDS = ("runtime", "runtime-sqlite", "runtime-sync", "runtime-notrace", "runtime-otlp-dead", "runtime-secured", "a2a-bare",
         "mcp-bare", "floor")
# the secret the secured runtime verifies the benchmark's tokens with (bench/hop.py mints them)
BENCH_JWT_SECRET = "bench-secret-for-hop-benchmark-tokens-only"
BENCH_CALLER = "bench-client"
# the options protocols.serving.serve_asgi gives uvicorn for the runtime
UVICORN_OPTIONS: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "on", "timeout_graceful_shutdown": 5}


def bare_a2a_app(base_url: str) -> Any:
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


def bare_mcp_app() -> Any:
    from mcp.server import MCPServer

    server = MCPServer("echo", version="1.0.0", instructions="Echoes its input back")

    @server.tool()
    async def echo(text: str) -> str:
        """Echo the text back."""
        return text

    return server.streamable_http_app(streamable_http_path="/mcp")


def floor_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def echo(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": body.get("params")})

    return Starlette(routes=[Route("/", echo, methods=["POST"])])


def run_bare(kind: str, port: int) -> None:
    import uvicorn

    if kind == "a2a-bare":
        app = bare_a2a_app(f"http://127.0.0.1:{port}")
    elif kind == "mcp-bare":
        app = bare_mcp_app()
    else:
        app = floor_app()
    asyncio.run(uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **UVICORN_OPTIONS)).serve())


# runtime kinds: (agent in echo_agent.py, environment on top of the benchmark's)
RUNTIME_KINDS: dict[str, tuple[str, dict[str, str]]] = {
    "runtime": ("agent", {"MESH_TASK_STORE": "memory"}),
    "runtime-sqlite": ("agent", {"MESH_TASK_STORE": "sqlite"}),
    "runtime-sync": ("sync_agent", {"MESH_TASK_STORE": "memory"}),
    "runtime-notrace": ("agent", {"MESH_TASK_STORE": "memory", "OTEL_SDK_DISABLED": "true"}),
    # spans to the span store and over OTLP/HTTP to a port nothing listens on (a dead collector)
    "runtime-otlp-dead": ("agent", {"MESH_TASK_STORE": "memory", "OTEL_TRACES_EXPORTER": "otlp",
                                    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}),
    # authentication, the policy check and the audit log (its file is written under MESH_HOME)
    "runtime-secured": ("agent", {"MESH_TASK_STORE": "memory", "MESH_AUTH_MODE": "required",
                                  "MESH_AUTH_JWT_SECRET": BENCH_JWT_SECRET}),
}


def run_runtime(kind: str, port: int) -> int:
    from agents.cli import main as mesh

    attr, env = RUNTIME_KINDS[kind]
    with tempfile.TemporaryDirectory(prefix="bench-mesh-") as home:
        os.environ.update(MESH_HOME=home, MESH_LOG_LEVEL="WARNING", **env)
        if "MESH_AUTH_MODE" in env:
            policy = Path(home) / "policy.toml"
            policy.write_text(f'[callers.{BENCH_CALLER}]\nscopes = ["echo:echo"]\n')
            os.environ["MESH_POLICY"] = str(policy)
        return mesh(["serve", f"{HERE / 'echo_agent.py'}:{attr}", "--host", "127.0.0.1", "--port", str(port)])


def install_profiler(out: Path) -> None:
    """cProfile plus garbage-collector accounting between SIGUSR1 and SIGUSR2.

    Writes ``out`` (pstats) and ``out.with_suffix(".gc.json")``: collections per generation, the
    time they took and the number of objects the collector tracks.
    """
    profiler = cProfile.Profile()
    gc_stats: dict[str, Any] = {"collections": [0, 0, 0], "seconds": [0.0, 0.0, 0.0]}
    started = [0.0]
    active = [False]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if not active[0]:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            gc_stats["collections"][info["generation"]] += 1
            gc_stats["seconds"][info["generation"]] += time.perf_counter() - started[0]

    def start(*_: Any) -> None:
        active[0] = True
        profiler.enable()

    def stop(*_: Any) -> None:
        profiler.disable()
        active[0] = False
        gc_stats["tracked_objects"] = len(gc.get_objects())
        gc_stats["frozen_objects"] = gc.get_freeze_count()
        profiler.dump_stats(out)
        out.with_suffix(".gc.json").write_text(json.dumps(gc_stats))

    gc.callbacks.append(on_gc)
    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("port", type=int)
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats here at SIGUSR2")
    args = parser.parse_args(argv)
    if args.profile is not None:
        install_profiler(args.profile)
    if args.kind.startswith("runtime"):
        return run_runtime(args.kind, args.port)
    run_bare(args.kind, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
