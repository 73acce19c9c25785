"""The third routing mode and negotiation, over real processes.

* Nothing in the rules or the registry fits: the LLM planner (a local fake OpenAI-compatible
  server) writes the plan, and the coordinator runs it.
* A step awarded by contract net: the agents bid, the best bid gets the task, and when the
  winner fails the next bidder does it.
"""

from __future__ import annotations

import json

import pytest

from tests.coordination.support import AGENTS, Mesh, artifact, message, send, state, status_text
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


async def test_parallel_steps_run_at_the_same_time_and_their_outputs_are_aggregated(tmp_path):
    mesh = Mesh(tmp_path)
    mesh.start_registry()
    try:
        mesh.start("timer", f"{AGENTS}:timer")
        coordinator = mesh.start("coordinator", "tests.coordination.coordinator_under_test:agent")
        await mesh.wait_healthy("timer")
        plan = {"name": "fan-out", "steps": [
            {"id": f"w{i}", "agent": "timer", "skill": "wait", "arguments": {"seconds": 1.0}} for i in range(3)
        ] + [{"id": "after", "agent": "timer", "skill": "wait", "arguments": {"seconds": 0.1},
              "depends_on": ["w0", "w1", "w2"]}], "answer": "done at {ended}"}
        task = await send(coordinator.url, message(data={"skill": "run_plan", "arguments": {"plan": plan}}))
        assert state(task) == "completed", task
        steps = artifact(task, "workflow")["steps"]
        fan = [steps[f"w{i}"] for i in range(3)]
        assert max(s["started_at"] for s in fan) < min(s["started_at"] + s["duration_ms"] / 1000 for s in fan)
        assert steps["after"]["started_at"] >= max(s["started_at"] + s["duration_ms"] / 1000 for s in fan) - 0.05
        assert artifact(task, "answer").startswith("done at ")
    finally:
        mesh.stop()


async def test_a_sub_coordinator_is_just_another_agent_and_the_hop_limit_ends_a_loop(tmp_path):
    mesh = Mesh(tmp_path, env={"MESH_MAX_HOPS": "4"})
    mesh.start_registry()
    try:
        mesh.start("shop", f"{AGENTS}:shop")
        ping = mesh.start("ping", "tests.coordination.coordinator_under_test:ping")
        mesh.start("pong", "tests.coordination.coordinator_under_test:pong")
        await mesh.wait_healthy("shop", "ping", "pong")
        # ping hands everything to pong; pong routes this one through the registry to the shop
        task = await send(ping.url, message("When does the shop open?"))
        assert state(task) == "completed", task
        assert "9:00 to 18:00" in artifact(task, "answer")
        # "loop": pong hands it back to ping, which hands it to pong... until the hop limit says no
        looped = await send(ping.url, message("loop please"), timeout=60)
        assert state(looped) == "rejected", looped
        assert "hop limit" in status_text(looped)
    finally:
        mesh.stop()
