"""The ``mesh`` command line.

    mesh serve MODULE:ATTR [--host H] [--port N] [--stdio]
    mesh adopt [--name N] [--port N] -- COMMAND ARGS...  |  mesh adopt URL [--header "K: V"]...
    mesh card URL [--json]
    mesh send URL "text" [--data JSON] [--stream] [--task ID --context ID] [--json]
    mesh registry [--host H] [--port N] [--db URL]
    mesh agents [--skill S] [--tag T] [--query TEXT] [--name N] [--kind a2a|mcp] [--all] [--json]
    mesh register URL | --card FILE | --mcp-url URL --name N | --mcp-command "CMD ARGS" --name N --tools FILE
    mesh deregister INSTANCE_ID|AGENT_ID
    mesh traces [--last N]  |  mesh trace ID  |  mesh stats [--minutes M]
    mesh up [--manifest MODULE:ATTR] [--only NAMES] [--registry-port N] [--no-table] [--db URL]
    mesh ask "text" [--task ID --context ID]  |  mesh inbox  |  mesh reply ESC-ID "text"
    mesh dlq [--redrive WORKFLOW_ID]  |  mesh workflow WORKFLOW_ID
    mesh mcp [--registry URL]       (the whole mesh as one MCP server on stdio)
    mesh audit [--caller C] [--service S] [--outcome O] [--since 10m] [--json] [--verify]

The registry commands find the registry at ``--registry URL`` or ``MESH_REGISTRY_URL``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from agents.cli import (
    agent_commands,
    coordination_commands,
    gateway_commands,
    registry_commands,
    trace_commands,
    up_commands,
)
from agents.cli import adopt_commands
from agents.cli import audit_commands
from agents.cli.agent_commands import load_agent
from agents.cli.common import EXIT_FAILED, EXIT_USAGE, CliError, CommandFailed
from agents.errors import describe_exception
from agents.settings import SettingsError

__all__ = ["load_agent", "main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mesh", description="agent-mesh: A2A + MCP agents that work as one team")
    sub = parser.add_subparsers(dest="command", required=True)
    agent_commands.add_parsers(sub)
    adopt_commands.add_parsers(sub)
    registry_commands.add_parsers(sub)
    trace_commands.add_parsers(sub)
    up_commands.add_parsers(sub)
    coordination_commands.add_parsers(sub)
    gateway_commands.add_parsers(sub)
    audit_commands.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except (CliError, SettingsError) as exc:
        print(f"mesh {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CommandFailed as exc:
        print(f"mesh {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # protocol and network errors: one clear line, no traceback
        print(f"mesh {args.command}: {describe_exception(exc)}", file=sys.stderr)
        return EXIT_FAILED
