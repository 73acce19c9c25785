"""W3C trace context on every hop: injected by our HTTP clients, extracted by every mesh server.

``traceparent``/``tracestate``/``baggage`` travel as HTTP headers on A2A calls, registry calls and
push notifications; MCP carries them in ``params._meta`` (the mcp SDK does it). A span context can
also be kept as a ``traceparent`` string (in a task's metadata) and turned back into a span link
when the work resumes later.
"""

from __future__ import annotations

from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ExtractTraceContext", "current_traceparent", "inject_trace_headers", "link_from_traceparent", "traced_httpx"]


async def inject_trace_headers(request: httpx.Request) -> None:
    """httpx request hook: carry the current trace context to the server."""
    propagate.inject(request.headers)


def traced_httpx(**options: Any) -> httpx.AsyncClient:
    """An httpx client that propagates the trace context of whatever calls it."""
    hooks = options.pop("event_hooks", {})
    hooks.setdefault("request", []).append(inject_trace_headers)
    return httpx.AsyncClient(event_hooks=hooks, **options)


class ExtractTraceContext:
    """ASGI middleware: the caller's trace context becomes the parent of the request's spans."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if "traceparent" not in carrier:
            await self.app(scope, receive, send)
            return
        token = otel_context.attach(propagate.extract(carrier))
        try:
            await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)


def current_traceparent() -> str | None:
    """The current span context as a ``traceparent`` value, to store and link to later."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def link_from_traceparent(traceparent: str | None) -> Link | None:
    if not traceparent:
        return None
    span_context = trace.get_current_span(propagate.extract({"traceparent": traceparent})).get_span_context()
    return Link(span_context) if span_context.is_valid else None
