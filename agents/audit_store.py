"""The audit table: append-only rows in a hash chain, on SQLite or PostgreSQL.

The database itself refuses UPDATE and DELETE (triggers), and each row carries the hash of the
one before it, so a row changed behind the triggers' back (someone with the file, or the rights
to drop a trigger) is found by ``verify``. Several processes may append to one database: each
batch reads the chain's head and appends in one transaction that holds the write lock
(``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so the chain never forks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from agents.sql import SqlRunner

__all__ = ["GENESIS_HASH", "ROW_FIELDS", "AuditStore", "audit", "chain_hash"]

GENESIS_HASH = "0" * 64
# The fields a row's hash covers, in the order they are stored (``prev_hash`` is chained in front).
ROW_FIELDS = ("seq", "at", "caller", "actor", "service", "protocol", "operation", "target", "outcome",
              "status", "reason", "trace_id", "remote")

metadata = MetaData()
audit = Table(
    "mesh_audit",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),  # ISO 8601 in UTC, fixed width: sorts as it reads
    Column("caller", Text),
    Column("actor", Text),
    Column("service", Text, nullable=False),
    Column("protocol", String(16), nullable=False),
    Column("operation", Text, nullable=False),
    Column("target", Text),
    Column("outcome", String(32), nullable=False),
    Column("status", Integer),
    Column("reason", Text, nullable=False),
    Column("trace_id", Text),
    Column("remote", Text),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("mesh_audit_at", "at"),
    Index("mesh_audit_caller", "caller"),
    Index("mesh_audit_service", "service"),
)

_SQLITE_GUARDS = [
    "CREATE TRIGGER IF NOT EXISTS mesh_audit_no_update BEFORE UPDATE ON mesh_audit "
    "BEGIN SELECT RAISE(ABORT, 'mesh_audit is append-only: UPDATE refused'); END",
    "CREATE TRIGGER IF NOT EXISTS mesh_audit_no_delete BEFORE DELETE ON mesh_audit "
    "BEGIN SELECT RAISE(ABORT, 'mesh_audit is append-only: DELETE refused'); END",
]
_POSTGRES_GUARDS = [
    "CREATE OR REPLACE FUNCTION mesh_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'mesh_audit is append-only: % refused', TG_OP; END $$",
    "CREATE OR REPLACE TRIGGER mesh_audit_no_change BEFORE UPDATE OR DELETE ON mesh_audit "
    "FOR EACH ROW EXECUTE FUNCTION mesh_audit_append_only()",
    "CREATE OR REPLACE TRIGGER mesh_audit_no_truncate BEFORE TRUNCATE ON mesh_audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION mesh_audit_append_only()",
]
_POSTGRES_GUARDS_PRESENT = text(
    "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'mesh_audit'::regclass "
    "AND tgname IN ('mesh_audit_no_change', 'mesh_audit_no_truncate')")
# Held by each appending transaction until it commits; any key, the same in every process.
_POSTGRES_APPEND_LOCK = text("SELECT pg_advisory_xact_lock(1835364201)")
_HEAD = select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)
_INSERT = insert(audit)
_VERIFY_PAGE = 1000


def chain_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """sha256 over the previous hash and the row's canonical JSON (sorted keys, no spaces)."""
    body = json.dumps({name: row[name] for name in ROW_FIELDS}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


class AuditStore:
    """Rows in, rows out: the buffering and the models are ``agents.audit``'s."""

    def __init__(self, url: str) -> None:
        self.sql = SqlRunner(url, name="audit-log", on_connect=_sqlite_connect, on_begin=_sqlite_begin,
                             write_options={"audit_write": True})  # SQLite: BEGIN IMMEDIATE (see _sqlite_begin)
        self.dialect = self.sql.dialect
        if not url.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError(f"audit log URL must be sqlite:///path or postgresql://..., not {url!r}")

    async def initialize(self) -> None:
        """Create the table and its guards; safe when several processes start at once."""
        for attempt in range(6):
            try:
                await self._transaction(self._create)
                return
            except OperationalError as exc:
                # a new SQLite file's switch to WAL needs it to itself and the busy handler does not
                # wait for that: processes opening it at the same moment retry, briefly
                if "locked" not in str(exc) or attempt == 5:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)

    def _create(self, conn: Connection) -> None:
        if self.dialect == "postgresql":
            conn.execute(_POSTGRES_APPEND_LOCK)  # two processes creating the table at once
        metadata.create_all(conn)  # only what is missing: no DDL at all on an existing log
        if self.dialect == "sqlite":
            for statement in _SQLITE_GUARDS:
                conn.exec_driver_sql(statement)
        elif conn.execute(_POSTGRES_GUARDS_PRESENT).scalar_one() < 2:
            # only when missing: the services' role may hold no more than INSERT and SELECT
            for statement in _POSTGRES_GUARDS:
                conn.exec_driver_sql(statement)

    async def close(self) -> None:
        await self.sql.dispose()

    async def _transaction(self, work: Any, *args: Any) -> Any:
        return await self.sql.run(lambda conn: work(conn, *args), write=True)

    async def _read(self, work: Any, *args: Any) -> Any:
        return await self.sql.run(lambda conn: work(conn, *args), write=False)

    async def append(self, rows: Sequence[dict[str, Any]]) -> int:
        """Append rows (without seq and hashes) to the chain in one transaction; the last seq."""
        return int(await self._transaction(self._append, rows))

    def _append(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
        if self.dialect == "postgresql":
            conn.execute(_POSTGRES_APPEND_LOCK)
        head = conn.execute(_HEAD).first()
        seq, prev = (head.seq, head.hash) if head else (0, GENESIS_HASH)
        chained = []
        for row in rows:
            seq += 1
            values = {**row, "seq": seq, "prev_hash": prev}
            prev = values["hash"] = chain_hash(prev, values)
            chained.append(values)
        if chained:
            conn.execute(_INSERT, chained)
        return seq

    async def query(self, *, caller: str | None = None, service: str | None = None, target: str | None = None,
                    outcome: str | None = None, since: str | None = None, until: str | None = None,
                    limit: int = 100) -> list[dict[str, Any]]:
        """Rows matching every given filter, newest first; ``since`` inclusive, ``until`` exclusive."""
        statement = select(audit).order_by(audit.c.seq.desc()).limit(limit)
        for column, value in ((audit.c.caller, caller), (audit.c.service, service), (audit.c.target, target),
                              (audit.c.outcome, outcome)):
            if value is not None:
                statement = statement.where(column == value)
        if since is not None:
            statement = statement.where(audit.c.at >= since)
        if until is not None:
            statement = statement.where(audit.c.at < until)
        return await self._read(lambda conn: [row._asdict() for row in conn.execute(statement)])

    async def verify(self) -> tuple[bool, int | None]:
        """Walk the chain from the first row: (True, None), or (False, the first seq that does not hold).

        A row is bad when its seq is not the one after its predecessor's (a row deleted or inserted),
        its ``prev_hash`` is not its predecessor's hash, or its hash is not what its content gives.
        """
        def walk(conn: Connection) -> tuple[bool, int | None]:
            seq, prev = 0, GENESIS_HASH
            while True:
                page = conn.execute(select(audit).where(audit.c.seq > seq).order_by(audit.c.seq)
                                    .limit(_VERIFY_PAGE)).all()
                for row in page:
                    values = row._asdict()
                    if row.seq != seq + 1 or row.prev_hash != prev or chain_hash(prev, values) != row.hash:
                        return False, row.seq
                    seq, prev = row.seq, row.hash
                if len(page) < _VERIFY_PAGE:
                    return True, None

        return await self._read(walk)

    async def count(self) -> int:
        return await self._read(lambda conn: conn.execute(text("SELECT count(*) FROM mesh_audit")).scalar_one())


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # a process crash loses nothing; only an OS crash could
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # A write takes the lock before it reads the chain's head: a deferred transaction would read,
    # then fail to upgrade when another process appended in between.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("audit_write") else "BEGIN")
