"""The compliance agent: finds personal data in text, redacts it, and flags what needs a person.

Redacted: email addresses, phone numbers, payment card numbers (13-19 digits passing the Luhn
check), IBANs (passing the mod-97 check) and secrets ("my password is ..."). Flagged, so the
coordinator hands the case to a person: card numbers, passwords and threatening or abusive
language. Emails and phone numbers are ordinary in a service request and are only redacted.
Patterns and checksums only, no model; the checksums keep order numbers and dates from being taken
for cards or accounts.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import BaseModel, Field

from agents import Agent, Provider

__all__ = ["Screening", "agent", "check_message", "screen"]

agent = Agent(
    "compliance",
    "Compliance agent: screens text for personal data, payment details, secrets and abuse, and redacts it",
    version="1.0.0",
    provider=Provider("agent-mesh customer service", "https://example.com/agent-mesh"),
)


class Screening(BaseModel):
    flagged: bool  # a person must handle this (card number, password, threat or abuse)
    reasons: list[str]  # why it is flagged
    pii_found: list[str]  # kinds: email, phone, payment_card, iban, password
    redacted_request: str
    confidence: float = Field(ge=0, le=1)


_SECRET = re.compile(r"\b(password|passcode|passwd|pin)(\s*(?:is|was|=|:)\s*)(\S+)", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<!\w)\d(?:[ -]?\d){12,18}(?!\w)")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ -]?)?(?:\(\d{1,5}\)[ -]?)?\d(?:[ -]?\d){6,13}(?!\w)")
_ABUSE = re.compile(
    r"\b(?:kill|murder|bomb|stab|shoot you|hurt you|burn (?:\w+ ){1,2}down|i know where you live|threaten\w*"
    r"|idiots?|morons?|scum|bastards?|fuck\w*|cunts?)\b",
    re.IGNORECASE,
)
_FLAGS = {"payment_card": "payment card number", "password": "password or PIN"}


def _luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(int(c) for c in reversed(digits)):
        total += d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2)
    return total % 10 == 0


def _iban_valid(compact: str) -> bool:
    rearranged = compact[4:] + compact[:4]
    return 15 <= len(compact) <= 34 and int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _iban_span(match: re.Match[str]) -> tuple[int, int] | None:
    """The longest prefix of the match that is a valid IBAN (a following word may have been taken in)."""
    text = match.group()
    ends = [i + 1 for i, c in enumerate(text) if c != " "]
    for length in range(len(ends), 14, -1):
        if _iban_valid(text[: ends[length - 1]].replace(" ", "")):
            return match.start(), match.start() + ends[length - 1]
    return None


def _redact(text: str, pattern: re.Pattern[str], token: str, check: Callable[[str], bool]) -> tuple[str, bool]:
    found = False

    def replace(match: re.Match[str]) -> str:
        nonlocal found
        if not check(match.group()):
            return match.group()
        found = True
        return token

    return pattern.sub(replace, text), found


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _redact_ibans(text: str) -> tuple[str, bool]:
    spans = [span for match in _IBAN.finditer(text) if (span := _iban_span(match))]
    for start, end in reversed(spans):
        text = text[:start] + "[IBAN]" + text[end:]
    return text, bool(spans)


def _screen(text: str) -> Screening:
    found: list[str] = []
    redacted, secret = _SECRET.subn(lambda m: m.group(1) + m.group(2) + "[PASSWORD]", text)
    if secret:
        found.append("password")
    steps: list[tuple[str, Callable[[str], tuple[str, bool]]]] = [
        ("email", lambda t: _redact(t, _EMAIL, "[EMAIL]", lambda _: True)),
        ("iban", _redact_ibans),  # before cards and phones: an IBAN is full of digits
        ("payment_card", lambda t: _redact(t, _CARD, "[CARD]", lambda s: _luhn(_digits(s)))),
        ("phone", lambda t: _redact(t, _PHONE, "[PHONE]", lambda s: 9 <= len(_digits(s)) <= 15)),
    ]
    for kind, step in steps:
        redacted, hit = step(redacted)
        if hit:
            found.append(kind)
    reasons = [_FLAGS[kind] for kind in found if kind in _FLAGS]
    if _ABUSE.search(text):
        reasons.append("threatening or abusive language")
    return Screening(
        flagged=bool(reasons),
        reasons=reasons,
        pii_found=found,
        redacted_request=redacted,
        confidence=0.95 if found or reasons else 0.9,
    )


@agent.skill(
    tags=["compliance", "pii", "redaction", "screening"],
    examples=["screen this request for personal data", "my card number is 4111 1111 1111 1111"],
)
def screen(request: str) -> Screening:
    """Screen a customer's request: redact personal data (emails, phones, card numbers, IBANs, passwords)
    and flag what a person must handle (card numbers, passwords, threats or abuse)."""
    return _screen(request)


@agent.skill(tags=["compliance", "outgoing", "message", "check"], examples=["check this message before sending"])
def check_message(text: str) -> Screening:
    """Check an outgoing message the same way before it is sent: personal data, secrets, abusive language."""
    return _screen(text)
