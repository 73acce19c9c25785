"""Durable workflow state: workflows, their steps, escalations and memory (SQLite or PostgreSQL).

Written step by step, so a coordinator killed mid-workflow resumes from its last completed step.
Several coordinator replicas may share one PostgreSQL database: a workflow is run by the replica
holding its lease (``claim``), and a crashed replica's lease runs out so another takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

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
    event,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from agents.coordination.models import Escalation, Plan, StepResult, WorkflowRecord, WorkflowStatus
from registry.store import async_url

__all__ = ["WorkflowStore", "customer_scope", "session_scope"]

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


def session_scope(context_id: str) -> str:
    return f"session:{context_id}"


def customer_scope(customer_id: str) -> str:
    return f"customer:{customer_id}"


class WorkflowStore:
    def __init__(self, url: str) -> None:
        self.engine: AsyncEngine = create_async_engine(async_url(url))
        self.dialect = self.engine.dialect.name
        # SQLite has one writer at a time: queue this process's writers here, first come first
        # served, rather than in SQLite's busy handler, which under load gives up ("database is locked").
        self._writer = asyncio.Lock() if self.dialect == "sqlite" else None
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        if self._writer is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._writer, self.engine.begin() as conn:
            yield conn

    def _insert(self, table: Table) -> Any:
        """INSERT that can become an upsert (``on_conflict_do_update``) on both databases."""
        return (sqlite_insert if self.dialect == "sqlite" else pg_insert)(table)

    async def initialize(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        await self.engine.dispose()

    # -- workflows ----------------------------------------------------------------------------

    async def create(self, record: WorkflowRecord, owner: str | None = None, lease_seconds: float = 0) -> bool:
        """Insert ``record`` (held by ``owner`` from the start) unless its id exists; True when created."""
        now = time.time()
        try:
            async with self._write() as conn:
                await conn.execute(insert(workflows).values(
                    id=record.id, status=record.status.value, request=record.request,
                    plan=record.plan.model_dump(mode="json") if record.plan else None,
                    context_id=record.context_id, customer_id=record.customer_id, facts=record.facts,
                    answer=record.answer, error=record.error, hops=record.hops, created_at=now, updated_at=now,
                    owner=owner, lease_until=now + lease_seconds if owner else None))
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
        async with self._write() as conn:
            await conn.execute(update(workflows).where(workflows.c.id == record.id).values(**values))

    async def save_step(self, workflow_id: str, step_id: str, result: StepResult) -> None:
        values = {"status": result.status.value, "result": result.model_dump(mode="json"), "updated_at": time.time()}
        statement = self._insert(steps).values(workflow_id=workflow_id, step_id=step_id, **values)
        async with self._write() as conn:
            await conn.execute(statement.on_conflict_do_update(index_elements=["workflow_id", "step_id"], set_=values))

    async def get(self, workflow_id: str) -> WorkflowRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(workflows).where(workflows.c.id == workflow_id))).first()
            if row is None:
                return None
            step_rows = (await conn.execute(select(steps).where(steps.c.workflow_id == workflow_id))).all()
        record = _workflow(row)
        record.steps = {s.step_id: StepResult.model_validate(s.result) for s in step_rows}
        return record

    async def list(self, status: WorkflowStatus | None = None, limit: int = 100) -> list[WorkflowRecord]:
        query = select(workflows).order_by(workflows.c.updated_at.desc()).limit(limit)
        if status is not None:
            query = query.where(workflows.c.status == status.value)
        async with self.engine.connect() as conn:
            records = {r.id: _workflow(r) for r in (await conn.execute(query)).all()}
            if records:
                rows = (await conn.execute(select(steps).where(steps.c.workflow_id.in_(list(records))))).all()
                for row in rows:
                    records[row.workflow_id].steps[row.step_id] = StepResult.model_validate(row.result)
        return list(records.values())

    async def claim(self, workflow_id: str, owner: str, lease_seconds: float) -> bool:
        """Take (or renew) the right to run a workflow: free, ours already, or its lease ran out."""
        now = time.time()
        async with self._write() as conn:
            taken = await conn.execute(update(workflows).where(and_(
                workflows.c.id == workflow_id,
                or_(workflows.c.owner.is_(None), workflows.c.owner == owner, workflows.c.lease_until < now),
            )).values(owner=owner, lease_until=now + lease_seconds))
        return taken.rowcount == 1

    async def release(self, workflow_id: str, owner: str) -> None:
        async with self._write() as conn:
            await conn.execute(update(workflows).where(and_(workflows.c.id == workflow_id, workflows.c.owner == owner))
                               .values(owner=None, lease_until=None))

    async def orphaned(self, limit: int = 100) -> list[str]:
        """Running workflows nobody holds: their coordinator crashed (or released them unfinished)."""
        now = time.time()
        query = select(workflows.c.id).where(and_(
            workflows.c.status == WorkflowStatus.RUNNING.value,
            or_(workflows.c.owner.is_(None), workflows.c.lease_until < now),
        )).limit(limit)
        async with self.engine.connect() as conn:
            return [r.id for r in (await conn.execute(query)).all()]

    # -- escalations --------------------------------------------------------------------------

    async def add_escalation(self, escalation: Escalation) -> None:
        escalation.created_at = escalation.created_at or time.time()
        async with self._write() as conn:
            await conn.execute(insert(escalations).values(**escalation.model_dump(mode="json")))

    async def escalation(self, escalation_id: str) -> Escalation | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(escalations).where(escalations.c.id == escalation_id))).first()
        return Escalation.model_validate(row._asdict()) if row else None

    async def escalations_of(self, workflow_id: str) -> list[Escalation]:
        query = select(escalations).where(escalations.c.workflow_id == workflow_id).order_by(escalations.c.created_at)
        async with self.engine.connect() as conn:
            return [Escalation.model_validate(r._asdict()) for r in (await conn.execute(query)).all()]

    async def open_escalations(self, limit: int = 100) -> list[Escalation]:
        query = (select(escalations).where(escalations.c.answer.is_(None))
                 .order_by(escalations.c.created_at).limit(limit))
        async with self.engine.connect() as conn:
            return [Escalation.model_validate(r._asdict()) for r in (await conn.execute(query)).all()]

    async def answer_escalation(self, escalation_id: str, answer: str) -> bool:
        """Record a human's answer; False when already answered (the first answer wins)."""
        async with self._write() as conn:
            done = await conn.execute(update(escalations).where(and_(
                escalations.c.id == escalation_id, escalations.c.answer.is_(None),
            )).values(answer=answer, answered_at=time.time()))
        return done.rowcount == 1

    # -- memory -------------------------------------------------------------------------------

    async def recall(self, scope: str) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(memory.c.data).where(memory.c.scope == scope))).first()
        return dict(row.data) if row else {}

    async def remember(self, scope: str, facts: dict[str, Any]) -> None:
        """Merge ``facts`` into the scope's memory (later values win)."""
        if not facts:
            return
        for attempt in range(3):  # two workflows of one customer finishing at once: the loser merges again
            try:
                async with self._write() as conn:
                    row = (await conn.execute(select(memory.c.data).where(memory.c.scope == scope))).first()
                    if row is None:
                        await conn.execute(insert(memory).values(scope=scope, data=facts, updated_at=time.time()))
                    else:
                        await conn.execute(update(memory).where(memory.c.scope == scope)
                                           .values(data={**row.data, **facts}, updated_at=time.time()))
                return
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
