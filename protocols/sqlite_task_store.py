"""The agent's task store: one SQLite file, tasks stored as protobuf, one writer thread.

a2a-sdk's ``DatabaseTaskStore`` goes through the SQLAlchemy ORM and aiosqlite: ~4 ms of CPU per
save on this machine, and a SendMessage saves three times (``bench/hop.py``: the SQLite store cost
~6x the in-memory one). This store talks to ``sqlite3`` directly on a single thread of its own (so
the event loop never blocks on the file, and statements never interleave) and keeps each task as
its serialized protobuf: a save is one upsert. WAL with ``synchronous=NORMAL``: a committed task
survives a crash of the process.

It also keeps which task each idempotent message started (``mesh_deliveries``, written in the same
commit as the task), so a re-sent message is recognised after a restart too
(``protocols.a2a_stores.IdempotentTaskStore``). Files from before that table get it on open.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from a2a.server.context import ServerCallContext
from a2a.server.owner_resolver import OwnerResolver, resolve_user_scope
from a2a.server.tasks import TaskStore
from a2a.types import ListTasksRequest, ListTasksResponse, Task, TaskState
from a2a.utils.constants import DEFAULT_LIST_TASKS_PAGE_SIZE
from a2a.utils.errors import InvalidParamsError
from a2a.utils.task import ListTasksCursor, decode_list_tasks_cursor, encode_list_tasks_cursor

from protocols.a2a_stores import delivery_id

__all__ = ["SqliteTaskStore"]

T = TypeVar("T")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS mesh_tasks (
    id TEXT NOT NULL, owner TEXT NOT NULL, context_id TEXT NOT NULL, state TEXT NOT NULL,
    updated_ns INTEGER, data BLOB NOT NULL, PRIMARY KEY (owner, id));
CREATE INDEX IF NOT EXISTS mesh_tasks_listing ON mesh_tasks(owner, updated_ns DESC, id DESC);
CREATE INDEX IF NOT EXISTS mesh_tasks_state ON mesh_tasks(state);
CREATE TABLE IF NOT EXISTS mesh_deliveries (
    owner TEXT NOT NULL, message_id TEXT NOT NULL, task_id TEXT NOT NULL, PRIMARY KEY (owner, message_id));
CREATE INDEX IF NOT EXISTS mesh_deliveries_task ON mesh_deliveries(owner, task_id);
"""
_UPSERT = (
    "INSERT INTO mesh_tasks VALUES (?,?,?,?,?,?) ON CONFLICT(owner, id) DO UPDATE SET"
    " context_id=excluded.context_id, state=excluded.state, updated_ns=excluded.updated_ns, data=excluded.data"
)
_RUNNING = (TaskState.Name(TaskState.TASK_STATE_SUBMITTED), TaskState.Name(TaskState.TASK_STATE_WORKING))


