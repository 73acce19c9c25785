"""What a skill function sees of the request, and the special values it may return or raise.

A skill never touches a wire format: it asks questions, reports progress and emits artifacts
through a :class:`ToolContext`, which each protocol face (A2A, MCP) implements in ``protocols/``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver.exceptions import ToolError

if TYPE_CHECKING:
    from agents.definition import Agent, Skill

__all__ = ["Artifact", "InputNeeded", "Reject", "Reply", "ToolContext", "ToolError"]


@dataclass(frozen=True, slots=True)
class Artifact:
    """An output the agent produces; ``content`` decides the part kind.

    ``str`` → text, ``dict``/``list`` → structured data, ``bytes`` → a file; ``url`` → a file
    by reference. ``append``/``last_chunk`` stream one artifact in several chunks.
    """

    content: str | bytes | dict[str, Any] | list[Any] | None = None
    name: str | None = None
    url: str | None = None
    media_type: str | None = None
    filename: str | None = None
    artifact_id: str | None = None
    append: bool = False
    last_chunk: bool | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.content is None) == (self.url is None):
            raise ValueError("an Artifact needs exactly one of content or url")


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer with a single message (A2A) or plain text content (MCP).

    On A2A the reply is a bare message with no task, unless a task already exists (the skill asked,
    reported progress or emitted an artifact) or ``as_task`` is set: then the task completes with
    this message as its final status message.
    """

    text: str
    as_task: bool = False


class Reject(Exception):
    """Raise to refuse the request: the A2A task ends ``rejected``; MCP gets an error result."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InputNeeded(Exception):
    """Raised by :meth:`ToolContext.ask` when the answer must come in a later message (A2A).

    The runtime turns it into an ``input-required`` task; the follow-up message re-runs the skill,
    and earlier questions are answered from the task history (see ``docs/runtime.md``).
    """

    def __init__(self, question: str) -> None:
        super().__init__(question)
        self.question = question


class ToolContext(abc.ABC):
    """Per-call context handed to a skill that declares a parameter annotated ``ToolContext``."""

    agent: Agent
    skill: Skill

    @property
    @abc.abstractmethod
    def protocol(self) -> str:
        """``"a2a"`` or ``"mcp"``: which face the call came through."""

    @property
    def conversation_id(self) -> str | None:
        """A2A contextId (or ``None``): the key of a conversation across tasks."""
        return None

    @property
    def task_id(self) -> str | None:
        return None

    @property
    def answers(self) -> list[str]:
        """The caller's answers to this call's earlier questions, oldest first (A2A follow-ups)."""
        return []

    @property
    def metadata(self) -> dict[str, Any]:
        """Metadata the caller attached to the request (A2A message metadata, MCP ``_meta``)."""
        return {}

    @property
    def watched(self) -> bool:
        """Is the caller following this call as it runs (an A2A stream, an MCP progress token)?

        Progress costs a round of events and a task-store write on A2A; skip the chatty kind when
        nobody watches. ``progress`` itself always works.
        """
        return True

    @abc.abstractmethod
    async def ask(self, question: str) -> str:
        """Ask the caller a question and return the answer.

        On A2A the task goes to ``input-required`` and the skill runs again, from the start, when the
        answer arrives: code before an ``ask`` must be safe to repeat. On MCP this is an elicitation.
        """

    @abc.abstractmethod
    async def progress(self, message: str, done: float | None = None, total: float | None = None) -> None:
        """Tell the caller how the work is going (A2A ``working`` status, MCP progress)."""

    @abc.abstractmethod
    async def emit(self, artifact: Artifact) -> None:
        """Send an artifact (or a chunk of one) before the skill returns."""
