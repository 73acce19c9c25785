"""Idempotent delivery: a re-sent message (same messageId, marked idempotent) never runs its skill twice.

The skills count their runs in a file the test names, so runs are counted across processes too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from a2a.server.context import ServerCallContext
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import Message, SendMessageRequest, Task, TaskState
from google.protobuf.json_format import ParseDict

from agents import Agent, Reply, ToolContext
from protocols.a2a_recovery import _Owner
from protocols.a2a_stores import IDEMPOTENT_DELIVERY, IdempotentTaskStore
from protocols.sqlite_task_store import SqliteTaskStore
from tests.support import A2A_HEADERS, AgentProcess, rpc, running_agent, send, skill_message

agent = Agent("once", "Counts how often its skills run, for the idempotency tests", version="1.0.0")


@agent.skill(tags=["count"])
async def record(log: str, ctx: ToolContext, gate: str = "", progress: bool = False) -> str:
    """Append a line to ``log``; optionally report progress, then wait until the file ``gate`` exists."""
    with open(log, "a") as out:
        out.write("ran\n")
    if progress:
        await ctx.progress("started")
    while gate and not Path(gate).exists():
        await asyncio.sleep(0.02)
    return f"run {runs(log)}"


@agent.skill(tags=["count"])
def hello(log: str) -> Reply:
    """Append a line to ``log`` and answer with a bare message (no task)."""
    with open(log, "a") as out:
        out.write("ran\n")
    return Reply("hello")


def runs(log: str | Path) -> int:
    path = Path(log)
    return len(path.read_text().splitlines()) if path.exists() else 0


def marked(message: dict) -> dict:
    return {**message, "extensions": [IDEMPOTENT_DELIVERY]}


def record_message(message_id: str, log: Path, **arguments: object) -> dict:
    return marked(skill_message("record", {"log": str(log), **arguments}, message_id))


def output(task: dict) -> str:
    return task["artifacts"][0]["parts"][0]["text"]


async def stream(client: httpx.AsyncClient, message: dict) -> AsyncIterator[dict]:
    request = rpc("SendStreamingMessage", {"message": message})
    async with client.stream("POST", "/", json=request) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                body = json.loads(line[5:])
                assert "error" not in body, body
                yield body["result"]


async def until(condition, what: str) -> None:
    """Wait for ``condition``; the 20 s limit is a hang guard, not a timing assertion."""
    try:
        async with asyncio.timeout(20):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


@contextlib.asynccontextmanager
async def agent_client(tmp_path: Path, **overrides: object) -> AsyncIterator[tuple[object, httpx.AsyncClient]]:
    async with running_agent(agent, tmp_path, **overrides) as service:
        async with httpx.AsyncClient(base_url=service.base_url, headers=A2A_HEADERS, timeout=30) as client:
            yield service, client


STORES = {
    "sqlite": {},
    "memory": {"task_store": "memory"},
    "database_url": {"database_url": "sqlite+aiosqlite:///{home}/shared.db"},
}


@pytest.mark.parametrize("store", STORES)
async def test_a_resent_message_runs_the_skill_once(tmp_path, store):
    overrides = {k: v.format(home=tmp_path) for k, v in STORES[store].items()}
    log = tmp_path / "runs.log"
    async with agent_client(tmp_path, **overrides) as (_, client):
        first = (await send(client, record_message("step-1", log)))["task"]
        again = (await send(client, record_message("step-1", log)))["task"]
        streamed = [event async for event in stream(client, record_message("step-1", log))]
        rest = await client.post("/a2a/message:send", json={"message": record_message("step-1", log)})
    assert runs(log) == 1
    assert first["status"]["state"] == "TASK_STATE_COMPLETED" and output(first) == "run 1"
    assert again["id"] == first["id"] and output(again) == "run 1"
    assert [next(iter(e)) for e in streamed] == ["task"] and streamed[0]["task"]["id"] == first["id"]
    assert rest.status_code == 200 and rest.json()["task"]["id"] == first["id"]


async def test_other_message_ids_and_unmarked_messages_run_again(tmp_path):
    log = tmp_path / "runs.log"
    async with agent_client(tmp_path) as (_, client):
        ids = {(await send(client, record_message(f"step-{i}", log)))["task"]["id"] for i in range(3)}
        assert len(ids) == 3 and runs(log) == 3
        # Without the extension a messageId carries no promise (the A2A TCK reuses them for new tasks).
        plain = skill_message("record", {"log": str(log)}, "step-0")
        ids |= {(await send(client, plain))["task"]["id"] for _ in range(2)}
    assert len(ids) == 5 and runs(log) == 5


async def test_a_duplicate_of_a_running_task_waits_for_it(tmp_path):
    log, gate = tmp_path / "runs.log", tmp_path / "gate"
    message = record_message("slow-step", log, gate=str(gate), progress=True)
    async with agent_client(tmp_path) as (service, client):
        first = asyncio.create_task(send(client, message))
        await until(lambda: runs(log) == 1, "the skill runs")
        now = (await send(client, message, returnImmediately=True))["task"]
        assert now["status"]["state"] == "TASK_STATE_WORKING"
        duplicate = asyncio.create_task(send(client, message))
        await until(lambda: service.in_flight.count == 2, "the duplicate is being handled")
        events = stream(client, message)
        snapshot = await anext(events)  # the task as it is now: it is still running
        assert snapshot["task"]["id"] == now["id"] and snapshot["task"]["status"]["state"] == "TASK_STATE_WORKING"
        gate.touch()
        updates = [event async for event in events]
        results = [(await first)["task"], (await duplicate)["task"]]
    assert runs(log) == 1
    assert {t["id"] for t in results} == {now["id"]}
    assert [t["status"]["state"] for t in results] == ["TASK_STATE_COMPLETED"] * 2
    assert output(results[1]) == "run 1"
    assert updates[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert any("artifactUpdate" in u for u in updates)


async def test_a_duplicate_before_the_task_exists_waits_for_the_first_delivery(tmp_path):
    """The skill reports nothing before it ends, so no task is saved while it runs: the duplicate
    waits for the delivery running in this process instead of starting another."""
    log, gate = tmp_path / "runs.log", tmp_path / "gate"
    message = record_message("quiet-step", log, gate=str(gate))
    async with agent_client(tmp_path) as (service, client):
        first = asyncio.create_task(send(client, message))
        await until(lambda: runs(log) == 1, "the skill runs")
        duplicate = asyncio.create_task(send(client, message))
        await until(lambda: service.in_flight.count == 2, "the duplicate is being handled")
        gate.touch()
        results = [(await first)["task"], (await duplicate)["task"]]
    assert runs(log) == 1
    assert results[0]["id"] == results[1]["id"] and output(results[1]) == "run 1"


async def test_a_resent_push_config_joins_the_existing_task(tmp_path):
    log = tmp_path / "runs.log"
    async with agent_client(tmp_path) as (_, client):
        task = (await send(client, record_message("step-1", log)))["task"]
        hook = {"url": "http://127.0.0.1:9/hook", "token": "t"}
        again = (await send(client, record_message("step-1", log), taskPushNotificationConfig=hook))["task"]
        listed = (await client.post("/", json=rpc("ListTaskPushNotificationConfigs", {"taskId": task["id"]}))).json()
    assert again["id"] == task["id"] and runs(log) == 1
    assert [c["url"] for c in listed["result"]["configs"]] == [hook["url"]]


async def test_a_bare_message_reply_cannot_be_deduplicated(tmp_path):
    log = tmp_path / "runs.log"
    message = marked(skill_message("hello", {"log": str(log)}, "greeting"))
    async with agent_client(tmp_path) as (_, client):
        replies = [await send(client, message) for _ in range(2)]
    assert [r["message"]["parts"][0]["text"] for r in replies] == ["hello", "hello"]
    assert runs(log) == 2  # no task to answer with: documented


async def test_owners_are_independent(tmp_path):
    log = tmp_path / "runs.log"
    alice, bob = ServerCallContext(user=_Owner("alice")), ServerCallContext(user=_Owner("bob"))

    def request() -> SendMessageRequest:
        return SendMessageRequest(message=ParseDict(record_message("shared-id", log), Message()))

    async with agent_client(tmp_path) as (service, _):
        handler = service.a2a.handler
        alices = [await handler.on_message_send(request(), alice) for _ in range(2)]
        bobs = [await handler.on_message_send(request(), bob) for _ in range(2)]
        assert await handler.task_store.get(alices[0].id, bob) is None
    assert all(isinstance(t, Task) and t.status.state == TaskState.TASK_STATE_COMPLETED for t in alices + bobs)
    assert alices[0].id == alices[1].id and bobs[0].id == bobs[1].id and alices[0].id != bobs[0].id
    assert runs(log) == 2


def test_duplicates_are_recognised_after_kill_9(tmp_path):
    log, gate = tmp_path / "runs.log", tmp_path / "gate"
    proc = AgentProcess("tests.test_idempotency:agent", tmp_path).start()

    def call(message: dict, **configuration: object) -> dict:
        params = {"message": message, **({"configuration": configuration} if configuration else {})}
        body = httpx.post(proc.url + "/", json=rpc("SendMessage", params), headers=A2A_HEADERS, timeout=30).json()
        assert "error" not in body, body
        return body["result"]["task"]

    try:
        done = call(record_message("before-crash", log))
        running = call(record_message("cut-off", log, gate=str(gate), progress=True), returnImmediately=True)
        deadline = time.monotonic() + 20  # a hang guard
        while runs(log) < 2:
            assert time.monotonic() < deadline, "the cut-off skill never ran"
            time.sleep(0.02)
        proc.kill()
        gate.touch()
        proc.start()  # the cut-off task is resumed: its skill runs once more (recovery, not a duplicate)
        assert call(record_message("before-crash", log))["id"] == done["id"]
        resumed = call(record_message("cut-off", log))
        assert resumed["id"] == running["id"] and resumed["status"]["state"] == "TASK_STATE_COMPLETED"
        assert runs(log) == 3
        assert call(record_message("after-restart", log))["id"] not in {done["id"], running["id"]}
        assert runs(log) == 4
    finally:
        proc.stop()


async def test_the_sqlite_store_keeps_deliveries_and_migrates_old_files(tmp_path):
    path = tmp_path / "a2a.db"
    with sqlite3.connect(path) as old:  # a file from before idempotent delivery
        old.execute(
            "CREATE TABLE mesh_tasks (id TEXT NOT NULL, owner TEXT NOT NULL, context_id TEXT NOT NULL,"
            " state TEXT NOT NULL, updated_ns INTEGER, data BLOB NOT NULL, PRIMARY KEY (owner, id))"
        )
    store = SqliteTaskStore(path)
    alice, bob = ServerCallContext(user=_Owner("alice")), ServerCallContext(user=_Owner("bob"))
    task = Task(id="t1", context_id="c1")
    task.history.append(ParseDict(record_message("m1", tmp_path / "x"), Message()))
    plain = Task(id="t2", context_id="c1")
    plain.history.append(ParseDict(skill_message("record", {}, "m2"), Message()))
    try:
        await store.save(task, alice)
        await store.save(plain, alice)
        assert await store.task_for_message("m1", alice) == "t1"
        assert await store.task_for_message("m1", bob) is None
        assert await store.task_for_message("m2", alice) is None  # not marked: not remembered
        await store.delete("t1", alice)
        assert await store.task_for_message("m1", alice) is None
    finally:
        await store.close()


async def test_without_a_durable_index_the_last_deliveries_are_kept_in_memory(tmp_path):
    store, context = IdempotentTaskStore(InMemoryTaskStore(), capacity=2), ServerCallContext()
    for i in range(3):
        task = Task(id=f"t{i}", context_id="c")
        task.history.append(ParseDict(record_message(f"m{i}", tmp_path / "x"), Message()))
        await store.save(task, context)
        await store.save(task, context)  # later saves of a task change nothing
    assert [await store.accepted_task(store.key(f"m{i}", context), context) for i in range(3)] == [None, "t1", "t2"]
