"""Routing: which plan answers a request. Rules first, then the registry's text search, then an LLM.

* **Rules** map keywords (or a regular expression) to a named playbook, a plan written ahead of
  time. A rule with no keywords and no pattern matches everything (a default playbook).
* **Registry search**: the agent whose card best matches the request's words gets the request as
  text (a one-step plan); it routes it to its own skill.
* **LLM planner** (optional, ``MESH_LLM_*``): a model writes a plan over the agents it is shown.

Without an LLM, routing is deterministic. When nothing fits, the coordinator asks the customer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from agents.coordination.catalog import AgentInfo, Directory
from agents.coordination.models import Plan, Step
from agents.routing import keywords

__all__ = ["Route", "Router", "Rule"]


@dataclass(frozen=True, slots=True)
class Rule:
    """``playbook`` when any of ``keywords`` (or ``pattern``) appears; every group of ``all_of`` must hit too."""

    playbook: str
    keywords: tuple[str, ...] = ()
    all_of: tuple[tuple[str, ...], ...] = ()
    pattern: str | None = None

    def matches(self, text: str, words: set[str]) -> bool:
        if self.pattern is not None and not re.search(self.pattern, text, re.IGNORECASE):
            return False
        if self.keywords and not words & keywords(" ".join(self.keywords)):
            return False
        return all(words & keywords(" ".join(group)) for group in self.all_of)


@dataclass(frozen=True, slots=True)
class Route:
    plan: Plan
    mode: str  # "rule", "registry", "llm"
    reason: str


class PlanWriter(Protocol):
    """What the router needs of an LLM planner (see ``agents.coordination.llm_planner``)."""

    async def plan(self, request: str, agents: list[AgentInfo], *, facts: dict[str, Any] | None = None) -> Any: ...


@dataclass
class Router:
    directory: Directory
    playbooks: dict[str, Plan] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    llm: PlanWriter | None = None
    min_search_score: float = 0.0

    def playbook(self, name: str | None) -> Plan | None:
        return self.playbooks.get(name) if name else None

    async def route(self, request: str, facts: dict[str, Any] | None = None) -> Route | None:
        """The plan for ``request``, or None when neither rules, the registry nor the LLM found one."""
        words = keywords(request)
        for rule in self.rules:
            if rule.matches(request, words) and rule.playbook in self.playbooks:
                return Route(self.playbooks[rule.playbook], "rule", f"rule -> playbook {rule.playbook}")
        return await self.fallback(request, facts)

    async def fallback(self, request: str, facts: dict[str, Any] | None = None) -> Route | None:
        """Routing without rules: the registry's text search, then the LLM."""
        words = keywords(request)
        if words:
            found = await self.directory.search(" ".join(sorted(words)))
            best = next((a for a in found if (a.score or 0.0) > self.min_search_score), None)
            if best is not None:
                plan = Plan(name=f"ask {best.name}", steps=[Step(id="answer", agent=best.name)])
                return Route(plan, "registry", f"registry search -> {best.name} (score {best.score or 0:.2f})")
        if self.llm is not None:
            outcome = await self.llm.plan(request, await self.directory.all(), facts=facts)
            plan = getattr(outcome, "plan", None)
            if plan is not None:
                return Route(plan, "llm", "LLM planner")
        return None

    async def capabilities(self) -> str:
        """One line per agent, for asking the customer what they need."""
        agents = await self.directory.all()
        return "; ".join(f"{a.name}: {a.description}" for a in agents) or "nothing yet"
