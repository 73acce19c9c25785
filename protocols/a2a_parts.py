"""Conversions between A2A 1.0 protobuf parts/messages and plain Python values."""

from __future__ import annotations

import json
import uuid
from typing import Any

from a2a.helpers import new_data_part, new_raw_part, new_text_part, new_url_part
from a2a.types import Message, Part, Role
from google.protobuf.json_format import MessageToDict

from agents.context import Artifact

__all__ = ["agent_message", "artifact_parts", "data_of", "message_data", "message_text", "restore_ints"]


def artifact_parts(artifact: Artifact) -> list[Part]:
    """The A2A parts of one of our artifacts; the content's Python type picks the part kind."""
    content = artifact.content
    if artifact.url is not None:
        return [new_url_part(artifact.url, artifact.media_type, artifact.filename)]
    if isinstance(content, str):
        return [new_text_part(content, artifact.media_type)]
    if isinstance(content, bytes):
        return [new_raw_part(content, artifact.media_type or "application/octet-stream", artifact.filename)]
    return [new_data_part(content, artifact.media_type or "application/json")]


def data_of(part: Part) -> Any:
    """The JSON value of a data part; whole-number floats become ints (protobuf stores doubles)."""
    return restore_ints(MessageToDict(part.data))


def restore_ints(value: Any) -> Any:
    """Whole-number floats back to ints, deeply: protobuf Structs store every number as a double."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: restore_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore_ints(v) for v in value]
    return value


def message_text(message: Message) -> str:
    """All text parts joined; without text, the data parts as compact JSON so no content is ignored."""
    texts = [p.text for p in message.parts if p.HasField("text")]
    if texts:
        return "\n".join(texts)
    return "\n".join(json.dumps(data_of(p), separators=(",", ":")) for p in message.parts if p.HasField("data"))


def message_data(message: Message) -> list[Any]:
    return [data_of(p) for p in message.parts if p.HasField("data")]


def agent_message(text: str, *, context_id: str | None = None, task_id: str | None = None) -> Message:
    return Message(
        message_id=str(uuid.uuid4()),
        role=Role.ROLE_AGENT,
        parts=[new_text_part(text)],
        context_id=context_id or "",
        task_id=task_id or "",
    )
