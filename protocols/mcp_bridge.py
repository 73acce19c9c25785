"""The mesh behind MCP: every healthy A2A skill as an MCP tool, every tool call as an A2A task.

A call keeps the task's semantics: a task that needs input becomes an elicitation (a request to
the client on handshake-era sessions; an ``InputRequiredResult`` on 2026-07-28, whose retry carries
the answer) and resumes with the answer; status messages of a working task become progress
notifications; cancelling the MCP call cancels the A2A task; the caller's trace context, which
the mcp SDK takes from ``_meta``, continues through the agent.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from mcp.server.mcpserver import Context
from mcp_types import (
    BlobResourceContents,
    CallToolResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    EmbeddedResource,
    ImageContent,
    InputRequiredResult,
    TextContent,
)
from mcp_types import Tool as MCPTool

from protocols.a2a_client import A2AConnection, user_message
from protocols.card_signing import CardTrust, UntrustedCard
from protocols.a2a_parts import restore_ints
from protocols.mcp_server import ANSWER_SCHEMA, Answer, MULTI_ROUND_VERSION
from protocols.mesh_extensions import SKILL_SCHEMAS, declared_extensions, skill_schemas
from registry.models import AgentRecord

__all__ = ["AgentBridge", "AgentTool", "FOREIGN_INPUT", "agent_tools", "tool_name"]

TOOL_NAME_MAX = 64  # what the strictest hosts accept: ^[A-Za-z0-9_-]{1,64}$
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_OPEN_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
# A foreign agent publishes no argument schema: it is asked in words, with optional structured data.
FOREIGN_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "description": "What to ask the agent, in plain language"},
        "data": {"type": "object", "description": "Structured input, sent along as a data part"},
    },
    "required": ["text"],
}
_INTERRUPTED = {"TASK_STATE_INPUT_REQUIRED", "TASK_STATE_AUTH_REQUIRED"}
_FINAL = {"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED"} | _INTERRUPTED


def tool_name(agent: str, skill: str | None) -> str:
    """``<agent>__<skill>`` in the characters every host accepts; long names keep a hash of the whole."""
    raw = f"{agent}__{skill}" if skill else agent
    name = _UNSAFE.sub("_", raw).strip("_") or "agent"
    if len(name) <= TOOL_NAME_MAX and name == raw:
        return name
    digest = hashlib.sha1(raw.encode()).hexdigest()[:8]
    return f"{name[: TOOL_NAME_MAX - 9]}_{digest}"


@dataclass(frozen=True, slots=True)
class AgentTool:
    """One skill of one agent as an MCP tool; ``skill`` None: a foreign agent, asked in words."""

    definition: MCPTool
    agent_id: str
    agent_name: str
    skill: str | None


def agent_tools(records: list[AgentRecord]) -> dict[str, AgentTool]:
    """The tools of every A2A agent with a healthy instance; one agent name, one set (the first seen)."""
    tools: dict[str, AgentTool] = {}
    seen: set[str] = set()
    for record in records:
        if record.kind != "a2a" or not record.healthy or record.name in seen:
            continue
        seen.add(record.name)
        ours = SKILL_SCHEMAS in declared_extensions(record.card)
        schemas = skill_schemas(record.card)
        for skill in record.skills:
            name = tool_name(record.name, skill.id)
            description = f"{skill.description}\n\n(skill {skill.id!r} of agent {record.name!r}: {record.description})"
            definition = MCPTool(
                name=name,
                title=f"{record.name}: {skill.name}",
                description=description,
                input_schema=schemas.get(skill.id, _OPEN_OBJECT) if ours else FOREIGN_INPUT,
            )
            tools[name] = AgentTool(definition, record.id, record.name, skill.id if ours else None)
    return tools


def _message_for(tool: AgentTool, arguments: Mapping[str, Any]) -> tuple[str | None, Any]:
    """(text, data) of the A2A message that makes the call."""
    if tool.skill is not None:
        return None, {"skill": tool.skill, "arguments": dict(arguments)}
    return str(arguments.get("text") or ""), arguments.get("data")


class BridgeError(RuntimeError):
    """The call could not be made (no instance, unreachable agent); the message says why."""


class AgentBridge:
    """Makes tool calls as A2A calls; one card fetch per instance per ``card_ttl`` seconds."""

    def __init__(self, http: httpx.AsyncClient, card_ttl: float = 60.0, trust: CardTrust | None = None) -> None:
        self.http = http
        self.card_ttl = card_ttl
        self.trust = trust
        self._cards: dict[str, tuple[float, A2AConnection]] = {}

    async def _connection(self, url: str) -> A2AConnection:
        cached = self._cards.get(url)
        if cached is not None and time.monotonic() - cached[0] < self.card_ttl:
            return cached[1]
        opened = await A2AConnection.open(url, self.http, trust=self.trust)
        self._cards[url] = (time.monotonic(), opened)
        return opened

    async def call(self, tool: AgentTool, url: str, arguments: Mapping[str, Any], ctx: Context[Any, Any],
                   known_urls: list[str]) -> CallToolResult | InputRequiredResult:
        """Run the call on the instance at ``url`` (``known_urls``: where a resumed task may live)."""
        resumed = _resumed_task(ctx, known_urls)
        if resumed is not None:  # a 2026-07-28 retry: the answer goes to the task that asked
            url, task_id, context_id, answer = resumed
            text, data = answer, None
        else:
            task_id = context_id = None
            text, data = _message_for(tool, arguments)
        try:
            connection = await self._connection(url)
        except UntrustedCard as exc:
            return _error(f"{exc}; the agent was not called")
        except Exception as exc:
            self._cards.pop(url, None)
            return _error(f"agent {tool.agent_name!r} at {url} cannot be reached: {exc}")
        streaming = connection.card.capabilities.streaming
        call = _Call(tool, A2AConnection(connection.card, self.http, streaming=streaming), url, ctx)
        if resumed is not None and text is None:  # the question was declined: the task stops here
            call.task_id = task_id
            await call._cancel()
            return _error(f"{tool.definition.name} stopped: the agent's question was not answered")
        return await call.run(text, data, task_id, context_id)


class _Call:
    """One tool call: a conversation with one task, from the first message to a final state."""

    def __init__(self, tool: AgentTool, connection: A2AConnection, url: str, ctx: Context[Any, Any]) -> None:
        self.tool, self.connection, self.url, self.ctx = tool, connection, url, ctx
        self.task_id: str | None = None
        self.context_id: str | None = None
        self.artifacts: dict[str, dict[str, Any]] = {}
        self.progress = 0

    async def run(self, text: str | None, data: Any, task_id: str | None, context_id: str | None
                  ) -> CallToolResult | InputRequiredResult:
        self.task_id, self.context_id = task_id, context_id
        try:
            while True:
                final = await self._exchange(text, data)
                state = _state_of(final)
                if state not in _INTERRUPTED or self.task_id is None:
                    return self._result(final)
                question = _status_text(final) or "The agent needs more input."
                if state == "TASK_STATE_AUTH_REQUIRED":
                    return _error(f"agent {self.tool.agent_name!r} needs authorization: {question}")
                if _multi_round(self.ctx):
                    return self._input_required(question)
                answer = await self._elicit(question)
                if answer is None:
                    return _error(f"{self.tool.definition.name} stopped: the agent's question {question!r} was not answered")
                text, data = answer, None
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()) and self.task_id:
                await self._cancel()  # the caller cancelled the MCP call: the agent stops too
            raise

    async def _exchange(self, text: str | None, data: Any) -> dict[str, Any]:
        """Send one message; follow its events; the last task state seen (or the bare message reply)."""
        message = user_message(text, data, task_id=self.task_id, context_id=self.context_id)
        final: dict[str, Any] = {}
        async for event in self.connection.send(message):
            final = await self._observe(event) or final
        return final

    async def _observe(self, event: dict[str, Any]) -> dict[str, Any] | None:
        if "message" in event:
            return event
        if "artifactUpdate" in event:
            self._collect(event["artifactUpdate"])
            return None
        payload = event.get("task") or event.get("statusUpdate") or {}
        self.task_id = payload.get("id") or payload.get("taskId") or self.task_id
        self.context_id = payload.get("contextId") or self.context_id
        for artifact in payload.get("artifacts", []):
            self.artifacts[artifact.get("artifactId", str(len(self.artifacts)))] = artifact
        state = payload.get("status", {}).get("state")
        if state == "TASK_STATE_WORKING" and "statusUpdate" in event:
            await self._report(payload)
        return event if state in _FINAL else None

    def _collect(self, update: dict[str, Any]) -> None:
        artifact = update.get("artifact", {})
        key = artifact.get("artifactId", str(len(self.artifacts)))
        if update.get("append") and key in self.artifacts:
            self.artifacts[key].setdefault("parts", []).extend(artifact.get("parts", []))
        else:
            self.artifacts[key] = artifact

    async def _report(self, status_update: dict[str, Any]) -> None:
        """A working task's status message as a progress notification (sent only if the caller asked)."""
        text = _status_text({"statusUpdate": status_update}) or None
        reported = status_update.get("metadata") or {}
        self.progress += 1
        done = reported.get("progress") if isinstance(reported.get("progress"), (int, float)) else self.progress
        total = reported.get("total") if isinstance(reported.get("total"), (int, float)) else None
        await self.ctx.report_progress(done, total, text)

    async def _elicit(self, question: str) -> str | None:
        try:
            reply = await self.ctx.elicit(question, Answer)
        except Exception:
            await self._cancel()
            raise BridgeError(f"agent {self.tool.agent_name!r} asks {question!r}, but this client cannot be asked") from None
        if reply.action != "accept":
            await self._cancel()
            return None
        return reply.data.answer

    def _input_required(self, question: str) -> InputRequiredResult:
        state = json.dumps({"url": self.url, "task": self.task_id, "context": self.context_id})
        request = ElicitRequest(params=ElicitRequestFormParams(message=question, requested_schema=ANSWER_SCHEMA))
        return InputRequiredResult(input_requests={"answer": request}, request_state=state)

    async def _cancel(self) -> None:
        assert self.task_id is not None
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            try:
                await self.connection.cancel_task(self.task_id)
            except Exception:
                pass  # already final, or gone: nothing left to stop

    def _result(self, final: dict[str, Any]) -> CallToolResult:
        if "message" in final:
            blocks, structured = _content(final["message"].get("parts", []))
            return CallToolResult(content=blocks, structured_content=structured)
        state = _state_of(final)
        status = _status_text(final)
        if state != "TASK_STATE_COMPLETED":
            word = state.removeprefix("TASK_STATE_").lower().replace("_", "-") if state else "lost"
            return _error(f"agent {self.tool.agent_name!r}: task {word}" + (f": {status}" if status else ""))
        parts = [part for artifact in self.artifacts.values() for part in artifact.get("parts", [])]
        blocks, structured = _content(parts)
        if status and not blocks:
            blocks = [TextContent(type="text", text=status)]
        return CallToolResult(content=blocks, structured_content=structured)


