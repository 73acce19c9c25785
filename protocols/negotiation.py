"""The wire format of contract-net negotiation (card extension ``mesh_extensions.NEGOTIATION``).

A call for proposals is an ordinary A2A ``SendMessage`` whose first data part is ``{"cfp": {...}}``.
An agent that declares the extension answers with a bare agent message (no task is created) whose
data part is ``{"bid": {...}}`` or ``{"decline": {"reason": "..."}}``. The objects' fields are the
models of ``agents.negotiation``; this module only wraps and unwraps them (see docs/negotiation.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from a2a.helpers import new_data_part
from a2a.types import AgentExtension, Message, Role

from protocols.a2a_parts import message_data, restore_ints
from protocols.mesh_extensions import NEGOTIATION, declared_extensions

__all__ = [
    "Answer",
    "NegotiationWireError",
    "answer_message",
    "cfp_message",
    "cfp_of",
    "negotiates",
    "negotiation_extension",
    "parse_answer",
]

CFP_KEY, BID_KEY, DECLINE_KEY = "cfp", "bid", "decline"


class NegotiationWireError(ValueError):
    """The agent's reply to a call for proposals carries neither a bid nor a decline."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back: ``kind`` says which, ``data`` is the bid's fields or the decline's."""

    kind: Literal["bid", "decline"]
    data: dict[str, Any]


def negotiation_extension() -> AgentExtension:
    return AgentExtension(
        uri=NEGOTIATION,
        description='Answers calls for proposals: data part {"cfp": {...}} -> {"bid": {...}} or {"decline": {...}}.',
        required=False,
    )


def negotiates(card: dict[str, Any]) -> bool:
    """Whether a card (JSON form) declares that its agent answers calls for proposals."""
    return NEGOTIATION in declared_extensions(card)


def cfp_message(cfp: dict[str, Any]) -> Message:
    """The user message carrying a call for proposals (a fresh message, outside any task)."""
    return _message(Role.ROLE_USER, {CFP_KEY: cfp})


def cfp_of(message: Message | None) -> dict[str, Any] | None:
    """The call for proposals a message carries (its first data part is ``{"cfp": {...}}``), else None."""
    if message is None:
        return None
    data = message_data(message)
    if not data or not isinstance(data[0], dict) or set(data[0]) != {CFP_KEY}:
        return None
    cfp = data[0][CFP_KEY]
    return cfp if isinstance(cfp, dict) else None


def answer_message(kind: Literal["bid", "decline"], data: dict[str, Any], *, context_id: str | None = None) -> Message:
    """The agent's bare reply to a call for proposals."""
    return _message(Role.ROLE_AGENT, {kind: data}, context_id)


def _message(role: Role, data: dict[str, Any], context_id: str | None = None) -> Message:
    # built here rather than with a2a_client.user_message: cards.py imports this module
    return Message(message_id=str(uuid.uuid4()), role=role, parts=[new_data_part(data)], context_id=context_id or "")


def parse_answer(event: dict[str, Any]) -> Answer:
    """The bid or decline in a reply (a StreamResponse in JSON form, as ``A2AConnection.send`` yields)."""
    message = event.get("message")
    if not isinstance(message, dict):
        got = next(iter(event), "nothing")
        raise NegotiationWireError(f"expected a message with a bid or a decline, got a {got}")
    for part in message.get("parts") or []:
        data = part.get("data") if isinstance(part, dict) else None
        if isinstance(data, dict):
            for kind in (BID_KEY, DECLINE_KEY):
                if isinstance(data.get(kind), dict):
                    return Answer(kind, restore_ints(data[kind]))  # type: ignore[arg-type]
    raise NegotiationWireError("the reply carries neither a bid nor a decline")
