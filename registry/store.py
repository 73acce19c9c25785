"""The registry store: agents, instances with leases, state transitions and a change log.

One implementation over SQLAlchemy Core serves SQLite (default, WAL, one file) and PostgreSQL
(several registry replicas sharing one database). Every change appends to ``registry_events``;
``on_change`` is called after each commit so watchers can read the log, and on PostgreSQL a
``NOTIFY`` carries the change to the other replicas (see ``registry.feed``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, delete, event, exists, func, insert, select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from registry import schema
from registry.models import AgentRecord, Event, EventType, InstanceRecord, InstanceState, SkillSummary, Transition
from registry.records import AgentDescription, instance_id_for
from registry.search import search_index_for

__all__ = ["AgentQuery", "RegistryStore", "StoreError", "async_url"]

NOTIFY_CHANNEL = "mesh_registry"
# Held by every PostgreSQL transaction that may log an event (see ``RegistryStore._write``).
_SERIALIZE_WRITES = text("SELECT pg_advisory_xact_lock(1835364200)")  # any key, the same in every replica
ChangeHook = Callable[[], Awaitable[None]]


class StoreError(RuntimeError):
    """The store could not answer; callers must not take it as 'nothing there'."""


def async_url(url: str) -> str:
    """Accept plain ``sqlite:///`` and ``postgresql://`` URLs; pick the async drivers."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    return url


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)


class AgentQuery:
    """Filters of a discovery call; all given filters must hold."""

    def __init__(
        self,
        *,
        skill: str | None = None,
        tag: str | None = None,
        input_mode: str | None = None,
        output_mode: str | None = None,
        name: str | None = None,
        text: str | None = None,
        kind: str | None = None,
        include_all: bool = False,
        limit: int = 100,
    ) -> None:
        self.facets = [(f, v) for f, v in (("skill", skill), ("tag", tag and tag.lower()),
                                            ("input_mode", input_mode), ("output_mode", output_mode)) if v]
        self.name, self.text, self.kind = name, text, kind
        self.include_all = include_all
        self.limit = limit


