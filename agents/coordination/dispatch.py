"""Who performs a step and how it is sent: candidates, fail-over, retries, circuit breakers.

Our agents get a ``{skill, arguments}`` data part; foreign agents (no skill schemas on their card)
get words and plain data (``_content``).

A step names an agent, or a capability searched in the registry (optionally awarded by contract
net). Every healthy instance of every candidate is a target, least busy first; a target whose
circuit is open is skipped, transient errors are retried with backoff, and a target that fails
hands over to the next. Only when every target is exhausted does the step fail.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from agents.coordination.calls import HOPS_KEY, STEP_KEY, WORKFLOW_KEY, AgentCaller
from agents.coordination.catalog import AgentInfo, Directory
from agents.coordination.handoff import step_text
from agents.coordination.models import Step, StepResult, StepStatus, WorkflowRecord
from agents.coordination.resilience import Breakers, CallFailed, RetryPolicy, call_with_retries
from agents.settings import MeshSettings
from protocols.a2a_results import CallOutcome
from protocols.card_signing import CardTrust

__all__ = ["Negotiator", "StepDispatcher", "Target"]

_STATUS = {"completed": StepStatus.COMPLETED, "input-required": StepStatus.INPUT_REQUIRED,
           "rejected": StepStatus.REJECTED}


@dataclass(frozen=True, slots=True)
class Target:
    """One instance of one agent, and the skill to call there (None: send the request as text)."""

    agent: AgentInfo
    url: str
    skill: str | None

    @property
    def schema(self) -> dict[str, Any] | None:
        skill = self.agent.skills.get(self.skill) if self.skill else None
        return skill.schema if skill is not None else None


Negotiator = Callable[[Step, list[AgentInfo], WorkflowRecord], Awaitable[list[Target]]]


def _instances(info: AgentInfo, skill: str | None, turn: int) -> list[Target]:
    """Least busy first; equally busy instances take turns (the list is rotated on every call)."""
    shift = turn % len(info.urls) if info.urls else 0
    rotated = info.urls[shift:] + info.urls[:shift]
    urls = sorted(rotated, key=lambda url: info.in_flight.get(url, 0))
    return [Target(info, url, skill) for url in urls]


class StepDispatcher:
    def __init__(self, caller: AgentCaller, directory: Directory, settings: MeshSettings,
                 negotiator: Negotiator | None = None) -> None:
        self.caller = caller
        self.directory = directory
        self.policy = RetryPolicy.from_settings(settings)
        self.breakers = Breakers.from_settings(settings)
        self.negotiator = negotiator
        self._turn = 0

    async def targets(self, step: Step, record: WorkflowRecord) -> list[Target]:
        if step.agent:
            info = await self.directory.by_name(step.agent)
            candidates = [info] if info is not None else []
        else:
            candidates = await self.directory.search(step.capability or record.request)
        if step.negotiate and self.negotiator is not None and candidates:
            return await self.negotiator(step, candidates, record)
        self._turn += 1
        return [t for info in candidates for t in _instances(info, step.skill, self._turn)]

    async def send(self, step: Step, targets: list[Target], arguments: dict[str, Any], record: WorkflowRecord,
                   message_id: str) -> StepResult:
        if not targets:
            wanted = step.agent or f"for {step.capability!r}"
            return StepResult(status=StepStatus.FAILED, error=f"no healthy agent {wanted} in the registry")
        started = time.perf_counter()
        sent_at = time.time()
        problems: list[str] = []
        attempts = 0
        for i, target in enumerate(targets):
            if not self.breakers.available(target.url):
                problems.append(f"{target.url}: circuit open")
                continue
            text, data = _content(step, target, arguments, record)
            # Retries repeat the same id (the agent runs it once); the next target gets its own, so a
            # replica sharing the first one's store does not answer with the first one's failed task.
            sent_id = message_id if i == 0 else f"{message_id}.{i}"
            try:
                outcome = await call_with_retries(
                    lambda target=target, data=data, text=text, sent_id=sent_id: self.caller.call(
                        target.url, message_id=sent_id, text=text, data=data, context_id=None,
                        metadata=self._metadata(record, step)),
                    self.policy, breakers=self.breakers, url=target.url)
            except CallFailed as failure:
                attempts += len(failure.attempts)
                problems.append(str(failure))
                continue
            attempts += 1
            if outcome.state not in _STATUS and i < len(targets) - 1:
                problems.append(f"{target.agent.name} at {target.url}: task {outcome.state}: {outcome.text or ''}".strip())
                continue  # the agent failed the task: another replica or bidder may not
            return self._result(outcome, target, started, attempts, problems).model_copy(update={"started_at": sent_at})
        return StepResult(status=StepStatus.FAILED, error="; ".join(problems) or "every target failed",
                          duration_ms=(time.perf_counter() - started) * 1000, attempts=attempts,
                          agent=targets[0].agent.name)

    async def follow_up(self, step: Step, asked: StepResult, answer: str, record: WorkflowRecord,
                        message_id: str) -> StepResult:
        """Answer an agent's question on its task (same instance: the task lives there)."""
        started = time.perf_counter()
        assert asked.instance_url is not None
        try:
            outcome = await call_with_retries(
                lambda: self.caller.call(asked.instance_url, message_id=message_id, text=answer,  # type: ignore[arg-type]
                                         task_id=asked.task_id, context_id=asked.context_id,
                                         metadata=self._metadata(record, step)),
                self.policy, breakers=self.breakers, url=asked.instance_url)
        except CallFailed as failure:
            # Sent before a crash already? Then the task moved on and refuses the repeat: read it instead.
            try:
                outcome = await self.caller.task(asked.instance_url, asked.task_id or "")
            except Exception:
                outcome = None
            if outcome is None or outcome.state in ("input-required", "unknown"):
                return asked.model_copy(update={"status": StepStatus.FAILED, "error": str(failure)})
        target_agent = asked.agent
        result = self._outcome_result(outcome, started)
        return result.model_copy(update={"agent": target_agent, "instance_url": asked.instance_url,
                                         "attempts": asked.attempts + 1})

    def _metadata(self, record: WorkflowRecord, step: Step) -> dict[str, Any]:
        return {HOPS_KEY: record.hops + 1, WORKFLOW_KEY: record.id, STEP_KEY: step.id}

    def _result(self, outcome: CallOutcome, target: Target, started: float, attempts: int,
                problems: list[str]) -> StepResult:
        result = self._outcome_result(outcome, started)
        return result.model_copy(update={
            "agent": target.agent.name, "instance_url": target.url, "attempts": attempts,
            "error": result.error or ("; ".join(problems) or None),
        })

    @staticmethod
    def _outcome_result(outcome: CallOutcome, started: float) -> StepResult:
        output = outcome.output
        reported = output if isinstance(output, dict) else outcome.metadata
        status = _STATUS.get(outcome.state, StepStatus.FAILED)
        return StepResult(
            status=status, output=output, text=outcome.text,
            confidence=_number(reported.get("confidence")), cost=_number(reported.get("cost")),
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            task_id=outcome.task_id, context_id=outcome.context_id,
            error=None if status is not StepStatus.FAILED else (outcome.text or f"task {outcome.state}"),
        )