def _content(parts: list[dict[str, Any]]) -> tuple[list[Any], dict[str, Any] | None]:
    """MCP content blocks of A2A parts, and the structured content (a single data part that is an object)."""
    blocks: list[Any] = []
    data = [restore_ints(p["data"]) for p in parts if "data" in p]
    for part in parts:
        if "text" in part:
            blocks.append(TextContent(type="text", text=part["text"]))
        elif "data" in part:
            blocks.append(TextContent(type="text", text=json.dumps(restore_ints(part["data"]))))
        elif "raw" in part:
            media = part.get("mediaType") or "application/octet-stream"
            if media.startswith("image/"):
                blocks.append(ImageContent(type="image", data=part["raw"], mime_type=media))
            else:
                uri = f"artifact:///{part.get('filename') or 'artifact'}"
                blocks.append(EmbeddedResource(type="resource", resource=BlobResourceContents(
                    uri=uri, blob=part["raw"], mime_type=media)))
        elif "url" in part:
            blocks.append(TextContent(type="text", text=part["url"]))
    structured = data[0] if len(data) == 1 and isinstance(data[0], dict) else None
    return blocks, structured


def _state_of(event: dict[str, Any]) -> str:
    payload = event.get("task") or event.get("statusUpdate") or {}
    return str(payload.get("status", {}).get("state", ""))


