"""Durable workflow state: workflows, their steps, escalations and memory (SQLite or PostgreSQL).

Written step by step, so a coordinator killed mid-workflow resumes from its last completed step.
Several coordinator replicas may share one PostgreSQL database: a workflow is run by the replica
holding its lease (``claim``), and a crashed replica's lease runs out so another takes over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.engine import Connection

from agents.coordination.models import Escalation, Plan, StepResult, WorkflowRecord, WorkflowStatus
from agents.sql import SqlRunner

__all__ = ["WorkflowStore", "customer_scope", "session_scope"]

T = TypeVar("T")

metadata = MetaData()
_FINISHED = (WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.DEAD_LETTERED)

workflows = Table(
    "mesh_workflows",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("request", Text, nullable=False),
    Column("plan", JSON),
    Column("context_id", String(200)),
    Column("customer_id", String(200)),
    Column("facts", JSON, nullable=False),
    Column("answer", Text),
    Column("error", Text),
    Column("hops", Integer, nullable=False, default=0),
    Column("owner", String(200)),
    Column("lease_until", Float),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("mesh_workflows_status", "status"),
)

steps = Table(
    "mesh_workflow_steps",
    metadata,
    Column("workflow_id", String(200), primary_key=True),
    Column("step_id", String(64), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("result", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)

escalations = Table(
    "mesh_escalations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("workflow_id", String(200), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("question", Text, nullable=False),
    Column("step_id", String(64)),
    Column("context", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("answer", Text),
    Column("answered_at", Float),
)

memory = Table(
    "mesh_memory",
    metadata,
    Column("scope", String(300), primary_key=True),
    Column("data", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)


# The statements every workflow runs, built once (SQLAlchemy then reuses their compiled form).
_CREATE = insert(workflows)
_SAVE = update(workflows).where(workflows.c.id == bindparam("workflow"))


def session_scope(context_id: str) -> str:
    return f"session:{context_id}"


def customer_scope(customer_id: str) -> str:
    return f"customer:{customer_id}"


class WorkflowStore:
    """Every operation is a plain function over a SQLAlchemy ``Connection``, run where it is cheapest
    (``agents.sql.SqlRunner``: SQLite on a thread of its own, PostgreSQL through the async engine)."""

    def __init__(self, url: str) -> None:
        self.sql = SqlRunner(url, name="workflow-store", on_connect=_sqlite_pragmas)
        self.dialect = self.sql.dialect
        # the hottest statement, built once: one per step of every workflow
        upsert = (sqlite_insert if self.dialect == "sqlite" else pg_insert)(steps)
        self._save_step = upsert.on_conflict_do_update(
            index_elements=["workflow_id", "step_id"],
            set_={"status": upsert.excluded.status, "result": upsert.excluded.result,
                  "updated_at": upsert.excluded.updated_at})

    async def _run(self, work: Callable[[Connection], T], *, write: bool) -> T:
        return await self.sql.run(work, write=write)

    async def initialize(self) -> None:
        await self._run(metadata.create_all, write=True)

    async def close(self) -> None:
        await self.sql.dispose()

    # -- workflows ----------------------------------------------------------------------------

    async def create(self, record: WorkflowRecord, owner: str | None = None, lease_seconds: float = 0) -> bool:
        """Insert ``record`` (held by ``owner`` from the start) unless its id exists; True when created."""
        now = time.time()
        params = {
            "id": record.id, "status": record.status.value, "request": record.request,
            "plan": record.plan.model_dump(mode="json") if record.plan else None,
            "context_id": record.context_id, "customer_id": record.customer_id, "facts": record.facts,
            "answer": record.answer, "error": record.error, "hops": record.hops, "created_at": now,
            "updated_at": now, "owner": owner, "lease_until": now + lease_seconds if owner else None,
        }
        try:
            await self._run(lambda conn: conn.execute(_CREATE, params), write=True)
        except IntegrityError:  # it exists: started before (a restart, a follow-up) or by another replica
            return False
        record.created_at = record.updated_at = now
        return True

    async def save(self, record: WorkflowRecord) -> None:
        """Write the workflow's own fields (steps are written one by one with ``save_step``)."""
        record.updated_at = time.time()
        values: dict[str, Any] = {
            "status": record.status.value, "plan": record.plan.model_dump(mode="json") if record.plan else None,
            "customer_id": record.customer_id, "facts": record.facts, "answer": record.answer,
            "error": record.error, "updated_at": record.updated_at,
        }
        if record.status in _FINISHED:
            values.update(owner=None, lease_until=None)  # nothing left to run: nobody holds it
        values["workflow"] = record.id
        await self._run(lambda conn: conn.execute(_SAVE, values), write=True)

    async def save_step(self, workflow_id: str, step_id: str, result: StepResult) -> None:
        params = {"workflow_id": workflow_id, "step_id": step_id, "status": result.status.value,
                  "result": result.model_dump(mode="json"), "updated_at": time.time()}
        await self._run(lambda conn: conn.execute(self._save_step, params), write=True)

    async def get(self, workflow_id: str) -> WorkflowRecord | None:
        def read(conn: Connection) -> WorkflowRecord | None:
            row = conn.execute(select(workflows).where(workflows.c.id == workflow_id)).first()
            if row is None:
                return None
            record = _workflow(row)
            for step in conn.execute(select(steps).where(steps.c.workflow_id == workflow_id)):
                record.steps[step.step_id] = StepResult.model_validate(step.result)
            return record

        return await self._run(read, write=False)

    async def list(self, status: WorkflowStatus | None = None, limit: int = 100) -> list[WorkflowRecord]:
        query = select(workflows).order_by(workflows.c.updated_at.desc()).limit(limit)
        if status is not None:
            query = query.where(workflows.c.status == status.value)

        def read(conn: Connection) -> list[WorkflowRecord]:
            records = {r.id: _workflow(r) for r in conn.execute(query)}
            if records:
                for row in conn.execute(select(steps).where(steps.c.workflow_id.in_(list(records)))):
                    records[row.workflow_id].steps[row.step_id] = StepResult.model_validate(row.result)
            return list(records.values())

        return await self._run(read, write=False)

    async def claim(self, workflow_id: str, owner: str, lease_seconds: float) -> bool:
        """Take (or renew) the right to run a workflow: free, ours already, or its lease ran out."""
        now = time.time()
        statement = update(workflows).where(and_(
            workflows.c.id == workflow_id,
            or_(workflows.c.owner.is_(None), workflows.c.owner == owner, workflows.c.lease_until < now),
        )).values(owner=owner, lease_until=now + lease_seconds)
        return await self._run(lambda conn: conn.execute(statement).rowcount == 1, write=True)

    async def release(self, workflow_id: str, owner: str) -> None:
        statement = (update(workflows).where(and_(workflows.c.id == workflow_id, workflows.c.owner == owner))
                     .values(owner=None, lease_until=None))
        await self._run(lambda conn: conn.execute(statement), write=True)

    async def orphaned(self, limit: int = 100) -> list[str]:
        """Running workflows nobody holds: their coordinator crashed (or released them unfinished)."""
        query = select(workflows.c.id).where(and_(
            workflows.c.status == WorkflowStatus.RUNNING.value,
            or_(workflows.c.owner.is_(None), workflows.c.lease_until < time.time()),
        )).limit(limit)
        return await self._run(lambda conn: [r.id for r in conn.execute(query)], write=False)

    # -- escalations --------------------------------------------------------------------------

    async def add_escalation(self, escalation: Escalation) -> None:
        escalation.created_at = escalation.created_at or time.time()
        statement = insert(escalations).values(**escalation.model_dump(mode="json"))
        await self._run(lambda conn: conn.execute(statement), write=True)

    async def _escalations(self, query: Any) -> list[Escalation]:
        return await self._run(lambda conn: [Escalation.model_validate(r._asdict()) for r in conn.execute(query)],
                               write=False)

    async def escalation(self, escalation_id: str) -> Escalation | None:
        found = await self._escalations(select(escalations).where(escalations.c.id == escalation_id))
        return found[0] if found else None

    async def escalations_of(self, workflow_id: str) -> list[Escalation]:
        return await self._escalations(
            select(escalations).where(escalations.c.workflow_id == workflow_id).order_by(escalations.c.created_at))

    async def open_escalations(self, limit: int = 100) -> list[Escalation]:
        return await self._escalations(
            select(escalations).where(escalations.c.answer.is_(None)).order_by(escalations.c.created_at).limit(limit))

    async def answer_escalation(self, escalation_id: str, answer: str) -> bool:
        """Record a human's answer; False when already answered (the first answer wins)."""
        statement = update(escalations).where(and_(
            escalations.c.id == escalation_id, escalations.c.answer.is_(None),
        )).values(answer=answer, answered_at=time.time())
        return await self._run(lambda conn: conn.execute(statement).rowcount == 1, write=True)

    # -- memory -------------------------------------------------------------------------------

    async def recall(self, scope: str) -> dict[str, Any]:
        row = await self._run(lambda conn: conn.execute(select(memory.c.data).where(memory.c.scope == scope)).first(),
                              write=False)
        return dict(row.data) if row else {}

    async def remember(self, scope: str, facts: dict[str, Any]) -> None:
        """Merge ``facts`` into the scope's memory (later values win)."""
        if not facts:
            return

        def merge(conn: Connection) -> None:
            row = conn.execute(select(memory.c.data).where(memory.c.scope == scope)).first()
            if row is None:
                conn.execute(insert(memory).values(scope=scope, data=facts, updated_at=time.time()))
            else:
                conn.execute(update(memory).where(memory.c.scope == scope)
                             .values(data={**row.data, **facts}, updated_at=time.time()))

        for attempt in range(3):  # two workflows of one customer finishing at once: the loser merges again
            try:
                return await self._run(merge, write=True)
            except IntegrityError:
                if attempt == 2:
                    raise


def _workflow(row: Any) -> WorkflowRecord:
    return WorkflowRecord(
        id=row.id, status=WorkflowStatus(row.status), request=row.request,
        plan=Plan.model_validate(row.plan) if row.plan else None, context_id=row.context_id,
        customer_id=row.customer_id, facts=row.facts or {}, answer=row.answer, error=row.error, hops=row.hops or 0,
        created_at=row.created_at, updated_at=row.updated_at,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # a process crash loses nothing; only an OS crash could
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
