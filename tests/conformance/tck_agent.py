"""The agent the A2A TCK (``a2aproject/a2a-tck``, branch ``1.0-dev``) runs against.

The TCK says in-band what it expects: every message it sends has a messageId ``tck-<scenario>-<8 hex>``
and the agent behaves as the TCK's ``scenarios/*.feature`` describe for that prefix. The 8 hex digits
are fixed for a whole TCK session, so one messageId arrives many times (new tasks, follow-ups, every
binding): nothing here keys on, dedupes or rejects by messageId.

The prefix is read from the message being handled *now* (``ctx.a2a.message``). On a follow-up that is
the follow-up, not the message that started the task; that matters because the runtime replays the
handler from the task's first message (its text is what ``text`` holds): a ``tck-complete-task``
follow-up to a task started by ``tck-input-required`` must complete it. The longest known prefix
wins (``tck-artifact-file-url`` before ``tck-artifact-file``). Any other message gets ordinary
behaviour: the ``echo`` skill, a task that completes at once.

It is an ordinary ``agents.Agent`` built with the public API only (a text handler, ``Reply``,
``Artifact``, ``Reject``, ``ctx.ask``/``progress``/``emit``), so the TCK measures our A2A face
(executor, task store, push sender, routes) rather than a bare SDK server. Serve it with::

    mesh serve tests.conformance.tck_agent:agent --port 9999

and see ``docs/conformance.md`` for the TCK command and the results.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from agents import Agent, Artifact, Reject, Reply, ToolContext
from protocols.a2a_executor import A2AToolContext

agent = Agent(
    "tck-agent",
    "Behaves as the A2A TCK asks through the messageId prefix of each message; echoes anything else",
    version="1.0.0",
)

# The scenarios' long-running task stays active for twice the TCK's streaming timeout (2 s by default).
STREAMING_TIMEOUT = float(os.environ.get("TCK_STREAMING_TIMEOUT", "2.0"))

Behaviour = Callable[[ToolContext], Awaitable[Any]]
BEHAVIOURS: dict[str, Behaviour] = {}


def behaviour(prefix: str) -> Callable[[Behaviour], Behaviour]:
    """Register what the agent does for messages whose id starts with ``prefix``."""

    def register(fn: Behaviour) -> Behaviour:
        BEHAVIOURS[prefix] = fn
        return fn

    return register


@agent.skill(tags=["echo"], examples=["hello"])
def echo(text: str) -> Reply:
    """Answer with the text in a completed task (what any message without a TCK prefix gets)."""
    return Reply(f"Echo: {text}", as_task=True)


@agent.on_text
async def by_message_id(text: str, ctx: ToolContext) -> Any:
    """Dispatch on the current message's id; ``text`` is the text of the task's first message."""
    message_id = current_message_id(ctx)
    for prefix in sorted(BEHAVIOURS, key=len, reverse=True):
        if message_id.startswith(prefix):
            return await BEHAVIOURS[prefix](ctx)
    return echo(text)


def current_message_id(ctx: ToolContext) -> str:
    """The id of the message being handled; A2A only (``ctx.a2a`` is the a2a-sdk RequestContext)."""
    if isinstance(ctx, A2AToolContext) and ctx.a2a.message is not None:
        return ctx.a2a.message.message_id
    return ""


# --- Task outcomes -------------------------------------------------------------------------------


@behaviour("tck-complete-task")
async def complete_task(ctx: ToolContext) -> Reply:
    # A new task, or a follow-up that completes a task waiting in input-required.
    return Reply("Hello from TCK", as_task=True)


@behaviour("tck-input-required")
async def input_required(ctx: ToolContext) -> Any:
    # Every follow-up replays this with the answers given so far, and each ``ask`` consumes one of
    # them; the first unanswered ``ask`` parks the task in input-required again. So however many
    # ``tck-input-required`` follow-ups arrive the task waits, until a ``tck-complete-task`` one.
    while True:
        await ctx.ask("Input required")


@behaviour("tck-reject-task")
async def reject_task(ctx: ToolContext) -> Any:
    raise Reject("rejected")


@behaviour("tck-message-response")
async def message_response(ctx: ToolContext) -> Reply:
    return Reply("Direct message response")  # a bare Message: no task is created


# --- Artifacts (returned: the task completes with them) ------------------------------------------


@behaviour("tck-artifact-text")
async def artifact_text(ctx: ToolContext) -> Artifact:
    return Artifact("Generated text content", name="text")


@behaviour("tck-artifact-file")
async def artifact_file(ctx: ToolContext) -> Artifact:
    return Artifact(b"TCK file content", name="file", filename="output.txt", media_type="text/plain")


@behaviour("tck-artifact-file-url")
async def artifact_file_url(ctx: ToolContext) -> Artifact:
    return Artifact(
        url="https://example.com/output.txt", name="file-url", filename="output.txt", media_type="text/plain"
    )


@behaviour("tck-artifact-data")
async def artifact_data(ctx: ToolContext) -> Artifact:
    return Artifact({"key": "value", "count": 42}, name="data")


# --- Streams: working, artifacts emitted while running, then completed ---------------------------


async def stream_text(ctx: ToolContext, text: str) -> None:
    await ctx.progress("Working")
    await ctx.emit(Artifact(text, name="stream", last_chunk=True))
    # returning None completes the task without a further message


@behaviour("tck-stream-001")
async def stream_001(ctx: ToolContext) -> None:
    await stream_text(ctx, "Stream hello from TCK")


@behaviour("tck-stream-003")
async def stream_003(ctx: ToolContext) -> None:
    await stream_text(ctx, "Stream task lifecycle")


@behaviour("tck-stream-ordering-001")
async def stream_ordering_001(ctx: ToolContext) -> None:
    await stream_text(ctx, "Ordered output")


@behaviour("tck-stream-artifact-text")
async def stream_artifact_text(ctx: ToolContext) -> None:
    await stream_text(ctx, "Streamed text content")


@behaviour("tck-stream-002")
async def stream_completed_only(ctx: ToolContext) -> Reply:
    return Reply("Stream completed", as_task=True)  # Task, then the completed status


@behaviour("tck-stream-artifact-file")
async def stream_artifact_file(ctx: ToolContext) -> None:
    await ctx.progress("Working")
    await ctx.emit(Artifact(b"TCK file content", name="file", filename="output.txt", media_type="text/plain"))


@behaviour("tck-stream-artifact-chunked")
async def stream_artifact_chunked(ctx: ToolContext) -> None:
    await ctx.progress("Working")
    artifact_id = f"chunked-{uuid.uuid4().hex}"  # both chunks build one artifact
    await ctx.emit(Artifact("chunk-1 ", name="chunked", artifact_id=artifact_id))
    await ctx.emit(Artifact("chunk-2", name="chunked", artifact_id=artifact_id, append=True, last_chunk=True))


@behaviour("test-resubscribe-message-id")  # the scenarios' one prefix without "tck-"
async def long_running(ctx: ToolContext) -> Reply:
    await ctx.progress("Working on a long task")
    await asyncio.sleep(2 * STREAMING_TIMEOUT + 0.5)
    return Reply("Long task done", as_task=True)
