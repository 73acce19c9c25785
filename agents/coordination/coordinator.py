"""The coordinator: an agent on our runtime (A2A + MCP) that turns each request into a workflow.

A text message is routed (rules, registry search, LLM) to a plan and run by the
:class:`~agents.coordination.engine.WorkflowEngine`; the A2A task of the request is the workflow,
so the customer's next message, a restart or a human's reply continues it. Operators use skills:
``inbox``/``reply`` for escalations, ``dead_letters``/``redrive`` for the dead-letter list, and
``workflow`` to inspect one. ``run_plan`` runs a plan given by the caller (a DAG of steps).

    coordinator = Coordinator("coordinator", playbooks={...}, rules=[...])
    agent = coordinator.agent          # serve with `mesh serve module:agent`
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import httpx

from agents.context import Artifact, InputNeeded, Reject, ToolContext, ToolError
from agents.coordination.calls import HOPS_KEY, AgentCaller
from agents.coordination.catalog import Directory
from agents.coordination.dispatch import StepDispatcher, contract_net
from agents.coordination.engine import Escalated, Turn, WorkflowEngine, WorkflowFailed
from agents.coordination.handoff import summary
from agents.coordination.models import Plan, WorkflowRecord, WorkflowStatus
from agents.coordination.planner import Router, Rule
from agents.coordination.store import WorkflowStore
from agents.definition import Agent
from agents.settings import MeshSettings, SettingsError
from protocols.a2a_executor import OPERATOR_KEY
from protocols.card_signing import CardTrust
from protocols.registry_client import RegistryClient, read_local_token
from protocols.credentials import OutboundCredentials, credential_hook
from tracing.propagation import traced_httpx

__all__ = ["Coordinator", "agent"]


class Coordinator:
    def __init__(self, name: str = "coordinator", description: str | None = None, *, version: str = "1.0.0",
                 playbooks: dict[str, Plan] | None = None, rules: list[Rule] | None = None) -> None:
        self.playbooks = dict(playbooks or {})
        self.rules = list(rules or [])
        self.agent = Agent(
            name,
            description or "Coordinates the mesh's agents: plans each request as a workflow of hand-offs, "
                           "recovers from failures and escalates to a human when needed",
            version=version,
        )
        self.engine: WorkflowEngine | None = None
        self.store: WorkflowStore | None = None
        self.settings: MeshSettings | None = None
        self.base_url = ""
        self._http: httpx.AsyncClient | None = None
        self._registry: RegistryClient | None = None
        self._caller: AgentCaller | None = None
        self._orphans: asyncio.Task[None] | None = None
        self._wire()

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self, base_url: str, settings: MeshSettings) -> None:
        if not settings.registry_url:
            raise SettingsError("MESH_REGISTRY_URL: the coordinator finds its agents in a registry; set it")
        self.settings, self.base_url = settings, base_url
        trust = CardTrust.for_clients(settings)  # files are read before anything holds a connection
        url = settings.workflow_db or f"sqlite:///{settings.state_dir(self.agent.name) / 'workflows.db'}"
        self.store = WorkflowStore(url)
        await self.store.initialize()
        timeout = httpx.Timeout(settings.step_timeout_seconds, connect=min(5.0, settings.step_timeout_seconds))
        outbound = OutboundCredentials.from_settings(settings, self.agent.name)
        hooks = {"request": [credential_hook(outbound)]} if outbound.active else {}
        self._http = traced_httpx(timeout=timeout, limits=httpx.Limits(max_connections=256), event_hooks=hooks)
        per_instance = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        self._registry = RegistryClient(settings.registry_url, settings.registry_token or read_local_token(settings.home))
        directory = Directory(self._registry, exclude=(self.agent.name,))
        self._caller = AgentCaller(lambda: traced_httpx(timeout=timeout, limits=per_instance), credentials=outbound,
                                   trust=trust)
        router = Router(directory, self.playbooks, self.rules, llm=self._llm(settings))
        dispatcher = StepDispatcher(self._caller, directory, settings, negotiator=self._negotiator(settings, trust))
        owner = f"{self.agent.name}@{base_url}"  # the same after a restart: it takes its workflows straight back
        self.engine = WorkflowEngine(store=self.store, router=router, dispatcher=dispatcher,
                                     settings=settings, owner=owner)
        self._orphans = asyncio.create_task(self.engine.watch_orphans())

    async def stop(self) -> None:
        if self._orphans is not None:
            self._orphans.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._orphans
        if self._registry is not None:
            await self._registry.aclose()
        if self._caller is not None:
            await self._caller.aclose()
        if self._http is not None:
            await self._http.aclose()
        if self.store is not None:
            await self.store.close()

    def _llm(self, settings: MeshSettings) -> Any:
        from agents.coordination.llm_planner import LLMPlanner

        return LLMPlanner.from_settings(settings, self._http)

    def _negotiator(self, settings: MeshSettings, trust: CardTrust) -> Any:
        return contract_net(self._http, settings, trust)

    # -- the request path -------------------------------------------------------------------------

    async def handle(self, text: str, ctx: ToolContext, plan: Plan | None = None) -> list[Artifact]:
        engine = self._engine()
        hops = int(ctx.metadata.get(HOPS_KEY, 0) or 0)
        if hops >= engine.settings.max_hops:
            raise Reject(f"this request has been delegated {hops} times; refusing to delegate it again (hop limit)")
        workflow_id = ctx.task_id or str(uuid.uuid4())
        if ctx.protocol == "a2a":
            await ctx.progress("planning")  # the task exists from now on: a crash cannot lose it
        turn = Turn(answers=ctx.answers, ask=ctx.ask if ctx.protocol != "a2a" else None,
                    progress=ctx.progress if ctx.watched else None)
        try:
            record = await engine.run(workflow_id, text, turn=turn, context_id=ctx.conversation_id, hops=hops,
                                      plan=plan)
        except Escalated as escalated:
            raise InputNeeded(f"I've asked a specialist to look at this (reference {escalated.escalation.id}); "
                              f"I'll continue as soon as they reply.") from None
        except WorkflowFailed as failure:
            if failure.dead_lettered:
                raise ToolError(failure.message) from None
            raise Reject(failure.message) from None
        return self._result(record)

    def _result(self, record: WorkflowRecord) -> list[Artifact]:
        if record.status is WorkflowStatus.DEAD_LETTERED:
            raise ToolError(record.error or "the workflow could not finish")
        if record.status is WorkflowStatus.FAILED:
            raise Reject(record.error or "the workflow was stopped")
        return [Artifact(record.answer or "Done.", name="answer"),
                Artifact(describe_workflow(record), name="workflow")]

    def _engine(self) -> WorkflowEngine:
        if self.engine is None:
            raise ToolError("the coordinator is not started")
        return self.engine

    # -- skills -----------------------------------------------------------------------------------

    def _wire(self) -> None:
        agent = self.agent
        agent.on_start(self.start)
        agent.on_stop(self.stop)
        agent.on_text(self.handle)

        @agent.skill(tags=["ask", "request"], examples=["I need my broadband moved, account 1002"])
        async def ask(request: str, ctx: ToolContext) -> list[Artifact]:
            """Ask the mesh in plain language: the request is planned and run as a workflow across the agents."""
            return await self.handle(request, ctx)

        @agent.skill(tags=["plan", "workflow"], examples=['{"steps": [{"id": "a", "agent": "crm", "skill": "lookup"}]}'])
        async def run_plan(plan: Plan, ctx: ToolContext, request: str = "") -> list[Artifact]:
            """Run a plan given by the caller: a DAG of steps, each naming an agent (or a capability) and a skill."""
            return await self.handle(request or plan.name, ctx, plan=plan)

        @agent.skill(tags=["operator", "escalation"])
        async def inbox() -> list[dict[str, Any]]:
            """Escalations waiting for a human: reference, reason, question and the workflow's context."""
            assert self.store is not None
            return [e.model_dump(mode="json") for e in await self.store.open_escalations()]

        @agent.skill(tags=["operator", "escalation"])
        async def reply(escalation_id: str, text: str) -> dict[str, Any]:
            """Answer an escalation as a human; the paused workflow resumes where it stopped."""
            return await self.reply(escalation_id, text)

        @agent.skill(tags=["operator", "dlq"])
        async def dead_letters() -> list[dict[str, Any]]:
            """Workflows that exhausted every option, newest first."""
            assert self.store is not None
            return [describe_workflow(r) for r in await self.store.list(WorkflowStatus.DEAD_LETTERED)]

        @agent.skill(tags=["operator", "dlq"])
        async def redrive(workflow_id: str) -> dict[str, Any]:
            """Run a dead-lettered workflow again from its failed steps (completed steps are kept)."""
            engine = self._engine()
            try:
                record = await engine.redrive(workflow_id)
            except KeyError:
                raise ToolError(f"no workflow {workflow_id!r}") from None
            except ValueError as exc:
                raise ToolError(str(exc)) from None
            try:
                record = await engine.run(record.id, record.request, turn=Turn(), context_id=record.context_id)
            except (InputNeeded, Escalated, WorkflowFailed):
                record = await engine.store.get(workflow_id) or record
            return describe_workflow(record)

        @agent.skill(tags=["operator", "workflow"])
        async def workflow(workflow_id: str) -> dict[str, Any]:
            """One workflow: status, plan, each step's status and metadata, the answer."""
            assert self.store is not None
            record = await self.store.get(workflow_id)
            if record is None:
                raise ToolError(f"no workflow {workflow_id!r}")
            return describe_workflow(record)

    async def reply(self, escalation_id: str, text: str) -> dict[str, Any]:
        engine = self._engine()
        escalation = await engine.store.escalation(escalation_id)
        if escalation is None:
            raise ToolError(f"no escalation {escalation_id!r}; `mesh inbox` lists the open ones")
        if not await engine.store.answer_escalation(escalation_id, text):
            raise ToolError(f"escalation {escalation_id} was already answered")
        record = await engine.store.get(escalation.workflow_id)
        assert record is not None and self._caller is not None
        # The workflow is the A2A task of the customer's request: a message on that task, marked as
        # an operator's, runs the coordinator again for it and the customer's task completes.
        outcome = await self._caller.call(
            self.base_url, message_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"mesh:{escalation_id}/reply")),
            text=text, task_id=record.id, context_id=record.context_id, metadata={OPERATOR_KEY: escalation_id})
        latest = await engine.store.get(record.id) or record
        return {"escalation": escalation_id, "task_state": outcome.state, **describe_workflow(latest)}


def describe_workflow(record: WorkflowRecord) -> dict[str, Any]:
    """A workflow as callers and operators see it (step outputs stay inside the coordinator)."""
    return {
        "workflow_id": record.id,
        "status": record.status.value,
        "plan": record.plan.name if record.plan else None,
        "steps": {step_id: summary(result) for step_id, result in record.steps.items()},
        "answer": record.answer,
        "error": record.error,
        "request": record.request,
    }


agent = Coordinator().agent
