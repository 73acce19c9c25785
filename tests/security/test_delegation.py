"""The coordinator acts for the end user: its step calls carry the user's identity, never its own powers.

Real processes: a registry, the warehouse agent and a coordinator, both requiring authentication.
The coordinator holds only ``delegate``; alice may read stock but not ship. Her workflow's stock step
succeeds as alice (the warehouse's audit log says alice, acting through the coordinator), her
shipping step is refused by the warehouse, and an unauthenticated request never reaches the plan.
"""

from __future__ import annotations

import asyncio

import httpx

from agents.audit import AuditLog
from tests.coordination.support import Mesh, message, rpc
from tests.security.support import SECRET, bearer, write_security_files


def plan(skill: str, arguments: dict) -> dict:
    return {"steps": [{"id": "only", "agent": "warehouse", "skill": skill, "arguments": arguments}]}


async def run_plan(url: str, body: dict, headers: dict) -> httpx.Response:
    request = rpc("SendMessage", {"message": message(data={"skill": "run_plan", "arguments": {"plan": body}})})
    async with httpx.AsyncClient(base_url=url, timeout=60, headers={"A2A-Version": "1.0", **headers}) as http:
        return await http.post("/", json=request)


async def test_steps_act_for_the_user_with_the_users_scopes(tmp_path):
    home = tmp_path / "mesh"
    files = write_security_files(home)
    secured = {"MESH_AUTH_MODE": "required", "MESH_AUTH_JWT_SECRET": SECRET, "MESH_POLICY": str(files["policy"]),
               "MESH_AUTH_API_KEYS": str(files["auth_api_keys"]), "MESH_STEP_RETRIES": "0"}
    mesh = Mesh(home, env=secured)
    mesh.start_registry()
    try:
        mesh.start("warehouse", "tests.gateway_agents:warehouse")
        coordinator = mesh.start("coordinator", "tests.coordination.coordinator_under_test:agent",
                                 env={"MESH_AUTH_DELEGATE": "true"})
        await mesh.wait_healthy("warehouse", "coordinator")

        anonymous = await run_plan(coordinator.url, plan("stock_level", {"sku": "SKU-5"}), {})
        assert anonymous.status_code == 401

        allowed = (await run_plan(coordinator.url, plan("stock_level", {"sku": "SKU-5"}), bearer("alice", aud="coordinator"))).json()
        task = allowed["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED", task
        assert "35" in str(task["artifacts"])  # SKU-5: 5 characters x 7 on hand

        refused = (await run_plan(coordinator.url, plan("ship_order", {"order": "ORD-2"}), bearer("alice", aud="coordinator"))).json()
        task = refused["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_FAILED", task
        assert "403" in str(task["status"]["message"])
    finally:
        mesh.stop()  # flushes the audit logs

    async with await AuditLog.open(f"sqlite:///{home / 'audit' / 'audit.db'}") as log:
        at_warehouse = await log.query(service="warehouse", limit=50)
    seen = {(r.caller, r.actor, r.target, r.outcome) for r in at_warehouse}
    assert ("alice", "coordinator", "stock_level", "completed") in seen
    assert ("alice", "coordinator", "ship_order", "denied") in seen
    assert not any(r.caller == "coordinator" for r in at_warehouse)  # never on its own account
