"""Redact secrets before content is recorded on a span (only when content recording is on)."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["redact", "redacted_json"]

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
