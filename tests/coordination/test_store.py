"""The workflow store on SQLite and PostgreSQL, and the hand-off rules, without processes."""

from __future__ import annotations

import asyncio

import pytest

from agents.coordination.handoff import arguments_for, memorable, render_answer
from agents.coordination.models import Escalation, Plan, Step, StepResult, StepStatus, WorkflowRecord, WorkflowStatus
from agents.coordination.store import WorkflowStore, customer_scope, session_scope

PLAN = Plan(name="order", steps=[
    Step(id="who", agent="crm", skill="lookup"),
    Step(id="slot", agent="slots", skill="book", arguments={"window": "am"}),
    Step(id="order", agent="orders", skill="create", depends_on=["who", "slot"], inputs={"note": "request"}),
], answer="{customer_name}: order {order_id} at {slot}{missing}")


def done(output: dict) -> StepResult:
    return StepResult(status=StepStatus.COMPLETED, output=output, confidence=output.get("confidence"))


@pytest.fixture
async def store(store_url):
    store = WorkflowStore(store_url)
    await store.initialize()
    yield store
    await store.close()


async def test_a_workflow_is_written_step_by_step_and_read_back(store):
    record = WorkflowRecord(id="w1", status=WorkflowStatus.RUNNING, request="book it", plan=PLAN, context_id="c1")
    assert await store.create(record)
    assert not await store.create(record)  # a second start of the same workflow creates nothing
    await store.save_step("w1", "who", done({"customer_name": "Ada", "confidence": 0.9}))
    await store.save_step("w1", "who", done({"customer_name": "Ada L.", "confidence": 0.95}))  # an update
    record.facts["_answers_used"] = 1
    record.status = WorkflowStatus.INPUT_REQUIRED
    await store.save(record)
    loaded = await store.get("w1")
    assert loaded is not None and loaded.plan == PLAN and loaded.status is WorkflowStatus.INPUT_REQUIRED
    assert loaded.steps["who"].output == {"customer_name": "Ada L.", "confidence": 0.95}
    assert loaded.facts == {"_answers_used": 1}
    listed = await store.list(WorkflowStatus.INPUT_REQUIRED)
    assert [w.id for w in listed] == ["w1"] and "who" in listed[0].steps


async def test_one_owner_at_a_time_until_its_lease_runs_out(store):
    await store.create(WorkflowRecord(id="w2", status=WorkflowStatus.RUNNING, request="x"))
    assert await store.claim("w2", "replica-a", 30)
    assert await store.claim("w2", "replica-a", 30)  # renewing is fine
    assert not await store.claim("w2", "replica-b", 30)
    assert await store.orphaned() == []
    await store.release("w2", "replica-a")
    assert await store.orphaned() == ["w2"]
    assert await store.claim("w2", "replica-b", 0.01)
    await asyncio.sleep(0.05)
    assert await store.claim("w2", "replica-a", 30)  # b's lease ran out


async def test_an_escalation_is_answered_once(store):
    escalation = Escalation(id="ESC-1", workflow_id="w3", reason="low confidence", question="ok?")
    await store.add_escalation(escalation)
    assert [e.id for e in await store.open_escalations()] == ["ESC-1"]
    assert await store.answer_escalation("ESC-1", "approved")
    assert not await store.answer_escalation("ESC-1", "rejected")  # the first answer wins
    assert (await store.escalation("ESC-1")).answer == "approved"
    assert await store.open_escalations() == []
    assert [e.id for e in await store.escalations_of("w3")] == ["ESC-1"]


async def test_memory_merges_and_survives_concurrent_writers(store):
    scope = customer_scope("1002")
    await asyncio.gather(*(store.remember(scope, {f"k{i}": i, "name": "Alan"}) for i in range(5)))
    remembered = await store.recall(scope)
    assert remembered["name"] == "Alan" and len(remembered) >= 2
    assert await store.recall(session_scope("nobody")) == {}


def test_an_agent_receives_only_what_its_skill_declares():
    record = WorkflowRecord(id="w", status=WorkflowStatus.RUNNING, request="please book", plan=PLAN)
    record.steps = {"who": done({"customer_name": "Ada", "account_id": "1001", "email": "a@x"}),
                    "slot": done({"slot": "Tue am", "address": "1 Main St"})}
    schema = {"properties": {"account_id": {}, "slot": {}, "note": {}, "phone": {}}, "required": ["account_id", "phone"]}
    arguments, missing = arguments_for(PLAN.step("order"), schema, record, {"phone": "555", "email": "old@x"})
    assert arguments == {"account_id": "1001", "slot": "Tue am", "note": "please book", "phone": "555"}
    assert missing == []
    arguments, missing = arguments_for(PLAN.step("order"), schema, record, {})
    assert missing == ["phone"] and "email" not in arguments and "customer_name" not in arguments
    # a step sees only the steps it depends on: "who" knows nothing of the slot
    arguments, _ = arguments_for(PLAN.step("who"), {"properties": {"slot": {}}}, record, {})
    assert arguments == {}


def test_the_answer_template_and_what_is_remembered():
    record = WorkflowRecord(id="w", status=WorkflowStatus.COMPLETED, request="r", plan=PLAN)
    record.steps = {"who": done({"customer_name": "Ada", "confidence": 0.9}), "slot": done({"slot": "Tue am"}),
                    "order": done({"order_id": "ORD-1"})}
    assert render_answer(record, {}) == "Ada: order ORD-1 at Tue am"
    assert memorable(record) == {"customer_name": "Ada", "slot": "Tue am", "order_id": "ORD-1"}


def test_plans_must_be_dags_with_known_steps():
    with pytest.raises(ValueError, match="cycle"):
        Plan(steps=[Step(id="a", agent="x", depends_on=["b"]), Step(id="b", agent="x", depends_on=["a"])])
    with pytest.raises(ValueError, match="unknown steps"):
        Plan(steps=[Step(id="a", agent="x", depends_on=["zz"])])
    with pytest.raises(ValueError, match="needs an agent or a capability"):
        Step(id="a")
