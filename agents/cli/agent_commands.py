"""``mesh serve``, ``mesh card``, ``mesh keygen`` and ``mesh send``: run one agent, read (and sign) its card, talk to it.

    mesh serve MODULE:ATTR [--host H] [--port N] [--public-url URL] [--stdio]
    mesh card URL [--json]
    mesh keygen KID [--dir DIR] [--trust JWKS]
    mesh send URL "text" [--data JSON] [--skill S] [--stream] [--task ID --context ID] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from agents.cli.common import EXIT_FAILED, EXIT_OK, CliError, import_from_cwd, run_until_signalled
from agents.settings import MeshSettings
from protocols.credentials import outbound_client

if TYPE_CHECKING:
    from agents.definition import Agent

__all__ = ["add_parsers", "load_agent"]


def load_agent(target: str) -> Agent:
    """Import ``module:attr`` (or ``path/to/file.py:attr``) and return the Agent it names."""
    from agents.definition import Agent

    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise CliError(f"expected MODULE:ATTR, got {target!r}")
    if module_name.endswith(".py"):
        path = Path(module_name).resolve()
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise CliError(f"cannot load {module_name}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    else:
        try:
            module = import_from_cwd(module_name)
        except ImportError as exc:
            raise CliError(f"cannot import {module_name}: {exc}") from None
    agent = getattr(module, attr, None)
    if not isinstance(agent, Agent):
        raise CliError(f"{target} is {type(agent).__name__}, not an agents.Agent")
    return agent


def _cmd_serve(args: argparse.Namespace) -> int:
    from agents.service import serve, serve_stdio
    from protocols.serving import freeze_startup_heap

    agent = load_agent(args.target)
    settings = MeshSettings.from_env(host=args.host, port=args.port, public_url=args.public_url)
    if args.stdio:
        serve_stdio(agent, settings)
        return EXIT_OK

    def announce(service: Any) -> None:
        freeze_startup_heap()  # this process is the service: spare full GC passes the start-up heap
        print(f"{agent.name} {agent.version}: A2A {service.base_url}/  MCP {service.base_url}/mcp", flush=True)

    return run_until_signalled(serve(agent, settings, on_ready=announce))


async def _card(args: argparse.Namespace) -> int:
    from protocols.a2a_client import fetch_card
    from protocols.card_signing import CardTrust

    trust = CardTrust.for_clients(MeshSettings.from_env())
    async with httpx.AsyncClient(timeout=args.timeout) as http:
        card, problems = await fetch_card(args.url, http)
    verification, refusal = trust.judge(card)
    if args.json:
        print(json.dumps(card, indent=2))
    else:
        _print_card(card, interfaces=None if problems else _interfaces(card))
        print(f"  signature: {verification.detail}")
    for problem in problems:
        print(f"invalid: {problem}", file=sys.stderr)
    if refusal is not None:
        print(f"refused: {refusal}", file=sys.stderr)
    return EXIT_FAILED if problems or refusal is not None else EXIT_OK


def _keygen(args: argparse.Namespace) -> int:
    """A new card signing key: the private JWK for MESH_CARD_SIGNING_KEY, the public one as a JWKS."""
    from protocols.card_signing import generate_signing_key

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    private_path, public_path = folder / f"{args.kid}.jwk", folder / f"{args.kid}.jwks"
    if private_path.exists() and not args.force:
        raise CliError(f"{private_path} exists; pass --force to replace it")
    private, public = generate_signing_key(args.kid)
    private_path.touch(mode=0o600)
    private_path.chmod(0o600)  # before the secret goes in
    private_path.write_text(json.dumps(private, indent=2))
    public_path.write_text(json.dumps({"keys": [public]}, indent=2))
    print(f"MESH_CARD_SIGNING_KEY={private_path}    # the agent's (keep it secret)")
    if args.trust:
        trusted = Path(args.trust)
        keys = json.loads(trusted.read_text())["keys"] if trusted.exists() else []
        keys = [k for k in keys if k.get("kid") != args.kid] + [public]
        trusted.write_text(json.dumps({"keys": keys}, indent=2))
        print(f"MESH_TRUSTED_CARD_KEYS={trusted}    # readers of cards: {len(keys)} trusted key(s)")
    else:
        print(f"MESH_TRUSTED_CARD_KEYS={public_path}    # readers of cards (merge it into your JWKS)")
    return EXIT_OK


def _interfaces(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The interfaces of a valid card as a client reads them (a 0.3 card's url and additionalInterfaces too)."""
    from protocols.cards import card_to_dict, parse_card

    return card_to_dict(parse_card(card)).get("supportedInterfaces", [])


def _print_card(card: dict[str, Any], interfaces: list[dict[str, Any]] | None = None) -> None:
    from protocols.cards import is_legacy_card

    legacy = " (an A2A 0.3 card)" if is_legacy_card(card) else ""
    print(f"{card.get('name')} {card.get('version')} — {card.get('description')}{legacy}")
    for interface in card.get("supportedInterfaces", []) if interfaces is None else interfaces:
        print(f"  {interface.get('protocolBinding', '?'):<10} {interface.get('protocolVersion', '?'):<5} {interface.get('url')}")
    caps = card.get("capabilities", {})
    print("  capabilities: " + (", ".join(k for k, v in caps.items() if v is True) or "none"))
    for skill in card.get("skills", []):
        tags = ", ".join(skill.get("tags", []))
        print(f"  skill {skill.get('id')}: {skill.get('description', '').splitlines()[0] if skill.get('description') else ''} [{tags}]")


