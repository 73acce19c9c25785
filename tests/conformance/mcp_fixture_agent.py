"""The fixture agent the MCP conformance suite (``@modelcontextprotocol/conformance``) runs against.

Every tool, resource and prompt here is named and shaped as a server scenario of the suite expects
(see each scenario's description: ``conformance list --server``). It is an ordinary ``agents.Agent``
served by the real runtime, so the suite exercises our MCP face (tool wrapping, errors, the Starlette
mount, DNS-rebinding protection, stdio) rather than a bare SDK server.

Skills use our own API where it can express the fixture (``ToolContext.progress``, plain returns,
exceptions); MCP-only behaviour (raw content blocks, logging, sampling, elicitation with a given
schema) goes through the ``ToolContext.mcp`` escape hatch, and MCP-only handlers through
``@agent.on_mcp_server``.

Serve it with ``mesh serve tests.conformance.mcp_fixture_agent:agent`` (add ``--stdio`` for stdio).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import warnings
import wave
import zlib
from typing import Any, Literal

from mcp.server import MCPServer, ServerRequestContext
from mcp.server.mcpserver import Context, UserMessage
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import (
    AudioContent,
    Completion,
    CompletionArgument,
    CompletionContext,
    EmbeddedResource,
    EmptyResult,
    ImageContent,
    PromptReference,
    ResourceTemplateReference,
    SamplingMessage,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    TextResourceContents,
    UnsubscribeRequestParams,
)
from pydantic import BaseModel, Field

from agents import Agent, ToolContext, ToolError
from protocols.mcp_server import MCPToolContext

# The 2025-11-25 scenarios exercise logging and sampling, which the SDK flags as deprecated in 2026-07-28.
warnings.filterwarnings("ignore", r"The (logging|sampling) capability is deprecated", MCPDeprecationWarning)

agent = Agent(
    "mcp-conformance",
    "Fixture tools, resources and prompts for the MCP conformance server suite",
    version="1.0.0",
)


def _png_1x1() -> bytes:
    """A valid 1x1 red PNG, built here so no opaque blob sits in the source."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte + one red pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _wav_silence() -> bytes:
    """A valid WAV file holding one silent 16-bit mono sample."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x00")
    return buffer.getvalue()


PNG_BYTES = _png_1x1()
PNG_B64 = base64.b64encode(PNG_BYTES).decode()
WAV_B64 = base64.b64encode(_wav_silence()).decode()


def _mcp(ctx: ToolContext) -> Context[Any, Any]:
    """The mcp SDK context of an MCP call; these fixtures mean nothing over A2A."""
    if not isinstance(ctx, MCPToolContext):
        raise ToolError(f"{ctx.skill.id} is an MCP conformance fixture: call it through MCP")
    return ctx.mcp


# --- tools ------------------------------------------------------------------------------------


@agent.skill
def test_simple_text() -> str:
    """Returns a simple text response."""
    return "This is a simple text response for testing."


@agent.skill
def test_image_content() -> list[ImageContent]:
    """Returns an image content block (1x1 PNG)."""
    return [ImageContent(type="image", data=PNG_B64, mime_type="image/png")]


@agent.skill
def test_audio_content() -> list[AudioContent]:
    """Returns an audio content block (WAV)."""
    return [AudioContent(type="audio", data=WAV_B64, mime_type="audio/wav")]


@agent.skill
def test_embedded_resource() -> list[EmbeddedResource]:
    """Returns an embedded text resource."""
    resource = TextResourceContents(
        uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
    )
    return [EmbeddedResource(type="resource", resource=resource)]


@agent.skill
def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
    """Returns text, image and embedded resource content together."""
    resource = TextResourceContents(
        uri="test://mixed-content-resource",
        mime_type="application/json",
        text=json.dumps({"test": "data", "value": 123}),
    )
    return [
        TextContent(type="text", text="Multiple content types test:"),
        ImageContent(type="image", data=PNG_B64, mime_type="image/png"),
        EmbeddedResource(type="resource", resource=resource),
    ]


@agent.skill
async def test_tool_with_logging(ctx: ToolContext) -> str:
    """Sends three info log notifications about 50 ms apart."""
    mcp = _mcp(ctx)
    await mcp.info("Tool execution started")
    await asyncio.sleep(0.05)
    await mcp.info("Tool processing data")
    await asyncio.sleep(0.05)
    await mcp.info("Tool execution completed")
    return "Tool with logging executed successfully"


@agent.skill
async def test_tool_with_progress(ctx: ToolContext) -> str:
    """Reports progress 0, 50 and 100 of 100 (through the runtime's own ToolContext.progress)."""
    for step, done in enumerate((0, 50, 100)):
        if step:
            await asyncio.sleep(0.05)
        await ctx.progress(f"Completed step {done} of 100", done, 100)
    return "Tool with progress executed successfully"


@agent.skill
def test_error_handling() -> str:
    """Always fails; the runtime turns the exception into an isError result."""
    raise RuntimeError("This tool intentionally returns an error for testing")


@agent.skill
async def test_sampling(prompt: str, ctx: ToolContext) -> str:
    """Asks the client's LLM (sampling/createMessage) and returns its answer."""
    mcp = _mcp(ctx)
    result = await mcp.session.create_message(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
        max_tokens=100,
        related_request_id=mcp.request_id,  # answer on this call's stream, not the standalone GET stream
    )
    answer = result.content.text if isinstance(result.content, TextContent) else "(no text)"
    return f"LLM response: {answer}"


class UserInfo(BaseModel):
    username: str = Field(description="User's response")
    email: str = Field(description="User's email address")


@agent.skill
async def test_elicitation(message: str, ctx: ToolContext) -> str:
    """Asks the user (elicitation/create) for a username and an email address."""
    result = await _mcp(ctx).elicit(message, UserInfo)
    content = result.data.model_dump_json() if result.action == "accept" else "{}"
    return f"User response: action={result.action}, content={content}"


class ProfileWithDefaults(BaseModel):
    name: str = Field(default="John Doe", description="User name")
    age: int = Field(default=30, description="User age")
    score: float = Field(default=95.5, description="User score")
    status: Literal["active", "inactive", "pending"] = Field(default="active", description="User status")
    verified: bool = Field(default=True, description="Verification status")


@agent.skill
async def test_elicitation_sep1034_defaults(ctx: ToolContext) -> str:
    """Elicits a form whose string, integer, number, enum and boolean fields have defaults (SEP-1034)."""
    result = await _mcp(ctx).elicit("Please provide user information", ProfileWithDefaults)
    content = result.data.model_dump_json() if result.action == "accept" else "{}"
    return f"Elicitation completed: action={result.action}, content={content}"


# The five enum shapes of SEP-1330, written out: titled and legacy variants are not pydantic output.
ENUM_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {
            "type": "string",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
}


@agent.skill
async def test_elicitation_sep1330_enums(ctx: ToolContext) -> str:
    """Elicits a form using every enum variant of SEP-1330."""
    mcp = _mcp(ctx)
    result = await mcp.session.elicit_form(
        "Please choose from each list", ENUM_FORM, related_request_id=mcp.request_id
    )
    return f"Elicitation completed: action={result.action}, content={json.dumps(result.content or {})}"


@agent.skill
async def test_reconnection(ctx: ToolContext) -> str:
    """Closes this call's SSE stream mid-call; the client resumes it with Last-Event-ID (SEP-1699)."""
    mcp = _mcp(ctx)
    await mcp.info("Before disconnect")
    await mcp.close_sse_stream()  # a no-op unless the transport keeps an event store
    await asyncio.sleep(0.2)  # the client reconnects after the advertised retry interval
    await mcp.info("After reconnect")
    return "Reconnection test completed"


def json_schema_2020_12_tool(name: str | None = None, address: dict[str, Any] | None = None) -> str:
    """Tool with JSON Schema 2020-12 features."""
    return f"received name={name!r} address={address!r}"


# Published schema (SEP-1613): a 2020-12 dialect with $defs and additionalProperties, as written by a
# hand-authored schema; arguments are still validated against the function signature.
_schema_tool = agent.add_skill(json_schema_2020_12_tool)
_schema_tool.tool.parameters = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}
    },
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
    "additionalProperties": False,
}


