"""The request handler our agents serve A2A with: a2a-sdk's, plus context inference and spans.

Every A2A method becomes a SERVER span named by the method (``SendMessage``, ``GetTask``, …) under
the caller's trace (extracted by ``tracing.propagation.ExtractTraceContext``). A message that
continues a task links to the span that created it (``meshTraceparent`` in the task's metadata),
so a conversation resumed minutes later is still tied to where it started. Push notifications are
spans of their own in the trace of the work that caused them, and carry ``traceparent`` to the
receiver.

A new message marked idempotent (``protocols.a2a_stores.IDEMPOTENT_DELIVERY``) whose messageId this
agent already accepted from the same owner is not executed again: it is answered with the task it
started, as that task is now or once it settles (see ``docs/runtime.md``, "Idempotent delivery").
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar
from urllib.parse import urlsplit

from a2a.server.agent_execution import AgentExecutor
from a2a.server.cluster.task_store import VersionedTaskStore
from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import BasePushNotificationSender, TaskStore
from a2a.types import (
    AgentCard,
    Message,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.errors import A2AError, TaskNotFoundError, UnsupportedOperationError
from a2a.utils.task import apply_history_length
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind

from protocols.a2a_executor import STREAMING_KEY, TRACEPARENT_KEY
from protocols.a2a_stores import Delivery, IdempotentTaskStore, is_idempotent
from tracing import conventions as semconv
from tracing.propagation import link_from_traceparent

__all__ = ["MeshPushSender", "MeshRequestHandler"]
T = TypeVar("T")
_METHODS = {
    "on_get_task": "GetTask",
    "on_list_tasks": "ListTasks",
    "on_cancel_task": "CancelTask",
    "on_create_task_push_notification_config": "CreateTaskPushNotificationConfig",
    "on_get_task_push_notification_config": "GetTaskPushNotificationConfig",
    "on_list_task_push_notification_configs": "ListTaskPushNotificationConfigs",
    "on_delete_task_push_notification_config": "DeleteTaskPushNotificationConfig",
    "on_get_extended_agent_card": "GetExtendedAgentCard",
}
# A blocking SendMessage returns at these states; so does the answer to a duplicate.
_SETTLED = frozenset({
    TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED,
    TaskState.TASK_STATE_REJECTED, TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED,
})
DUPLICATE_EVENT = "mesh.duplicate_delivery"  # span event: answered with the task an earlier send started


def task_link(task: Task | None) -> list[Link]:
    if task is None or TRACEPARENT_KEY not in task.metadata:
        return []
    link = link_from_traceparent(str(task.metadata[TRACEPARENT_KEY]))
    return [link] if link else []


def _finish(span: trace.Span, result: Any) -> None:
    if isinstance(result, Task):
        span.set_attribute(semconv.A2A_TASK_ID, result.id)
        span.set_attribute(semconv.A2A_TASK_STATE, TaskState.Name(result.status.state))
        span.set_attribute(semconv.CONVERSATION_ID, result.context_id)
    elif isinstance(result, Message) and result.context_id:
        span.set_attribute(semconv.CONVERSATION_ID, result.context_id)


def _fail(span: trace.Span, error: BaseException) -> None:
    semconv.record_error(span, error, type(error).__name__ if isinstance(error, A2AError) else "_OTHER")


def _settles(event: Event) -> bool:
    status = getattr(event, "status", None)
    return isinstance(event, Message) or (status is not None and status.state in _SETTLED)


class MeshRequestHandler(DefaultRequestHandler):
    """a2a-sdk's request handler with convention spans, and contextId inference for follow-ups.

    The spec says the agent infers contextId from the task when a message gives only ``taskId``;
    a2a-sdk 1.3 instead builds the request with a freshly generated contextId
    (a2aproject/a2a-python#1206). The executor's events then carry a context that is not the task's,
    and the SDK's task manager refuses the next follow-up that adds to the history ("Context in
    event doesn't match TaskManager"): the A2A TCK's history scenario, and any taskId-only answer to
    an ``input-required`` task after a restart, failed that way. Filling in the task's contextId
    before the SDK sees the message fixes the ids everywhere (request, events, stored history).
    """

    def __init__(
        self,
        agent_executor: AgentExecutor,
        task_store: TaskStore,
        agent_card: AgentCard,
        *,
        agent_attributes: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # Every save goes through the wrapper, so it sees the first save of each task. A versioned
        # (cluster) store is passed through as it is: no idempotent delivery there.
        self.deliveries = None if isinstance(task_store, VersionedTaskStore) else IdempotentTaskStore(task_store)
        super().__init__(agent_executor, self.deliveries or task_store, agent_card, **kwargs)
        self.agent_attributes = agent_attributes or {}
        for method, name in _METHODS.items():
            setattr(self, method, self._traced(name, getattr(self, method)))

    def _traced(self, name: str, call: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        @functools.wraps(call)
        async def traced(params: Any, context: ServerCallContext) -> T:
            attributes = dict(self.agent_attributes)
            task_id = getattr(params, "id", "") or getattr(params, "task_id", "")
            if task_id:
                attributes[semconv.A2A_TASK_ID] = task_id
            with semconv.tracer().start_as_current_span(
                name, kind=SpanKind.SERVER, attributes={semconv.A2A_METHOD: name, semconv.A2A_VERSION: "1.0", **attributes},
                record_exception=False, set_status_on_exception=False,
            ) as span:
                try:
                    result = await call(params, context)
                except BaseException as error:
                    _fail(span, error)
                    raise
                _finish(span, result)
                return result

        return traced

    def _message_span(self, name: str, params: SendMessageRequest, task: Task | None) -> trace.Span:
        attributes = dict(self.agent_attributes)
        message = params.message
        attributes[semconv.A2A_MESSAGE_ID] = message.message_id
        if message.task_id:
            attributes[semconv.A2A_TASK_ID] = message.task_id
        if message.context_id:
            attributes[semconv.CONVERSATION_ID] = message.context_id
        return semconv.a2a_span(name, server=True, attributes=attributes, links=task_link(task))

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        task = await self._infer_context_id(params, context)
        span = self._message_span("SendMessage", params, task)
        with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
            try:
                result = await self._send(params, context, span)
            except BaseException as error:
                _fail(span, error)
                raise
            _finish(span, result)
            return result

    async def _send(self, params: SendMessageRequest, context: ServerCallContext, span: trace.Span) -> Message | Task:
        accepted = await self._accept(params, context)
        if accepted is None:
            return await super().on_message_send(params, context)
        if isinstance(accepted, Delivery):  # the first delivery of this message: run it
            try:
                result = await super().on_message_send(params, context)
                accepted.reply = result if isinstance(result, Message) else None
                return result
            finally:
                self._end(accepted)
        if isinstance(accepted, Message):
            return accepted
        span.add_event(DUPLICATE_EVENT, {semconv.A2A_TASK_ID: accepted.id})
        if not params.configuration.return_immediately and accepted.status.state not in _SETTLED:
            async with aclosing(self._replay(accepted, context)) as events:
                async for _ in events:
                    pass
            accepted = await self.task_store.get(accepted.id, context) or accepted
        return apply_history_length(accepted, params.configuration)

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        context.state[STREAMING_KEY] = True  # the executor tells skills someone watches (ToolContext.watched)
        task = await self._infer_context_id(params, context)
        span = self._message_span("SendStreamingMessage", params, task)
        async for event in self._traced_stream(span, self._send_stream(params, context, span)):
            yield event

    async def _send_stream(
        self, params: SendMessageRequest, context: ServerCallContext, span: trace.Span
    ) -> AsyncGenerator[Event, None]:
        accepted = await self._accept(params, context)
        if isinstance(accepted, Message):
            yield accepted
            return
        if isinstance(accepted, Task):
            span.add_event(DUPLICATE_EVENT, {semconv.A2A_TASK_ID: accepted.id})
            stream = self._replay(accepted, context)
        else:
            stream = super().on_message_send_stream(params, context)
        try:
            async with aclosing(stream) as events:
                async for event in events:
                    if isinstance(accepted, Delivery) and isinstance(event, Message):
                        accepted.reply = event
                    elif isinstance(accepted, Task) and isinstance(event, Task):
                        event = apply_history_length(event, params.configuration)
                    yield event
        finally:
            if isinstance(accepted, Delivery):
                self._end(accepted)

    async def _accept(self, params: SendMessageRequest, context: ServerCallContext) -> Task | Message | Delivery | None:
        """How to handle a message: None for the usual way; for a new idempotent message, the
        :class:`Delivery` to run it under when it is the first, else the earlier answer (a task, or
        the bare reply of a delivery that was running concurrently)."""
        message, deliveries = params.message, self.deliveries
        if deliveries is None or message.task_id or not is_idempotent(message):
            return None
        key = deliveries.key(message.message_id, context)
        while True:
            running = deliveries.pending(key)
            if running is None:
                # Registered before the lookup (no await in between), so a concurrent duplicate waits on it.
                delivery = deliveries.begin(key)
                try:
                    task_id = await deliveries.accepted_task(key, context)
                    task = await self.task_store.get(task_id, context) if task_id else None
                except BaseException:
                    self._end(delivery)
                    raise
                if task is None:
                    return delivery
                self._end(delivery)
                return await self._with_push_config(task, params, context)
            await running.changed.wait()  # its task was saved, or it ended
            if running.task_id and (task := await self.task_store.get(running.task_id, context)) is not None:
                return await self._with_push_config(task, params, context)
            await running.ended.wait()
            if running.reply is not None:
                return running.reply
            # It ended without a task or a reply (an error): this delivery runs the message itself.

    def _end(self, delivery: Delivery) -> None:
        if self.deliveries is not None:
            self.deliveries.end(delivery)

    async def _with_push_config(self, task: Task, params: SendMessageRequest, context: ServerCallContext) -> Task:
        """A duplicate's push config applies to the existing task, as the original's did."""
        if params.configuration.HasField("task_push_notification_config"):
            config = TaskPushNotificationConfig()
            config.CopyFrom(params.configuration.task_push_notification_config)
            config.task_id = task.id
            await super().on_create_task_push_notification_config(config, context)
        return task

    async def _replay(self, task: Task, context: ServerCallContext) -> AsyncGenerator[Event, None]:
        """An existing task as the answer to a duplicate: the task as it is now, then its updates
        until it settles (what SubscribeToTask streams, ended where a SendMessage would end)."""
        if task.status.state not in _SETTLED:
            try:
                request = SubscribeToTaskRequest(id=task.id)
                async with aclosing(super().on_subscribe_to_task(request, context)) as events:
                    async for event in events:  # the SDK's first event is the task, read after it tapped the queue
                        yield event
                        if _settles(event):
                            return
            except (UnsupportedOperationError, TaskNotFoundError):
                pass  # it settled since it was read, or it is not running in this process
            task = await self.task_store.get(task.id, context) or task
        yield task

    async def on_subscribe_to_task(self, params: Any, context: ServerCallContext) -> AsyncGenerator[Event, None]:
        task = await self.task_store.get(params.id, context) if params.id else None
        span = semconv.a2a_span(
            "SubscribeToTask", server=True, attributes={**self.agent_attributes, semconv.A2A_TASK_ID: params.id},
            links=task_link(task),
        )
        async for event in self._traced_stream(span, super().on_subscribe_to_task(params, context)):
            yield event

    @staticmethod
    async def _traced_stream(span: trace.Span, stream: AsyncGenerator[Event, None]) -> AsyncGenerator[Event, None]:
        # The span is current only while the SDK produces each event: holding it across a yield
        # would leave it attached in the consumer's context ("Failed to detach context").
        context = trace.set_span_in_context(span)
        last: Event | None = None
        try:
            while True:
                token = otel_context.attach(context)
                try:
                    event = await anext(stream)
                except StopAsyncIteration:
                    break
                finally:
                    otel_context.detach(token)
                last = event
                yield event
        except BaseException as error:
            if not isinstance(error, GeneratorExit):
                _fail(span, error)
            raise
        finally:
            await stream.aclose()
            if isinstance(last, Task):
                _finish(span, last)
            elif last is not None and hasattr(last, "status"):
                span.set_attribute(semconv.A2A_TASK_STATE, TaskState.Name(last.status.state))
                span.set_attribute(semconv.A2A_TASK_ID, last.task_id)
            span.end()

    async def _infer_context_id(self, params: SendMessageRequest | None, context: ServerCallContext) -> Task | None:
        """Fill in a follow-up's contextId from its task; returns the task (None for a new one)."""
        message = params.message if params is not None else None
        if message is None or not message.task_id:
            return None
        task = await self.task_store.get(message.task_id, context)
        if task is not None and not message.context_id:  # an unknown task is the SDK's to report
            message.context_id = task.context_id
        return task


class MeshPushSender(BasePushNotificationSender):
    """One PRODUCER span per delivered notification, in the trace of the work that caused it.

    Give it a traced httpx client (``tracing.propagation.traced_httpx``) so the receiver continues
    the trace. The span wraps the SDK's per-config delivery (a private method: a2a-sdk has no
    public hook there), so events of tasks without a push config make no span at all.
    """

    async def _dispatch_notification(self, event: Any, push_info: Any, task_id: str) -> bool:
        with semconv.tracer().start_as_current_span(
            "SendPushNotification",
            kind=SpanKind.PRODUCER,
            attributes={semconv.A2A_TASK_ID: task_id, semconv.SERVER_ADDRESS: urlsplit(push_info.url).hostname or ""},
        ) as span:
            delivered = await super()._dispatch_notification(event, push_info, task_id)
            if not delivered:
                semconv.record_error(span, f"push notification to {push_info.url} not delivered", "delivery_failed")
            return delivered
