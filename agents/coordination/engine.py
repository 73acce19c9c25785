"""The workflow engine: run a plan step by step, durably, handing context from agent to agent.

A workflow's id is the A2A task id of the request that started it, so running it again (the
customer's next message, a crash recovery, a human's reply) continues where it stopped: completed
steps are never sent again, and a step cut off mid-call is re-sent with the same message id, which
the agent recognises (``docs/runtime.md``, idempotent delivery).

The engine talks to the requester through a :class:`Turn` and reports through exceptions:
``InputNeeded`` (ask the customer), :class:`Escalated` (a human must decide) and
:class:`WorkflowFailed` (with the words for the customer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from agents.context import InputNeeded
from agents.coordination.dispatch import StepDispatcher
from agents.coordination.handoff import arguments_for, known_facts, memorable, render_answer
from agents.coordination.models import (
    Escalation,
    Plan,
    Step,
    StepResult,
    StepStatus,
    WorkflowRecord,
    WorkflowStatus,
)
from agents.coordination.planner import Router
from agents.coordination.store import WorkflowStore, customer_scope, session_scope
from agents.settings import MeshSettings
from protocols.credentials import current_caller, identity_from_record, identity_record
from tracing import conventions as semconv

__all__ = ["Escalated", "Turn", "WorkflowEngine", "WorkflowFailed"]

CALLER_FACT = "_caller"  # who started the workflow: subject and scopes, never a credential
log = logging.getLogger("agents.coordination")
_TERMINAL = (WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.DEAD_LETTERED)
_SETTLED = (StepStatus.COMPLETED, StepStatus.SKIPPED)
_REJECT_WORDS = ("reject", "deny", "denied", "decline", "no:")
_RAW_TEXT = frozenset({"request", "question"})  # the customer's own words: shown redacted, if at all


class Escalated(Exception):
    """The workflow waits for a human (``mesh inbox`` / ``mesh reply``)."""

    def __init__(self, escalation: Escalation) -> None:
        super().__init__(escalation.reason)
        self.escalation = escalation


class WorkflowFailed(Exception):
    """The workflow cannot finish; ``message`` is what the customer is told."""

    def __init__(self, message: str, *, dead_lettered: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.dead_lettered = dead_lettered


@dataclass
class Turn:
    """The requester's side of one run: answers given so far, and how to ask or report progress.

    ``ask`` is for faces that can wait for an answer within the call (MCP elicitation); without it
    a question ends the run with ``InputNeeded`` and the next message brings the answer (A2A).
    """

    answers: list[str] = field(default_factory=list)
    ask: Callable[[str], Awaitable[str]] | None = None
    progress: Callable[[str], Awaitable[None]] | None = None  # per step; None when nobody watches


def _stable_id(*parts: str) -> str:
    """A message id that is the same every time this exact send is (re)made."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "mesh:" + "/".join(parts)))