# --- resources ----------------------------------------------------------------------------------


@agent.resource("test://static-text", name="static-text", description="A static text resource", mime_type="text/plain")
def static_text() -> str:
    return "This is the content of the static text resource."


@agent.resource(
    "test://static-binary", name="static-binary", description="A static binary resource (PNG)", mime_type="image/png"
)
def static_binary() -> bytes:
    return PNG_BYTES


@agent.resource(
    "test://template/{id}/data",
    name="template-data",
    description="Data for an id, substituted from the URI",
    mime_type="application/json",
)
def template_data(id: str) -> str:
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@agent.resource(
    "test://watched-resource", name="watched-resource", description="A resource to subscribe to", mime_type="text/plain"
)
def watched_resource() -> str:
    return "Watched resource content"


# --- prompts --------------------------------------------------------------------------------------


@agent.prompt(description="A simple prompt without arguments")
def test_simple_prompt() -> list[UserMessage]:
    return [UserMessage("This is a simple prompt for testing.")]


@agent.prompt(description="A prompt with two required arguments")
def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
    return [UserMessage(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")]


@agent.prompt(description="A prompt embedding the resource it is given")
def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:
    text = "Embedded resource content for testing."
    resource = TextResourceContents(uri=resourceUri, mime_type="text/plain", text=text)
    return [
        UserMessage(EmbeddedResource(type="resource", resource=resource)),
        UserMessage("Please process the embedded resource above."),
    ]


@agent.prompt(description="A prompt with an image")
def test_prompt_with_image() -> list[UserMessage]:
    return [
        UserMessage(ImageContent(type="image", data=PNG_B64, mime_type="image/png")),
        UserMessage("Please analyze the image above."),
    ]


# --- MCP-only handlers ----------------------------------------------------------------------------

subscriptions: set[str] = set()


@agent.on_mcp_server
def register_handlers(server: MCPServer) -> None:
    """logging/setLevel, resources/(un)subscribe and completion/complete.

    MCPServer has no public registration for the first three (the SDK's own everything-server uses
    the low-level server the same way); registering them also advertises the capabilities.
    """

    async def set_level(ctx: ServerRequestContext, params: SetLevelRequestParams) -> EmptyResult:
        return EmptyResult()

    async def subscribe(ctx: ServerRequestContext, params: SubscribeRequestParams) -> EmptyResult:
        subscriptions.add(str(params.uri))
        return EmptyResult()

    async def unsubscribe(ctx: ServerRequestContext, params: UnsubscribeRequestParams) -> EmptyResult:
        subscriptions.discard(str(params.uri))
        return EmptyResult()

    lowlevel = server._lowlevel_server  # noqa: SLF001 - see the docstring
    lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)

    @server.completion()
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion:
        return Completion(values=[], total=0, has_more=False)
