"""A client session held open to an MCP server that agent-mesh adopts (stdio command or streamable HTTP URL).

:class:`McpUpstream` starts (or connects to) the server, lists its tools and calls them for a skill:

* ``structuredContent`` → a dict (a data artifact, so a coordinator reads the fields); text content
  → text artifacts; images, audio and embedded resources → file artifacts; resource links → files by URL;
* ``isError: true`` → :class:`ToolError` with the server's own text, verbatim; a JSON-RPC error or a
  dead server → a ToolError that says so;
* the server's progress notifications → ``ctx.progress``; its elicitations → ``ctx.ask``. When
  ``ask`` cannot answer now (A2A ``input-required``), the upstream call is cancelled at once, so an
  abandoned question holds nothing open; the follow-up re-runs the call and the runtime replays the
  answers (docs/adopt.md).

Trace context travels in each request's ``_meta`` (the mcp SDK's client spans, renamed by
``tracing.conventions.ConventionProcessor``). A stdio server that exited is started again by the
next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import shlex
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import jsonschema
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CONNECTION_CLOSED,
    INVALID_REQUEST,
    CallToolResult,
    ElicitRequestParams,
    ElicitRequestURLParams,
    ElicitResult,
    ErrorData,
    ResourceLink,
    TextContent,
    Tool,
)

from agents.context import Artifact, ToolContext, ToolError
from agents.errors import describe_exception
from agents.runtime import normalise_result

__all__ = ["HttpTarget", "McpUpstream", "UpstreamServer", "UpstreamTarget", "UpstreamUnavailable", "describe_target"]

log = logging.getLogger("agents.adopt")
_MAX_PAGES = 100  # tools/list pages: a server whose cursor never ends cannot hang the start
_current_call: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("mesh_upstream_call", default=None)


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """A streamable HTTP MCP endpoint and the headers to send with every request."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)


UpstreamTarget = StdioServerParameters | HttpTarget


@dataclass(frozen=True, slots=True)
class UpstreamServer:
    """What the adopted server said about itself."""

    name: str
    version: str
    instructions: str | None
    protocol_version: str
    tools: list[Tool]


class UpstreamUnavailable(Exception):
    """The server could not be started, reached or listed; the message says which and why."""


def describe_target(target: UpstreamTarget) -> str:
    if isinstance(target, HttpTarget):
        return target.url
    return shlex.join([target.command, *target.args])


class _Call:
    """One tools/call in flight: where its progress and questions go, and what cut it short."""

    def __init__(self, ctx: ToolContext, tool: str) -> None:
        self.ctx = ctx
        self.tool = tool
        self.scope = anyio.CancelScope()
        self.interrupt: BaseException | None = None  # raised by ctx.ask (InputNeeded, a declined question)

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        try:
            await self.ctx.progress(message or f"{self.tool}: {progress:g}" + (f"/{total:g}" if total else ""),
                                    progress, total)
        except Exception as exc:  # a caller that went away must not break the upstream call
            log.warning("progress of %s not delivered: %s", self.tool, describe_exception(exc))

    async def elicit(self, params: ElicitRequestParams) -> ElicitResult:
        """Ask the caller; when the answer cannot come now, stop the upstream call and decline here."""
        try:
            if isinstance(params, ElicitRequestURLParams):
                await self.ctx.ask(f"{params.message}\nOpen {params.url} and answer here when you are done.")
                return ElicitResult(action="accept")
            return ElicitResult(action="accept", content=await self._form_answer(params.message, params.requested_schema))
        except Exception as exc:
            self.interrupt = exc
            self.scope.cancel()
            return ElicitResult(action="cancel")

    async def _form_answer(self, message: str, schema: dict[str, Any]) -> dict[str, Any]:
        properties: dict[str, Any] = schema.get("properties") or {}
        question = message
        if len(properties) > 1:
            question += " (answer with a JSON object with " + ", ".join(repr(p) for p in properties) + ")"
        prompt = question
        while True:  # a wrong answer is asked again; on A2A each attempt is one answer of the replay
            answer = await self.ctx.ask(prompt)
            content = _content_of(answer, properties)
            errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(content), key=lambda e: e.message)
            if not errors:
                return content
            where = ".".join(str(p) for p in errors[0].absolute_path)
            prompt = f"That answer does not fit ({where + ': ' if where else ''}{errors[0].message}). {question}"