class WorkflowEngine:
    def __init__(self, *, store: WorkflowStore, router: Router, dispatcher: StepDispatcher,
                 settings: MeshSettings, owner: str) -> None:
        self.store = store
        self.router = router
        self.dispatcher = dispatcher
        self.settings = settings
        self.owner = owner
        self.lease = settings.workflow_lease_seconds
        self._locks: dict[str, asyncio.Lock] = {}  # one run of a workflow at a time in this process
        self._adopted: set[asyncio.Task[Any]] = set()

    # -- entry point ----------------------------------------------------------------------------

    async def run(self, workflow_id: str, request: str, *, turn: Turn, context_id: str | None = None,
                  hops: int = 0, plan: Plan | None = None) -> WorkflowRecord:
        lock = self._locks.setdefault(workflow_id, asyncio.Lock())
        try:
            async with lock:
                return await self._run(workflow_id, request, turn=turn, context_id=context_id, hops=hops, plan=plan)
        finally:
            if not lock.locked() and self._locks.get(workflow_id) is lock:
                del self._locks[workflow_id]

    async def _run(self, workflow_id: str, request: str, *, turn: Turn, context_id: str | None,
                   hops: int, plan: Plan | None) -> WorkflowRecord:
        record = await self.store.get(workflow_id)
        created = False
        if record is None:
            record = WorkflowRecord(id=workflow_id, status=WorkflowStatus.RUNNING, request=request,
                                    context_id=context_id, hops=hops, plan=plan)
            caller = identity_record(current_caller.get())
            if caller is not None:  # a private fact ("_"): never handed to an agent as an argument
                record.facts[CALLER_FACT] = caller
            created = await self.store.create(record, self.owner, self.lease)  # held by us from the start
        if not created:
            while not await self.store.claim(workflow_id, self.owner, self.lease):
                await asyncio.sleep(0.5)  # another replica runs it: wait for it to finish or let go
                latest = await self.store.get(workflow_id)
                if latest is not None and latest.status in _TERMINAL:
                    return latest
            record = await self.store.get(workflow_id) or record  # as the last holder left it
            if record.status in _TERMINAL:
                await self.store.release(workflow_id, self.owner)
                return record
        # Steps act for whoever started the workflow, also when an operator's reply or another
        # replica resumes it: never for the operator, never with the coordinator's own powers.
        acting = current_caller.set(identity_from_record(record.facts.get(CALLER_FACT)))
        keeper = asyncio.create_task(self._keep_lease(workflow_id))
        span = semconv.workflow_span(record.plan.name if record.plan else "request")
        span.set_attribute("mesh.workflow.id", workflow_id)
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                await self._execute(record, turn)
            return record
        except (InputNeeded, Escalated) as pause:
            span.add_event(type(pause).__name__, {"reason": str(pause)[:300]})
            raise
        except WorkflowFailed as failure:
            semconv.record_error(span, failure.message, "dead_lettered" if failure.dead_lettered else "failed")
            raise
        finally:
            span.set_attribute("mesh.workflow.status", record.status.value)
            span.end()
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            current_caller.reset(acting)
            if record.status not in _TERMINAL:  # a finished workflow was let go by its last save
                await self.store.release(workflow_id, self.owner)

    async def _keep_lease(self, workflow_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            await self.store.claim(workflow_id, self.owner, self.lease)

    # -- orphans ----------------------------------------------------------------------------------

    async def adopt_orphans(self) -> list[str]:
        """Run, in the background, every running workflow whose coordinator is gone (its lease expired).

        With several replicas on one database this is how a dead replica's work gets finished; the
        claim in ``run`` makes sure only one replica takes each. Questions cannot be asked here:
        such a workflow waits in ``input-required`` for its requester's next message.
        """
        adopted = []
        for workflow_id in await self.store.orphaned():
            if workflow_id in self._locks:
                continue
            record = await self.store.get(workflow_id)
            if record is None:
                continue
            task = asyncio.create_task(self._run_adopted(record))
            self._adopted.add(task)
            task.add_done_callback(self._adopted.discard)
            adopted.append(workflow_id)
        return adopted

    async def _run_adopted(self, record: WorkflowRecord) -> None:
        try:
            await self.run(record.id, record.request, turn=Turn(), context_id=record.context_id, hops=record.hops)
            log.info("finished workflow %s left by another coordinator", record.id)
        except (InputNeeded, Escalated, WorkflowFailed) as stop:
            log.info("adopted workflow %s paused or ended: %s", record.id, stop)
        except Exception:
            log.exception("adopted workflow %s failed", record.id)

    async def watch_orphans(self) -> None:
        """Adopt orphans every half lease, forever (cancel to stop)."""
        while True:
            await asyncio.sleep(self.lease / 2)
            try:
                await self.adopt_orphans()
            except Exception:  # a store outage must not end the watch
                log.exception("looking for orphaned workflows failed")

    # -- the loop -------------------------------------------------------------------------------

    async def _execute(self, record: WorkflowRecord, turn: Turn) -> None:
        if record.status is not WorkflowStatus.RUNNING:
            record.status = WorkflowStatus.RUNNING
            await self.store.save(record)
        memory = await self._memory(record)
        escalations = await self.store.escalations_of(record.id) if record.facts.get("_escalated") else []
        if record.plan is None:
            await self._route(record, turn, memory, record.request)
        for step in record.plan.steps if record.plan else []:  # held for a human before a restart?
            result = record.steps.get(step.id)
            reason = self._escalation_reason(step, result) if result and result.status is StepStatus.COMPLETED else None
            if reason is not None:
                await self._review(record, step.id, reason, escalations)
        while True:
            plan = record.plan
            assert plan is not None
            if plan.escalate:
                await self._review(record, None, plan.escalate, escalations)
            pending = [s for s in plan.steps if not self._settled(record, s)]
            if not pending:
                break
            ready = [s for s in pending if all(self._settled(record, plan.step(d)) for d in s.depends_on)]
            if not ready:
                blocked = ", ".join(s.id for s in pending)
                await self._fail(record, f"steps {blocked} cannot run: a step they depend on failed")
            waiting = [s for s in ready if s.id in record.steps and record.steps[s.id].status is StepStatus.INPUT_REQUIRED]
            fresh = [s for s in ready if s.id not in record.steps or record.steps[s.id].status is StepStatus.PENDING]
            if not waiting and not fresh and all(not self._needs_review(record, s) for s in ready):
                await self._fail(record, f"steps {', '.join(s.id for s in ready)} are stuck", dead_letter=True)
            for step in waiting:  # questions are asked one at a time, in plan order
                await self._answer_question(record, step, turn)
            prepared = [(step, *await self._prepare(record, step, turn, memory)) for step in fresh]
            if prepared:
                await asyncio.gather(*(self._start(record, step, target, args) for step, target, args in prepared))
            for step in ready:
                await self._after(record, step, turn, memory, escalations)
        await self._finish(record, memory)

    def _settled(self, record: WorkflowRecord, step: Step) -> bool:
        result = record.steps.get(step.id)
        if result is None:
            return False
        if result.status in _SETTLED:
            return not (step.expand and not record.facts.get(f"_expanded:{step.id}"))
        return step.optional and result.status in (StepStatus.FAILED, StepStatus.REJECTED)

    def _needs_review(self, record: WorkflowRecord, step: Step) -> bool:
        """A ready step that already has a result: the loop still has to look at it (escalate, expand)."""
        result = record.steps.get(step.id)
        return result is not None and result.status is StepStatus.COMPLETED

    async def _route(self, record: WorkflowRecord, turn: Turn, memory: dict[str, Any], text: str,
                     after: list[str] | None = None) -> None:
        """Find a plan for ``text`` (rules, registry, LLM); ask the customer when nothing fits."""
        route = await self.router.route(text, known_facts(record, memory)) if after is None else \
            await self.router.fallback(text, known_facts(record, memory))
        while route is None:
            question = (f"I'm not sure I understood what you need. I can help with: "
                        f"{await self.router.capabilities()}. What would you like to do?")
            answer = await self._ask(record, turn, question)
            text = f"{text}\n{answer}"
            record.facts["request"] = text
            route = await self.router.route(answer, known_facts(record, memory))
            after = after if after is not None else []
        span = trace.get_current_span()
        span.set_attribute("mesh.routing.mode", route.mode)
        if record.plan is None:
            span.update_name(f"invoke_workflow {route.plan.name}")
            span.set_attribute(semconv.WORKFLOW_NAME, route.plan.name)
        self._adopt(record, route.plan, after or [])
        await self.store.save(record)

    def _adopt(self, record: WorkflowRecord, plan: Plan, after: list[str]) -> None:
        """Make ``plan`` the workflow's plan, or append it after the steps ``after`` (expansion)."""
        if record.plan is None:
            record.plan = plan.model_copy(deep=True)
            return
        taken = {s.id for s in record.plan.steps}
        prefix = ""
        round_no = 1
        while any(prefix + s.id in taken for s in plan.steps):
            round_no += 1
            prefix = f"r{round_no}-"
        steps = list(record.plan.steps)
        for step in plan.steps:
            renamed = step.model_copy(update={
                "id": prefix + step.id,
                "depends_on": [prefix + d for d in step.depends_on] or list(after),
            })
            steps.append(renamed)
        record.plan = Plan(name=record.plan.name if record.plan.steps else plan.name, steps=steps,
                           answer=plan.answer or record.plan.answer, escalate=plan.escalate or record.plan.escalate)

    # -- one step ---------------------------------------------------------------------------------

    async def _prepare(self, record: WorkflowRecord, step: Step, turn: Turn,
                       memory: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        targets = await self.dispatcher.targets(step, record)
        schema = targets[0].schema if targets else None
        arguments, missing = arguments_for(step, schema, record, memory)
        for name in missing:
            spec = (schema or {}).get("properties", {}).get(name, {})
            label = (spec.get("description") or spec.get("title") or name.replace("_", " ")).lower()
            record.facts[name] = await self._ask(record, turn, f"Could you tell me your {label}?")
            arguments, missing = arguments_for(step, schema, record, memory)
        return targets, arguments

    async def _start(self, record: WorkflowRecord, step: Step, targets: list[Any], arguments: dict[str, Any]) -> None:
        message_id = _stable_id(record.id, step.id, "start", str(record.facts.get("_redriven", 0)))
        result = await self.dispatcher.send(step, targets, arguments, record, message_id)
        record.steps[step.id] = result
        await self.store.save_step(record.id, step.id, result)

    async def _answer_question(self, record: WorkflowRecord, step: Step, turn: Turn) -> None:
        asked = record.steps[step.id]
        answer = await self._ask(record, turn, asked.text or f"The {asked.agent} agent needs more information.")
        message_id = _stable_id(record.id, step.id, "answer", str(record.facts.get("_answers_used", 0)))
        result = await self.dispatcher.follow_up(step, asked, answer, record, message_id)
        record.steps[step.id] = result
        await self.store.save_step(record.id, step.id, result)

    async def _after(self, record: WorkflowRecord, step: Step, turn: Turn, memory: dict[str, Any],
                     escalations: list[Escalation]) -> None:
        result = record.steps.get(step.id)
        if result is None:
            return
        if result.status is StepStatus.COMPLETED:
            reason = self._escalation_reason(step, result)
            if reason is not None:
                await self._review(record, step.id, reason, escalations)
            if step.expand and not record.facts.get(f"_expanded:{step.id}"):
                await self._expand(record, step, result, turn, memory)
        elif result.status is StepStatus.REJECTED and not step.optional:
            await self._fail(record, result.text or f"The {result.agent} agent could not take this request.")
        elif result.status is StepStatus.FAILED and not step.optional:
            await self._fail(record, f"I couldn't complete the {step.id} step ({result.error or result.text}). "
                             f"Your request is saved as {record.id} and will be retried.", dead_letter=True)
        if turn.progress is not None and result.status is not StepStatus.INPUT_REQUIRED:
            await turn.progress(f"{step.id}: {result.status.value} by {result.agent} ({result.duration_ms or 0:.0f} ms)")

    async def _expand(self, record: WorkflowRecord, step: Step, result: StepResult, turn: Turn,
                      memory: dict[str, Any]) -> None:
        output = result.output if isinstance(result.output, dict) else {}
        name = output.get("playbook") or output.get("intent")
        playbook = self.router.playbook(name)
        record.facts[f"_expanded:{step.id}"] = True
        if playbook is not None:
            self._adopt(record, playbook, [s.id for s in record.plan.steps] if record.plan else [])
            await self.store.save(record)
        else:
            await self._route(record, turn, memory, record.facts.get("request", record.request),
                              after=[s.id for s in record.plan.steps] if record.plan else [])

    # -- talking to people ------------------------------------------------------------------------

    async def _ask(self, record: WorkflowRecord, turn: Turn, question: str) -> str:
        used = int(record.facts.get("_answers_used", 0))
        if used < len(turn.answers):
            record.facts["_answers_used"] = used + 1
            await self.store.save(record)
            return turn.answers[used]
        if turn.ask is not None:
            return await turn.ask(question)
        record.status = WorkflowStatus.INPUT_REQUIRED
        await self.store.save(record)
        raise InputNeeded(question)

    def _escalation_reason(self, step: Step, result: StepResult) -> str | None:
        output = result.output if isinstance(result.output, dict) else {}
        if output.get("flagged") is True:
            reasons = ", ".join(map(str, output.get("reasons") or [])) or "policy"
            return f"compliance flag from {result.agent}: {reasons}"
        threshold = step.min_confidence if step.min_confidence is not None else self.settings.escalate_below
        if not step.expand and result.confidence is not None and result.confidence < threshold:
            return f"low confidence ({result.confidence:.2f}) from {result.agent} on {step.id}"
        return None

    async def _review(self, record: WorkflowRecord, step_id: str | None, reason: str,
                      escalations: list[Escalation]) -> None:
        """Escalate once; wait while no human answered; then continue (approved) or stop (rejected)."""
        escalation = next((e for e in escalations if e.step_id == step_id and e.reason == reason), None)
        if escalation is None:
            facts = known_facts(record, {})
            # The operator sees what a compliance step made of the request, never more than it let through.
            wrote = facts.get("redacted_request") or record.request
            escalation = Escalation(
                id="ESC-" + uuid.uuid4().hex[:8].upper(), workflow_id=record.id, reason=reason, step_id=step_id,
                question=f"{reason}. The customer wrote: {wrote!r}. Reply to continue (your words are kept "
                         f"as a note, or sent to the customer if nothing is left to do), or 'reject: <message>' to stop.",
                context={k: v for k, v in facts.items()
                         if isinstance(v, (str, int, float, bool)) and k not in _RAW_TEXT},
            )
            await self.store.add_escalation(escalation)
            escalations.append(escalation)
            record.facts["_escalated"] = True
            record.status = WorkflowStatus.INPUT_REQUIRED
            await self.store.save(record)
            raise Escalated(escalation)
        if escalation.answer is None:
            raise Escalated(escalation)
        answer = escalation.answer.strip()
        if answer.lower().startswith(_REJECT_WORDS):
            await self._fail(record, answer.split(":", 1)[-1].strip() or "A specialist declined this request.")
        record.facts.setdefault("human_note", answer)

    # -- endings ----------------------------------------------------------------------------------

    async def _finish(self, record: WorkflowRecord, memory: dict[str, Any]) -> None:
        plan = record.plan
        human_only = plan is not None and not plan.steps and plan.escalate
        record.answer = str(record.facts.get("human_note")) if human_only else render_answer(record, memory)
        record.status = WorkflowStatus.COMPLETED
        await self.store.save(record)
        learned = memorable(record)
        if record.context_id:
            await self.store.remember(session_scope(record.context_id), learned)
        customer = learned.get("account_id") or record.customer_id
        if customer:
            await self.store.remember(customer_scope(str(customer)), learned)

    async def _fail(self, record: WorkflowRecord, message: str, *, dead_letter: bool = False) -> None:
        record.status = WorkflowStatus.DEAD_LETTERED if dead_letter else WorkflowStatus.FAILED
        record.error = message
        await self.store.save(record)
        raise WorkflowFailed(message, dead_lettered=dead_letter)

    async def _memory(self, record: WorkflowRecord) -> dict[str, Any]:
        """Long-term memory of the customer (when known), then the session's (later wins)."""
        session = await self.store.recall(session_scope(record.context_id)) if record.context_id else {}
        customer = record.customer_id or session.get("account_id")
        long_term = await self.store.recall(customer_scope(str(customer))) if customer else {}
        return {**long_term, **session}

    # -- operations -------------------------------------------------------------------------------

    async def redrive(self, workflow_id: str) -> WorkflowRecord:
        """Put a dead-lettered workflow back to running: its failed steps will be sent again."""
        record = await self.store.get(workflow_id)
        if record is None:
            raise KeyError(workflow_id)
        if record.status is not WorkflowStatus.DEAD_LETTERED:
            raise ValueError(f"workflow {workflow_id} is {record.status.value}, not dead-lettered")
        for step_id, result in list(record.steps.items()):
            if result.status in (StepStatus.FAILED, StepStatus.REJECTED):
                await self.store.save_step(workflow_id, step_id, result.model_copy(update={"status": StepStatus.PENDING}))
        record.status, record.error = WorkflowStatus.RUNNING, None
        record.facts["_redriven"] = int(record.facts.get("_redriven", 0)) + 1
        await self.store.save(record)
        return record