class SqliteTaskStore(TaskStore):
    def __init__(self, path: Path, owner_resolver: OwnerResolver = resolve_user_scope) -> None:
        self.path = path
        self.owner_resolver = owner_resolver
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="task-store")
        self._connection: sqlite3.Connection | None = None

    async def _run(self, work: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, *args)

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            self._connection = connection
        return self._connection

    async def initialize(self) -> None:
        await self._run(self._db)

    async def close(self) -> None:
        def close() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        await self._run(close)
        self._thread.shutdown(wait=True)

    async def save(self, task: Task, context: ServerCallContext) -> None:
        owner = self.owner_resolver(context)
        row = (
            task.id, owner, task.context_id, TaskState.Name(task.status.state),
            task.status.timestamp.ToNanoseconds() if task.status.HasField("timestamp") else None,
            task.SerializeToString(),
        )
        message_id = delivery_id(task)

        def save() -> None:
            db = self._db()
            if message_id is None:
                db.execute(_UPSERT, row)
                return
            # Every save of such a task re-asserts its delivery (the first one wins): one commit for both.
            with db:
                db.execute("BEGIN")
                db.execute(_UPSERT, row)
                db.execute("INSERT OR IGNORE INTO mesh_deliveries VALUES (?,?,?)", (owner, message_id, task.id))

        await self._run(save)

    async def task_for_message(self, message_id: str, context: ServerCallContext) -> str | None:
        """The id of the task this owner's idempotent message ``message_id`` started, if any."""
        owner = self.owner_resolver(context)

        def find() -> str | None:
            found = self._db().execute(
                "SELECT task_id FROM mesh_deliveries WHERE owner = ? AND message_id = ?", (owner, message_id)
            ).fetchone()
            return found[0] if found else None

        return await self._run(find)

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        owner = self.owner_resolver(context)

        def get() -> bytes | None:
            found = self._db().execute("SELECT data FROM mesh_tasks WHERE owner = ? AND id = ?", (owner, task_id)).fetchone()
            return found[0] if found else None

        data = await self._run(get)
        return Task.FromString(data) if data is not None else None

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        owner = self.owner_resolver(context)

        def delete() -> None:
            with self._db() as db:
                db.execute("BEGIN")
                db.execute("DELETE FROM mesh_tasks WHERE owner = ? AND id = ?", (owner, task_id))
                db.execute("DELETE FROM mesh_deliveries WHERE owner = ? AND task_id = ?", (owner, task_id))

        await self._run(delete)

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        """Newest first by status timestamp (tasks without one last), then id; cursor-paged like the SDK's stores."""
        where, args = ["owner = ?"], [self.owner_resolver(context)]
        if params.context_id:
            where.append("context_id = ?")
            args.append(params.context_id)
        if params.status:
            where.append("state = ?")
            args.append(TaskState.Name(params.status))
        if params.HasField("status_timestamp_after"):
            where.append("updated_ns >= ?")
            args.append(params.status_timestamp_after.ToNanoseconds())
        filters, filter_args = " AND ".join(where), list(args)
        if params.page_token:
            cursor = decode_list_tasks_cursor(params.page_token)
            if cursor is None:
                raise InvalidParamsError("Invalid page token")
            if cursor.timestamp_ns is None:
                where.append("updated_ns IS NULL AND id < ?")
                args.append(cursor.task_id)
            else:
                where.append("(updated_ns < ? OR (updated_ns = ? AND id < ?) OR updated_ns IS NULL)")
                args += [cursor.timestamp_ns, cursor.timestamp_ns, cursor.task_id]
        page_size = params.page_size or DEFAULT_LIST_TASKS_PAGE_SIZE

        def list_page() -> tuple[int, list[tuple[bytes, int | None, str]]]:
            db = self._db()
            total = db.execute(f"SELECT COUNT(*) FROM mesh_tasks WHERE {filters}", filter_args).fetchone()[0]
            rows = db.execute(
                f"SELECT data, updated_ns, id FROM mesh_tasks WHERE {' AND '.join(where)}"
                " ORDER BY updated_ns IS NULL, updated_ns DESC, id DESC LIMIT ?",
                [*args, page_size + 1],
            ).fetchall()
            return total, rows

        total, rows = await self._run(list_page)
        page = rows[:page_size]
        next_token = (
            encode_list_tasks_cursor(ListTasksCursor(timestamp_ns=page[-1][1], task_id=page[-1][2]))
            if len(rows) > page_size
            else None
        )
        return ListTasksResponse(
            tasks=[Task.FromString(row[0]) for row in page], total_size=total,
            next_page_token=next_token, page_size=page_size,
        )

    async def interrupted(self) -> list[tuple[str, str]]:
        """(task id, owner) of every task a crash left ``submitted`` or ``working``."""
        return await self._run(
            lambda: self._db().execute(
                "SELECT id, owner FROM mesh_tasks WHERE state IN (?, ?)", _RUNNING
            ).fetchall()
        )
