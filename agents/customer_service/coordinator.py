"""The customer-service coordinator: the generic coordinator plus this mesh's playbooks.

Every request is triaged first (intent and compliance screening in parallel); the intent agent's
answer names the playbook that follows. An unknown intent falls back to the registry's search,
then the LLM planner if one is configured, then a question to the customer.
"""

from __future__ import annotations

from agents.coordination.coordinator import Coordinator
from agents.coordination.models import Plan, Step
from agents.coordination.planner import Rule

__all__ = ["PLAYBOOKS", "RULES", "agent", "coordinator"]


def _service_order(name: str, kind: str, answer: str) -> Plan:
    return Plan(
        name=name,
        steps=[
            Step(id="customer", agent="customers", skill="lookup_customer"),
            Step(id="eligibility", agent="eligibility", skill="check_availability", min_confidence=0.6),
            Step(id="booking", agent="scheduling", skill="book_installation", depends_on=["eligibility"]),
            Step(id="order", agent="workflow", skill="create_order", depends_on=["customer", "booking"],
                 arguments={"kind": kind}),
            Step(id="confirmation", agent="notification", skill="send_confirmation", depends_on=["order", "customer"]),
        ],
        answer=answer,
    )


PLAYBOOKS: dict[str, Plan] = {
    "triage": Plan(name="customer request", steps=[
        Step(id="intent", agent="intent", skill="classify", expand=True),
        Step(id="screening", agent="compliance", skill="screen"),
    ]),
    "move_service": _service_order(
        "move service", "move",
        "All set, {customer_name}: your {service} moves to {address}. An engineer is booked for {slot} "
        "(order {order_id}), and we've sent the confirmation to {email}."),
    "new_service": _service_order(
        "new service", "new",
        "Thank you, {customer_name}: {service} at {address} is ordered. Installation is booked for {slot} "
        "(order {order_id}); the confirmation is on its way to {email}."),
    "faq": Plan(name="question", steps=[Step(id="answer", agent="knowledge", skill="search_faq")], answer="{answer}"),
    "human": Plan(name="person", escalate="the customer asked to speak to a person"),
    "cancel": Plan(name="cancellation", escalate="cancellations are handled by the retention team"),
}

RULES = [
    Rule("human", keywords=("human", "person", "representative", "someone real")),
    Rule("triage"),  # everything else: the intent agent decides
]

coordinator = Coordinator(
    "coordinator",
    "Customer-service coordinator: moves, new services, questions and escalations, across the mesh's agents",
    playbooks=PLAYBOOKS,
    rules=RULES,
)
agent = coordinator.agent
