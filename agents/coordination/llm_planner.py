"""The optional LLM planner: a model on any OpenAI-compatible endpoint writes a plan over the agents shown.

Third routing mode, after rules and the registry's text search (``agents.coordination.planner``),
configured by ``MESH_LLM_BASE_URL`` + ``MESH_LLM_MODEL`` (+ ``MESH_LLM_API_KEY``,
``MESH_LLM_TIMEOUT_SECONDS``). This module only builds the prompt and judges the answer; the wire
format and the ``chat {model}`` span are ``protocols.openai_chat``.

The model sees the agents (``AgentInfo.describe()``), the *names* of the facts already known
(never their values: customer data stays in the mesh) and the request, and must answer one JSON
object: a plan, or ``{"steps": [], "reason": …}``. The answer is checked like any plan (the
pydantic ``Plan`` is a DAG) and against the mesh (every step names a listed agent and one of its
skills; the answer template only uses ``{name}`` fields). A failed check is sent back to the model
once, with the problem spelled out, and the second answer is final: one repair costs one more call,
a loop could cost many. Whatever the model or the endpoint does, ``plan`` returns a ``PlanOutcome``
and never raises; the whole call, repair included, is bounded by ``MESH_LLM_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import string
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import ValidationError

from agents.coordination.catalog import AgentInfo
from agents.coordination.models import Plan
from agents.settings import MeshSettings
from protocols.openai_chat import ChatError, ChatMessage, ChatResult, chat_completion
from tracing.propagation import traced_httpx

__all__ = ["Declined", "LLMPlanner", "PlanOutcome", "PlanProblem", "interpret"]

log = logging.getLogger("agents.coordination.llm")

PLAN_NAME = "llm-plan"
# What a model may set on a step; the rest of Step (negotiate, expand, timeouts …) stays the
# operator's to write in playbooks.
_STEP_KEYS = ("id", "agent", "skill", "arguments", "inputs", "depends_on")

OutcomeKind = Literal["planned", "declined", "invalid", "unavailable", "timeout", "skipped"]


@dataclass(frozen=True, slots=True)
class PlanOutcome:
    """A validated ``plan``, or none and the ``reason`` why.

    ``kind``: planned; declined (the model said no agent fits); invalid (no usable plan after the
    repair round-trip); unavailable (endpoint down, refused or unreadable); timeout; skipped
    (nothing to plan over). ``calls`` counts the chat completions asked for.
    """

    kind: OutcomeKind
    reason: str
    plan: Plan | None = None
    calls: int = 0

    @property
    def ok(self) -> bool:
        return self.plan is not None


class PlanProblem(ValueError):
    """Why an answer is not a usable plan, worded for the model to fix it."""


@dataclass(frozen=True, slots=True)
class Declined:
    """The model's answer ``{"steps": [], "reason": …}``: no listed agent fits the request."""

    reason: str


def interpret(content: str, agents: list[AgentInfo]) -> Plan | Declined:
    """The plan in a model's answer, or its reason for having none; ``PlanProblem`` when unusable."""
    data = _json_object(content)
    steps = data.get("steps")
    if steps == [] or (steps is None and "reason" in data):
        reason = str(data.get("reason") or "").strip()
        return Declined(reason or "the model proposed no steps and gave no reason")
    if not isinstance(steps, list):
        raise PlanProblem('the object needs "steps": a list of steps (or [] with a "reason")')
    if not all(isinstance(s, dict) for s in steps):
        raise PlanProblem('every item of "steps" must be an object')
    unnamed = [str(s.get("id", i)) for i, s in enumerate(steps) if not s.get("agent")]
    if unnamed:  # checked before Plan, whose message would suggest a capability instead
        raise PlanProblem(f"no agent named in step(s) {', '.join(unnamed)}; every step needs \"agent\": one of "
                          f"{', '.join(sorted(a.name for a in agents))}")
    candidate: dict[str, Any] = {"name": PLAN_NAME, "steps": [{k: s[k] for k in _STEP_KEYS if k in s} for s in steps]}
    if data.get("answer") not in (None, ""):
        candidate["answer"] = data["answer"]
    try:
        plan = Plan.model_validate(candidate)
    except ValidationError as exc:
        raise PlanProblem("; ".join(_describe_error(e) for e in exc.errors())) from exc
    problems = _mesh_problems(plan, {a.name: a for a in agents})
    if plan.answer is not None:
        problems.extend(_template_problems(plan.answer))
    if problems:
        raise PlanProblem("; ".join(problems))
    return plan


