"""Failure handling over real processes: fail-over between replicas, circuit breaker, dead letters."""

from __future__ import annotations

import pytest

from tests.coordination.support import AGENTS, Mesh, artifact, message, send, state, status_text

pytestmark = pytest.mark.timeout(150)


def order_plan(n: int) -> dict:
    return {
        "name": "order",
        "steps": [
            {"id": "customer", "agent": "crm", "skill": "lookup_customer", "arguments": {"account_id": "1001"}},
            {"id": "slot", "agent": "slots", "skill": "book_slot", "arguments": {"address": f"{n} High Street"}},
            {"id": "order", "agent": "orders", "skill": "create_order", "depends_on": ["customer", "slot"]},
        ],
        "answer": "order {order_id}",
    }


def run_plan(plan: dict) -> dict:
    return message(data={"skill": "run_plan", "arguments": {"plan": plan}})


async def test_fail_over_to_a_healthy_replica_then_dead_letter_and_redrive(tmp_path):
    # the registry must not notice the killed replica during the test: the coordinator has to
    slow_liveness = {"MESH_REGISTRY_PROBE_SECONDS": "60", "MESH_REGISTRY_LEASE_SECONDS": "60"}
    mesh = Mesh(tmp_path, env={"MESH_BREAKER_FAILURES": "2", "MESH_STEP_RETRIES": "1", **slow_liveness},
                registry_env=slow_liveness)
    mesh.start_registry()
    try:
        mesh.start("crm", f"{AGENTS}:crm")
        mesh.start("orders", f"{AGENTS}:orders")
        broken = mesh.start("slots-broken", f"{AGENTS}:slots", env={"MESH_TEST_FAIL": "1"})
        mesh.start("slots", f"{AGENTS}:slots")
        coordinator = mesh.start("coordinator", "tests.coordination.coordinator_under_test:agent")
        await mesh.wait_healthy("crm", "orders", "slots")

        # One replica fails every task: the step moves on to the other one, every time.
        for n in range(3):
            task = await send(coordinator.url, run_plan(order_plan(n)))
            assert state(task) == "completed", task
            slot = artifact(task, "workflow")["steps"]["slot"]
            assert slot["status"] == "completed"
        # A replica that is gone (kill -9, still registered until its lease ends): connection errors
        # are retried, then fail over; after MESH_BREAKER_FAILURES its circuit opens and it is skipped.
        broken.kill()
        errors = []
        for n in range(3, 7):
            task = await send(coordinator.url, run_plan(order_plan(n)))
            assert state(task) == "completed", task
            errors.append(artifact(task, "workflow")["steps"]["slot"]["error"] or "")
        assert any("circuit open" in e for e in errors), errors

        # No replica left: the workflow exhausts its options and is dead-lettered, with a clear reason.
        mesh.processes["slots"].stop()  # deregisters; the killed replica is still listed (its lease runs)
        await mesh.wait_instances("slots", [broken.url])
        task = await send(coordinator.url, run_plan(order_plan(99)))
        assert state(task) == "failed", task
        assert "slot" in status_text(task) and task["id"] in status_text(task)
        letters = artifact(await send(coordinator.url, message(data={"skill": "dead_letters", "arguments": {}})),
                           "dead_letters")
        assert [letter["workflow_id"] for letter in letters] == [task["id"]]
        assert letters[0]["steps"]["customer"]["status"] == "completed"

        # The agent is back: re-driving runs the failed step only, and the workflow completes.
        mesh.start("slots", f"{AGENTS}:slots")
        await mesh.wait_healthy("slots")
        redriven = artifact(await send(coordinator.url, message(
            data={"skill": "redrive", "arguments": {"workflow_id": task["id"]}})), "redrive")
        assert redriven["status"] == "completed", redriven
        assert redriven["answer"].startswith("order ORD-1001")
        customer_runs = [line for line in mesh.ledger() if line[0] == task["id"]]
        assert sorted(step for _, step, _ in customer_runs) == ["order", "slot"]
    finally:
        mesh.stop()
