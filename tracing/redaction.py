"""Redact secrets before content is recorded on a span (only when content recording is on)."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["mask_values", "redact", "redacted_json", "secret_values"]

_SECRET_KEY = re.compile(r"pass(word|phrase)?|secret|token|api[-_]?key|authori[sz]ation|credential|cookie|private[-_]?key|pin$|cvv|ssn", re.I)
_SECRET_VALUE = re.compile(
    r"(?i)\b(bearer\s+[a-z0-9._~+/=-]{8,}|eyJ[a-z0-9_-]{8,}\.[a-z0-9_-]{8,}\.[a-z0-9_-]+|"
    r"(sk|pk|rk|ghp|gho|xox[abp])[-_][a-z0-9_-]{12,}|AKIA[0-9A-Z]{16})"
)
MASK = "[REDACTED]"
_MAX = 4096


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret-looking keys and values masked."""
    if isinstance(value, dict):
        return {k: MASK if _SECRET_KEY.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _SECRET_VALUE.sub(MASK, value)
    return value


def redacted_json(value: Any) -> str:
    text = json.dumps(redact(value), default=str, ensure_ascii=False)
    return text if len(text) <= _MAX else text[:_MAX] + "…"


def secret_values(value: Any) -> list[str]:
    """The string values held under secret-looking keys anywhere in ``value`` (longest first)."""
    found: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for key, inner in item.items():
                if _SECRET_KEY.search(str(key)) and isinstance(inner, str) and len(inner) >= 4:
                    found.append(inner)
                else:
                    walk(inner)
        elif isinstance(item, (list, tuple)):
            for inner in item:
                walk(inner)

    walk(value)
    return sorted(set(found), key=len, reverse=True)


def mask_values(text: str, values: list[str]) -> str:
    """``text`` with each of ``values`` masked (e.g. a skill's error quoting a password it was given)."""
    for value in values:
        text = text.replace(value, MASK)
    return _SECRET_VALUE.sub(MASK, text)