class LLMPlanner:
    """Writes plans with a chat model; see the module docstring for the contract."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 20.0,
                 http: httpx.AsyncClient | None = None) -> None:
        self.base_url, self.model, self.timeout = base_url.rstrip("/"), model, timeout
        self._api_key = api_key  # only ever sent as the Authorization header
        self._own_http = http is None
        self._http = http or traced_httpx(timeout=timeout)
        self._json_mode = True  # response_format json_object, until the endpoint refuses it

    @classmethod
    def from_settings(cls, settings: MeshSettings, http: httpx.AsyncClient | None = None) -> LLMPlanner | None:
        """The planner ``MESH_LLM_*`` describes, or None when no endpoint or model is configured."""
        if not (settings.llm_base_url and settings.llm_model):
            return None
        return cls(settings.llm_base_url, settings.llm_model, api_key=settings.llm_api_key,
                   timeout=settings.llm_timeout_seconds, http=http)

    def __repr__(self) -> str:  # never the key
        return f"LLMPlanner({self.base_url!r}, {self.model!r}, api_key={'set' if self._api_key else 'none'})"

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> LLMPlanner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def plan(self, request: str, agents: list[AgentInfo], *, facts: dict[str, Any] | None = None) -> PlanOutcome:
        """A plan for ``request`` over ``agents``, or the reason there is none. Never raises."""
        if not agents:
            return self._no_plan("skipped", "no agents to plan over", 0)
        messages = [ChatMessage(role="system", content=system_prompt(agents, facts)),
                    ChatMessage(role="user", content=request)]
        calls = 0
        try:
            async with asyncio.timeout(self.timeout):
                for attempt in (1, 2):
                    calls += 1
                    result = await self._chat(messages)
                    try:
                        verdict = interpret(result.content, agents)
                    except PlanProblem as problem:
                        detail = _with_finish_reason(str(problem), result)
                        if attempt == 2:
                            return self._no_plan("invalid", f"no valid plan after one repair: {detail}", calls)
                        messages += [ChatMessage(role="assistant", content=result.content or "(empty)"),
                                     ChatMessage(role="user", content=repair_prompt(detail))]
                        continue
                    if isinstance(verdict, Declined):
                        return self._no_plan("declined", f"the model found no plan: {verdict.reason}", calls)
                    log.info("LLM planner: %d-step plan from %s after %d call(s)", len(verdict.steps), self.model, calls)
                    return PlanOutcome("planned", f"planned by {self.model}", verdict, calls)
        except TimeoutError:
            return self._no_plan("timeout", f"no plan within {self.timeout:g} s", calls)
        except ChatError as error:
            kind: OutcomeKind = "timeout" if error.timed_out else "unavailable"
            return self._no_plan(kind, f"LLM endpoint: {error}", calls)
        raise AssertionError("unreachable: the second attempt always returns")

    async def _chat(self, messages: list[ChatMessage]) -> ChatResult:
        try:
            return await chat_completion(self._http, self.base_url, self.model, messages, self._api_key,
                                         response_format_json=self._json_mode, timeout=self.timeout)
        except ChatError as error:
            # Some compatible servers reject response_format json_object with 400; the prompt asks
            # for JSON anyway and the answer is parsed leniently, so go on without it.
            if error.status != 400 or not self._json_mode:
                raise
            log.info("LLM endpoint refused JSON mode (%s); asking without it from now on", error)
            self._json_mode = False
            return await chat_completion(self._http, self.base_url, self.model, messages, self._api_key,
                                         response_format_json=False, timeout=self.timeout)

    def _no_plan(self, kind: OutcomeKind, reason: str, calls: int) -> PlanOutcome:
        log.info("LLM planner: no plan (%s): %s", kind, reason)
        return PlanOutcome(kind, reason, None, calls)


# -- the prompt ---------------------------------------------------------------------------------

_SYSTEM = """\
You plan work for a mesh of AI agents. Turn the customer's request (the next message) into a plan:
steps, each one call of one skill of one agent listed below. Use only these agents and skills,
spelled exactly as shown.

