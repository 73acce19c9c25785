"""Protocol-neutral skill invocation: validate, call, and normalise what the skill returned.

Both faces call :func:`invoke`; the A2A executor and the MCP tool wrapper only translate the
outcome into their own wire types.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import AudioContent, EmbeddedResource, ImageContent, TextContent
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from agents.context import Artifact, InputNeeded, Reject, Reply, ToolContext
from agents.definition import Agent, InvalidArguments, Skill
from agents.errors import describe_exception
from agents.policy import current_gate
from tracing import content_recording
from tracing.conventions import record_error, tool_span
from tracing.metrics import skill_metrics
from tracing.redaction import mask_values, redacted_json, secret_values

__all__ = ["SkillCallError", "Workload", "invoke", "normalise_result", "resolve_skill", "workload"]

E = TypeVar("E", bound=BaseException)
_AVERAGE_WEIGHT = 0.2  # weight of the newest duration in a skill's moving average (about the last 5 calls)


class Workload:
    """Skill calls in progress per agent and a moving average of each skill's completed durations.

    Kept in this process for the default bid (``agents.negotiation``): plain dicts keyed by names
    the call already holds, so counting costs no allocation on the hot path.
    """

    __slots__ = ("running", "seconds")

    def __init__(self) -> None:
        self.running: dict[str, int] = {}
        self.seconds: dict[str, dict[str, float]] = {}

    def started(self, agent: str) -> None:
        self.running[agent] = self.running.get(agent, 0) + 1

    def finished(self, agent: str, skill: str, seconds: float | None) -> None:
        """``seconds`` is None for a call that did not complete (failed, asked, rejected): not averaged."""
        self.running[agent] -= 1
        if seconds is None:
            return
        averages = self.seconds.get(agent)
        if averages is None:
            averages = self.seconds[agent] = {}
        last = averages.get(skill)
        averages[skill] = seconds if last is None else last + _AVERAGE_WEIGHT * (seconds - last)

    def expected_seconds(self, agent: str, skill: str) -> float:
        """The moving average of the skill's durations; 0 before it has completed once."""
        return self.seconds.get(agent, {}).get(skill, 0.0)


workload = Workload()


class SkillCallError(ToolError):
    """The call cannot be made as asked (unknown skill, invalid arguments); the message says why."""


def resolve_skill(agent: Agent, skill_id: str | None) -> Skill:
    if skill_id is None:
        if len(agent.skills) == 1:
            return next(iter(agent.skills.values()))
        raise SkillCallError(f"name the skill to call; agent {agent.name!r} has: {', '.join(agent.skills)}")
    try:
        return agent.skills[skill_id]
    except KeyError:
        raise SkillCallError(
            f"unknown skill {skill_id!r}; agent {agent.name!r} has: {', '.join(agent.skills) or 'none'}"
        ) from None


async def invoke(skill: Skill, arguments: Mapping[str, Any], ctx: ToolContext) -> Any:
    """Call ``skill`` with validated ``arguments``; returns what the function returned.

    Raises :class:`SkillCallError` for invalid arguments, :class:`ToolError` for failures meant
    for the caller, and re-raises the skill's own control exceptions (``InputNeeded``, ``Reject``)
    and unexpected exceptions unchanged, so each face reports them its own way. Every call is an
    ``execute_tool`` span and counts in the skill metrics.
    """
    if not isinstance(arguments, Mapping):
        raise SkillCallError(f"arguments for skill {skill.id!r} must be an object, got {type(arguments).__name__}")
    if ctx.skill is not skill:
        ctx.skill = skill
    gate = current_gate.get()
    if gate is not None:
        refusal = gate.refusal(skill.id)
        if refusal is not None:
            gate.record(skill.id, "denied", refusal, 403)
            raise Reject(f"not authorized: {refusal}")
    labels = {"gen_ai.agent.name": ctx.agent.name, "gen_ai.tool.name": skill.id, "mesh.protocol": ctx.protocol}
    # On MCP the mcp SDK's own `tools/call {tool}` SERVER span already is the tool's execution span
    # (gen_ai.operation.name=execute_tool, error.type on isError): a second one would double the cost.
    span = tool_span(skill.id, call_id=ctx.task_id) if ctx.protocol != "mcp" else trace.INVALID_SPAN
    content_span = span if span is not trace.INVALID_SPAN else trace.get_current_span()
    if content_recording():
        content_span.set_attribute("gen_ai.tool.call.arguments", redacted_json(dict(arguments)))
    metrics = skill_metrics()
    metrics.started(labels)
    workload.started(ctx.agent.name)
    started = time.perf_counter()
    error_type: str | None = None
    completed = False
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            result = await _call(skill, arguments, ctx)
            if content_recording():
                content_span.set_attribute("gen_ai.tool.call.result", redacted_json(result if _jsonable(result) else repr(result)))
        completed = True
        if gate is not None:
            gate.record(skill.id, "completed")
        return result
    except InputNeeded:
        span.add_event("input-required")
        if gate is not None:
            gate.record(skill.id, "allowed", "waiting for input")
        raise
    except Reject as raised:
        rejection = _without_secrets(raised, arguments)
        span.set_attribute("mesh.outcome", "rejected")
        span.add_event("rejected", {"reason": rejection.reason[:300]})
        if gate is not None:
            gate.record(skill.id, "rejected")
        if rejection is not raised:
            raise rejection from None
        raise
    except BaseException as raised:
        error = _without_secrets(raised, arguments)  # the same exception unless it quotes a secret argument
        error_type = "invalid_arguments" if isinstance(error, SkillCallError) else (
            "tool_error" if isinstance(error, ToolError) else type(raised).__name__)
        record_error(span, error if isinstance(error, ToolError) else describe_exception(error), error_type)
        if gate is not None:  # the kind of failure only: messages may quote the caller's data
            gate.record(skill.id, "failed", error_type)
        if error is not raised:
            raise error from None
        raise
    finally:
        seconds = time.perf_counter() - started
        metrics.finished(labels, seconds, error_type)
        workload.finished(ctx.agent.name, skill.id, seconds if completed else None)
        span.end()


