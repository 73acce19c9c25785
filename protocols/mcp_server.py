"""The MCP face of the runtime: an ``MCPServer`` whose tools are the agent's skills.

Tools keep the skill's name, input schema and output schema; ``ctx.ask`` becomes an elicitation,
``ctx.progress`` a progress notification, and artifacts become content blocks.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from mcp.server import MCPServer
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import (
    BlobResourceContents,
    CallToolResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    EmbeddedResource,
    InputRequiredResult,
    TextContent,
)
from pydantic import BaseModel, Field, PrivateAttr

from agents.context import Artifact, InputNeeded, Reject, Reply, ToolContext, ToolError
from agents.definition import Agent, Skill
from agents.errors import describe_exception
from agents.runtime import invoke, normalise_result

__all__ = ["CARD_RESOURCE_MIME", "build_mcp_server", "card_resource_uri", "transport_security_for"]

log = logging.getLogger("agents.mcp")
CARD_RESOURCE_MIME = "application/json"


def card_resource_uri(agent: Agent) -> str:
    return f"a2a://agents/{agent.name}/agent-card.json"


ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "description": "Your answer"}},
    "required": ["answer"],
}
_PAST = {"decline": "declined", "cancel": "cancelled"}
# From this protocol version on there is no back-channel: questions travel in InputRequiredResult.
MULTI_ROUND_VERSION = "2026-07-28"


class Answer(BaseModel):
    answer: str = Field(description="Your answer")


class MCPToolContext(ToolContext):
    """Tool context backed by an MCP request.

    ``ask`` is an elicitation: a server-to-client request on handshake-era sessions, and on
    2026-07-28 an ``InputRequiredResult`` the client answers by retrying the call. The retry runs the
    skill again from the start with earlier answers replayed from ``request_state``, the same
    replay the A2A face does from the task history.
    """

    def __init__(self, agent: Agent, skill: Skill, mcp_context: Context[Any, Any]) -> None:
        self.agent = agent
        self.skill = skill
        self.mcp = mcp_context  # the escape hatch for MCP-only features (logging, sampling)
        self.emitted: list[Artifact] = []
        self.replayed: dict[str, str] = {}
        self._asked = 0
        if self.multi_round:
            self.replayed = self._collect_answers()

    @property
    def protocol(self) -> str:
        return "mcp"

    @property
    def multi_round(self) -> bool:
        version = self.mcp.protocol_version
        return version is not None and version >= MULTI_ROUND_VERSION

    def _collect_answers(self) -> dict[str, str]:
        try:
            answers = json.loads(self.mcp.request_state or "{}")
        except ValueError:
            raise ToolError(f"{self.skill.id}: request_state is not what this server sent") from None
        for key, response in (self.mcp.input_responses or {}).items():
            if not isinstance(response, ElicitResult):
                continue
            if response.action != "accept" or not response.content or "answer" not in response.content:
                raise ToolError(f"{self.skill.id} stopped: a question was {_PAST.get(response.action, response.action)}")
            answers[key] = str(response.content["answer"])
        return answers

    async def ask(self, question: str) -> str:
        key = f"q{self._asked}"
        self._asked += 1
        if self.multi_round:
            if key in self.replayed:
                return self.replayed[key]
            raise InputNeeded(question)
        try:
            result = await self.mcp.elicit(question, Answer)
        except Exception as exc:
            raise ToolError(
                f"{self.skill.id} needs an answer to {question!r} but the client could not be asked "
                f"({describe_exception(exc)})"
            ) from None
        if result.action != "accept":
            raise ToolError(f"{self.skill.id} stopped: the question {question!r} was {_PAST[result.action]}")
        return result.data.answer

    def input_required(self, question: str) -> InputRequiredResult:
        key = f"q{self._asked - 1}"
        request = ElicitRequest(params=ElicitRequestFormParams(message=question, requested_schema=ANSWER_SCHEMA))
        return InputRequiredResult(input_requests={key: request}, request_state=json.dumps(self.replayed))

    async def progress(self, message: str, done: float | None = None, total: float | None = None) -> None:
        await self.mcp.report_progress(done if done is not None else 0, total, message)

    async def emit(self, artifact: Artifact) -> None:
        self.emitted.append(artifact)


class SkillTool(Tool):
    """An MCP tool that runs a skill through the shared runtime."""

    _agent: Agent = PrivateAttr()
    _skill: Skill = PrivateAttr()

    @classmethod
    def of(cls, agent: Agent, skill: Skill) -> SkillTool:
        tool = cls.model_construct(**{name: getattr(skill.tool, name) for name in Tool.model_fields})
        tool._agent, tool._skill = agent, skill
        return tool

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        ctx = MCPToolContext(self._agent, self._skill, context)
        try:
            result = await invoke(self._skill, arguments, ctx)
        except InputNeeded as question:
            return ctx.input_required(question.question)
        except Reject as rejection:
            raise ToolError(f"{self._skill.id} rejected the request: {rejection.reason}") from None
        except ToolError:
            raise
        except Exception as error:
            log.exception("skill %s of agent %s raised", self._skill.id, self._agent.name)
            raise ToolError(f"Error executing tool {self._skill.id}: {describe_exception(error)}") from None
        if not convert_result:
            return result
        if isinstance(result, (Artifact, Reply)) or _is_artifact_list(result):
            return _artifacts_result(self._skill, ctx.emitted, result)
        converted = self.fn_metadata.convert_result(result)
        if ctx.emitted:  # artifacts sent along the way come first, as they would on A2A
            converted.content = [*_blocks(ctx.emitted), *converted.content]
        return converted


def _is_artifact_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, Artifact) for v in value)


def _artifacts_result(skill: Skill, emitted: list[Artifact], result: Any) -> CallToolResult:
    outcome = normalise_result(skill, result)
    if isinstance(outcome, Reply):
        return CallToolResult(content=[*_blocks(emitted), TextContent(type="text", text=outcome.text)])
    # Under an output schema the one structured artifact is the structured content clients check
    data = [a.content for a in outcome if isinstance(a.content, dict)]
    structured = data[0] if skill.output_schema is not None and len(data) == 1 else None
    return CallToolResult(content=_blocks([*emitted, *outcome]), structured_content=structured)


def _blocks(artifacts: list[Artifact]) -> list[Any]:
    blocks: list[Any] = []
    for artifact in artifacts:
        content = artifact.content
        if artifact.url is not None:
            blocks.append(TextContent(type="text", text=artifact.url))
        elif isinstance(content, str):
            blocks.append(TextContent(type="text", text=content))
        elif isinstance(content, bytes):
            uri = f"artifact:///{artifact.filename or artifact.name or 'artifact'}"
            blob = BlobResourceContents(
                uri=uri, blob=base64.b64encode(content).decode(), mime_type=artifact.media_type
            )
            blocks.append(EmbeddedResource(type="resource", resource=blob))
        else:
            blocks.append(TextContent(type="text", text=json.dumps(content)))
    return blocks


def transport_security_for(bind_host: str, public_url: str | None) -> TransportSecuritySettings | None:
    """DNS-rebinding protection that admits the names the agent is really reached by."""
    if not public_url and bind_host in ("127.0.0.1", "localhost", "::1"):
        return None  # the SDK's loopback-only default
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    if public_url:
        parts = urlsplit(public_url)
        hosts += [parts.netloc, f"{parts.hostname}:*"]
        origins.append(f"{parts.scheme}://{parts.netloc}")
    if bind_host not in ("0.0.0.0", "::", "127.0.0.1", "localhost", "::1"):
        hosts.append(f"{bind_host}:*")
    return TransportSecuritySettings(allowed_hosts=hosts, allowed_origins=origins)


def build_mcp_server(agent: Agent, card_json: str, auth: tuple[TokenVerifier, AuthSettings] | None = None) -> MCPServer:
    """The agent's MCP server: one tool per skill, the A2A card as a resource, and any MCP hooks.

    ``auth``: the mcp SDK's bearer-token verification in front of the endpoint (401 with RFC 9728
    metadata; sessions bound to the token that opened them).
    """
    verifier, auth_settings = auth if auth is not None else (None, None)
    server: MCPServer = MCPServer(
        agent.name,
        version=agent.version,
        instructions=agent.description,
        tools=[SkillTool.of(agent, skill) for skill in agent.skills.values()],
        token_verifier=verifier,
        auth=auth_settings,
    )

    @server.resource(
        card_resource_uri(agent),
        name="agent-card",
        description=f"A2A agent card of {agent.name}",
        mime_type=CARD_RESOURCE_MIME,
    )
    def agent_card() -> str:
        return card_json

    for hook in agent.mcp_hooks:
        hook(server)
    return server
