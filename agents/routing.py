"""The default handler for free-text messages: pick a skill by its words, then fill its arguments.

No model is involved: a skill is scored by the overlap of the message's words with its id, name,
tags, examples and description. A clear winner is called; otherwise the caller is asked which
skill they mean. Required arguments are taken from the text when the skill has a single required
string argument, and asked for one by one otherwise.
"""

from __future__ import annotations

import re
from typing import Any

from agents.context import ToolContext
from agents.definition import Agent, Skill
from agents.policy import current_gate
from agents.runtime import SkillCallError, invoke

__all__ = ["handle_text", "keywords", "rank_skills"]

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be but by can do for from have how i in is it me my of on or our please so "
    "that the this to us we what when where which who why will with would you your".split()
)
# Weights: an exact tag or skill id says more than a word somewhere in the description.
_FIELD_WEIGHTS = (("id", 3.0), ("tags", 3.0), ("name", 2.0), ("examples", 1.5), ("description", 1.0))


def keywords(text: str) -> set[str]:
    """The content words of ``text``, lower-cased and crudely stemmed, without stop words."""
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP}


_words = keywords


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "ed", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _skill_fields(skill: Skill) -> dict[str, set[str]]:
    return {
        "id": _words(skill.id.replace("_", " ")),
        "tags": set().union(*(_words(t) for t in skill.tags)) if skill.tags else set(),
        "name": _words(skill.name),
        "examples": set().union(*(_words(e) for e in skill.examples)) if skill.examples else set(),
        "description": _words(skill.description),
    }


def _callable(agent: Agent) -> list[Skill]:
    """The skills the current caller may call: a caller is only ever routed to (or offered) those."""
    gate = current_gate.get()
    return [s for s in agent.skills.values() if gate is None or gate.refusal(s.id) is None]


def rank_skills(agent: Agent, text: str) -> list[tuple[float, Skill]]:
    """Skills scored against ``text``, best first; only skills with a positive score."""
    words = _words(text)
    ranked = []
    for skill in _callable(agent):
        fields = _skill_fields(skill)
        score = sum(weight * len(words & fields[name]) for name, weight in _FIELD_WEIGHTS)
        if score > 0:
            ranked.append((score, skill))
    ranked.sort(key=lambda pair: (-pair[0], pair[1].id))
    return ranked


def _pick(agent: Agent, text: str) -> Skill | None:
    skills = _callable(agent)
    if len(skills) == 1:
        return skills[0]
    lowered = text.strip().lower()
    for skill in skills:  # the answer to "which one?" is often just the name
        if lowered in (skill.id.lower(), skill.name.lower()):
            return skill
    ranked = rank_skills(agent, text)
    if not ranked:
        return None
    if len(ranked) > 1 and ranked[1][0] >= ranked[0][0] * 0.8:
        return None  # too close to call: ask instead of guessing
    return ranked[0][1]


async def handle_text(agent: Agent, text: str, ctx: ToolContext) -> Any:
    """Route ``text`` to a skill and call it; asks the caller when the choice or an argument is unclear."""
    if not agent.skills:
        raise SkillCallError(f"agent {agent.name!r} has no skills")
    skill = _pick(agent, text)
    if skill is None:
        menu = "; ".join(f"{s.id}: {s.description.splitlines()[0]}" for s in _callable(agent))
        answer = await ctx.ask(f"I'm not sure what you need. I can do: {menu}. Which one?")
        skill = _pick(agent, answer)
        if skill is None:
            raise SkillCallError(f"no skill of agent {agent.name!r} matches {answer!r}")
    return await invoke(skill, await _arguments_from_text(skill, text, ctx), ctx)


async def _arguments_from_text(skill: Skill, text: str, ctx: ToolContext) -> dict[str, Any]:
    properties: dict[str, Any] = skill.input_schema.get("properties", {})
    required = skill.required_arguments
    if len(required) == 1 and properties.get(required[0], {}).get("type") == "string":
        return {required[0]: text}
    if not required and len(properties) == 1:
        (only,) = properties
        if properties[only].get("type") == "string":
            return {only: text}
    arguments: dict[str, Any] = {}
    for name in required:
        spec = properties.get(name, {})
        label = spec.get("description") or spec.get("title") or name
        arguments[name] = await ctx.ask(f"What {label.lower()} should I use for {skill.name.lower()}?")
    return arguments
