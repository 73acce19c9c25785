"""``mesh registry`` serves the registry; ``mesh agents``, ``mesh register`` and ``mesh deregister`` use one.

    mesh registry [--host H] [--port N] [--db URL]
    mesh agents [--skill S] [--tag T] [--query TEXT] [--name N] [--kind a2a|mcp] [--all] [--json]
    mesh register URL [--lease SECONDS]
    mesh register --card FILE [--instance-url URL]
    mesh register --mcp-url URL --name N [--version V]
    mesh register --mcp-command "CMD ARGS" --name N --tools FILE.json
    mesh deregister INSTANCE_ID|AGENT_ID

The client commands find the registry at ``--registry URL`` or ``MESH_REGISTRY_URL`` and write with
``MESH_REGISTRY_TOKEN`` or the token file a registry sharing ``MESH_HOME`` created.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from agents.cli.common import EXIT_OK, CliError, CommandFailed, run_until_signalled
from agents.settings import MeshSettings
from protocols.registry_client import RegistryClient, RegistryError, read_local_token
from registry.models import AgentRecord, Registration

__all__ = ["add_parsers"]

ClientAction = Callable[[argparse.Namespace, RegistryClient], Awaitable[int]]
SKILLS_WIDTH = 40  # the skills column is cut here so a table row stays on one terminal line


# -- mesh registry --------------------------------------------------------------------------------


def _cmd_registry(args: argparse.Namespace) -> int:
    # Imported here: the registry's store and web stack are not needed by the client commands.
    from registry.auth import token_file
    from registry.service import RegistryService, serve_registry

    settings = MeshSettings.from_env(host=args.host, port=args.port, registry_db=args.db)
    token_path = token_file(settings)
    had_token = token_path.exists()

    def announce(service: RegistryService) -> None:
        line = f"registry at {service.base_url} ({service.store.dialect} store)"
        # The path, never the token: whoever may write can read the file.
        if not had_token and token_path.exists():
            line += f"; write token created in {token_path.resolve()}"
        print(line, flush=True)

    return run_until_signalled(serve_registry(settings, on_ready=announce))


# -- the client commands ----------------------------------------------------------------------


def _client_command(action: ClientAction) -> Callable[[argparse.Namespace], int]:
    """Run ``action`` with a client of the configured registry; the registry's refusals exit 1."""

    def run(args: argparse.Namespace) -> int:
        settings = MeshSettings.from_env(registry_url=args.registry)
        if not settings.registry_url:
            raise CliError("no registry: give --registry URL or set MESH_REGISTRY_URL")
        token = settings.registry_token or read_local_token(settings.home)
        return asyncio.run(_call(action, args, settings.registry_url, token))

    return run


async def _call(action: ClientAction, args: argparse.Namespace, url: str, token: str | None) -> int:
    async with httpx.AsyncClient(timeout=args.timeout) as http:
        try:
            return await action(args, RegistryClient(url, token, http))
        except RegistryError as exc:
            raise CommandFailed(_explain(exc)) from None


def _explain(exc: RegistryError) -> str:
    if exc.status == 0:  # never reached: the client's message names the URL and the network error
        return exc.message
    first = f"registry: {exc.message} (HTTP {exc.status})"
    if exc.status == 401:
        first += "; set MESH_REGISTRY_TOKEN, or MESH_HOME to the registry's home to use its token file"
    return "\n".join([first, *(f"  {p['path']}: {p['reason']}" for p in exc.problems)])


async def _agents(args: argparse.Namespace, client: RegistryClient) -> int:
    # Always asked with all=true: without it the registry leaves unhealthy replicas out of each
    # record, and the REPLICAS column is to show healthy out of all of them.
    records = await client.find(skill=args.skill, tag=args.tag, q=args.query, name=args.name, kind=args.kind,
                                all=True, limit=args.limit)
    if not args.all:
        records = [r for r in records if r.healthy]
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
    elif records:
        print(_table(records, scored=args.query is not None))
    else:
        filtered = any(v is not None for v in (args.skill, args.tag, args.query, args.name, args.kind))
        message = "no agent matches" if filtered else "no agent is registered"
        print(message + ("" if args.all else " with a healthy instance (--all lists the others)"))
    return EXIT_OK


