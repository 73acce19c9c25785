"""The coordinator's vocabulary: plans (DAGs of steps), step results, workflows, escalations.

These pydantic models are the boundary of the coordinator: plans arrive as JSON (from rules,
from an LLM, from a caller), and workflows are stored and shown as JSON.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, Field, model_validator

__all__ = [
    "Escalation",
    "Plan",
    "Step",
    "StepResult",
    "StepStatus",
    "WorkflowRecord",
    "WorkflowStatus",
]


class StepStatus(str, enum.Enum):
    """The standard outcome of every step (the A2A task states a step can end in)."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INPUT_REQUIRED = "input-required"
    REJECTED = "rejected"
    SKIPPED = "skipped"


class WorkflowStatus(str, enum.Enum):
    RUNNING = "running"
    INPUT_REQUIRED = "input-required"  # waiting for the customer or for a human (see escalations)
    COMPLETED = "completed"
    FAILED = "failed"
    DEAD_LETTERED = "dead-lettered"  # every option exhausted: kept for `mesh dlq redrive`


class Step(BaseModel):
    """One hand-off: which agent (by name, or found by ``capability``) does what, after which steps.

    Arguments come from, in order of precedence: ``arguments`` (literal values), ``inputs``
    (argument → ``"steps.<id>.<key>"``, ``"session.<key>"``, ``"customer.<key>"`` or ``"request"``)
    and, for the skill's remaining declared arguments, the facts of the steps it depends on, then
    session and long-term memory. An agent receives only the arguments its skill declares; a
    foreign agent (its card has no skill schemas) receives ``text`` and the literal and mapped
    arguments as a plain data part, never our ``{skill, arguments}`` call (docs/foreign-agents.md).
    """

    id: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
    agent: str | None = Field(default=None, description="Agent name in the registry.")
    skill: str | None = Field(default=None, description="Skill id; none: the request text is sent.")
    capability: str | None = Field(
        default=None, description="Free text: candidates come from the registry's search (with negotiate: bids)."
    )
    text: str | None = Field(
        default=None,
        description="Words for agents that are sent text: foreign agents (no skill schemas on their card; they "
        "also get the arguments as a data part) and ours when no skill is named. A template over the step's "
        "arguments and the facts of the steps it depends on, e.g. 'Quote {amount} {currency} in EUR'. "
        "None: the request.",
    )
    arguments: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    negotiate: bool = Field(default=False, description="Award the step by contract net among the candidates.")
    optional: bool = Field(default=False, description="A failure of this step does not fail the workflow.")
    timeout_seconds: float | None = Field(default=None, gt=0)
    min_confidence: float | None = Field(
        default=None, ge=0, le=1, description="Below this the workflow escalates to a human."
    )
    expand: bool = Field(
        default=False, description="The step's output names a playbook (key 'playbook' or 'intent') to run next."
    )

    @model_validator(mode="after")
    def _has_target(self) -> Step:
        if not (self.agent or self.capability):
            raise ValueError(f"step {self.id!r} needs an agent or a capability")
        return self


class Plan(BaseModel):
    """A DAG of steps; ``answer`` is a template of the final reply (``{key}`` from the facts)."""

    name: str = "workflow"
    steps: list[Step] = Field(default_factory=list)
    answer: str | None = None
    escalate: str | None = Field(default=None, description="Hand the request to a human first, for this reason.")

    @model_validator(mode="after")
    def _is_a_dag(self) -> Plan:
        ids = [s.id for s in self.steps]
        duplicates = {i for i in ids if ids.count(i) > 1}
        if duplicates:
            raise ValueError(f"duplicate step ids: {sorted(duplicates)}")
        known = set(ids)
        for step in self.steps:
            missing = [d for d in step.depends_on if d not in known]
            if missing:
                raise ValueError(f"step {step.id!r} depends on unknown steps {missing}")
        order: list[str] = []
        pending = {s.id: set(s.depends_on) for s in self.steps}
        while pending:
            ready = [i for i, deps in pending.items() if deps <= set(order)]
            if not ready:
                raise ValueError(f"steps {sorted(pending)} form a cycle")
            order.extend(sorted(ready))
            for i in ready:
                del pending[i]
        return self

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)


class StepResult(BaseModel):
    """What a step produced, with the metadata every step reports."""

    status: StepStatus
    output: Any = None
    text: str | None = Field(default=None, description="The agent's message (question, reason, answer).")
    confidence: float | None = None
    duration_ms: float | None = None
    started_at: float | None = Field(default=None, description="UNIX time the step was sent.")
    cost: float | None = None
    agent: str | None = None
    instance_url: str | None = None
    task_id: str | None = None
    context_id: str | None = None
    attempts: int = 0
    error: str | None = None


class WorkflowRecord(BaseModel):
    id: str
    status: WorkflowStatus
    request: str
    plan: Plan | None = None
    context_id: str | None = None
    customer_id: str | None = None
    steps: dict[str, StepResult] = Field(default_factory=dict)
    facts: dict[str, Any] = Field(default_factory=dict, description="Learned during this workflow.")
    answer: str | None = None
    error: str | None = None
    hops: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0


class Escalation(BaseModel):
    """A workflow waiting for a human: why, what the human should decide, and the answer once given."""

    id: str
    workflow_id: str
    reason: str
    question: str
    step_id: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    created_at: float = 0.0
    answer: str | None = None
    answered_at: float | None = None
