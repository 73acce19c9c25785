"""Reading a server-sent-events stream: events with their id, type and data (comments skipped)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = ["SSEEvent", "sse_events"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    id: str | None
    event: str
    data: str


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[SSEEvent]:
    """The events of an SSE body given line by line (e.g. ``httpx.Response.aiter_lines()``)."""
    fields: dict[str, str] = {}
    async for line in lines:
        if line.startswith(":"):  # a comment, e.g. a keep-alive ping
            continue
        if line:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[name] = fields[name] + "\n" + value if name == "data" and name in fields else value
            continue
        if "data" in fields:  # a blank line ends one event
            yield SSEEvent(fields.get("id"), fields.get("event", "message"), fields["data"])
        fields = {}
