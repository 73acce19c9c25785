"""``mesh mcp``: the whole mesh as one MCP server on stdin/stdout, for IDE assistants.

It serves the registry's MCP face (every healthy agent skill as a tool, plus ``find_agents``,
``get_agent``, ``resolve`` and ``ask_mesh``) from a registry reached over HTTP, and follows the
registry's change stream to tell the client when the tool list changes. stdout carries the
protocol: everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import tracing
from agents.cli.common import EXIT_OK, CliError
from agents.settings import MeshSettings
from protocols.card_signing import CardTrust
from protocols.registry_client import RegistryClient, read_local_token
from registry.mcp_face import build_registry_mcp, gateway_http
from registry.views import RemoteView

__all__ = ["add_parsers"]


def _cmd_mcp(args: argparse.Namespace) -> int:
    settings = MeshSettings.from_env(registry_url=args.registry)
    if not settings.registry_url:
        raise CliError("no registry: give --registry URL or set MESH_REGISTRY_URL")
    traces = tracing.configure("mesh-gateway", settings)
    try:
        asyncio.run(_serve(settings, args.coordinator_name))
    finally:
        traces.flush()  # the host may stop this process soon after closing stdin: spans first
    return EXIT_OK


async def _serve(settings: MeshSettings, coordinator: str) -> None:
    assert settings.registry_url is not None
    token = settings.registry_token or read_local_token(settings.home)
    trust = CardTrust.for_clients(settings)
    async with RegistryClient(settings.registry_url, token) as registry, gateway_http(settings) as http:
        server = build_registry_mcp(RemoteView(registry), http, coordinator, trust=trust)
        follower = asyncio.create_task(server.follow())
        try:
            await server.run_stdio_async()
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower


def add_parsers(sub: argparse._SubParsersAction) -> None:
    mcp = sub.add_parser("mcp", help="serve the whole mesh as one MCP server on stdio (for IDE assistants)")
    mcp.add_argument("--registry", default=None, help="registry base URL (default: MESH_REGISTRY_URL)")
    mcp.add_argument("--coordinator-name", default="coordinator", help="the coordinator ask_mesh hands requests to")
    mcp.set_defaults(run=_cmd_mcp)
