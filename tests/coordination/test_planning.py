"""The third routing mode and negotiation, over real processes.

* Nothing in the rules or the registry fits: the LLM planner (a local fake OpenAI-compatible
  server) writes the plan, and the coordinator runs it.
* A step awarded by contract net: the agents bid, the best bid gets the task, and when the
  winner fails the next bidder does it.
"""

from __future__ import annotations

import json

import pytest

from tests.coordination.support import AGENTS, Mesh, artifact, message, send, state
from tests.fake_llm import FakeLLM

pytestmark = pytest.mark.timeout(120)


async def test_the_llm_plans_what_rules_and_registry_cannot_route(tmp_path):
    plan = {"steps": [
        {"id": "who", "agent": "crm", "skill": "lookup_customer", "arguments": {"account_id": "1001"}},
        {"id": "mail", "agent": "notify", "skill": "send_confirmation", "arguments": {"order_id": "ORD-7"},
         "depends_on": ["who"]},
    ], "answer": "Sent to {sent_to}"}
    async with FakeLLM(replies=[json.dumps(plan)], api_key="sk-test-key") as llm:
        mesh = Mesh(tmp_path, env={"MESH_LLM_BASE_URL": llm.base_url, "MESH_LLM_MODEL": "fake-planner",
                                   "MESH_LLM_API_KEY": "sk-test-key"})
        mesh.start_registry()
        try:
            for name in ("crm", "notify"):
                mesh.start(name, f"{AGENTS}:{name}")
            coordinator = mesh.start("coordinator", "tests.coordination.coordinator_under_test:agent")
            await mesh.wait_healthy("crm", "notify")
            task = await send(coordinator.url, message("zzkq please resend my paperwork to me"))
            assert state(task) == "completed", task
            assert artifact(task, "answer") == "Sent to ada@example.com"
            assert len(llm.requests) == 1
            prompt = llm.requests[0].system
            assert "crm" in prompt and "lookup_customer" in prompt and "send_confirmation" in prompt
        finally:
            mesh.stop()


async def test_a_negotiated_step_goes_to_the_best_bid_and_falls_back_when_it_fails(tmp_path):
    mesh = Mesh(tmp_path)
    mesh.start_registry()
    try:
        mesh.start("crm", f"{AGENTS}:crm")
        mesh.start("slots-broken", f"{AGENTS}:slots", env={"MESH_TEST_FAIL": "1"})
        mesh.start("slots", f"{AGENTS}:slots")
        coordinator = mesh.start("coordinator", "tests.coordination.coordinator_under_test:agent")
        await mesh.wait_healthy("crm", "slots")
        plan = {"name": "negotiated", "steps": [
            {"id": "slot", "capability": "book an installation slot", "negotiate": True,
             "arguments": {"address": "5 Elm Road"}},
        ], "answer": "{slot}"}
        for _ in range(2):
            task = await send(coordinator.url, message(data={"skill": "run_plan", "arguments": {"plan": plan}}))
            assert state(task) == "completed", task
            step = artifact(task, "workflow")["steps"]["slot"]
            assert step["agent"] == "slots" and artifact(task, "answer") == "Tue 08:00-12:00"
        runs = [line for line in mesh.ledger() if line[2] == "slots"]
        assert len(runs) == 2  # the broken bidder raised before its ledger line; the other did the work
    finally:
        mesh.stop()