class RegistryStore:
    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.engine: AsyncEngine = create_async_engine(self.url)
        self.dialect = self.engine.dialect.name
        self.search = search_index_for(self.dialect)
        self.on_change: list[ChangeHook] = []
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    async def initialize(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(schema.metadata.create_all)
            await self.search.setup(conn)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    # -- writes ---------------------------------------------------------------------------

    async def register(self, desc: AgentDescription, url: str, lease_seconds: float | None) -> tuple[InstanceRecord, bool]:
        """Upsert the agent and the instance at ``url``; idempotent. Returns (instance, created)."""
        now = time.time()
        instance_id = instance_id_for(desc.id, url)
        async with self._write() as conn:
            known = (await conn.execute(select(schema.agents.c.id).where(schema.agents.c.id == desc.id))).first()
            values = {
                "kind": desc.kind, "name": desc.name, "version": desc.version, "description": desc.description,
                "protocol_version": desc.protocol_version, "card": desc.card,
                "skills": [s.model_dump() for s in desc.skills], "search_text": "",
                "verified": desc.verified, "verification": desc.verification, "updated_at": now,
            }
            if known:
                await conn.execute(update(schema.agents).where(schema.agents.c.id == desc.id).values(**values))
                await conn.execute(delete(schema.agent_facets).where(schema.agent_facets.c.agent_id == desc.id))
            else:
                await conn.execute(insert(schema.agents).values(id=desc.id, **values))
            if desc.facets:
                await conn.execute(
                    insert(schema.agent_facets),
                    [{"agent_id": desc.id, "facet": f, "value": v} for f, v in desc.facets],
                )
            await self.search.put(conn, desc.id, desc.searchable)
            row = (await conn.execute(select(schema.instances).where(schema.instances.c.id == instance_id))).first()
            lease_expires = now + lease_seconds if lease_seconds else None
            if row is None:
                await conn.execute(insert(schema.instances).values(
                    id=instance_id, agent_id=desc.id, kind=desc.kind, url=url, state=InstanceState.healthy.value, registered_at=now,
                    lease_seconds=lease_seconds, lease_expires_at=lease_expires, last_heartbeat_at=now if lease_seconds else None,
                    state_since=now, in_flight=0))
                await self._transition_row(conn, instance_id, InstanceState.healthy, now, "registered")
                await self._event(conn, EventType.registered, desc.id, instance_id, InstanceState.healthy, now, url)
            else:
                await conn.execute(update(schema.instances).where(schema.instances.c.id == instance_id).values(
                    lease_seconds=lease_seconds, lease_expires_at=lease_expires, last_heartbeat_at=now if lease_seconds else None))
                if row.state != InstanceState.healthy.value:
                    await self._set_state(conn, instance_id, desc.id, InstanceState.healthy, now, "registered again")
                await self._event(conn, EventType.updated, desc.id, instance_id, None, now, url)
        instance = await self.instance(instance_id)
        assert instance is not None
        return instance, row is None

    async def heartbeat(self, instance_id: str, in_flight: int) -> InstanceRecord | None:
        """Renew the lease; an unhealthy or evicted instance re-attaches as healthy."""
        now = time.time()
        async with self._write() as conn:
            row = (await conn.execute(select(schema.instances).where(schema.instances.c.id == instance_id))).first()
            if row is None:
                return None
            lease = row.lease_seconds
            await conn.execute(update(schema.instances).where(schema.instances.c.id == instance_id).values(
                last_heartbeat_at=now, in_flight=in_flight, lease_expires_at=now + lease if lease else None))
            if row.state != InstanceState.healthy.value:
                await self._set_state(conn, instance_id, row.agent_id, InstanceState.healthy, now, "heartbeat")
        return await self.instance(instance_id)

    async def record_probe(self, instance_id: str, ok: bool, at: float) -> None:
        values: dict[str, Any] = {"last_probe_at": at}
        if ok:
            values["last_probe_ok_at"] = at
        async with self._write(notify=False) as conn:
            await conn.execute(update(schema.instances).where(schema.instances.c.id == instance_id).values(**values))

    async def set_state(self, instance_id: str, state: InstanceState, reason: str, expect: InstanceState | None = None) -> bool:
        """Move an instance to ``state``; with ``expect`` only if it is still in that state (replica-safe)."""
        now = time.time()
        async with self._write() as conn:
            row = (await conn.execute(select(schema.instances.c.agent_id, schema.instances.c.state)
                                      .where(schema.instances.c.id == instance_id))).first()
            if row is None or row.state == state.value or (expect is not None and row.state != expect.value):
                return False
            await self._set_state(conn, instance_id, row.agent_id, state, now, reason)
        return True

    async def deregister(self, instance_id: str) -> bool:
        now = time.time()
        async with self._write() as conn:
            row = (await conn.execute(select(schema.instances.c.agent_id, schema.instances.c.url)
                                      .where(schema.instances.c.id == instance_id))).first()
            if row is None:
                return False
            await conn.execute(delete(schema.transitions).where(schema.transitions.c.instance_id == instance_id))
            await conn.execute(delete(schema.instances).where(schema.instances.c.id == instance_id))
            await self._event(conn, EventType.deregistered, row.agent_id, instance_id, None, now, row.url)
            left = (await conn.execute(select(func.count()).select_from(schema.instances)
                                       .where(schema.instances.c.agent_id == row.agent_id))).scalar_one()
            if not left:  # an agent with no instance left is gone too
                await self.search.remove(conn, row.agent_id)
                await conn.execute(delete(schema.agent_facets).where(schema.agent_facets.c.agent_id == row.agent_id))
                await conn.execute(delete(schema.agents).where(schema.agents.c.id == row.agent_id))
        return True

    # -- reads ----------------------------------------------------------------------------

    async def instance(self, instance_id: str) -> InstanceRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(select(schema.instances).where(schema.instances.c.id == instance_id))).first()
            if row is None:
                return None
            return (await self._instances(conn, [row]))[0]

    async def live_instances(self) -> list[InstanceRecord]:
        """Instances the liveness monitor watches: all but the evicted."""
        async with self._read() as conn:
            rows = (await conn.execute(select(schema.instances)
                                       .where(schema.instances.c.state != InstanceState.evicted.value))).all()
            return await self._instances(conn, rows, with_transitions=False)

    async def agent(self, agent_id: str) -> AgentRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(select(schema.agents).where(schema.agents.c.id == agent_id))).first()
            return None if row is None else (await self._agents(conn, [row], include_all=True))[0]

    async def find(self, query: AgentQuery) -> list[AgentRecord]:
        async with self._read() as conn:
            stmt = select(schema.agents)
            for facet, value in query.facets:
                stmt = stmt.where(exists().where(and_(
                    schema.agent_facets.c.agent_id == schema.agents.c.id,
                    schema.agent_facets.c.facet == facet, schema.agent_facets.c.value == value)))
            if query.name:
                stmt = stmt.where(func.lower(schema.agents.c.name).contains(query.name.lower()))
            if query.kind:
                stmt = stmt.where(schema.agents.c.kind == query.kind)
            if not query.include_all:
                stmt = stmt.where(exists().where(and_(
                    schema.instances.c.agent_id == schema.agents.c.id,
                    schema.instances.c.state == InstanceState.healthy.value)))
            scores: dict[str, float] | None = None
            if query.text:
                scores = await self.search.rank(conn, query.text, limit=1000)
                if not scores:
                    return []
                stmt = stmt.where(schema.agents.c.id.in_(list(scores)))
            rows = (await conn.execute(stmt.order_by(schema.agents.c.name, schema.agents.c.version))).all()
            records = await self._agents(conn, rows, include_all=query.include_all)
        if scores is not None:
            for record in records:
                record.score = scores[record.id]
            records.sort(key=lambda r: (-(r.score or 0), r.name))
        return records[: query.limit]

    async def events_since(self, seq: int, limit: int = 500) -> list[Event]:
        async with self._read() as conn:
            rows = (await conn.execute(select(schema.events).where(schema.events.c.seq > seq)
                                       .order_by(schema.events.c.seq).limit(limit))).all()
        return [Event(seq=r.seq, type=EventType(r.type), agent_id=r.agent_id, instance_id=r.instance_id,
                      state=InstanceState(r.state) if r.state else None, at=_dt(r.at), detail=r.detail) for r in rows]

    async def last_seq(self) -> int:
        async with self._read() as conn:
            return int((await conn.execute(select(func.coalesce(func.max(schema.events.c.seq), 0)))).scalar_one())

    # -- helpers --------------------------------------------------------------------------

    async def _agents(self, conn: AsyncConnection, rows: Sequence[Row[Any]], include_all: bool) -> list[AgentRecord]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        stmt = select(schema.instances).where(schema.instances.c.agent_id.in_(ids))
        if not include_all:
            stmt = stmt.where(schema.instances.c.state == InstanceState.healthy.value)
        by_agent: dict[str, list[InstanceRecord]] = {i: [] for i in ids}
        for instance in await self._instances(conn, (await conn.execute(stmt.order_by(schema.instances.c.url))).all()):
            by_agent[instance.agent_id].append(instance)
        return [
            AgentRecord(id=r.id, kind=r.kind, name=r.name, version=r.version, description=r.description,
                        protocol_version=r.protocol_version, skills=[SkillSummary(**s) for s in r.skills],
                        verified=r.verified, verification=r.verification, card=r.card,
                        updated_at=_dt(r.updated_at), instances=by_agent[r.id])
            for r in rows
        ]

    async def _instances(self, conn: AsyncConnection, rows: Sequence[Row[Any]], with_transitions: bool = True) -> list[InstanceRecord]:
        history: dict[str, list[Transition]] = {r.id: [] for r in rows}
        if with_transitions and rows:
            for t in await conn.execute(select(schema.transitions).where(schema.transitions.c.instance_id.in_(list(history)))
                                        .order_by(schema.transitions.c.id)):
                history[t.instance_id].append(Transition(state=InstanceState(t.state), at=_dt(t.at), reason=t.reason))
        return [
            InstanceRecord(id=r.id, agent_id=r.agent_id, kind=r.kind, url=r.url, state=InstanceState(r.state),
                           state_since=_dt(r.state_since),
                           registered_at=_dt(r.registered_at), lease_seconds=r.lease_seconds,
                           lease_expires_at=_dt(r.lease_expires_at), last_heartbeat_at=_dt(r.last_heartbeat_at),
                           last_probe_at=_dt(r.last_probe_at), last_probe_ok_at=_dt(r.last_probe_ok_at),
                           in_flight=r.in_flight, transitions=history[r.id][-20:])
            for r in rows
        ]

    async def _set_state(self, conn: AsyncConnection, instance_id: str, agent_id: str, state: InstanceState, now: float, reason: str) -> None:
        await conn.execute(update(schema.instances).where(schema.instances.c.id == instance_id)
                           .values(state=state.value, state_since=now))
        await self._transition_row(conn, instance_id, state, now, reason)
        kind = EventType.evicted if state is InstanceState.evicted else EventType.state_changed
        await self._event(conn, kind, agent_id, instance_id, state, now, reason)

    @staticmethod
    async def _transition_row(conn: AsyncConnection, instance_id: str, state: InstanceState, now: float, reason: str) -> None:
        await conn.execute(insert(schema.transitions).values(instance_id=instance_id, state=state.value, at=now, reason=reason))

    async def _event(self, conn: AsyncConnection, kind: EventType, agent_id: str, instance_id: str | None,
                     state: InstanceState | None, now: float, detail: str) -> None:
        await conn.execute(insert(schema.events).values(type=kind.value, agent_id=agent_id, instance_id=instance_id,
                                                        state=state.value if state else None, at=now, detail=detail))
        if self.dialect == "postgresql":  # delivered at commit, to every replica's listener
            await conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))

    def _read(self) -> _Guard:
        return _Guard(self.engine.connect(), hooks=None)

    @contextlib.asynccontextmanager
    async def _write(self, notify: bool = True) -> AsyncIterator[AsyncConnection]:
        """A write transaction; with ``notify`` it may log events and wakes the watchers after commit.

        On PostgreSQL such a transaction first takes one advisory lock, held until it commits. Without
        it two transactions could commit their events out of sequence order (seq 11 visible before
        seq 10), and a feed that had delivered 11 would never deliver 10; it also keeps read-then-write
        steps (an expected state, an upsert) from interleaving across replicas. SQLite already lets
        one writer in at a time.
        """
        async with _Guard(self.engine.begin(), hooks=self.on_change if notify else None) as conn:
            if notify and self.dialect == "postgresql":
                await conn.execute(_SERIALIZE_WRITES)
            yield conn


class _Guard:
    """A connection context that turns driver errors into StoreError and runs change hooks after commit."""

    def __init__(self, context: Any, hooks: list[ChangeHook] | None) -> None:
        self._context, self._hooks = context, hooks

    async def __aenter__(self) -> AsyncConnection:
        try:
            return await self._context.__aenter__()
        except Exception as exc:
            raise StoreError(f"registry store unavailable: {type(exc).__name__}: {exc}") from exc

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        try:
            await self._context.__aexit__(exc_type, exc, tb)
        except Exception as error:
            raise StoreError(f"registry store write failed: {type(error).__name__}: {error}") from error
        if exc is not None and not isinstance(exc, StoreError) and _is_db_error(exc):
            raise StoreError(f"registry store error: {type(exc).__name__}: {exc}") from exc
        if exc is None and self._hooks:
            for hook in self._hooks:
                await hook()
        return False


def _is_db_error(exc: BaseException) -> bool:
    return isinstance(exc, (SQLAlchemyError, OSError))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
