"""Tasks live in the agent's SQLite file: they survive a clean restart and a kill -9."""

from __future__ import annotations

import time

import httpx

from tests.support import A2A_HEADERS, AgentProcess, rpc, skill_message, text_message

TARGET = "tests.agents_under_test:agent"


def call(url: str, method: str, params: dict) -> dict:
    body = httpx.post(url + "/", json=rpc(method, params), headers=A2A_HEADERS, timeout=30).json()
    assert "error" not in body, body
    return body["result"]


def test_a_conversation_resumes_after_a_restart(tmp_path):
    agent = AgentProcess(TARGET, tmp_path).start()
    try:
        task = call(agent.url, "SendMessage", {"message": skill_message("survey", {}, "r1")})["task"]
        ids = {"taskId": task["id"], "contextId": task["contextId"]}
        call(agent.url, "SendMessage", {"message": text_message("amber", "r2", **ids)})
        done = call(agent.url, "SendMessage", {"message": skill_message("echo", {"text": "kept"}, "r3")})["task"]
        assert agent.stop() == 0  # SIGTERM: clean shutdown
        assert "Application shutdown complete" in agent.log.read_text()
        agent.start()
        resumed = call(agent.url, "GetTask", {"id": task["id"]})
        assert resumed["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        assert resumed["status"]["message"]["parts"][0]["text"] == "Favourite animal?"
        finished = call(agent.url, "SendMessage", {"message": text_message("lynx", "r4", **ids)})["task"]
        assert finished["status"]["state"] == "TASK_STATE_COMPLETED"
        assert finished["artifacts"][0]["parts"][0]["data"] == {"colour": "amber", "animal": "lynx"}
        again = call(agent.url, "GetTask", {"id": done["id"]})
        assert again["artifacts"][0]["parts"][0]["text"] == "kept"
    finally:
        agent.stop()


def test_completed_tasks_survive_kill_9(tmp_path):
    agent = AgentProcess(TARGET, tmp_path).start()
    try:
        ids = [call(agent.url, "SendMessage", {"message": skill_message("add", {"a": i, "b": i}, f"k{i}")})["task"]["id"] for i in range(5)]
        agent.kill()
        agent.start()
        results = [call(agent.url, "GetTask", {"id": task_id})["artifacts"][0]["parts"][0]["text"] for task_id in ids]
        assert results == [str(2 * i) for i in range(5)]
        listed = call(agent.url, "ListTasks", {})
        assert {t["id"] for t in listed["tasks"]} >= set(ids)
    finally:
        agent.stop()


def test_memory_store_keeps_nothing_across_restarts(tmp_path):
    agent = AgentProcess(TARGET, tmp_path, env={"MESH_TASK_STORE": "memory"}).start()
    try:
        task = call(agent.url, "SendMessage", {"message": skill_message("echo", {"text": "gone"}, "m1")})["task"]
        agent.stop()
        agent.start()
        body = httpx.post(agent.url + "/", json=rpc("GetTask", {"id": task["id"]}), headers=A2A_HEADERS).json()
        assert body["error"]["code"] == -32001
        assert not (tmp_path / "agents" / "testbench" / "a2a.db").exists()
    finally:
        agent.stop()


def test_work_interrupted_by_kill_9_is_resumed_on_restart(tmp_path):
    agent = AgentProcess(TARGET, tmp_path).start()
    try:
        message = skill_message("slow", {"seconds": 2}, "interrupted")
        task = call(agent.url, "SendMessage", {"message": message, "configuration": {"returnImmediately": True}})["task"]
        for _ in range(50):  # wait until the skill really runs
            if call(agent.url, "GetTask", {"id": task["id"]})["status"]["state"] == "TASK_STATE_WORKING":
                break
            time.sleep(0.05)
        agent.kill()
        agent.start()
        deadline = time.monotonic() + 20
        while (state := call(agent.url, "GetTask", {"id": task["id"]}))["status"]["state"] != "TASK_STATE_COMPLETED":
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
        assert state["artifacts"][0]["parts"][0]["text"] == "slept 2.0"
        assert [m["messageId"] for m in state["history"] if m["role"] == "ROLE_USER"] == ["interrupted"]
        assert state["metadata"]["meshRecoveries"] == 1
    finally:
        agent.stop()


async def test_a_task_that_keeps_crashing_the_process_is_failed_not_looped(tmp_path):
    from a2a.server.context import ServerCallContext
    from a2a.types import Message, Task, TaskState, TaskStatus
    from google.protobuf.json_format import ParseDict

    from protocols.a2a_recovery import RECOVERY_KEY
    from protocols.sqlite_task_store import SqliteTaskStore
    from tests.agents_under_test import agent
    from tests.support import running_agent

    store = SqliteTaskStore(tmp_path / "agents" / "testbench" / "a2a.db")
    task = Task(id="poison", context_id="c", status=TaskStatus(state=TaskState.TASK_STATE_WORKING))
    task.history.append(ParseDict(skill_message("echo", {"text": "x"}, "p1"), Message()))
    task.metadata[RECOVERY_KEY] = 3
    await store.save(task, ServerCallContext())
    await store.close()

    async with running_agent(agent, tmp_path) as service:
        async with httpx.AsyncClient(base_url=service.base_url, headers=A2A_HEADERS) as http:
            stored = (await http.post("/", json=rpc("GetTask", {"id": "poison"}))).json()["result"]
    assert stored["status"]["state"] == "TASK_STATE_FAILED"
    assert stored["status"]["message"]["parts"][0]["text"] == "interrupted 3 times by a process crash; not resumed again"
