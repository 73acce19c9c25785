"""A coordinator with one playbook over the test agents (see mesh_agents.py)."""

from agents.coordination.coordinator import Coordinator
from agents.coordination.models import Plan, Step
from agents.coordination.planner import Rule

ORDER = Plan(
    name="order",
    steps=[
        Step(id="customer", agent="crm", skill="lookup_customer"),
        Step(id="slot", agent="slots", skill="book_slot"),
        Step(id="order", agent="orders", skill="create_order", depends_on=["customer", "slot"]),
        Step(id="confirm", agent="notify", skill="send_confirmation", depends_on=["order", "customer"]),
    ],
    answer="Booked {slot} for {customer_name}: order {order_id}, confirmation sent to {sent_to}.",
)

agent = Coordinator(
    "coordinator", playbooks={"order": ORDER, "person": Plan(name="person", escalate="the customer asked for a person")},
    rules=[Rule("person", keywords=("person", "human")), Rule("order", keywords=("order", "install"))],
).agent

# Two coordinators that hand a request to each other: hierarchical delegation, and a loop the hop limit stops.
ping = Coordinator("ping", playbooks={"relay": Plan(name="relay", steps=[Step(id="relay", agent="pong")])},
                   rules=[Rule("relay")]).agent
pong = Coordinator("pong", playbooks={"relay": Plan(name="relay", steps=[Step(id="relay", agent="ping")])},
                   rules=[Rule("relay", keywords=("loop",))]).agent