def _table(records: list[AgentRecord], scored: bool) -> str:
    rows = [["NAME", "VERSION", "REPLICAS", "SKILLS", "VERIFIED", "URL"]]
    for record in records:
        healthy = record.healthy
        rows.append([record.name, record.version, f"{len(healthy)}/{len(record.instances)}", _skills(record),
                     "yes" if record.verified else "no", healthy[0].url if healthy else "-"])
    if scored:  # the registry ranked them: show by how much (BM25 scores can be tiny: no fixed decimals)
        rows[0].insert(0, "SCORE")
        for row, record in zip(rows[1:], records):
            row.insert(0, f"{record.score or 0:.3g}")
    widths = [max(len(cell) for cell in column) for column in zip(*rows)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def _skills(record: AgentRecord) -> str:
    ids = [skill.id for skill in record.skills]
    shown: list[str] = []
    for skill_id in ids:
        if shown and len(",".join([*shown, skill_id])) > SKILLS_WIDTH:
            return ",".join(shown) + f",+{len(ids) - len(shown)}"
        shown.append(skill_id)
    return ",".join(shown) or "-"


async def _register(args: argparse.Namespace, client: RegistryClient) -> int:
    _check_register_usage(args)
    if args.url:
        registration = await client.register(card_url=args.url, lease_seconds=args.lease)
    elif args.card:
        card = _read_json(args.card, "card file")
        registration = await client.register(card=card, url=args.instance_url, lease_seconds=args.lease)
    else:
        mcp: dict[str, Any] = {"name": args.name, "version": args.version, "description": args.description}
        if args.mcp_url:
            mcp["url"] = args.mcp_url
        else:
            mcp["command"] = shlex.split(args.mcp_command)
        if args.tools:
            mcp["tools"] = _read_tools(args.tools)
        spec = {key: value for key, value in mcp.items() if value is not None}
        registration = await client.register(mcp=spec, lease_seconds=args.lease)
    _print_registration(registration)
    return EXIT_OK


def _check_register_usage(args: argparse.Namespace) -> None:
    is_mcp = bool(args.mcp_url or args.mcp_command)
    if not is_mcp:
        for flag, value in (("--name", args.name), ("--version", args.version),
                            ("--description", args.description), ("--tools", args.tools)):
            if value is not None:
                raise CliError(f"{flag} describes an MCP server: use it with --mcp-url or --mcp-command")
    elif not args.name:
        raise CliError("an MCP server needs --name")
    if args.mcp_command and not args.tools:
        raise CliError("--mcp-command needs --tools FILE.json: the registry does not start processes to list them")
    if args.instance_url and not args.card:
        raise CliError("--instance-url goes with --card")


def _read_json(path: str, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise CliError(f"cannot read {what} {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{what} {path} is not JSON: {exc}") from None


def _read_tools(path: str) -> list[dict[str, Any]]:
    """A list of tools, or an MCP ``tools/list`` result (``{"tools": [...]}``, ``inputSchema``)."""
    data = _read_json(path, "tools file")
    tools = data.get("tools") if isinstance(data, dict) else data
    if not isinstance(tools, list) or not all(isinstance(tool, dict) for tool in tools):
        raise CliError(f"tools file {path}: expected a JSON list of tools or an object with \"tools\"")
    # Only what the registry keeps: a tools/list dump also carries titles, output schemas, annotations.
    return [{key: value for key, value in {
        "name": tool.get("name"),
        "description": tool.get("description"),
        "input_schema": tool.get("input_schema", tool.get("inputSchema")),
    }.items() if value is not None} for tool in tools]


def _print_registration(registration: Registration) -> None:
    instance = next((i for i in registration.agent.instances if i.id == registration.instance_id), None)
    where = f" at {instance.url}" if instance else ""
    lease = f"lease {registration.lease_seconds:g} s" if registration.lease_seconds else "no lease: kept by probes"
    print(f"agent         {registration.agent_id}")
    print(f"instance      {registration.instance_id}{where} ({'new' if registration.created else 'already registered'}, {lease})")
    print(f"verification  {registration.agent.verification}")


async def _deregister(args: argparse.Namespace, client: RegistryClient) -> int:
    # Instance ids are "i-" and a hash; agent ids are always "name@version".
    if args.id.startswith("i-") and "@" not in args.id:
        await client.deregister(args.id)
        print(f"deregistered instance {args.id}")
    else:
        await client.deregister_agent(args.id)
        print(f"deregistered agent {args.id} (every instance)")
    return EXIT_OK


# -- the parsers ------------------------------------------------------------------------------


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser("registry", help="serve the registry (REST /v1, watch, MCP at /mcp)")
    serve.add_argument("--host", default=None, help="bind address (default MESH_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default MESH_PORT or a free one)")
    serve.add_argument("--db", default=None, help="store URL (default MESH_REGISTRY_DB or a SQLite file under MESH_HOME)")
    serve.set_defaults(run=_cmd_registry)

    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--registry", default=None, metavar="URL", help="registry base URL (default MESH_REGISTRY_URL)")
    client.add_argument("--timeout", type=float, default=30.0)

    agents = sub.add_parser("agents", parents=[client], help="list registered agents and MCP servers")
    agents.add_argument("--skill", default=None, help="with this skill (MCP: tool) id")
    agents.add_argument("--tag", default=None, help="with a skill tagged so")
    agents.add_argument("--query", default=None, metavar="TEXT", help="full-text search, best match first")
    agents.add_argument("--name", default=None, help="whose name contains this")
    agents.add_argument("--kind", choices=["a2a", "mcp"], default=None)
    agents.add_argument("--all", action="store_true", help="include agents with no healthy instance")
    agents.add_argument("--limit", type=int, default=100)
    agents.add_argument("--json", action="store_true", help="print the registry's records as JSON")
    agents.set_defaults(run=_client_command(_agents))

    register = sub.add_parser("register", parents=[client], help="register an A2A agent or an MCP server")
    what = register.add_mutually_exclusive_group(required=True)
    what.add_argument("url", nargs="?", default=None, help="A2A agent base URL or card URL (the registry fetches it)")
    what.add_argument("--card", default=None, metavar="FILE", help="post this card file")
    what.add_argument("--mcp-url", default=None, metavar="URL", help="MCP server on streamable HTTP")
    what.add_argument("--mcp-command", default=None, metavar='"CMD ARGS"', help="MCP server started on stdio")
    register.add_argument("--instance-url", default=None, metavar="URL", help="with --card: where it runs (default: the card's)")
    register.add_argument("--name", default=None, help="MCP server name")
    register.add_argument("--version", default=None, help="MCP server version")
    register.add_argument("--description", default=None, help="MCP server description")
    register.add_argument("--tools", default=None, metavar="FILE.json", help="MCP tools: a list, or a tools/list result")
    register.add_argument("--lease", type=float, default=None, metavar="SECONDS",
                          help="expect heartbeats this often (default: none, kept alive by probes)")
    register.set_defaults(run=_client_command(_register))

    deregister = sub.add_parser("deregister", parents=[client], help="remove an instance, or an agent and all its instances")
    deregister.add_argument("id", help="instance id (i-...) or agent id (name@version)")
    deregister.set_defaults(run=_client_command(_deregister))
