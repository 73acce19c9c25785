"""Who may call what: scopes per caller, from the policy file ``MESH_POLICY`` (TOML).

```toml
[callers.alice]                   # a token's subject, or an API key's name
scopes = ["warehouse:*", "coordinator:ask"]

[callers.coordinator]             # a service that acts for its callers
scopes = ["delegate"]
```

A skill needs the scope ``<agent>:<skill>``; ``*`` matches any agent or skill (``warehouse:*``,
``*:stock_level``, ``*``). A token's own ``scope`` claim can only narrow what the policy grants.
A delegated call (a token naming an actor) is decided on the end user's scopes, and only if the
actor holds ``delegate`` (granted by name: ``*`` does not include it): the acting service lends its reach, never its own powers.
"""

from __future__ import annotations

import contextvars
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from agents.settings import SettingsError
from protocols.credentials import Identity

if TYPE_CHECKING:
    from agents.audit import AuditEvent

__all__ = ["DELEGATE", "Decision", "Gate", "Policy", "current_gate", "skill_scope"]

DELEGATE = "delegate"


def skill_scope(agent: str, skill: str) -> str:
    return f"{agent}:{skill}"


def _matches(granted: frozenset[str], wanted: str) -> bool:
    return any(g == "*" or fnmatchcase(wanted, g) for g in granted)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class Policy:
    callers: dict[str, frozenset[str]]

    @classmethod
    def from_file(cls, path: str | Path) -> Policy:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"MESH_POLICY: cannot read {path}: {exc}") from None
        callers: dict[str, frozenset[str]] = {}
        for subject, entry in (data.get("callers") or {}).items():
            scopes = (entry or {}).get("scopes", [])
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                raise SettingsError(f"MESH_POLICY: callers.{subject}.scopes must be a list of strings")
            callers[subject] = frozenset(scopes)
        return cls(callers)

    def scopes_of(self, subject: str) -> frozenset[str]:
        return self.callers.get(subject, frozenset())

    def allows(self, caller: Identity, scope: str) -> Decision:
        if caller.actor is not None and DELEGATE not in self.scopes_of(caller.actor):  # never by wildcard
            return Decision(False, f"{caller.actor!r} may not act for other callers (no {DELEGATE!r} scope)")
        if not _matches(self.scopes_of(caller.subject), scope):
            return Decision(False, f"{caller.subject!r} does not hold the scope {scope!r}")
        if caller.token_scopes is not None and not _matches(caller.token_scopes, scope):
            return Decision(False, f"the token of {caller.subject!r} is not scoped for {scope!r}")
        return Decision(True)

    def allows_any(self, caller: Identity, agent: str, skills: list[str]) -> bool:
        return any(self.allows(caller, skill_scope(agent, s)).allowed for s in skills)


@dataclass
class Gate:
    """What the skill runtime needs of the guard for one request: may this skill run, and the audit."""

    service: str
    protocol: str
    operation: str
    caller: Identity | None
    policy: Policy | None
    audit: Callable[[AuditEvent], Any] | None
    remote: str | None = None

    def refusal(self, skill: str) -> str | None:
        if self.caller is None or self.policy is None:
            return None
        decision = self.policy.allows(self.caller, skill_scope(self.service, skill))
        return None if decision.allowed else decision.reason

    def record(self, skill: str | None, outcome: str, reason: str = "", status: int | None = None) -> None:
        if self.audit is None:
            return
        from agents.audit import AuditEvent  # the audit store is loaded only where auditing is on

        caller = self.caller
        self.audit(AuditEvent(
            at=datetime.now(timezone.utc), caller=caller.subject if caller else None,
            actor=caller.actor if caller else None, service=self.service, protocol=self.protocol,  # type: ignore[arg-type]
            operation=self.operation, target=skill, outcome=outcome, status=status, reason=reason,  # type: ignore[arg-type]
            trace_id=_trace_id(), remote=self.remote))


def _trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


# The gate of the request being handled (set by protocols.guard, read by agents.runtime).
current_gate: contextvars.ContextVar[Gate | None] = contextvars.ContextVar("mesh_gate", default=None)