def _content(step: Step, target: Target, arguments: dict[str, Any], record: WorkflowRecord) -> tuple[str | None, Any]:
    """(text, data) of the message for ``target``. Our agents get ``{skill, arguments}`` (or the
    words, when no skill is named); a foreign agent knows nothing of that envelope: it gets the
    words and, when there are any, the arguments as a plain data part."""
    if target.agent.foreign:
        return step_text(step, arguments, record), (arguments or None)
    if target.skill:
        return None, {"skill": target.skill, "arguments": arguments}
    return step_text(step, arguments, record), None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def contract_net(http: Any, settings: MeshSettings, trust: CardTrust | None = None) -> Negotiator:
    """A negotiator that awards a step by contract net: every instance of every candidate bids.

    The ranked proposals become the step's targets, so the best bid gets the task and, when it
    fails, the next bid does (``StepDispatcher.send``); agents that do not negotiate come last.
    """
    from agents.negotiation import CallForProposals, Candidate, call_for_proposals

    async def negotiate(step: Step, agents: list[AgentInfo], record: WorkflowRecord) -> list[Target]:
        by_name = {info.name: info for info in agents}
        candidates = [Candidate(info.name, url, info.card, info.id, info.score, info.in_flight.get(url, 0))
                      for info in agents for url in info.urls]
        cfp = CallForProposals(task=step.capability or str(record.facts.get("request", record.request)),
                               skill=step.skill, deadline_ms=int(settings.negotiation_timeout_seconds * 1000))
        proposals = await call_for_proposals(candidates, cfp, http, trust=trust)
        return [Target(by_name[p.candidate.name], p.candidate.url, p.bid.skill or step.skill) for p in proposals]

    return negotiate
