"""Our SQLite task store answers exactly as a2a-sdk's database store does, owner by owner."""

from __future__ import annotations

from a2a.server.context import ServerCallContext
from a2a.server.tasks import DatabaseTaskStore
from a2a.types import ListTasksRequest, Task, TaskState, TaskStatus
from sqlalchemy.ext.asyncio import create_async_engine

from protocols.a2a_recovery import _Owner
from protocols.sqlite_task_store import SqliteTaskStore

STATES = [TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_INPUT_REQUIRED]


def tasks() -> list[Task]:
    out = []
    for i in range(23):
        task = Task(id=f"task-{i:02d}", context_id=f"ctx-{i % 3}", status=TaskStatus(state=STATES[i % 3]))
        if i % 7:  # some tasks carry no timestamp: they sort last
            task.status.timestamp.FromNanoseconds(1_700_000_000_000_000_000 + (i % 5) * 1_000_000_000)
        out.append(task)
    return out


async def listing(store, request: ListTasksRequest, context: ServerCallContext) -> list[list[str]]:
    pages, token = [], ""
    while True:
        request.page_token = token
        page = await store.list(request, context)
        pages.append([t.id for t in page.tasks])
        token = page.next_page_token
        if not token:
            return pages


async def test_same_answers_as_the_sdk_store(tmp_path):
    ours = SqliteTaskStore(tmp_path / "ours.db")
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'sdk.db'}")
    sdk = DatabaseTaskStore(engine)
    alice, bob = ServerCallContext(user=_Owner("alice")), ServerCallContext(user=_Owner("bob"))
    for task in tasks():
        for store in (ours, sdk):
            await store.save(task, alice)
    await ours.save(Task(id="bobs", context_id="ctx-0", status=TaskStatus(state=STATES[0])), bob)
    requests = [
        ListTasksRequest(page_size=5),
        ListTasksRequest(page_size=4, context_id="ctx-1"),
        ListTasksRequest(page_size=3, status=TaskState.TASK_STATE_WORKING),
        ListTasksRequest(page_size=100),
    ]
    after = ListTasksRequest(page_size=50)
    after.status_timestamp_after.FromNanoseconds(1_700_000_002_000_000_000)
    requests.append(after)
    for request in requests:
        assert await listing(ours, request, alice) == await listing(sdk, request, alice), request
        assert (await ours.list(request, alice)).total_size == (await sdk.list(request, alice)).total_size
    assert [t.id for t in (await ours.list(ListTasksRequest(), bob)).tasks] == ["bobs"]
    assert await ours.get("bobs", alice) is None and (await ours.get("bobs", bob)).id == "bobs"
    updated = tasks()[4]
    updated.status.state = TaskState.TASK_STATE_FAILED
    await ours.save(updated, alice)
    assert (await ours.get(updated.id, alice)).status.state == TaskState.TASK_STATE_FAILED
    assert sorted(i for i, _ in await ours.interrupted()) == sorted(t.id for t in tasks() if t.status.state == TaskState.TASK_STATE_WORKING and t.id != updated.id)
    await ours.delete(updated.id, alice)
    assert await ours.get(updated.id, alice) is None
    await ours.close()
    await engine.dispose()
