"""Talking to the coordinator: ``mesh ask``, ``mesh inbox``, ``mesh reply``, ``mesh dlq``, ``mesh workflow``.

The coordinator is found at ``--coordinator URL``, ``MESH_COORDINATOR_URL``, in ``$MESH_HOME/up.json``
(written by ``mesh up``), or in the registry under the name ``coordinator``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import httpx

from agents.cli.common import EXIT_FAILED, EXIT_OK, CliError, CommandFailed
from agents.settings import MeshSettings
from protocols.credentials import outbound_client

__all__ = ["add_parsers"]

EXIT_WAITING = 3  # mesh ask: the workflow waits for an answer (input-required)


async def _coordinator_url(args: argparse.Namespace, settings: MeshSettings) -> str:
    if args.coordinator:
        return args.coordinator
    if settings.coordinator_url:
        return settings.coordinator_url
    from agents.supervisor import read_up_state

    up = read_up_state(settings.home)  # written by a running `mesh up`
    if up is not None and up.url_of(args.coordinator_name):
        return str(up.url_of(args.coordinator_name))
    registry_url = settings.registry_url or (up.registry_url if up is not None else None)
    if registry_url:
        from protocols.registry_client import RegistryClient, RegistryError

        async with RegistryClient(registry_url) as registry:
            try:
                found = [a for a in await registry.find(name=args.coordinator_name) if a.healthy]
            except RegistryError as exc:
                raise CommandFailed(str(exc)) from None
        if found:
            return found[0].healthy[0].url
    raise CliError("no coordinator found: run `mesh up`, or pass --coordinator URL (or set MESH_COORDINATOR_URL)")


async def _operate(args: argparse.Namespace, skill: str, arguments: dict[str, Any]) -> Any:
    """Call one of the coordinator's operator skills and return its output."""
    from protocols.a2a_client import A2AConnection, user_message
    from protocols.a2a_results import outcome_of
    from protocols.card_signing import CardTrust

    settings = MeshSettings.from_env()
    url = await _coordinator_url(args, settings)
    async with outbound_client(settings, "mesh-cli", timeout=args.timeout) as http:
        connection = await A2AConnection.open(url, http, trust=CardTrust.for_clients(settings))
        last: dict[str, Any] = {}
        async for event in connection.send(user_message(data={"skill": skill, "arguments": arguments})):
            last = event
    outcome = outcome_of(last)
    if outcome.state != "completed":
        raise CommandFailed(outcome.text or f"{skill}: {outcome.state}")
    return outcome.output


async def _ask(args: argparse.Namespace) -> int:
    from protocols.a2a_client import A2AConnection, user_message
    from protocols.a2a_results import outcome_of
    from protocols.card_signing import CardTrust

    import tracing

    settings = MeshSettings.from_env()
    url = await _coordinator_url(args, settings)
    traces = tracing.configure("mesh-cli")
    text, task_id, context_id = args.text, args.task, args.context
    async with outbound_client(settings, "mesh-cli", timeout=httpx.Timeout(args.timeout, connect=5)) as http:
        connection = await A2AConnection.open(url, http, trust=CardTrust.for_clients(settings), streaming=True)
        while True:
            last: dict[str, Any] = {}
            async for event in connection.send(user_message(text, task_id=task_id, context_id=context_id)):
                last = event
                _show_progress(event, args.json)
            outcome = outcome_of(last)
            if outcome.task_id:  # a stream ends with a status update: the task holds the artifacts
                outcome = outcome_of(await connection.get_task(outcome.task_id))
            task_id, context_id = outcome.task_id, outcome.context_id
            if outcome.state == "input-required" and not args.json and sys.stdin.isatty():
                print(outcome.text, flush=True)
                text = input("> ").strip()
                continue
            break
    traces.flush()
    return _report(outcome, connection.trace_id, args.json)


def _show_progress(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(event), flush=True)
        return
    status = event.get("statusUpdate", {}).get("status", {})
    if status.get("state") == "TASK_STATE_WORKING":
        parts = status.get("message", {}).get("parts", [])
        text = " ".join(p["text"] for p in parts if "text" in p)
        if text:
            print(f"  · {text}", file=sys.stderr, flush=True)


