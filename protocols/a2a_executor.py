"""The A2A face of the runtime: an a2a-sdk ``AgentExecutor`` that calls an agent's skills.

How a message reaches a skill (documented in ``docs/runtime.md``):

* a data part ``{"skill": ID, "arguments": {...}}`` calls that skill directly;
* a data part ``{"cfp": {...}}`` (a call for proposals, ``protocols.negotiation``) is answered by
  the agent's bidder with a bare message carrying a bid or a decline, and creates no task;
* otherwise the text goes to the agent's text handler (default: ``agents.routing.handle_text``).

A task is created lazily: a skill that returns a :class:`Reply` without having asked, reported or
emitted anything answers with a bare message. ``ctx.ask`` parks the task in ``input-required``;
the follow-up message re-runs the skill and earlier questions are answered from the task history,
so a restarted process resumes the conversation from the task store alone.
"""

from __future__ import annotations

import logging
from typing import Any

from a2a.helpers import new_task_from_user_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import Message, Role, TaskState
from google.protobuf.json_format import MessageToDict
from opentelemetry import trace

from agents.context import Artifact, InputNeeded, Reject, Reply, ToolContext, ToolError
from agents.definition import Agent, Skill
from agents.routing import handle_text
from agents.errors import describe_exception
from agents.negotiation import Bid, answer_cfp
from agents.runtime import invoke, normalise_result, resolve_skill
from protocols.a2a_parts import agent_message, artifact_parts, message_data, message_text, restore_ints
from protocols.negotiation import answer_message, cfp_of
from tracing import conventions as semconv
from tracing.propagation import current_traceparent

TRACEPARENT_KEY = "meshTraceparent"  # task metadata: the span context the task started in
STREAMING_KEY = "mesh.streaming"  # ServerCallContext.state, set by the handler: the request is a stream
OPERATOR_KEY = "meshOperator"  # message metadata: sent by an operator, not an answer of the caller
__all__ = ["MeshAgentExecutor"]

log = logging.getLogger("agents.a2a")


class A2AToolContext(ToolContext):
    """Tool context backed by an A2A task: questions, progress and artifacts become task events."""

    def __init__(self, agent: Agent, request: RequestContext, queue: EventQueue) -> None:
        self.agent = agent
        self.skill: Skill | None = None  # type: ignore[assignment]
        self._request = request
        self.a2a = request  # the escape hatch for A2A-only details (current message, metadata)
        self._queue = queue
        self._updater = TaskUpdater(queue, request.task_id or "", request.context_id or "")
        self._task_started = request.current_task is not None
        self._first_message, self._answers = _conversation(request)
        self._asked = 0
        self._working = False

    @property
    def protocol(self) -> str:
        return "a2a"

    @property
    def conversation_id(self) -> str | None:
        return self._request.context_id

    @property
    def task_id(self) -> str | None:
        return self._request.task_id

    @property
    def first_message(self) -> Message:
        return self._first_message

    @property
    def metadata(self) -> dict[str, Any]:
        """The first message's metadata, then the request's (request keys win)."""
        return {**restore_ints(MessageToDict(self._first_message.metadata)), **(self._request.metadata or {})}

    @property
    def answers(self) -> list[str]:
        return list(self._answers)

    @property
    def watched(self) -> bool:
        return bool(self._request.call_context and self._request.call_context.state.get(STREAMING_KEY))

    async def ask(self, question: str) -> str:
        if self._asked < len(self._answers):
            answer = self._answers[self._asked]
            self._asked += 1
            return answer
        raise InputNeeded(question)

    async def progress(self, message: str, done: float | None = None, total: float | None = None) -> None:
        await self.start_task()
        self._working = True
        metadata = {"progress": done, "total": total} if done is not None else None
        await self._updater.update_status(TaskState.TASK_STATE_WORKING, message=self._say(message), metadata=metadata)

    async def emit(self, artifact: Artifact) -> None:
        await self.start_task(working=True)
        await self._publish(artifact)

    async def start_task(self, *, working: bool = False) -> None:
        """Enqueue the Task (first event of a task reply) once; optionally move it to ``working``."""
        if not self._task_started:
            task = new_task_from_user_message(self._request.message)
            traceparent = current_traceparent()
            if traceparent:  # later messages of this task link back to where it started
                task.metadata[TRACEPARENT_KEY] = traceparent
            await self._queue.enqueue_event(task)
            self._task_started = True
        if working and not self._working:
            self._working = True
            await self._updater.start_work()

    async def finish(self, result: Any) -> None:
        outcome = normalise_result(self.skill, result)
        if isinstance(outcome, Reply):
            if not self._task_started and not outcome.as_task:
                await self._queue.enqueue_event(self._say(outcome.text, with_task=False))
                return
            await self.start_task()
            await self._updater.complete(self._say(outcome.text))
            return
        await self.start_task()
        for artifact in outcome:
            await self._publish(artifact)
        await self._updater.complete()

    async def end(self, state: TaskState, text: str) -> None:
        await self.start_task()
        await self._updater.update_status(state, message=self._say(text))

    async def _publish(self, artifact: Artifact) -> None:
        await self._updater.add_artifact(
            artifact_parts(artifact),
            artifact_id=artifact.artifact_id,
            name=artifact.name,
            metadata=artifact.metadata or None,
            append=artifact.append or None,
            last_chunk=artifact.last_chunk,
        )

    def _say(self, text: str, *, with_task: bool = True) -> Message:
        return agent_message(
            text, context_id=self._request.context_id, task_id=self._request.task_id if with_task else None
        )