def _content_of(answer: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The elicitation content for a free-text answer: a JSON object as given, else the one field's value."""
    try:
        parsed = json.loads(answer)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    if len(properties) != 1:
        return {} if not properties else {"answer": answer}
    name, spec = next(iter(properties.items()))
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind in ("number", "integer") and isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
        return {name: parsed}
    if kind == "boolean":
        lowered = answer.strip().lower()
        return {name: True if lowered in ("yes", "y", "true") else False if lowered in ("no", "n", "false") else answer}
    return {name: answer}


def tool_outcome(result: CallToolResult, ctx: ToolContext) -> Any:
    """What the skill returns for a tool result: a dict, a list of artifacts, or None (no content)."""
    if result.is_error:
        text = "\n".join(b.text for b in result.content if isinstance(b, TextContent))
        raise ToolError(text or f"{ctx.skill.id} failed (the MCP server gave no message)")
    structured = result.structured_content
    blocks = [b for b in result.content if not (isinstance(b, TextContent) and _is_json_of(b.text, structured))]
    links = [Artifact(url=str(b.uri), name=b.name or ctx.skill.id, media_type=b.mime_type)
             for b in blocks if isinstance(b, ResourceLink)]
    contents = [b for b in blocks if not isinstance(b, ResourceLink)]
    if structured is not None and not contents and not links:
        return structured
    artifacts = [Artifact(structured, name=ctx.skill.id)] if structured is not None else []
    if contents:
        artifacts += normalise_result(ctx.skill, contents)  # type: ignore[operator]  # a content list maps to artifacts
    artifacts += links
    return artifacts or None


def _is_json_of(text: str, structured: dict[str, Any] | None) -> bool:
    """The text block servers add beside structured content for older clients: the same value again
    (the whole object, or the one wrapped value of ``{"result": ...}``)."""
    if structured is None:
        return False
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    return value == structured or (len(structured) == 1 and value == next(iter(structured.values())))


def _transport_closed(client: Client) -> bool:
    """Has the session's receive loop ended (the stdio server exited, the stream dropped)?"""
    dispatcher = getattr(client.session, "_dispatcher", None)  # the SDK offers no public flag for this
    return bool(getattr(dispatcher, "_closed", False))


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class McpUpstream:
    """One MCP server held open for the adopted agent; ``open`` first, ``close`` at the end."""

    def __init__(self, target: UpstreamTarget, *, mode: str = "legacy", start_timeout: float = 30.0,
                 call_timeout: float = 300.0) -> None:
        # "legacy" (the initialize handshake) by default: every server speaks it, and only there can a
        # server ask questions in the middle of a call (ctx.elicit); "auto" prefers 2026-07-28.
        self.target = target
        self.mode = mode
        self.description = describe_target(target)
        self.start_timeout = start_timeout
        self.call_timeout = call_timeout
        self._client: Client | None = None
        self._stop: asyncio.Event | None = None
        self._holder: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._calls: set[_Call] = set()

    @property
    def alive(self) -> bool:
        """Connected and the connection still open (a dead stdio server reads False until restarted)."""
        return self._client is not None and not _transport_closed(self._client)

    async def open(self) -> UpstreamServer:
        """Start or reach the server and list its tools; raises :class:`UpstreamUnavailable`."""
        async with self._lock:
            client = await self._connect()
        try:
            tools = await self._list_tools(client)
        except Exception as exc:
            await self.close()
            raise UpstreamUnavailable(f"{self.description} did not list its tools: {describe_exception(_leaf(exc))}") from None
        info = client.server_info
        return UpstreamServer(
            name=info.name if info else "mcp-server",
            version=info.version if info and info.version else "0.0.0",
            instructions=client.instructions,
            protocol_version=client.protocol_version,
            tools=tools,
        )

    async def close(self) -> None:
        async with self._lock:
            await self._disconnect()

    async def call(self, tool: str, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """Call ``tool`` for a skill; the outcome as a skill returns it (see :func:`tool_outcome`)."""
        client = await self._ready_client()
        call = _Call(ctx, tool)
        token = _current_call.set(call)  # 2026-07-28 elicitations are answered in this task
        self._calls.add(call)
        try:
            with call.scope:
                result = await client.call_tool(tool, arguments, read_timeout_seconds=self.call_timeout,
                                                progress_callback=call.progress)
        except MCPError as exc:
            if call.interrupt is None:
                raise self._failure(tool, exc) from None
        except Exception as exc:
            if call.interrupt is None:
                raise ToolError(f"{tool}: calling the MCP server {self.description} failed: "
                                f"{describe_exception(_leaf(exc))}") from None
        finally:
            _current_call.reset(token)
            self._calls.discard(call)
        if call.interrupt is not None:
            raise call.interrupt
        return tool_outcome(result, ctx)

    def _failure(self, tool: str, exc: MCPError) -> ToolError:
        if exc.error.code == CONNECTION_CLOSED:
            return ToolError(f"{tool}: the MCP server {self.description} closed the connection (did it exit?); "
                             "the next call starts it again")
        return ToolError(f"{tool}: the MCP server answered with error {exc.error.code}: {exc.error.message}")

    async def _ready_client(self) -> Client:
        async with self._lock:
            if self._client is None or _transport_closed(self._client):
                await self._disconnect()
                try:
                    return await self._connect()
                except UpstreamUnavailable as exc:
                    raise ToolError(str(exc)) from None
            return self._client

    async def _list_tools(self, client: Client) -> list[Tool]:
        tools: list[Tool] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools
        raise UpstreamUnavailable(f"{self.description} listed more than {_MAX_PAGES} pages of tools")

    async def _connect(self) -> Client:
        """Open a session in a task of its own: anyio scopes are left in the task that entered them."""
        entered: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        # A fresh context: the session's tasks must not carry the span of the call that (re)started it
        holder = asyncio.create_task(self._hold(entered, stop), context=contextvars.Context())
        try:
            client = await asyncio.wait_for(asyncio.shield(entered), self.start_timeout)
        except TimeoutError:
            holder.cancel()
            raise UpstreamUnavailable(f"{self.description} did not complete the MCP handshake in {self.start_timeout:g} s") from None
        except Exception as exc:
            raise UpstreamUnavailable(f"cannot start {self.description}: {describe_exception(_leaf(exc))}") from None
        self._client, self._stop, self._holder = client, stop, holder
        return client

    async def _hold(self, entered: asyncio.Future[Client], stop: asyncio.Event) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                client = await stack.enter_async_context(self._new_client(stack))
                entered.set_result(client)
                await stop.wait()
        except asyncio.CancelledError:
            entered.cancel()
            raise
        except BaseException as exc:
            if not entered.done():
                entered.set_exception(_leaf(exc))
            else:
                log.warning("MCP server %s: session ended: %s", self.description, describe_exception(_leaf(exc)))

    def _new_client(self, stack: contextlib.AsyncExitStack) -> Client:
        options: dict[str, Any] = {"elicitation_callback": self._elicit, "read_timeout_seconds": self.start_timeout,
                                   "mode": self.mode}
        if isinstance(self.target, StdioServerParameters):
            return Client(self.target, **options)
        http = httpx2.AsyncClient(headers=self.target.headers, timeout=httpx2.Timeout(30.0, read=self.call_timeout))
        stack.push_async_callback(http.aclose)
        return Client(streamable_http_client(self.target.url, http_client=http), **options)

    async def _disconnect(self) -> None:
        holder, stop = self._holder, self._stop
        self._client = self._holder = self._stop = None
        if holder is None or stop is None:
            return
        stop.set()
        try:
            await asyncio.wait_for(holder, self.start_timeout)
        except (TimeoutError, asyncio.CancelledError):
            holder.cancel()
        except Exception as exc:
            log.warning("MCP server %s: closing failed: %s", self.description, describe_exception(exc))

    async def _elicit(self, context: Any, params: ElicitRequestParams) -> ElicitResult | ErrorData:
        call = _current_call.get()
        if call is None and len(self._calls) == 1:
            call = next(iter(self._calls))  # handshake-era sessions do not say which request asked
        if call is None:
            return ErrorData(code=INVALID_REQUEST, message=(
                f"agent-mesh cannot tell which of {len(self._calls)} calls in flight this question belongs to"))
        return await call.elicit(params)
