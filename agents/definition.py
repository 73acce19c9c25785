"""The agent definition: a name, a description and typed skill functions.

One definition is served as an A2A agent and as an MCP server (see ``agents.service``). Argument
validation, the input schema and the output schema come from the function's signature through the
mcp SDK's own function metadata, so both faces validate exactly the same way. A skill can also be
given as JSON Schemas plus a handler (``Agent.add_schema_skill``), e.g. for a tool of an adopted MCP
server; jsonschema then validates its arguments, again the same way on both faces.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

import jsonschema
from mcp.server import MCPServer
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import CallToolResult, TextContent
from pydantic import Field

from agents.context import Artifact, Reply, ToolContext, ToolError

if TYPE_CHECKING:
    from agents.negotiation import Bid, CallForProposals, Decline
    from agents.settings import MeshSettings

__all__ = ["Agent", "Bidder", "InvalidArguments", "Provider", "SchemaHandler", "SchemaTool", "Skill", "TextHandler"]

F = TypeVar("F", bound=Callable[..., Any])
TextHandler = Callable[[str, ToolContext], Awaitable[Any]]
# A schema-defined skill: called with the validated arguments object and the call's context
SchemaHandler = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]
# Answers a call for proposals (see agents.negotiation); sync or async
Bidder = Callable[["CallForProposals"], "Bid | Decline | Awaitable[Bid | Decline]"]
StartHook = Callable[[str, "MeshSettings"], Awaitable[None]]
StopHook = Callable[[], Awaitable[None]]
_SKILL_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_UNSTRUCTURED_RETURNS = (Artifact, Reply)
_PROBLEM_CHARS = 200  # one validation message quotes the wrong value: keep it readable


class InvalidArguments(ToolError):
    """Arguments that break a schema skill's input schema; the message names each wrong field."""


class _SchemaResults(FuncMetadata):
    """Results of a schema skill: under an output schema, a returned dict is the structured content."""

    def convert_result(self, result: Any) -> Any:
        if self.output_schema is not None and isinstance(result, dict):
            return CallToolResult(content=[TextContent(type="text", text=json.dumps(result))], structured_content=result)
        return super().convert_result(result)


class SchemaTool(Tool):
    """An MCP tool given by JSON Schemas and ``handler(arguments, ctx)`` instead of a typed function."""

    validator: Any = Field(exclude=True)  # a jsonschema validator of the input schema

    @classmethod
    def of(cls, handler: SchemaHandler, *, name: str, title: str | None, description: str,
           input_schema: dict[str, Any], output_schema: dict[str, Any] | None) -> SchemaTool:
        validator_class = jsonschema.validators.validator_for(input_schema, default=jsonschema.Draft202012Validator)
        for which, schema in (("input", input_schema), ("output", output_schema)):
            if schema is None:
                continue
            try:
                validator_class.check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"skill {name!r}: the {which} schema is not a valid JSON Schema: {exc.message}") from None
        return cls(
            fn=handler, name=name, title=title, description=description, parameters=input_schema,
            fn_metadata=_SchemaResults(arg_model=ArgModelBase, output_schema=output_schema), is_async=True,
            validator=validator_class(input_schema),
        )

    def problems(self, arguments: dict[str, Any]) -> list[str]:
        """What is wrong with ``arguments``, one entry per error, each naming the field (empty: valid)."""
        errors = sorted(self.validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.absolute_path])
        return [f"{'.'.join(str(p) for p in e.absolute_path) or 'arguments'}: {e.message[:_PROBLEM_CHARS]}" for e in errors]

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        problems = self.problems(arguments)
        if problems:
            raise InvalidArguments(f"invalid arguments for skill {self.name!r}: " + "; ".join(problems))
        result = await self.fn(dict(arguments), context)
        return self.fn_metadata.convert_result(result) if convert_result else result


@dataclass(frozen=True, slots=True)
class Provider:
    organization: str
    url: str = ""