def _without_secrets(error: E, arguments: Mapping[str, Any]) -> E:
    """``error``, or a copy whose message no longer quotes the values of secret-looking arguments.

    Skills (and the libraries they call) put their inputs in messages; a password must not travel
    on from there into task states, MCP errors, spans and logs.
    """
    secrets = secret_values(dict(arguments))
    text = error.reason if isinstance(error, Reject) else str(error)
    if not secrets or not any(s in text for s in secrets):
        return error
    masked = mask_values(text, secrets)
    if isinstance(error, Reject):
        return Reject(masked)  # type: ignore[return-value]
    if isinstance(error, ToolError):
        return type(error)(masked)
    return ToolError(f"{type(error).__name__}: {masked}")  # type: ignore[return-value]


async def _call(skill: Skill, arguments: Mapping[str, Any], ctx: ToolContext) -> Any:
    try:
        return await skill.tool.run(dict(arguments), ctx)  # type: ignore[arg-type]
    except InvalidArguments as exc:  # a schema skill's jsonschema check: already worded like ours
        raise SkillCallError(str(exc)) from None
    except (ToolError, UnexpectedToolError) as exc:
        cause = exc.__cause__
        if isinstance(cause, ValidationError):
            raise SkillCallError(_validation_message(skill, cause)) from None
        if isinstance(exc, UnexpectedToolError) and cause is not None:
            raise cause from None
        if isinstance(cause, ToolError):
            raise cause from None
        raise


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, dict, list))


def _validation_message(skill: Skill, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "arguments"
        problems.append(f"{where}: {item['msg']}")
    return f"invalid arguments for skill {skill.id!r}: " + "; ".join(problems)


def normalise_result(skill: Skill | None, result: Any) -> Reply | list[Artifact]:
    """Turn a skill's return value into a reply or the artifacts to publish."""
    if isinstance(result, Reply):
        return result
    name = skill.id if skill is not None else "result"
    if isinstance(result, Artifact):
        return [result]
    if isinstance(result, (list, tuple)) and result and all(isinstance(r, Artifact) for r in result):
        return list(result)
    if result is None:
        return []
    if isinstance(result, str):
        return [Artifact(result, name=name)]
    if isinstance(result, (TextContent, ImageContent, AudioContent, EmbeddedResource)):
        return [_content_artifact(name, result)]
    if isinstance(result, (list, tuple)) and all(
        isinstance(r, (TextContent, ImageContent, AudioContent, EmbeddedResource)) for r in result
    ):
        return [_content_artifact(name, r) for r in result]
    if skill is not None and skill.output_schema is not None:
        converted = skill.tool.fn_metadata.convert_result(result)
        structured = getattr(converted, "structured_content", None)
        if structured is not None:
            if skill.tool.fn_metadata.wrap_output:
                structured = structured.get("result")
            return [_value_artifact(name, structured)]
    if isinstance(result, BaseModel):
        return [Artifact(result.model_dump(mode="json"), name=name)]
    return [_value_artifact(name, result)]


def _value_artifact(name: str, value: Any) -> Artifact:
    if isinstance(value, (str, dict, list)):
        return Artifact(value, name=name)
    return Artifact(json.dumps(value, default=str), name=name)


def _content_artifact(name: str, block: Any) -> Artifact:

    if isinstance(block, TextContent):
        return Artifact(block.text, name=name)
    if isinstance(block, (ImageContent, AudioContent)):
        return Artifact(base64.b64decode(block.data), name=name, media_type=block.mime_type)
    resource = block.resource
    if getattr(resource, "text", None) is not None:
        return Artifact(resource.text, name=name, media_type=resource.mime_type)
    return Artifact(base64.b64decode(resource.blob), name=name, media_type=resource.mime_type)