def _is_operator(message: Message) -> bool:
    """A message an operator (not the caller) added to the task, e.g. a human's reply to an escalation."""
    return OPERATOR_KEY in message.metadata


def _conversation(request: RequestContext) -> tuple[Message, list[str]]:
    """The message that started the task and the caller's answers since, oldest first."""
    task = request.current_task
    if task is None:
        return request.message, []
    user_messages = [m for m in task.history if m.role == Role.ROLE_USER and not _is_operator(m)]
    if (request.message is not None and not _is_operator(request.message)
            and all(m.message_id != request.message.message_id for m in user_messages)):
        user_messages.append(request.message)
    if not user_messages:
        return request.message, []
    return user_messages[0], [message_text(m) for m in user_messages[1:]]


class MeshAgentExecutor(AgentExecutor):
    """Runs one agent's skills for the a2a-sdk request handler."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        cfp = cfp_of(context.message) if context.current_task is None else None
        if cfp is not None:
            await self._bid(cfp, context, event_queue)
            return
        ctx = A2AToolContext(self.agent, context, event_queue)
        span = semconv.agent_span(self.agent.name, self._span_attributes(context), remote=False)
        with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
            try:
                result = await self._dispatch(ctx)
            except InputNeeded as question:
                await ctx.end(TaskState.TASK_STATE_INPUT_REQUIRED, question.question)
            except Reject as rejection:
                await ctx.end(TaskState.TASK_STATE_REJECTED, rejection.reason)
            except ToolError as error:
                semconv.record_error(span, error, "tool_error")
                await ctx.end(TaskState.TASK_STATE_FAILED, str(error))
            except Exception as error:  # a crashing skill fails its task; the process keeps serving
                log.exception("skill %s of agent %s raised", getattr(ctx.skill, "id", "?"), self.agent.name)
                semconv.record_error(span, describe_exception(error), type(error).__name__)
                await ctx.end(TaskState.TASK_STATE_FAILED, describe_exception(error))
            else:
                await ctx.finish(result)

    def _span_attributes(self, context: RequestContext) -> dict[str, Any]:
        attributes = semconv.agent_attributes(self.agent.name, self.agent.version, self.agent.description)
        if context.context_id:
            attributes[semconv.CONVERSATION_ID] = context.context_id
        if context.task_id:
            attributes[semconv.A2A_TASK_ID] = context.task_id
        return attributes

    async def _dispatch(self, ctx: A2AToolContext) -> Any:
        message = ctx.first_message
        calls = [d for d in message_data(message) if isinstance(d, dict)]
        texts = [p.text for p in message.parts if p.HasField("text")]
        if calls and ("skill" in calls[0] or not texts):
            call = calls[0]
            skill = resolve_skill(self.agent, call.get("skill"))
            arguments = call.get("arguments", {}) if "skill" in call else call
            return await invoke(skill, arguments, ctx)
        text = message_text(message)
        if self.agent.text_handler is not None:
            return await self.agent.text_handler(text, ctx)
        return await handle_text(self.agent, text, ctx)

    async def _bid(self, cfp: dict[str, Any], context: RequestContext, queue: EventQueue) -> None:
        """Answer a call for proposals with one bare message: no task, no skill call."""
        answer = await answer_cfp(self.agent, cfp)
        kind = "bid" if isinstance(answer, Bid) else "decline"
        await queue.enqueue_event(answer_message(kind, answer.model_dump(exclude_none=True), context_id=context.context_id))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await TaskUpdater(event_queue, context.task_id or "", context.context_id or "").cancel()
