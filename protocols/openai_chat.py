"""The OpenAI chat-completions wire format (the subset the mesh uses), and one traced call to it.

Any OpenAI-compatible endpoint works (OpenAI, Azure OpenAI's v1 API, vLLM, Ollama, llama.cpp,
LM Studio, LiteLLM …): ``POST {base_url}/chat/completions`` with the base URL as the OpenAI SDK
takes it, i.e. ending in ``/v1``. Only non-streaming calls with plain-text message contents are
spoken here; callers decide what the answer means.

Each call is a ``chat {model}`` CLIENT span (OTel GenAI conventions): request and response model,
token usage, finish reasons, ``server.*``; the prompt and the answer only when content recording
is on (``MESH_TRACE_CONTENT``), secrets redacted. The API key goes in ``Authorization: Bearer``
and nowhere else: not on spans, not in errors, not in logs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tracing import content_recording
from tracing import conventions as semconv
from tracing.redaction import redact, redacted_json

__all__ = [
    "ChatCompletion",
    "ChatError",
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "chat_completion",
]

# The GenAI attributes only a chat call uses (the shared ones come from tracing.conventions).
# gen_ai.provider.name is "openai" for any endpoint spoken to with the OpenAI API: the convention
# names the telemetry flavour by the client's best knowledge, not the model's real vendor.
CHAT_PROVIDER = "openai"
REQUEST_MODEL, RESPONSE_MODEL, RESPONSE_ID = "gen_ai.request.model", "gen_ai.response.model", "gen_ai.response.id"
FINISH_REASONS, OUTPUT_TYPE = "gen_ai.response.finish_reasons", "gen_ai.output.type"
INPUT_TOKENS, OUTPUT_TOKENS = "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"
INPUT_MESSAGES, OUTPUT_MESSAGES = "gen_ai.input.messages", "gen_ai.output.messages"

_ERROR_TEXT_MAX = 300


class _Wire(BaseModel):
    # Compatible servers add fields of their own (system_fingerprint, logprobs, timings …).
    model_config = ConfigDict(extra="ignore")


class ChatMessage(_Wire):
    role: Literal["system", "user", "assistant"]
    content: str


class ResponseFormat(_Wire):
    type: Literal["json_object", "text"]


class ChatRequest(_Wire):
    model: str
    messages: list[ChatMessage]
    response_format: ResponseFormat | None = None
    stream: bool = False


class AnswerMessage(_Wire):
    role: str = "assistant"
    content: str | None = None  # null when the model refused or only called tools
    refusal: str | None = None


class Choice(_Wire):
    index: int = 0
    message: AnswerMessage
    finish_reason: str | None = None


class Usage(_Wire):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class ChatCompletion(_Wire):
    id: str | None = None
    object: str | None = None
    created: int | None = None
    model: str | None = None
    choices: list[Choice] = Field(min_length=1)
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class ChatResult:
    """The first choice of a completion, with what the trace and the caller want to know of it."""

    content: str
    finish_reason: str | None
    model: str | None  # as the server reports it (often a dated version of the requested one)
    id: str | None
    input_tokens: int | None
    output_tokens: int | None
    refusal: str | None = None


class ChatError(Exception):
    """The endpoint could not be reached, refused the call, timed out or answered something unreadable.

    ``status`` is the HTTP status when there was one; ``timed_out`` tells a timeout from the rest.
    The message never contains the API key (the server's error text is redacted and shortened).
    """

    def __init__(self, message: str, *, status: int | None = None, timed_out: bool = False) -> None:
        super().__init__(message)
        self.status, self.timed_out = status, timed_out

    @property
    def error_type(self) -> str:
        if self.timed_out:
            return "timeout"
        return str(self.status) if self.status is not None else "unreadable_response"


async def chat_completion(
    http: httpx.AsyncClient,
    base_url: str,
    model: str,
    messages: list[ChatMessage],
    api_key: str | None = None,
    response_format_json: bool = True,
    timeout: float = 20.0,
) -> ChatResult:
    """One non-streaming chat completion; raises ``ChatError`` for anything but a readable answer.

    ``response_format_json`` asks for ``{"type": "json_object"}`` (the prompt must mention JSON);
    a few compatible servers refuse it with 400, so callers may retry without it.
    """
    url = base_url.rstrip("/") + "/chat/completions"
    request = ChatRequest(
        model=model, messages=messages,
        response_format=ResponseFormat(type="json_object") if response_format_json else None,
    )
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    span = _chat_span(model, url, json_output=response_format_json)
    if content_recording():
        span.set_attribute(INPUT_MESSAGES, redacted_json([_semconv_message(m.role, m.content) for m in messages]))
    # The span is current during the call, so traced_httpx clients carry it as the parent.
    with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
        try:
            result = await _post(http, url, request, headers, timeout)
        except ChatError as error:
            semconv.record_error(span, error, error.error_type)
            raise
        except asyncio.CancelledError:  # e.g. the caller's own deadline
            semconv.record_error(span, "cancelled before the answer", "cancelled")
            raise
        _record_result(span, result)
        return result


async def _post(http: httpx.AsyncClient, url: str, request: ChatRequest, headers: dict[str, str],
                timeout: float) -> ChatResult:
    try:
        response = await http.post(url, json=request.model_dump(exclude_none=True), headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise ChatError(f"no answer from {url} within {timeout:g} s", timed_out=True) from exc
    except httpx.HTTPError as exc:
        raise ChatError(f"cannot reach {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise ChatError(f"{url} answered HTTP {response.status_code}: {_error_text(response)}",
                        status=response.status_code)
    try:
        completion = ChatCompletion.model_validate_json(response.content)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(map(str, problem["loc"])) or "body"
        raise ChatError(f"{url} answered something that is not a chat completion ({where}: {problem['msg']})",
                        status=response.status_code) from exc
    choice = completion.choices[0]
    usage = completion.usage or Usage()
    return ChatResult(
        content=choice.message.content or "",
        finish_reason=choice.finish_reason,
        model=completion.model,
        id=completion.id,
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        refusal=choice.message.refusal,
    )


def _error_text(response: httpx.Response) -> str:
    """The server's own error message (OpenAI shape ``{"error": {"message": …}}``), redacted and short."""
    try:
        body: Any = response.json()
    except ValueError:
        text = response.text
    else:
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        text = str(message) if message else response.text
    text = str(redact(" ".join(text.split())))
    return text[:_ERROR_TEXT_MAX] or response.reason_phrase or "no details"


def _chat_span(model: str, url: str, *, json_output: bool) -> trace.Span:
    attributes: dict[str, Any] = {
        semconv.OPERATION: "chat", semconv.PROVIDER_NAME: CHAT_PROVIDER, REQUEST_MODEL: model,
        OUTPUT_TYPE: "json" if json_output else "text",
    }
    target = urlsplit(url)
    if target.hostname:
        attributes[semconv.SERVER_ADDRESS] = target.hostname
        attributes[semconv.SERVER_PORT] = target.port or (443 if target.scheme == "https" else 80)
    return semconv.tracer().start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes)


def _record_result(span: trace.Span, result: ChatResult) -> None:
    if result.model:
        span.set_attribute(RESPONSE_MODEL, result.model)
    if result.id:
        span.set_attribute(RESPONSE_ID, result.id)
    if result.finish_reason:
        span.set_attribute(FINISH_REASONS, (result.finish_reason,))
    if result.input_tokens is not None:
        span.set_attribute(INPUT_TOKENS, result.input_tokens)
    if result.output_tokens is not None:
        span.set_attribute(OUTPUT_TOKENS, result.output_tokens)
    if content_recording():
        output = _semconv_message("assistant", result.content)
        output["finish_reason"] = result.finish_reason or "stop"
        span.set_attribute(OUTPUT_MESSAGES, redacted_json([output]))


def _semconv_message(role: str, content: str) -> dict[str, Any]:
    """A message as the GenAI conventions record it: a role and typed parts."""
    return {"role": role, "parts": [{"type": "text", "content": content}]}
