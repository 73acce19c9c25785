"""Read what an agent answered: one A2A response (JSON form) as a state, an output and a text.

The coordinator treats every agent the same way through this: a task's state, the value of its
artifacts (a single data part becomes that value; text parts become text) and its status message.
Foreign agents' answers read the same: A2A 0.3 answers arrive already converted to 1.0 by the
SDK's 0.3 transports (``kind`` dropped, ``input-required`` → ``TASK_STATE_INPUT_REQUIRED``, 0.3
``unknown`` → no state), and an agent that puts its result in the status message rather than in
an artifact (common with 0.3 agents) still gives that data as the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocols.a2a_parts import restore_ints

__all__ = ["TERMINAL_STATES", "CallOutcome", "outcome_of"]

TERMINAL_STATES = frozenset({"completed", "failed", "rejected", "canceled", "input-required", "auth-required"})


@dataclass(slots=True)
class CallOutcome:
    """``state`` is the task state without its prefix (``completed``, ``input-required``…); a bare
    message reply counts as ``completed``."""

    state: str
    output: Any = None
    text: str | None = None
    task_id: str | None = None
    context_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


def _state(raw: str | None) -> str:
    return (raw or "unknown").removeprefix("TASK_STATE_").lower().replace("_", "-")


def _parts_value(parts: list[dict[str, Any]]) -> tuple[Any, str | None]:
    data = [restore_ints(p["data"]) for p in parts if "data" in p]
    texts = [p["text"] for p in parts if "text" in p]
    text = "\n".join(texts) if texts else None
    if len(data) == 1:
        return data[0], text
    if data:
        return data, text
    return text, text


def outcome_of(event: dict[str, Any]) -> CallOutcome:
    """The outcome of the last response of a send (``task``, ``message`` or ``statusUpdate`` form)."""
    if "message" in event:
        message = event["message"]
        value, text = _parts_value(message.get("parts", []))
        return CallOutcome("completed", value, text, message.get("taskId") or None, message.get("contextId") or None,
                           restore_ints(message.get("metadata") or {}))
    task = event.get("task") or event.get("statusUpdate") or {}
    status = task.get("status", {})
    status_parts = status.get("message", {}).get("parts", [])
    status_value, status_text = _parts_value(status_parts)
    outputs = [_parts_value(a.get("parts", [])) for a in task.get("artifacts", [])]
    values = [v for v, _ in outputs if v is not None]
    output = values[0] if len(values) == 1 else (values or None)
    if output is None and any("data" in p for p in status_parts):
        output = status_value
    texts = [t for _, t in outputs if t]
    return CallOutcome(
        _state(status.get("state")),
        output,
        status_text or ("\n".join(texts) if texts else None),
        task.get("id") or task.get("taskId"),
        task.get("contextId"),
        restore_ints(task.get("metadata") or {}),
    )
