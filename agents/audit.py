"""The audit log: who called which agent or tool, when, and what came of it.

``record`` only queues the event (it is on every request's path); a background writer appends
the queue in batches, at least every ``flush_interval`` seconds or ``batch_size`` events, to an
append-only, hash-chained table (``agents.audit_store``). ``close`` writes what is left, so a
clean stop loses nothing that was accepted. Read it with ``mesh audit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import datetime, timezone
from itertools import islice
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from agents.audit_store import ROW_FIELDS, AuditStore
from agents.settings import MeshSettings

__all__ = ["AuditError", "AuditEvent", "AuditLog", "AuditRecord", "Outcome", "audit_db_url", "audit_enabled"]

log = logging.getLogger(__name__)

Outcome = Literal["allowed", "denied", "unauthenticated", "rate_limited", "rejected", "failed", "completed"]
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]
MAX_REASON = 500  # a reason explains; anything longer is someone else's text
MAX_FIELD = 1000


class AuditError(RuntimeError):
    """The audit log cannot take the event: closed, or its writer is too far behind (database down)."""


class AuditEvent(BaseModel):
    """One call as the guard saw it. Never put a credential or an argument value in any field."""

    at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc), description="When, in UTC.")
    caller: str | None = Field(default=None, description="Authenticated subject; None: anonymous.")
    actor: str | None = Field(default=None, description="The service acting for the caller, when delegated.")
    service: str = Field(description='The agent called, or "registry".')
    protocol: Literal["a2a", "mcp", "registry"]
    operation: str = Field(description="A2A method (SendMessage), MCP method (tools/call) or REST route.")
    target: str | None = Field(default=None, description="Skill or tool id.")
    outcome: Outcome
    status: int | None = Field(default=None, description="HTTP status of the answer.")
    reason: str = ""
    trace_id: str | None = None
    remote: str | None = Field(default=None, description="Client address.")

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    @field_validator("caller", "actor", "service", "operation", "target", "reason", "trace_id", "remote")
    @classmethod
    def _storable(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Some of these come from the request (a route, a tool name): a NUL would make PostgreSQL
        # refuse the whole batch, and a huge value bloat every row after it.
        if value is None:
            return None
        longest = MAX_REASON if info.field_name == "reason" else MAX_FIELD
        value = value.replace("\x00", "\ufffd")
        return value if len(value) <= longest else value[: longest - 1] + "…"


class AuditRecord(AuditEvent):
    """An event as stored: its place in the chain and the hashes that link it."""

    seq: int
    prev_hash: str
    hash: str


def audit_db_url(settings: MeshSettings) -> str:
    """``MESH_AUDIT_DB``, else the SQLite file ``$MESH_HOME/audit/audit.db``."""
    return settings.audit_db or f"sqlite:///{settings.state_dir('audit') / 'audit.db'}"


def audit_enabled(settings: MeshSettings, *, auth_required: bool) -> bool:
    """``MESH_AUDIT`` when set; unset, the log is kept exactly when authentication is required."""
    return auth_required if settings.audit is None else settings.audit


def _stamp(at: datetime) -> str:
    # fixed width, always UTC: the stored text sorts as time does, and hashes the same everywhere
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


_EVENT_FIELDS = frozenset(ROW_FIELDS) - {"seq"}


def _row(event: AuditEvent) -> dict[str, Any]:
    row = event.model_dump(include=_EVENT_FIELDS)  # a subclass's extra fields are not columns
    row["at"] = _stamp(event.at)
    return row


class AuditLog:
    """An open audit log. One per process; safe to share between all the requests of an event loop."""

    def __init__(self, store: AuditStore, *, batch_size: int = 200, flush_interval: float = 0.1,
                 max_pending: int = 100_000) -> None:
        self.store = store
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self._pending: deque[AuditEvent] = deque()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one batch in flight: the chain is appended in order
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self.last_error: str | None = None

    @classmethod
    async def open(cls, url: str, **options: Any) -> AuditLog:
        """Open (creating if needed) the log at ``sqlite:///path`` or ``postgresql://...``."""
        store = AuditStore(url)
        try:
            await store.initialize()
        except BaseException:
            await store.close()
            raise
        return cls(store, **options)

    @property
    def pending(self) -> int:
        """Events accepted and not yet written."""
        return len(self._pending)

    async def record(self, event: AuditEvent) -> None:
        """Accept ``event`` for writing; returns at once. Raises AuditError when the log cannot take it."""
        self.record_nowait(event)

    def record_nowait(self, event: AuditEvent) -> None:
        """``record`` for synchronous callers (a guard's hook): no task, no await; same errors."""
        if self._closed:
            raise AuditError("the audit log is closed")
        if len(self._pending) >= self.max_pending:
            raise AuditError(f"the audit log is {len(self._pending)} events behind its database "
                             f"({self.last_error or 'writing'}); refusing more")
        self._pending.append(event)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_continuously(), name="audit-writer")
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    async def flush(self) -> None:
        """Write everything accepted so far; raises when the database refuses (nothing is dropped)."""
        async with self._lock:
            while self._pending:
                batch = list(islice(self._pending, 1000))
                await self.store.append([_row(event) for event in batch])
                for _ in batch:  # only once they are committed: a failed batch is retried whole
                    self._pending.popleft()
                self.last_error = None

    async def close(self) -> None:
        """Stop accepting, write what is left, close the database."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._wake.set()
            await self._writer
        try:
            await self.flush()
        finally:
            await self.store.close()

    async def __aenter__(self) -> AuditLog:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _write_continuously(self) -> None:
        delay = self.flush_interval
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            if self._closed:
                return  # close() writes the rest, and reports a failure to its caller
            try:
                await self.flush()
                delay = self.flush_interval
            except Exception as exc:  # the database is down or locked: keep the events, retry later
                if self.last_error is None:
                    log.error("audit log: cannot write %d events, will retry: %s", len(self._pending), exc)
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = min(delay * 2, 5.0)

    async def query(self, *, caller: str | None = None, service: str | None = None, target: str | None = None,
                    outcome: str | None = None, since: datetime | None = None, until: datetime | None = None,
                    limit: int = 100) -> list[AuditRecord]:
        """Written events matching every given filter, newest first (``flush`` first to see the latest)."""
        if outcome is not None and outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; one of: {', '.join(OUTCOMES)}")
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        rows = await self.store.query(
            caller=caller, service=service, target=target, outcome=outcome, limit=limit,
            since=_stamp(_aware(since)) if since else None, until=_stamp(_aware(until)) if until else None)
        return [AuditRecord.model_validate(row) for row in rows]

    async def verify(self) -> tuple[bool, int | None]:
        """Check the whole hash chain: (True, None), or (False, the first seq that was tampered with)."""
        return await self.store.verify()


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at
