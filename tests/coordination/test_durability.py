"""Kill -9 the coordinator with workflows in flight: every workflow finishes, no step runs twice."""

from __future__ import annotations

import asyncio
import collections
import time

import pytest

from protocols.registry_client import read_local_token
from tests.coordination.support import AGENTS, Mesh, artifact, get_task, message, send, state
from tests.support import AgentProcess

pytestmark = pytest.mark.timeout(180)
WORKFLOWS = 24


def plan(n: int) -> dict:
    return {
        "name": f"order {n}",
        "steps": [
            {"id": "customer", "agent": "crm", "skill": "lookup_customer", "arguments": {"account_id": "1001"}},
            {"id": "slot", "agent": "slots", "skill": "book_slot", "arguments": {"address": f"{n} Main Street"}},
            {"id": "order", "agent": "orders", "skill": "create_order", "depends_on": ["customer", "slot"]},
            {"id": "confirm", "agent": "notify", "skill": "send_confirmation", "depends_on": ["order", "customer"]},
        ],
        "answer": "order {order_id} at {address}",
    }


async def test_killed_coordinator_finishes_every_workflow_and_runs_no_step_twice(tmp_path):
    mesh = Mesh(tmp_path)
    mesh.start_registry()
    try:
        for name in ("crm", "slots", "notify"):
            mesh.start(name, f"{AGENTS}:{name}")
        mesh.start("orders", f"{AGENTS}:orders", env={"MESH_TEST_DELAY": "1.5"})
        coordinator = mesh.start("coordinator", "tests.coordination.coordinator_under_test:agent")
        await mesh.wait_healthy("crm", "slots", "orders", "notify")

        accepted = await asyncio.gather(*(
            send(coordinator.url, message(data={"skill": "run_plan", "arguments": {"plan": plan(n)}}),
                 returnImmediately=True)
            for n in range(WORKFLOWS)))
        task_ids = [task["id"] for task in accepted]
        deadline = time.monotonic() + 20
        while sum(1 for _, _, agent in mesh.ledger() if agent == "slots") < WORKFLOWS:  # all waiting on orders
            assert time.monotonic() < deadline, mesh.ledger()
            await asyncio.sleep(0.05)
        finished_before = sum(1 for _, _, agent in mesh.ledger() if agent == "notify")
        coordinator.kill()
        assert finished_before < WORKFLOWS, "the kill came too late to prove anything"
        coordinator.start()

        deadline = time.monotonic() + 90
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {t: state(await get_task(coordinator.url, t)) for t in task_ids}
            if all(s in ("completed", "failed", "rejected") for s in states.values()):
                break
            await asyncio.sleep(0.5)
        assert set(states.values()) == {"completed"}, states

        runs = collections.Counter((workflow, step) for workflow, step, _ in mesh.ledger())
        assert set(w for w, _ in runs) == set(task_ids)
        assert {k: v for k, v in runs.items() if v != 1} == {}, "a step ran twice"
        assert len(runs) == 3 * WORKFLOWS  # slot, order, confirm per workflow
    finally:
        mesh.stop()


async def test_a_replica_finishes_the_workflows_of_a_dead_replica(tmp_path, store_url):
    """Two coordinators share one workflow store (SQLite file, PostgreSQL); one dies for good; the other adopts its work."""
    shared = {"MESH_WORKFLOW_DB": store_url, "MESH_WORKFLOW_LEASE_SECONDS": "2"}
    mesh = Mesh(tmp_path / "mesh", env=shared)
    mesh.start_registry()
    survivor = None
    try:
        for name in ("crm", "slots", "notify"):
            mesh.start(name, f"{AGENTS}:{name}")
        mesh.start("orders", f"{AGENTS}:orders", env={"MESH_TEST_DELAY": "1.5"})
        doomed = mesh.start("coordinator", "tests.coordination.coordinator_under_test:agent")
        token = read_local_token(mesh.home)
        survivor = AgentProcess("tests.coordination.coordinator_under_test:agent", tmp_path / "replica",
                                env={**mesh.env, "MESH_REGISTRY_TOKEN": token or ""}).start()
        await mesh.wait_healthy("crm", "slots", "orders", "notify")
        accepted = await asyncio.gather(*(
            send(doomed.url, message(data={"skill": "run_plan", "arguments": {"plan": plan(n)}}), returnImmediately=True)
            for n in range(10)))
        ids = [task["id"] for task in accepted]
        deadline = time.monotonic() + 20
        while sum(1 for _, _, agent in mesh.ledger() if agent == "slots") < len(ids):
            assert time.monotonic() < deadline, mesh.ledger()
            await asyncio.sleep(0.05)
        doomed.kill()  # and it never comes back

        statuses: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for workflow_id in ids:
                shown = await send(survivor.url, message(data={"skill": "workflow", "arguments": {"workflow_id": workflow_id}}))
                statuses[workflow_id] = artifact(shown, "workflow")["status"]
            if all(s == "completed" for s in statuses.values()):
                break
            await asyncio.sleep(0.5)
        assert set(statuses.values()) == {"completed"}, statuses
        runs = collections.Counter((workflow, step) for workflow, step, _ in mesh.ledger())
        assert {k: v for k, v in runs.items() if v != 1} == {}, "a step ran twice"
        assert len(runs) == 3 * len(ids)
    finally:
        if survivor is not None:
            survivor.stop()
        mesh.stop()
