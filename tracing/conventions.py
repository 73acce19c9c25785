"""Span names and attributes of the OTel GenAI, A2A and MCP semantic conventions, in one place.

The rest of the code asks for spans here (``agent_span``, ``tool_span``, ``a2a_span``) and never
spells an attribute name itself.
"""

from __future__ import annotations

import functools
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

__all__ = [
    "PROVIDER",
    "ConventionProcessor",
    "a2a_span",
    "agent_attributes",
    "agent_span",
    "record_error",
    "tool_span",
    "tracer",
    "workflow_span",
]

PROVIDER = "agent-mesh"  # gen_ai.provider.name: one value mesh-wide
TRACER_NAME = "agent-mesh"

OPERATION = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
AGENT_NAME, AGENT_ID, AGENT_VERSION, AGENT_DESCRIPTION = (
    "gen_ai.agent.name", "gen_ai.agent.id", "gen_ai.agent.version", "gen_ai.agent.description")
CONVERSATION_ID = "gen_ai.conversation.id"
TOOL_NAME, TOOL_TYPE, TOOL_CALL_ID = "gen_ai.tool.name", "gen_ai.tool.type", "gen_ai.tool.call.id"
WORKFLOW_NAME = "gen_ai.workflow.name"
A2A_METHOD, A2A_VERSION, A2A_TASK_ID, A2A_TASK_STATE, A2A_MESSAGE_ID = (
    "a2a.method.name", "a2a.protocol.version", "a2a.task.id", "a2a.task.state", "a2a.message.id")
ERROR_TYPE = "error.type"
SERVER_ADDRESS, SERVER_PORT = "server.address", "server.port"
_MCP_CLIENT_PREFIX = "MCP send "


@functools.cache
def tracer() -> trace.Tracer:
    """One tracer per process: ``get_tracer`` per span cost ~7 % of a request (bench/hop.py).

    Before ``tracing.configure`` this is the API's proxy tracer, which follows the provider set later.
    """
    return trace.get_tracer(TRACER_NAME)


def agent_attributes(name: str, version: str, description: str | None = None, agent_id: str | None = None) -> dict[str, Any]:
    attributes: dict[str, Any] = {AGENT_NAME: name, AGENT_VERSION: version, AGENT_ID: agent_id or f"{name}@{version}"}
    if description:
        attributes[AGENT_DESCRIPTION] = description
    return attributes


def agent_span(name: str, attributes: dict[str, Any], *, remote: bool, links: list[Link] | None = None,
               context: Context | None = None) -> trace.Span:
    """``invoke_agent {name}``: CLIENT for a call to a remote agent, INTERNAL for the agent's own run."""
    return tracer().start_span(
        f"invoke_agent {name}",
        context=context,
        kind=SpanKind.CLIENT if remote else SpanKind.INTERNAL,
        attributes={OPERATION: "invoke_agent", PROVIDER_NAME: PROVIDER, **attributes},
        links=links,
    )


def tool_span(tool: str, *, call_id: str | None = None, tool_type: str = "function") -> trace.Span:
    attributes: dict[str, Any] = {OPERATION: "execute_tool", PROVIDER_NAME: PROVIDER, TOOL_NAME: tool, TOOL_TYPE: tool_type}
    if call_id:
        attributes[TOOL_CALL_ID] = call_id
    return tracer().start_span(f"execute_tool {tool}", kind=SpanKind.INTERNAL, attributes=attributes)


def workflow_span(name: str) -> trace.Span:
    return tracer().start_span(
        f"invoke_workflow {name}", kind=SpanKind.INTERNAL,
        attributes={OPERATION: "invoke_workflow", PROVIDER_NAME: PROVIDER, WORKFLOW_NAME: name},
    )


def a2a_span(method: str, *, server: bool, attributes: dict[str, Any] | None = None,
             links: list[Link] | None = None, context: Context | None = None) -> trace.Span:
    """An A2A call named by its method (``SendMessage``, ``GetTask``, …)."""
    return tracer().start_span(
        method,
        context=context,
        kind=SpanKind.SERVER if server else SpanKind.CLIENT,
        attributes={A2A_METHOD: method, A2A_VERSION: "1.0", **(attributes or {})},
        links=links,
    )


def record_error(span: trace.Span, error: BaseException | str, error_type: str | None = None) -> None:
    """Mark a span failed: status ERROR with the message, and ``error.type``."""
    message = str(error)
    span.set_status(Status(StatusCode.ERROR, message[:300]))
    span.set_attribute(ERROR_TYPE, error_type or (type(error).__name__ if isinstance(error, BaseException) else "error"))


class ConventionProcessor(SpanProcessor):
    """Renames the mcp SDK's client spans (``MCP send tools/call X``) to the convention (``tools/call X``)."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not span.name.startswith(_MCP_CLIENT_PREFIX):
            return
        target = span.name[len(_MCP_CLIENT_PREFIX):]
        span.update_name(target)
        method, _, name = target.partition(" ")
        if method == "tools/call" and name:
            span.set_attribute(OPERATION, "execute_tool")
            span.set_attribute(TOOL_NAME, name)

    def on_end(self, span: ReadableSpan) -> None:
        return None