Agents, one a line, with their skills and the arguments each skill takes (JSON):
{agents}

Facts already known, by name: {facts}.
A step's skill receives these, and the outputs of the steps it depends on, for every argument of
the same name, without you writing them; never invent their values.

Reply with one JSON object and nothing else, no prose, no code fence:
{{"steps": [{{"id": "...", "agent": "...", "skill": "...", "arguments": {{}}, "depends_on": []}}], "answer": "..."}}
- "id": unique, short, letters, digits, "_", "-" or ".".
- "arguments": only literal values stated in the request. To pass an output under another
  name, add "inputs": {{"<argument>": "steps.<id>.<output key>"}}.
- "depends_on": ids of the steps whose output this step needs; no cycles.
- "answer" (optional): the reply to the customer once every step is done, with {{name}} for a
  fact or a step output, e.g. "Your ticket {{ticket_id}} is open."
- When no listed agent can help: {{"steps": [], "reason": "<why, in one sentence>"}}.
"""

_REPAIR = """\
That answer is not a usable plan: {problem}.
Reply with the corrected JSON object only (or {{"steps": [], "reason": "..."}} if no listed agent can help)."""


def system_prompt(agents: list[AgentInfo], facts: dict[str, Any] | None = None) -> str:
    """The instructions: the agents as ``describe()`` shows them and the known facts' names only."""
    described = "\n".join(json.dumps(a.describe(), ensure_ascii=False) for a in agents)  # one agent a line
    names = sorted(k for k in (facts or {}) if not str(k).startswith("_"))
    return _SYSTEM.format(agents=described, facts=", ".join(names) if names else "none")


def repair_prompt(problem: str) -> str:
    return _REPAIR.format(problem=problem)


# -- reading and checking the answer -----------------------------------------------------------

_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[A-Za-z]*\s*\n?(.*?)```", re.DOTALL)


def _json_object(content: str) -> dict[str, Any]:
    """The JSON object in an answer, tolerating ```json fences, reasoning blocks and stray prose."""
    text = _THINKING.sub("", content).strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    if not text:
        raise PlanProblem("the answer is empty; a JSON object is needed")
    try:
        data = json.loads(text)
    except ValueError as exc:
        start, end = text.find("{"), text.rfind("}")
        try:
            data = json.loads(text[start:end + 1]) if 0 <= start < end else None
        except ValueError:
            data = None
        if data is None:
            raise PlanProblem(f"the answer is not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise PlanProblem(f"the answer must be a JSON object, not a {type(data).__name__}")
    return data


def _describe_error(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _mesh_problems(plan: Plan, agents: dict[str, AgentInfo]) -> list[str]:
    problems: list[str] = []
    for step in plan.steps:
        agent = agents.get(step.agent or "")
        if agent is None:
            problems.append(f"step {step.id!r}: unknown agent {step.agent!r} (agents: {', '.join(sorted(agents))})")
        elif step.skill is not None and step.skill not in agent.skills:
            problems.append(f"step {step.id!r}: agent {agent.name!r} has no skill {step.skill!r} "
                            f"(its skills: {', '.join(sorted(agent.skills)) or 'none'})")
    return problems


def _template_problems(template: str) -> list[str]:
    """The answer is rendered with ``str.format`` over the facts: only plain ``{name}`` fields work."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return [f"answer: not a valid template ({exc}); write literal braces as {{{{ and }}}}"]
    bad = [f for f in fields if not f.isidentifier()]
    return [f"answer: fields must be plain names like {{ticket_id}}, not {', '.join(map(repr, bad))}"] if bad else []


def _with_finish_reason(problem: str, result: ChatResult) -> str:
    if result.refusal:
        return f"{problem} (the model refused: {result.refusal})"
    if result.finish_reason == "length":
        return f"{problem} (the answer was cut off at the token limit)"
    return problem