def _report(outcome: Any, trace_id: str | None, as_json: bool) -> int:
    if as_json:
        return EXIT_OK if outcome.state == "completed" else EXIT_FAILED
    answer = outcome.output[0] if isinstance(outcome.output, list) and outcome.output else outcome.output
    workflow = outcome.output[1] if isinstance(outcome.output, list) and len(outcome.output) > 1 else {}
    if outcome.state == "completed":
        print(answer if isinstance(answer, str) else json.dumps(answer))
    elif outcome.state == "input-required":
        print(outcome.text)
        print(f"answer with: mesh ask --task {outcome.task_id} --context {outcome.context_id} \"...\"")
    else:
        print(f"{outcome.state}: {outcome.text}", file=sys.stderr)
    if isinstance(workflow, dict) and workflow.get("workflow_id"):
        print(f"workflow {workflow['workflow_id']}")
    elif outcome.task_id:
        print(f"workflow {outcome.task_id}")
    if trace_id:
        print(f"trace {trace_id}  (mesh trace {trace_id[:12]})")
    if outcome.state == "input-required":
        return EXIT_WAITING
    return EXIT_OK if outcome.state == "completed" else EXIT_FAILED


async def _inbox(args: argparse.Namespace) -> int:
    escalations = await _operate(args, "inbox", {}) or []
    if args.json:
        print(json.dumps(escalations, indent=2))
        return EXIT_OK
    if not escalations:
        print("no escalations waiting")
    for e in escalations:
        print(f"{e['id']}  workflow {e['workflow_id']}\n  reason: {e['reason']}\n  {e['question']}")
        facts = ", ".join(f"{k}={v}" for k, v in (e.get("context") or {}).items() if k != "request")
        if facts:
            print(f"  context: {facts}")
    return EXIT_OK


async def _reply(args: argparse.Namespace) -> int:
    result = await _operate(args, "reply", {"escalation_id": args.escalation_id, "text": args.text})
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.escalation_id}: workflow {result['workflow_id']} is {result['status']}")
        if result.get("answer"):
            print(f"  customer was told: {result['answer']}")
    return EXIT_OK


async def _dlq(args: argparse.Namespace) -> int:
    if args.redrive:
        result = await _operate(args, "redrive", {"workflow_id": args.redrive})
        print(json.dumps(result, indent=2) if args.json else f"workflow {result['workflow_id']}: {result['status']}")
        return EXIT_OK if result["status"] == "completed" else EXIT_FAILED
    letters = await _operate(args, "dead_letters", {}) or []
    if args.json:
        print(json.dumps(letters, indent=2))
    elif not letters:
        print("the dead-letter list is empty")
    for letter in letters if not args.json else []:
        print(f"{letter['workflow_id']}  {letter['plan']}: {letter['error']}")
    return EXIT_OK


async def _workflow(args: argparse.Namespace) -> int:
    result = await _operate(args, "workflow", {"workflow_id": args.workflow_id})
    if args.json:
        print(json.dumps(result, indent=2))
        return EXIT_OK
    print(f"workflow {result['workflow_id']} ({result['plan']}): {result['status']}")
    for step_id, step in result["steps"].items():
        extra = f" confidence {step['confidence']:.2f}" if step.get("confidence") is not None else ""
        print(f"  {step_id:<14} {step['status']:<15} {step.get('agent') or '':<14} {step.get('duration_ms') or 0:>8.1f} ms"
              f"{extra}{'  ' + step['error'] if step.get('error') else ''}")
    if result.get("answer"):
        print(f"answer: {result['answer']}")
    return EXIT_OK


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--coordinator", default=None, help="coordinator base URL")
    parser.add_argument("--coordinator-name", default="coordinator", help="its name in the registry or up.json")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--timeout", type=float, default=120.0)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ask = sub.add_parser("ask", help="ask the mesh (the coordinator) in plain language")
    ask.add_argument("text")
    ask.add_argument("--task", default=None, help="continue this workflow (answer its question)")
    ask.add_argument("--context", default=None, help="conversation id: the mesh remembers what it learned")
    _common(ask)
    ask.set_defaults(run=lambda a: asyncio.run(_ask(a)))

    inbox = sub.add_parser("inbox", help="escalations waiting for a human")
    _common(inbox)
    inbox.set_defaults(run=lambda a: asyncio.run(_inbox(a)))

    reply = sub.add_parser("reply", help="answer an escalation; its workflow resumes")
    reply.add_argument("escalation_id")
    reply.add_argument("text", help="your answer; 'reject: <message>' stops the workflow")
    _common(reply)
    reply.set_defaults(run=lambda a: asyncio.run(_reply(a)))

    dlq = sub.add_parser("dlq", help="the dead-letter list of workflows; --redrive ID runs one again")
    dlq.add_argument("--redrive", metavar="WORKFLOW_ID", default=None)
    _common(dlq)
    dlq.set_defaults(run=lambda a: asyncio.run(_dlq(a)))

    workflow = sub.add_parser("workflow", help="one workflow's steps, their status and metadata")
    workflow.add_argument("workflow_id")
    _common(workflow)
    workflow.set_defaults(run=lambda a: asyncio.run(_workflow(a)))
