"""``mesh adopt``: serve any MCP server as an agent of the mesh (docs/adopt.md).

    mesh adopt [--name N] [--host H] [--port N] [--env K=V]... -- COMMAND ARGS...   (stdio)
    mesh adopt URL [--header "K: V"]... [--name N] [--host H] [--port N]            (streamable HTTP)
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from agents.cli.common import CliError, CommandFailed, run_until_signalled
from agents.settings import MeshSettings

__all__ = ["add_parsers"]


def _pairs(items: list[str], separator: str, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, found, value = item.partition(separator)
        if not found or not key.strip():
            raise CliError(f"{what} {item!r} is not {'K: V' if separator == ':' else 'K=V'}")
        pairs[key.strip()] = value.strip() if separator == ":" else value
    return pairs


def _target(args: argparse.Namespace) -> Any:
    from mcp import StdioServerParameters

    from protocols.mcp_upstream import HttpTarget

    command: list[str] = args.upstream
    if not command:
        raise CliError("give the server's URL, or its command after --: mesh adopt -- COMMAND ARGS...")
    if len(command) == 1 and command[0].startswith(("http://", "https://")):
        if args.env:
            raise CliError("--env is for a server started as a command")
        return HttpTarget(command[0], _pairs(args.header, ":", "--header"))
    if args.header:
        raise CliError("--header is for a server reached by URL")
    env = {**os.environ, **_pairs(args.env, "=", "--env")}  # the server runs as if started from this shell
    return StdioServerParameters(command=command[0], args=command[1:], env=env)


async def _adopt(args: argparse.Namespace, settings: MeshSettings) -> None:
    from agents.adopted import adopted_agent
    from agents.service import serve
    from protocols.mcp_upstream import McpUpstream, UpstreamUnavailable
    from protocols.serving import freeze_startup_heap

    upstream = McpUpstream(_target(args), mode=args.mcp_mode, start_timeout=args.start_timeout,
                           call_timeout=args.timeout)
    try:
        server = await upstream.open()
    except UpstreamUnavailable as exc:
        raise CommandFailed(str(exc)) from None
    try:
        agent = adopted_agent(server, upstream, name=args.name)

        def announce(service: Any) -> None:
            freeze_startup_heap()
            print(f"{agent.name} {agent.version} (adopted {upstream.description}, {len(agent.skills)} tools): "
                  f"A2A {service.base_url}/  MCP {service.base_url}/mcp", flush=True)

        await serve(agent, settings, on_ready=announce)
    finally:
        await upstream.close()


def _cmd_adopt(args: argparse.Namespace) -> int:
    settings = MeshSettings.from_env(host=args.host, port=args.port, public_url=args.public_url)
    _target(args)  # bad usage fails before anything starts
    return run_until_signalled(_adopt(args, settings))


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    adopt = sub.add_parser("adopt", help="serve an MCP server (a command or a URL) as an A2A agent of the mesh")
    adopt.add_argument("upstream", nargs="*", metavar="URL | -- COMMAND ARGS",
                       help="the server's streamable HTTP URL, or (after --) the command that runs it on stdio")
    adopt.add_argument("--name", default=None, help="agent name (default: the server's serverInfo name)")
    adopt.add_argument("--host", default=None, help="bind address (default MESH_HOST or 127.0.0.1)")
    adopt.add_argument("--port", type=int, default=None, help="port (default MESH_PORT or a free one)")
    adopt.add_argument("--public-url", default=None, help="base URL written into the card")
    adopt.add_argument("--header", action="append", default=[], help='HTTP header for a URL server, "K: V" (repeatable)')
    adopt.add_argument("--env", action="append", default=[], help="extra environment for a command server, K=V (repeatable)")
    adopt.add_argument("--mcp-mode", choices=["legacy", "auto"], default="legacy",
                       help="legacy: the initialize handshake (default; servers can ask questions mid-call); "
                            "auto: prefer the 2026-07-28 protocol")
    adopt.add_argument("--start-timeout", type=float, default=30.0, help="seconds to start the server and list its tools")
    adopt.add_argument("--timeout", type=float, default=300.0, help="seconds one tool call may take")
    adopt.set_defaults(run=_cmd_adopt)
