"""Hand-off with context: what each step's agent receives, and what the workflow learns from it.

Facts come from three memories: long-term (per customer), session (per A2A contextId) and the
workflow's own (answers, human notes, outputs of earlier steps). A step sees the outputs of the
steps it depends on (directly or not), later ones winning; its agent receives only the arguments
its skill declares, so nothing else about the customer leaves the coordinator.
"""

from __future__ import annotations

import string
from typing import Any

from agents.coordination.models import Plan, Step, StepResult, StepStatus, WorkflowRecord

__all__ = ["arguments_for", "known_facts", "memorable", "render_answer", "step_text", "summary", "upstream"]

# Keys that describe a step's own result rather than the customer: not carried between requests.
_NOT_MEMORABLE = frozenset({"confidence", "question", "intent", "playbook", "flagged", "reasons", "status", "note",
                            "redacted_request", "pii_found", "available", "cost"})


def upstream(plan: Plan, step: Step) -> list[str]:
    """Ids of every step ``step`` depends on, directly or not, in plan order."""
    wanted: set[str] = set()
    stack = list(step.depends_on)
    while stack:
        current = stack.pop()
        if current not in wanted:
            wanted.add(current)
            stack.extend(plan.step(current).depends_on)
    return [s.id for s in plan.steps if s.id in wanted]


def _merge(target: dict[str, Any], source: Any) -> None:
    if isinstance(source, dict):
        target.update({k: v for k, v in source.items() if v is not None and not str(k).startswith("_")})


def known_facts(record: WorkflowRecord, memory: dict[str, Any], step_ids: list[str] | None = None) -> dict[str, Any]:
    """Memory, then the workflow's own facts, then the outputs of ``step_ids`` (all completed steps: None)."""
    facts: dict[str, Any] = {}
    _merge(facts, memory)
    _merge(facts, record.facts)
    plan_order = [s.id for s in record.plan.steps] if record.plan else list(record.steps)
    for step_id in plan_order if step_ids is None else step_ids:
        result = record.steps.get(step_id)
        if result is not None and result.status is StepStatus.COMPLETED:
            _merge(facts, result.output)
    facts.setdefault("request", record.request)
    return facts


def _resolve(path: str, record: WorkflowRecord, memory: dict[str, Any]) -> Any:
    """``steps.<id>.<key>``, ``session.<key>`` / ``customer.<key>`` (both: memory), ``request``, or a fact name."""
    head, _, rest = path.partition(".")
    if head == "request" and not rest:
        return record.request
    if head == "steps":
        step_id, _, key = rest.partition(".")
        result = record.steps.get(step_id)
        output = result.output if result is not None else None
        return output.get(key) if isinstance(output, dict) and key else output
    if head in ("session", "customer"):
        return memory.get(rest)
    return record.facts.get(path, memory.get(path))


def arguments_for(step: Step, schema: dict[str, Any] | None, record: WorkflowRecord,
                  memory: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The arguments to send and the required ones nobody knows yet (to ask the customer).

    Without a schema (a foreign agent), only literal and mapped arguments are sent.
    """
    arguments = dict(step.arguments)
    for name, path in step.inputs.items():
        value = _resolve(path, record, memory)
        if value is not None:
            arguments[name] = value
    if schema is None:
        return arguments, []
    assert record.plan is not None
    facts = known_facts(record, memory, upstream(record.plan, step))
    properties: dict[str, Any] = schema.get("properties", {})
    for name in properties:
        if name not in arguments and name in facts:
            arguments[name] = facts[name]
    declared = {k: v for k, v in arguments.items() if k in properties}
    missing = [n for n in schema.get("required", []) if n not in declared]
    return declared, missing


def memorable(record: WorkflowRecord) -> dict[str, Any]:
    """What a finished workflow teaches the session and the customer's long-term memory."""
    facts = known_facts(record, {})
    return {k: v for k, v in facts.items()
            if k not in _NOT_MEMORABLE and k != "request" and isinstance(v, (str, int, float, bool))}


class _Lenient(dict):  # a missing key renders as nothing rather than failing the whole answer
    def __missing__(self, key: str) -> str:
        return ""


def _render(template: str, values: dict[str, Any]) -> str:
    return string.Formatter().vformat(template, (), _Lenient(values))


def step_text(step: Step, arguments: dict[str, Any], record: WorkflowRecord) -> str:
    """The words sent to an agent that is given text: the step's ``text`` template over the facts of
    the steps it depends on and its arguments (these win), else the request (as the customer refined it)."""
    if step.text is None:
        return str(record.facts.get("request", record.request))
    facts = known_facts(record, {}, upstream(record.plan, step)) if record.plan is not None else {}
    return _render(step.text, {**facts, **arguments})


def render_answer(record: WorkflowRecord, memory: dict[str, Any]) -> str:
    """The reply to the customer: the plan's template over every fact, else the last step's words."""
    plan = record.plan
    if plan is not None and plan.answer:
        return _render(plan.answer, known_facts(record, memory))
    finished = [record.steps[s.id] for s in (plan.steps if plan else []) if s.id in record.steps]
    for result in reversed(finished):
        if result.status is StepStatus.COMPLETED:
            if result.text:
                return result.text
            if isinstance(result.output, str):
                return result.output
            if result.output is not None:
                return _describe(result.output)
    return "Done."


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in value.items() if not isinstance(v, (dict, list)))
    return str(value)


def summary(result: StepResult) -> dict[str, Any]:
    """A step as shown to callers and operators (no outputs: those may hold customer data)."""
    return {
        "status": result.status.value, "agent": result.agent, "confidence": result.confidence,
        "duration_ms": result.duration_ms, "started_at": result.started_at, "cost": result.cost, "attempts": result.attempts, "error": result.error,
    }