@dataclass(slots=True)
class Skill:
    """One capability: an A2A skill and, with the same name and schema, an MCP tool."""

    id: str
    name: str
    description: str
    tool: Tool
    tags: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    input_modes: tuple[str, ...] | None = None
    output_modes: tuple[str, ...] | None = None

    @property
    def input_schema(self) -> dict[str, Any]:
        return self.tool.parameters

    @property
    def output_schema(self) -> dict[str, Any] | None:
        return self.tool.output_schema

    @property
    def required_arguments(self) -> list[str]:
        return list(self.input_schema.get("required", []))

    @property
    def context_parameter(self) -> str | None:
        return self.tool.context_kwarg


@dataclass(slots=True)
class Agent:
    """An agent: metadata for its card plus the skills it offers.

    >>> agent = Agent("weather", "Forecasts for any city", version="1.0.0")
    >>> @agent.skill(tags=["weather"], examples=["weather in Paris"])
    ... def forecast(city: str) -> str:
    ...     '''Tomorrow's forecast for a city.'''
    ...     return f"Sunny in {city}"
    """

    name: str
    description: str
    version: str = "0.1.0"
    provider: Provider | None = None
    documentation_url: str | None = None
    skills: dict[str, Skill] = field(default_factory=dict)
    text_handler: TextHandler | None = None
    bidder: Bidder | None = None  # None: the default bid from skill matching and load
    # MCP-only extras (resources, prompts, handlers): each hook gets the agent's MCPServer once
    mcp_hooks: list[Callable[[MCPServer], Any]] = field(default_factory=list)
    # Run when the service starts (with its base URL and settings) and when it stops
    start_hooks: list[StartHook] = field(default_factory=list)
    stop_hooks: list[StopHook] = field(default_factory=list)

    @overload
    def skill(self, fn: F, /) -> F: ...
    @overload
    def skill(
        self,
        *,
        id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] = (),
        examples: Sequence[str] = (),
        input_modes: Sequence[str] | None = None,
        output_modes: Sequence[str] | None = None,
    ) -> Callable[[F], F]: ...

    def skill(
        self,
        fn: F | None = None,
        /,
        *,
        id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] = (),
        examples: Sequence[str] = (),
        input_modes: Sequence[str] | None = None,
        output_modes: Sequence[str] | None = None,
    ) -> F | Callable[[F], F]:
        """Register a typed function (sync or async) as a skill; usable bare or with options."""

        def register(func: F) -> F:
            self.add_skill(
                func,
                id=id,
                name=name,
                description=description,
                tags=tags,
                examples=examples,
                input_modes=input_modes,
                output_modes=output_modes,
            )
            return func

        return register(fn) if fn is not None else register

    def add_skill(
        self,
        func: Callable[..., Any],
        *,
        id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] = (),
        examples: Sequence[str] = (),
        input_modes: Sequence[str] | None = None,
        output_modes: Sequence[str] | None = None,
    ) -> Skill:
        skill_id = id or func.__name__
        self._check_new_skill(skill_id)
        doc = inspect.cleandoc(description or func.__doc__ or "")
        if not doc:
            raise ValueError(f"skill {skill_id!r} needs a description (docstring or description=)")
        tool = Tool.from_function(
            func,
            name=skill_id,
            title=name,
            description=doc,
            context_kwarg=_context_parameter(func),
            structured_output=False if _returns_unstructured(func) else None,
        )
        return self._register(skill_id, name, doc, tool, tags, examples, input_modes, output_modes)

    def add_schema_skill(
        self,
        id: str,
        handler: SchemaHandler,
        *,
        input_schema: dict[str, Any],
        description: str,
        output_schema: dict[str, Any] | None = None,
        name: str | None = None,
        tags: Sequence[str] = (),
        examples: Sequence[str] = (),
        input_modes: Sequence[str] | None = None,
        output_modes: Sequence[str] | None = None,
    ) -> Skill:
        """Register ``await handler(arguments, ctx)`` as a skill whose arguments follow ``input_schema``.

        The arguments are checked against the schema (jsonschema) before the handler runs, on both
        faces; a wrong one fails the call with ``invalid arguments for skill 'x': field: why``. Under an
        ``output_schema`` a returned dict is the MCP structured content; other returns map as for
        typed skills (docs/runtime.md).
        """
        self._check_new_skill(id)
        if not description.strip():
            raise ValueError(f"skill {id!r} needs a description")
        if input_schema.get("type", "object") != "object":
            raise ValueError(f"skill {id!r}: the input schema must describe an object, not {input_schema.get('type')!r}")
        tool = SchemaTool.of(handler, name=id, title=name, description=description, input_schema=input_schema,
                             output_schema=output_schema)
        return self._register(id, name, description, tool, tags, examples, input_modes, output_modes)

    def _check_new_skill(self, skill_id: str) -> None:
        if not _SKILL_ID.match(skill_id):
            raise ValueError(f"skill id {skill_id!r} must match {_SKILL_ID.pattern}")
        if skill_id in self.skills:
            raise ValueError(f"agent {self.name!r} already has a skill {skill_id!r}")

    def _register(self, skill_id: str, name: str | None, description: str, tool: Tool, tags: Sequence[str],
                  examples: Sequence[str], input_modes: Sequence[str] | None,
                  output_modes: Sequence[str] | None) -> Skill:
        skill = Skill(
            id=skill_id,
            name=name or skill_id.replace("_", " ").capitalize(),
            description=description,
            tool=tool,
            tags=tuple(tags),
            examples=tuple(examples),
            input_modes=tuple(input_modes) if input_modes is not None else None,
            output_modes=tuple(output_modes) if output_modes is not None else None,
        )
        self.skills[skill_id] = skill
        return skill

    def resource(self, uri: str, **options: Any) -> Callable[[F], F]:
        """Register an MCP resource (same options as ``MCPServer.resource``); A2A has no equivalent."""

        def register(func: F) -> F:
            self.mcp_hooks.append(lambda server: server.resource(uri, **options)(func))
            return func

        return register

    def prompt(self, **options: Any) -> Callable[[F], F]:
        """Register an MCP prompt (same options as ``MCPServer.prompt``); A2A has no equivalent."""

        def register(func: F) -> F:
            self.mcp_hooks.append(lambda server: server.prompt(**options)(func))
            return func

        return register

    def on_mcp_server(self, hook: Callable[[MCPServer], Any]) -> Callable[[MCPServer], Any]:
        """Run ``hook(server)`` on the agent's MCPServer: the escape hatch for MCP-only features."""
        self.mcp_hooks.append(hook)
        return hook

    def on_start(self, hook: StartHook) -> StartHook:
        """Run ``await hook(base_url, settings)`` when a service of this agent starts, before it accepts work."""
        self.start_hooks.append(hook)
        return hook

    def on_stop(self, hook: StopHook) -> StopHook:
        """Run ``await hook()`` when the service stops, after it stopped accepting work."""
        self.stop_hooks.append(hook)
        return hook

    def on_text(self, handler: TextHandler) -> TextHandler:
        """Replace the default handling of free-text messages (skill choice by keywords)."""
        self.text_handler = handler
        return handler

    def on_bid(self, bidder: Bidder) -> Bidder:
        """Replace the default answer to calls for proposals: ``bidder(cfp)`` returns a ``Bid`` or a ``Decline``."""
        self.bidder = bidder
        return bidder


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:  # unresolvable forward references: the SDK reports them at registration
        return {}


def _context_parameter(func: Callable[..., Any]) -> str | None:
    for param, hint in _hints(func).items():
        if param != "return" and inspect.isclass(hint) and issubclass(hint, ToolContext):
            return param
    return None


def _returns_unstructured(func: Callable[..., Any]) -> bool:
    """Skills returning our own result types publish no output schema."""
    hints = _hints(func)
    if "return" in hints and hints["return"] is type(None):
        return True  # nothing to structure; emitted artifacts are the output
    hint = hints.get("return")
    candidates = typing.get_args(hint) or (hint,)
    return any(inspect.isclass(c) and issubclass(c, _UNSTRUCTURED_RETURNS) for c in candidates) or any(
        inspect.isclass(a) and issubclass(a, _UNSTRUCTURED_RETURNS)
        for c in candidates
        for a in typing.get_args(c)
    )