def _status_text(event: dict[str, Any]) -> str:
    payload = event.get("task") or event.get("statusUpdate") or {}
    parts = payload.get("status", {}).get("message", {}).get("parts", [])
    return "\n".join(p["text"] for p in parts if "text" in p)


def _error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def _multi_round(ctx: Context[Any, Any]) -> bool:
    version = ctx.protocol_version
    return version is not None and version >= MULTI_ROUND_VERSION


def _resumed_task(ctx: Context[Any, Any], known_urls: list[str]) -> tuple[str, str, str | None, str | None] | None:
    """(url, task id, context id, answer or None if declined) when this call retries an InputRequiredResult.

    The state comes back from the client, so its URL must be one of the agent's own instances.
    """
    if not _multi_round(ctx) or not ctx.request_state:
        return None
    try:
        state = json.loads(ctx.request_state)
        url, task_id = str(state["url"]), str(state["task"])
    except (ValueError, KeyError, TypeError):
        raise BridgeError("request_state is not what this gateway sent") from None
    if url not in known_urls:
        raise BridgeError("the task that asked is no longer reachable (its instance left the mesh)")
    reply = (ctx.input_responses or {}).get("answer")
    accepted = isinstance(reply, ElicitResult) and reply.action == "accept" and reply.content
    answer = str(reply.content.get("answer", "")) if accepted else None  # type: ignore[union-attr]
    return url, task_id, state.get("context"), answer
