"""A local fake of an OpenAI-compatible endpoint, for tests only: real HTTP on 127.0.0.1, scripted answers.

    async with FakeLLM(replies=['{"steps": []}']) as llm:     # base URL: llm.base_url (ends in /v1)
        ...
        llm.requests[0].system                                 # what the client sent

Serves ``POST /v1/chat/completions`` and ``GET /v1/models`` in the shape of the real API (id,
object, created, model, choices[{index, message{role, content}, finish_reason}], usage). Each
completion takes the next scripted ``Reply`` (or plain string: the answer's content), or asks
``respond(request)`` when the queue is empty; with neither it answers 500, so a test that gets
more calls than it scripted fails loudly. A ``Reply`` can also be an HTTP error, a slow answer, a
body that is not JSON, or a truncated answer. With ``api_key`` set, a missing or wrong
``Authorization: Bearer`` gets 401 like the real thing. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from protocols.serving import bind_socket, serve_asgi
from tests.support import serving

__all__ = ["FakeLLM", "Received", "Reply"]


@dataclass
class Reply:
    """One scripted answer: ``content`` with ``finish_reason``, or an HTTP ``status`` with ``error``."""

    content: str | None = ""
    status: int = 200
    error: str = "scripted failure"
    delay: float = 0.0  # seconds before answering (a client with a shorter timeout gives up)
    finish_reason: str = "stop"
    raw_body: str | None = None  # sent as is, instead of a completion (e.g. not JSON at all)

    @classmethod
    def json(cls, value: Any, **options: Any) -> Reply:
        return cls(json.dumps(value), **options)

    @classmethod
    def fenced(cls, value: Any) -> Reply:
        """The way chatty models answer: prose and a ```json fenced block."""
        return cls(f"Here is the plan:\n```json\n{json.dumps(value, indent=2)}\n```\n")

    @classmethod
    def failure(cls, status: int = 500, error: str = "The server had an error while processing your request.") -> Reply:
        return cls(None, status=status, error=error)

    @classmethod
    def slow(cls, seconds: float, content: str = '{"steps": []}') -> Reply:
        return cls(content, delay=seconds)


@dataclass
class Received:
    """A request the fake received: the JSON body and the headers (lower-case names)."""

    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    @property
    def system(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m.get("role") == "system")

    @property
    def last_user(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m.get("role") == "user"), "")


@dataclass
class FakeLLM:
    replies: list[Reply | str] = field(default_factory=list)
    respond: Callable[[Received], Reply | str] | None = None
    api_key: str | None = None
    model_version: str | None = None  # the "model" answered; default: the requested one
    requests: list[Received] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._script: deque[Reply | str] = deque(self.replies)
        self._ids = itertools.count(1)
        self._closing = asyncio.Event()
        self.app = Starlette(routes=[
            Route("/v1/chat/completions", self._completions, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
        ])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply | str) -> None:
        self._script.extend(replies)

    async def __aenter__(self) -> FakeLLM:
        self._running = self._run()
        await self._running.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._closing.set()  # wake slow replies, so shutdown does not wait for them
        await self._running.__aexit__(*exc)

    @contextlib.asynccontextmanager
    async def _run(self) -> AsyncIterator[None]:
        sock = bind_socket("127.0.0.1", self.port)
        self.port = sock.getsockname()[1]
        async with serving(lambda ready: serve_asgi(self.app, sock, "warning", lambda: ready(None)), "fake LLM"):
            yield

    # -- the API -------------------------------------------------------------------------------

    def _unauthorized(self, request: Request) -> Response | None:
        if self.api_key is None or request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")

    async def _models(self, request: Request) -> Response:
        if (refused := self._unauthorized(request)) is not None:
            return refused
        model = self.model_version or "fake-model"
        return JSONResponse({"object": "list", "data": [
            {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "agent-mesh-tests"}]})

    async def _completions(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        received = Received(body, {k.lower(): v for k, v in request.headers.items()})
        self.requests.append(received)
        if (refused := self._unauthorized(request)) is not None:
            return refused
        if not isinstance(body.get("messages"), list) or not body.get("model"):
            return _error(400, "'model' and 'messages' are required.", "invalid_request_error")
        reply = self._next(received)
        if reply.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), reply.delay)
        if reply.raw_body is not None:
            return Response(reply.raw_body, status_code=reply.status, media_type="application/json")
        if reply.status != 200:
            return _error(reply.status, reply.error, "server_error" if reply.status >= 500 else "invalid_request_error")
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        completion_tokens = len((reply.content or "").split())
        return JSONResponse({
            "id": f"chatcmpl-fake{next(self._ids):04d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_version or body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content, "refusal": None},
                         "logprobs": None, "finish_reason": reply.finish_reason}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
            "system_fingerprint": "fp_fake",
        })

    def _next(self, received: Received) -> Reply:
        if self._script:
            reply = self._script.popleft()
        elif self.respond is not None:
            reply = self.respond(received)
        else:
            return Reply.failure(500, "fake LLM: no scripted reply left for this request")
        return Reply(reply) if isinstance(reply, str) else reply


def _error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status)
