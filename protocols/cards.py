"""A2A agent cards: built from an agent definition, and validated field by field.

A2A 0.3 cards (a foreign agent not yet on 1.0) are read too, through the SDK's compatibility
mapping: the result is a 1.0 ``AgentCard`` whose interfaces say ``protocolVersion`` 0.3.

Validation reports every problem with the JSON path of the field that is wrong, so a registry or
``mesh card`` can say exactly what to fix.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from a2a.client.card_resolver import parse_agent_card
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    APIKeySecurityScheme,
    HTTPAuthSecurityScheme,
)
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError

from agents.definition import Agent
from protocols.mesh_extensions import idempotent_delivery_extension, skill_schemas_extension
from protocols.negotiation import negotiation_extension

__all__ = [
    "A2A_PROTOCOL_VERSION",
    "CardProblem",
    "InvalidCard",
    "build_card",
    "card_json",
    "card_to_dict",
    "is_legacy_card",
    "parse_card",
    "validate_card",
]

A2A_PROTOCOL_VERSION = "1.0"
JSONRPC_PATH = "/"
REST_PATH = "/a2a"
DEFAULT_MODES = ["text/plain", "application/json"]


def build_card(agent: Agent, base_url: str, *, secured: bool = False) -> AgentCard:
    """The card of ``agent`` served at ``base_url``: JSON-RPC at ``/``, HTTP+JSON at ``/a2a``.

    ``secured``: calls need a bearer JWT or an API key, and each skill the scope ``<agent>:<skill>``
    (what ``protocols.guard`` enforces); the card says so, and says nothing when nothing is required.
    """
    base = base_url.rstrip("/")
    skills = [
        AgentSkill(
            id=s.id,
            name=s.name,
            description=s.description,
            tags=list(s.tags) or [s.id],
            examples=list(s.examples),
            input_modes=list(s.input_modes or ()),
            output_modes=list(s.output_modes or ()),
        )
        for s in agent.skills.values()
    ]
    card = AgentCard(
        name=agent.name,
        description=agent.description,
        version=agent.version,
        supported_interfaces=[
            AgentInterface(protocol_binding="JSONRPC", protocol_version=A2A_PROTOCOL_VERSION, url=base + JSONRPC_PATH),
            AgentInterface(protocol_binding="HTTP+JSON", protocol_version=A2A_PROTOCOL_VERSION, url=base + REST_PATH),
        ],
        capabilities=AgentCapabilities(
            streaming=True,
            push_notifications=True,
            extended_agent_card=False,
            extensions=[
                skill_schemas_extension({s.id: s.input_schema for s in agent.skills.values()}),
                negotiation_extension(),  # every agent on this runtime answers calls for proposals
                idempotent_delivery_extension(),
            ],
        ),
        default_input_modes=DEFAULT_MODES,
        default_output_modes=DEFAULT_MODES,
        skills=skills,
    )
    if secured:
        _declare_security(card)
    if agent.provider is not None:
        card.provider.CopyFrom(AgentProvider(organization=agent.provider.organization, url=agent.provider.url))
    if agent.documentation_url:
        card.documentation_url = agent.documentation_url
    return card


BEARER_SCHEME, API_KEY_SCHEME = "bearer", "apiKey"


def _declare_security(card: AgentCard) -> None:
    card.security_schemes[BEARER_SCHEME].http_auth_security_scheme.CopyFrom(HTTPAuthSecurityScheme(
        scheme="Bearer", bearer_format="JWT", description="A JWT for this agent (aud = its name), signed by the mesh"))
    card.security_schemes[API_KEY_SCHEME].api_key_security_scheme.CopyFrom(APIKeySecurityScheme(
        location="header", name="X-API-Key", description="An API key issued for this mesh"))
    for scheme in (BEARER_SCHEME, API_KEY_SCHEME):  # either one will do
        card.security_requirements.add().schemes[scheme].list.extend([])
    for skill in card.skills:
        for scheme in (BEARER_SCHEME, API_KEY_SCHEME):
            skill.security_requirements.add().schemes[scheme].list.append(f"{card.name}:{skill.id}")


def card_to_dict(card: AgentCard) -> dict[str, Any]:
    return MessageToDict(card)


def card_json(card: AgentCard) -> str:
    return json.dumps(card_to_dict(card), indent=2)


@dataclass(frozen=True, slots=True)
class CardProblem:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class InvalidCard(ValueError):
    def __init__(self, problems: list[CardProblem]) -> None:
        super().__init__("invalid agent card: " + "; ".join(map(str, problems)))
        self.problems = problems


def _require_text(card: dict[str, Any], key: str, path: str, problems: list[CardProblem]) -> None:
    value = card.get(key)
    if value is None:
        problems.append(CardProblem(f"{path}.{key}", "is required"))
    elif not isinstance(value, str) or not value.strip():
        problems.append(CardProblem(f"{path}.{key}", "must be a non-empty string"))


def _require_url(value: Any, path: str, problems: list[CardProblem]) -> None:
    if not isinstance(value, str) or not value:
        problems.append(CardProblem(path, "is required and must be a URL string"))
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https", "grpc", "grpcs") and not (parts.scheme == "" and ":" in value):
        problems.append(CardProblem(path, f"must be an absolute http(s) URL, got {value!r}"))
    elif parts.scheme in ("http", "https") and not parts.netloc:
        problems.append(CardProblem(path, f"has no host: {value!r}"))


def _require_list(
    card: dict[str, Any], key: str, path: str, problems: list[CardProblem], *, non_empty: bool = True
) -> list[Any]:
    value = card.get(key)
    if value is None:
        problems.append(CardProblem(f"{path}.{key}", "is required"))
        return []
    if not isinstance(value, list):
        problems.append(CardProblem(f"{path}.{key}", f"must be an array, got {type(value).__name__}"))
        return []
    if non_empty and not value:
        problems.append(CardProblem(f"{path}.{key}", "must not be empty"))
    return value


def validate_card(card: Any) -> list[CardProblem]:
    """Every problem of a card in JSON form (A2A 1.0, or 0.3 when it has a top-level ``url``)."""
    if not isinstance(card, dict):
        return [CardProblem("$", f"an agent card must be a JSON object, got {type(card).__name__}")]
    problems: list[CardProblem] = []
    for key in ("name", "description", "version"):
        _require_text(card, key, "$", problems)
    legacy = is_legacy_card(card)
    if legacy:  # A2A 0.3: one url plus a preferred transport
        _require_url(card.get("url"), "$.url", problems)
        _require_text(card, "protocolVersion", "$", problems)
    else:
        for i, interface in enumerate(_require_list(card, "supportedInterfaces", "$", problems)):
            where = f"$.supportedInterfaces[{i}]"
            if not isinstance(interface, dict):
                problems.append(CardProblem(where, "must be an object"))
                continue
            _require_url(interface.get("url"), f"{where}.url", problems)
            _require_text(interface, "protocolBinding", where, problems)
            _require_text(interface, "protocolVersion", where, problems)
    if not isinstance(card.get("capabilities"), dict):
        problems.append(CardProblem("$.capabilities", "is required and must be an object"))
    for key in ("defaultInputModes", "defaultOutputModes"):
        for i, mode in enumerate(_require_list(card, key, "$", problems)):
            if not isinstance(mode, str) or "/" not in mode:
                problems.append(CardProblem(f"$.{key}[{i}]", f"must be a media type like 'text/plain', got {mode!r}"))
    for i, skill in enumerate(_require_list(card, "skills", "$", problems, non_empty=False)):
        where = f"$.skills[{i}]"
        if not isinstance(skill, dict):
            problems.append(CardProblem(where, "must be an object"))
            continue
        for key in ("id", "name", "description"):
            _require_text(skill, key, where, problems)
        _require_list(skill, "tags", where, problems, non_empty=False)
    if not problems:
        try:
            _to_card(card)
        except ParseError as exc:
            problems.append(CardProblem("$", str(exc)))
    return problems


# Top-level fields of a 0.3 card; a "transitional" card (e.g. the A2A JS SDK 1.x serving 0.3
# clients) has some of them next to supportedInterfaces.
_LEGACY_FIELDS = frozenset({"url", "preferredTransport", "protocolVersion", "additionalInterfaces",
                            "supportsAuthenticatedExtendedCard"})


def is_legacy_card(card: dict[str, Any]) -> bool:
    """An A2A 0.3 card: one top-level ``url`` (plus ``preferredTransport``), no ``supportedInterfaces``."""
    return "supportedInterfaces" not in card and "url" in card


def _to_card(data: dict[str, Any]) -> AgentCard:
    if _LEGACY_FIELDS.intersection(data):
        # The SDK's own 0.3 → 1.0 mapping: url/preferredTransport/additionalInterfaces become
        # supportedInterfaces with the card's protocolVersion (kept when the card lists its own),
        # legacy security fields move, other 0.3-only fields are ignored. It edits what it is given.
        return parse_agent_card(copy.deepcopy(data))
    return ParseDict(data, AgentCard(), ignore_unknown_fields=False)


def parse_card(raw: str | bytes | dict[str, Any]) -> AgentCard:
    """Parse and validate a card (A2A 1.0, or 0.3 mapped to 1.0 with its interfaces marked
    ``protocolVersion`` 0.3, so the SDK client talks 0.3 to them); raises :class:`InvalidCard`
    naming every wrong field."""
    if isinstance(raw, (str, bytes)):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidCard([CardProblem("$", f"not valid JSON: {exc}")]) from None
    else:
        data = raw
    problems = validate_card(data)
    if problems:
        raise InvalidCard(problems)
    return _to_card(data)
