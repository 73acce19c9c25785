"""The intent agent: what a customer wants (the coordinator's playbook) and the facts in the request.

Deterministic rules, no model: a request is sorted by the words it uses, and the account number,
address and service are pulled out with patterns, so later steps can be filled from them. The
address and service normalisers live here and are shared with the eligibility agent, so both agents
agree on what "12 oak st" means.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from agents import Agent, Provider

__all__ = [
    "Classification",
    "agent",
    "classify",
    "find_account",
    "find_address",
    "find_service",
    "normalise_address",
    "normalise_service",
]

agent = Agent(
    "intent",
    "Intent agent: classifies customer requests and extracts the account number, address and service",
    version="1.0.0",
    provider=Provider("agent-mesh customer service", "https://example.com/agent-mesh"),
)

Intent = Literal["move_service", "new_service", "faq", "human", "cancel", "unknown"]


class Classification(BaseModel):
    intent: Intent
    playbook: Intent  # the coordinator's playbook for this intent: the same name
    confidence: float = Field(ge=0, le=1)
    account_id: str | None = None
    address: str | None = None
    service: str | None = None
    question: str


# -- extraction -----------------------------------------------------------------------------------

_STREET_SUFFIXES = {
    "street": "Street", "st": "Street", "road": "Road", "rd": "Road", "avenue": "Avenue", "ave": "Avenue",
    "lane": "Lane", "ln": "Lane", "close": "Close", "cl": "Close", "drive": "Drive", "dr": "Drive",
    "way": "Way", "court": "Court", "ct": "Court", "place": "Place", "pl": "Place",
}  # fmt: skip
# House number, one to three capitalised words, a street suffix (any case): "12 Oak Street", "7 mill rd" is not.
_ADDRESS = re.compile(
    r"\b(\d{1,5}[A-Za-z]?),?\s+((?:[A-Z][A-Za-z'-]*\s+){1,3}?)(?i:(" + "|".join(_STREET_SUFFIXES) + r"))\b\.?"
)
_ACCOUNT = re.compile(
    r"\b(?:account|acct|a/c|customer)\b\.?(?:\s*(?:no|number|num|nr|id|is)\b\.?)*\s*[:#]?\s*(\d{3,12})\b",
    re.IGNORECASE,
)
_SERVICES = {
    "broadband": "broadband", "internet": "broadband", "wifi": "broadband", "wi-fi": "broadband",
    "fibre": "broadband", "fiber": "broadband", "tv": "tv", "television": "tv",
    "phone": "phone", "landline": "phone", "telephone": "phone",
}  # fmt: skip
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z]+)?")


def find_account(text: str) -> str | None:
    """The account number in ``text`` ("account 1002", "acct no. 1002", "account #1002"), digits only."""
    match = _ACCOUNT.search(text)
    return match.group(1) if match else None


def find_address(text: str) -> str | None:
    """The first street address in ``text``, normalised ("12 Oak St." → "12 Oak Street")."""
    match = _ADDRESS.search(text)
    if match is None:
        return None
    number, name, suffix = match.groups()
    return normalise_address(f"{number} {name.strip()} {suffix}")


def normalise_address(address: str) -> str:
    """One spelling per address: words capitalised, postcodes upper-case, the street suffix spelt out."""
    parts = [" ".join(part.split()) for part in address.strip().strip(".").split(",")]
    parts = [part for part in parts if part]
    if not parts:
        return ""
    street = [_capitalise(word.rstrip(".")) for word in parts[0].split()]
    if len(street) > 1 and street[-1].lower() in _STREET_SUFFIXES:
        street[-1] = _STREET_SUFFIXES[street[-1].lower()]
    rest = [" ".join(_capitalise(word) for word in part.split()) for part in parts[1:]]
    return ", ".join([" ".join(street), *rest])


def _capitalise(word: str) -> str:
    return word.upper() if any(c.isdigit() for c in word) else word[:1].upper() + word[1:].lower()


def find_service(text: str) -> str | None:
    """The first service the text names: broadband (internet, wifi), tv or phone (landline)."""
    for token in _TOKEN.findall(text.lower()):
        if token in _SERVICES:
            return _SERVICES[token]
    return None


def normalise_service(service: str) -> str:
    """"Internet" → "broadband", "landline" → "phone"; an unknown name is returned lower-cased."""
    return find_service(service) or service.strip().lower()


# -- classification -------------------------------------------------------------------------------

_HUMAN_ALWAYS = {"human", "representative", "manager", "operator", "supervisor"}
_HUMAN_WITH_VERB = {"person", "agent", "someone", "somebody", "advisor", "adviser", "staff"}
_TALK = {"speak", "talk", "chat", "transfer", "connect", "put", "escalate", "real"}
_MOVE = {"move", "moved", "moving", "relocate", "relocated", "relocating", "relocation"}
_CANCEL = {"cancel", "cancelling", "canceling", "cancellation", "cancelled", "terminate", "terminating"}
_NEW = {"new", "sign", "signup", "order", "buy", "join", "subscribe", "add", "install", "get", "want", "like"}
_PROBLEM = {"slow", "down", "broken", "outage", "fault", "working", "problem", "issue", "light", "lights",
            "error", "dropping", "drops", "red", "flashing", "blinking"}  # fmt: skip
_TOPICS = _PROBLEM | {
    "router", "bill", "bills", "billing", "invoice", "pay", "payment", "payments", "paying", "speed", "speeds",
    "fast", "installation", "engineer", "price", "prices", "cost", "contract", "password", "debit", "card",
    "charge", "charged", "refund", "help", "date", "day", "hours", "open",
}  # fmt: skip
_QUESTION_WORDS = {"how", "what", "when", "why", "where", "which", "who", "can", "could", "do", "does", "is",
                   "are", "will", "should", "would"}  # fmt: skip
# Words any real request uses; a request with none of them is taken for gibberish.
_COMMON = (
    _HUMAN_ALWAYS | _HUMAN_WITH_VERB | _TALK | _MOVE | _CANCEL | _NEW | _TOPICS | _QUESTION_WORDS | set(_SERVICES)
    | set(
        "a about after again all am an and any as at be been before but by can't cannot did didn't doesn't don't "
        "for from go going got had has have having he hello hi her here hey him his house home i i'd i'm i've if "
        "in into isn't it it's its just know me more much my need needs no not now of off on one or our out over "
        "please same she so some still than thank thanks that the their them then there these they this to too "
        "up us very was we were with won't yes you your account address service services street flat apartment "
        "customer today tomorrow week month time moved month".split()
    )
)


def _is_gibberish(words: list[str]) -> bool:
    return not any(word in _COMMON for word in words)


def _sort(
    request: str, tokens: list[str], account: str | None, address: str | None, service: str | None
) -> tuple[Intent, float]:
    """The intent and how sure the rules are of it; the first rule that applies wins."""
    words = set(tokens)
    question = request.rstrip().endswith("?") or tokens[0] in _QUESTION_WORDS
    if words & _HUMAN_ALWAYS or (words & _HUMAN_WITH_VERB and words & _TALK):
        return "human", 0.95
    if words & _MOVE and (service or address):
        return "move_service", min(0.95, 0.7 + 0.1 * bool(address) + 0.1 * bool(account) + 0.05 * bool(service))
    if words & _CANCEL:
        if question and not account:
            return "faq", 0.7  # "how do I cancel?": the knowledge base answers that
        return "cancel", 0.9 if (account or service) else 0.8
    if service and words & _NEW and not words & _PROBLEM:
        return "new_service", 0.85 if address else 0.75
    if words & _TOPICS:
        return "faq", 0.85 if question else 0.7
    if question:
        return "faq", 0.6
    return "unknown", 0.2


@agent.skill(
    tags=["intent", "classification", "routing"],
    examples=[
        "I've moved to 12 Oak Street and need my broadband moved, account 1002",
        "What do the lights on my router mean?",
        "I want to speak to a person",
    ],
)
def classify(request: str) -> Classification:
    """Classify a customer request (move_service, new_service, faq, human, cancel or unknown) and extract
    the account number, address and service it mentions."""
    words = _TOKEN.findall(request.lower())
    account, address, service = find_account(request), find_address(request), find_service(request)
    if _is_gibberish(words):
        intent, confidence = "unknown", 0.0
    else:
        intent, confidence = _sort(request, words, account, address, service)
    return Classification(
        intent=intent,
        playbook=intent,
        confidence=round(confidence, 2),
        account_id=account,
        address=address,
        service=service,
        question=request,
    )