async def _send(args: argparse.Namespace) -> int:
    from protocols.a2a_client import A2AConnection, user_message

    if args.text is None and args.data is None:
        raise CliError("give a text or --data")
    data = None
    if args.data is not None:
        try:
            data = json.loads(args.data)
        except json.JSONDecodeError as exc:
            raise CliError(f"--data is not JSON: {exc}") from None
    if args.skill:
        data = {"skill": args.skill, "arguments": data or {}}
    message = user_message(args.text, data, task_id=args.task, context_id=args.context)
    bindings = (args.binding,) if args.binding else ("JSONRPC", "HTTP+JSON")
    import tracing

    from protocols.card_signing import CardTrust

    settings = MeshSettings.from_env()
    trust = CardTrust.for_clients(settings)
    traces = tracing.configure("mesh-cli")
    async with outbound_client(settings, "mesh-cli", timeout=args.timeout) as http:
        connection = await A2AConnection.open(args.url, http, trust=trust, streaming=args.stream, bindings=bindings)
        final: dict[str, Any] = {}
        async for event in connection.send(message):
            final = event
            print(json.dumps(event) if args.json else _describe(event), flush=True)
    traces.flush()
    if connection.trace_id and not args.json:
        print(f"trace {connection.trace_id}  (mesh trace {connection.trace_id[:12]})", flush=True)
    state = _state_of(final)
    return EXIT_FAILED if state in ("TASK_STATE_FAILED", "TASK_STATE_REJECTED") else EXIT_OK


def _state_of(event: dict[str, Any]) -> str | None:
    for key in ("task", "statusUpdate"):
        if key in event:
            return event[key].get("status", {}).get("state")
    return None


def _parts_text(parts: list[dict[str, Any]]) -> str:
    out = []
    for part in parts:
        if "text" in part:
            out.append(part["text"])
        elif "data" in part:
            out.append(json.dumps(part["data"]))
        elif "url" in part:
            out.append(part["url"])
        elif "raw" in part:
            out.append(f"<{part.get('mediaType', 'bytes')} {part.get('filename', '')}>")
    return " ".join(out)


def _describe(event: dict[str, Any]) -> str:
    """One human line per event; ``--json`` prints the events as they came."""
    if "message" in event:
        return f"message: {_parts_text(event['message'].get('parts', []))}"
    if "task" in event:
        task = event["task"]
        lines = [f"task {task['id']} (context {task.get('contextId')}): {_short(task['status']['state'])}"]
        if "message" in task["status"]:
            lines.append(f"  {_parts_text(task['status']['message'].get('parts', []))}")
        for artifact in task.get("artifacts", []):
            lines.append(f"  artifact {artifact.get('name', artifact.get('artifactId'))}: {_parts_text(artifact['parts'])}")
        return "\n".join(lines)
    if "statusUpdate" in event:
        status = event["statusUpdate"]["status"]
        text = _parts_text(status.get("message", {}).get("parts", []))
        return f"status: {_short(status['state'])}" + (f": {text}" if text else "")
    if "artifactUpdate" in event:
        artifact = event["artifactUpdate"]["artifact"]
        return f"artifact {artifact.get('name', artifact.get('artifactId'))}: {_parts_text(artifact['parts'])}"
    return json.dumps(event)


def _short(state: str) -> str:
    return state.removeprefix("TASK_STATE_").lower().replace("_", "-")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser("serve", help="serve one agent (A2A + MCP on HTTP, or MCP on stdio)")
    serve.add_argument("target", help="MODULE:ATTR or path/to/file.py:ATTR naming an agents.Agent")
    serve.add_argument("--host", default=None, help="bind address (default MESH_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default MESH_PORT or a free one)")
    serve.add_argument("--public-url", default=None, help="base URL written into the card")
    serve.add_argument("--stdio", action="store_true", help="serve MCP on stdin/stdout instead of HTTP")
    serve.set_defaults(run=_cmd_serve)

    card = sub.add_parser("card", help="fetch, print and validate an agent card")
    card.add_argument("url", help="agent base URL or card URL")
    card.add_argument("--json", action="store_true", help="print the card as JSON")
    card.add_argument("--timeout", type=float, default=10.0)
    card.set_defaults(run=lambda a: asyncio.run(_card(a)))

    keygen = sub.add_parser("keygen", help="make a key pair for signing agent cards (EC P-256, JWK)")
    keygen.add_argument("kid", help="key id, named in each signature (e.g. the agent's or the team's name)")
    keygen.add_argument("--dir", default=".", help="folder for KID.jwk (private) and KID.jwks (public)")
    keygen.add_argument("--trust", default=None, help="also add the public key to this JWKS file")
    keygen.add_argument("--force", action="store_true", help="replace an existing key of that id")
    keygen.set_defaults(run=_keygen)

    send = sub.add_parser("send", help="send an A2A message and print the result")
    send.add_argument("url", help="agent base URL")
    send.add_argument("text", nargs="?", default=None, help="message text")
    send.add_argument("--data", default=None, help="a JSON data part, e.g. '{\"skill\": \"x\", \"arguments\": {}}'")
    send.add_argument("--skill", default=None, help="call this skill with --data as its arguments")
    send.add_argument("--stream", action="store_true", help="stream events (SendStreamingMessage)")
    send.add_argument("--task", default=None, help="continue this task (answer an input-required question)")
    send.add_argument("--context", default=None, help="context (conversation) id")
    send.add_argument("--binding", choices=["JSONRPC", "HTTP+JSON"], default=None)
    send.add_argument("--json", action="store_true", help="print raw StreamResponse JSON, one per line")
    send.add_argument("--timeout", type=float, default=60.0)
    send.set_defaults(run=lambda a: asyncio.run(_send(a)))
