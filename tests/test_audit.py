"""The audit log on SQLite and PostgreSQL: append, query, batching, append-only, the hash chain,
concurrent writer processes, and ``mesh audit``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from agents.audit import AuditError, AuditEvent, AuditLog, audit_db_url, audit_enabled
from agents.audit_store import GENESIS_HASH
from agents.settings import MeshSettings

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def event(n: int = 0, **fields: object) -> AuditEvent:
    values: dict[str, object] = dict(at=T0 + timedelta(seconds=n), caller="alice", service="echo", protocol="a2a",
                                     operation="SendMessage", target="echo", outcome="allowed", status=200)
    values.update(fields)
    return AuditEvent.model_validate(values)


async def eventually(condition, what: str) -> None:
    """Wait for ``condition()`` (a coroutine function) to hold; the deadline only stops a hung test."""
    for _ in range(1000):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def sql(log: AuditLog, statement: str) -> None:
    await log.store.sql.run(lambda conn: conn.execute(text(statement)), write=True)


async def test_events_are_queried_newest_first_by_every_filter(store_url):
    async with await AuditLog.open(store_url) as log:
        await log.record(event(0))
        await log.record(event(1, caller="bob", outcome="denied", status=403, reason="scope skill:echo missing"))
        await log.record(event(2, caller=None, outcome="unauthenticated", status=401, remote="10.0.0.7"))
        await log.record(event(3, service="registry", protocol="registry", operation="POST /agents", target=None))
        await log.record(event(4, protocol="mcp", operation="tools/call", target="lookup", actor="coordinator",
                               trace_id="ab" * 16))
        await log.flush()

        everything = await log.query()
        assert [r.seq for r in everything] == [5, 4, 3, 2, 1]
        assert everything[0].model_dump(exclude={"seq", "prev_hash", "hash"}) == event(
            4, protocol="mcp", operation="tools/call", target="lookup", actor="coordinator",
            trace_id="ab" * 16).model_dump()
        assert everything[0].at == T0 + timedelta(seconds=4) and everything[0].at.tzinfo == timezone.utc
        assert everything[-1].prev_hash == GENESIS_HASH
        assert all(newer.prev_hash == older.hash for newer, older in zip(everything, everything[1:]))

        assert [r.seq for r in await log.query(caller="alice")] == [5, 4, 1]
        assert [r.seq for r in await log.query(service="registry")] == [4]
        assert [r.seq for r in await log.query(target="lookup")] == [5]
        denied = await log.query(outcome="denied")
        assert [(r.caller, r.status, r.reason) for r in denied] == [("bob", 403, "scope skill:echo missing")]
        assert [r.remote for r in await log.query(outcome="unauthenticated")] == ["10.0.0.7"]
        assert [r.seq for r in await log.query(since=T0 + timedelta(seconds=2))] == [5, 4, 3]
        assert [r.seq for r in await log.query(until=T0 + timedelta(seconds=2))] == [2, 1]
        # a naive time is UTC; another zone is converted
        assert [r.seq for r in await log.query(since=datetime(2026, 5, 1, 14, 0, 3, tzinfo=timezone(timedelta(hours=2))),
                                               until=datetime(2026, 5, 1, 12, 0, 4))] == [4]
        assert [r.seq for r in await log.query(caller="alice", outcome="allowed", limit=2)] == [5, 4]
        assert await log.query(caller="nobody") == []
        with pytest.raises(ValueError, match="unknown outcome 'fine'"):
            await log.query(outcome="fine")
        assert await log.verify() == (True, None)


async def test_values_from_the_request_are_stored_cleaned(store_url):
    async with await AuditLog.open(store_url) as log:
        await log.record(event(0, operation="tools/call\x00", trace_id="x" * 100, remote="é" * 2000))
        await log.flush()  # as they came, PostgreSQL would refuse the NUL and SQLite keep 2000 characters
        stored = (await log.query())[0]
        assert (stored.operation, stored.trace_id, stored.remote) == ("tools/call\ufffd", "x" * 100, "é" * 999 + "…")
        assert await log.verify() == (True, None)


def test_events_are_validated_and_normalised():
    assert event(at=datetime(2026, 5, 1, 12, 0)).at == T0  # naive: UTC
    assert event(at=datetime(2026, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))).at.tzinfo == timezone.utc
    assert AuditEvent(service="echo", protocol="a2a", operation="GetTask", outcome="completed").at.tzinfo is not None
    assert len(event(reason="x" * 5000).reason) == 500
    assert len(event(operation="POST /" + "a" * 5000).operation) == 1000
    assert event(target="tool\x00name").target == "tool\ufffdname"  # PostgreSQL refuses NUL in text
    with pytest.raises(ValidationError):
        event(outcome="fine")
    with pytest.raises(ValidationError):
        event(protocol="grpc")


def test_the_audit_settings(tmp_path):
    settings = MeshSettings(home=tmp_path)
    assert audit_db_url(settings) == f"sqlite:///{tmp_path / 'audit' / 'audit.db'}"
    assert audit_db_url(MeshSettings(audit_db="postgresql://db/audit")) == "postgresql://db/audit"
    assert audit_enabled(settings, auth_required=True) and not audit_enabled(settings, auth_required=False)
    assert not audit_enabled(MeshSettings(audit=False), auth_required=True)
    assert audit_enabled(MeshSettings.from_env({"MESH_AUDIT": "true"}), auth_required=False)


async def test_events_are_written_in_batches_in_the_background(tmp_path):
    log = await AuditLog.open(f"sqlite:///{tmp_path / 'audit.db'}", batch_size=200, flush_interval=60)
    batches: list[int] = []
    append = log.store.append

    async def counted(rows):
        batches.append(len(rows))
        return await append(rows)

    log.store.append = counted  # type: ignore[method-assign]
    try:
        for n in range(199):
            await log.record(event(n))
        assert log.pending == 199  # below the batch size, and the interval is a minute away
        await log.record(event(199))  # the 200th wakes the writer
        await eventually(lambda: _written(log, 200), "a full batch written without waiting for the interval")
        assert batches == [200]
        for n in range(5):
            log.record_nowait(event(200 + n))  # the synchronous form, for a guard's hook
        assert log.pending == 5
    finally:
        await log.close()  # writes the 5 left
    assert batches == [200, 5]
    reopened = await AuditLog.open(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        assert [r.seq for r in await reopened.query(limit=1)] == [205]
        assert await reopened.verify() == (True, None)
    finally:
        await reopened.close()


async def _written(log: AuditLog, count: int) -> bool:
    return log.pending == 0 and await log.store.count() == count


async def test_the_interval_writes_a_part_batch(tmp_path):
    async with await AuditLog.open(f"sqlite:///{tmp_path / 'audit.db'}", batch_size=1000, flush_interval=0.05) as log:
        for n in range(3):
            await log.record(event(n))
        await eventually(lambda: _written(log, 3), "three events written by the interval")


async def test_close_writes_everything_accepted_and_then_refuses(store_url):
    log = await AuditLog.open(store_url, batch_size=10_000, flush_interval=60)
    for n in range(50):
        await log.record(event(n))
    await log.close()
    with pytest.raises(AuditError, match="closed"):
        await log.record(event(51))
    async with await AuditLog.open(store_url) as reopened:
        assert await reopened.store.count() == 50


async def test_a_failing_database_keeps_the_events_and_a_full_queue_refuses_loudly(tmp_path):
    log = await AuditLog.open(f"sqlite:///{tmp_path / 'audit.db'}", batch_size=1, flush_interval=0.01, max_pending=3)
    append = log.store.append
    failures = 0

    async def down_then_up(rows):
        nonlocal failures
        if failures < 2:
            failures += 1
            raise OSError("database unreachable")
        return await append(rows)

    log.store.append = down_then_up  # type: ignore[method-assign]
    try:
        for n in range(3):
            await log.record(event(n))
        with pytest.raises(AuditError, match="3 events behind"):
            await log.record(event(3))
        await eventually(lambda: _written(log, 3), "the kept events written once the database is back")
        assert failures == 2 and log.last_error is None
    finally:
        await log.close()


async def test_update_delete_and_truncate_are_refused(store_url):
    async with await AuditLog.open(store_url) as log:
        for n in range(3):
            await log.record(event(n))
        await log.flush()
        for statement in ("UPDATE mesh_audit SET outcome = 'allowed', reason = '' WHERE seq = 2",
                          "DELETE FROM mesh_audit WHERE seq = 3", "DELETE FROM mesh_audit"):
            with pytest.raises(Exception, match="append-only"):
                await sql(log, statement)
        if log.store.dialect == "postgresql":
            with pytest.raises(Exception, match="append-only"):
                await sql(log, "TRUNCATE mesh_audit")
        assert await log.store.count() == 3
        assert await log.verify() == (True, None)


def _drop_guards(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return ["DROP TRIGGER mesh_audit_no_update", "DROP TRIGGER mesh_audit_no_delete"]
    return ["DROP TRIGGER mesh_audit_no_change ON mesh_audit"]


@pytest.mark.parametrize(("tampering", "first_bad"), [
    (["UPDATE mesh_audit SET outcome = 'allowed', status = 200 WHERE seq = 3"], 3),
    # a careful attacker recomputes the row's own hash: the next row no longer links to it
    (["UPDATE mesh_audit SET caller = 'mallory', hash = '{rehash}' WHERE seq = 3"], 4),
    (["DELETE FROM mesh_audit WHERE seq = 3"], 4),
])
async def test_verify_finds_the_first_row_changed_behind_the_triggers_back(store_url, tampering, first_bad):
    async with await AuditLog.open(store_url) as log:
        for n in range(5):
            await log.record(event(n, outcome="denied" if n == 2 else "allowed", status=403 if n == 2 else 200))
        await log.flush()
        assert await log.verify() == (True, None)
        from agents.audit_store import chain_hash

        row3 = (await log.query(limit=3))[-1].model_dump()
        rehash = chain_hash(row3["prev_hash"], {**row3, "at": row3["at"].isoformat(timespec="microseconds"),
                                                 "caller": "mallory"})
        for statement in _drop_guards(log.store.dialect) + [s.format(rehash=rehash) for s in tampering]:
            await sql(log, statement)
        assert await log.verify() == (False, first_bad)
    async with await AuditLog.open(store_url) as reopened:  # opening puts the guards back
        with pytest.raises(Exception, match="append-only"):
            await sql(reopened, "DELETE FROM mesh_audit")


WRITER = """
import asyncio, logging, os, sys
from agents.audit import AuditEvent, AuditLog

class Failures(logging.Handler):
    seen = []
    def emit(self, record):
        self.seen.append(record.getMessage())

logging.getLogger("agents.audit").addHandler(Failures())

async def main(url, name, count, go):
    async with await AuditLog.open(url, batch_size=7, flush_interval=0.005) as log:
        open(go + "." + name, "w").close()
        while not os.path.exists(go):  # both processes start writing together
            await asyncio.sleep(0.005)
        for n in range(count):
            await log.record(AuditEvent(caller=name, service="echo", protocol="a2a", operation="SendMessage",
                                        outcome="completed", reason=str(n)))
            if n % 5 == 0:
                await asyncio.sleep(0.002)  # let this process's batches interleave with the other's

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
if Failures.seen:  # a batch that had to be retried: the appends were not serialised
    sys.exit("writer failed: " + Failures.seen[0])
"""


async def test_two_writer_processes_keep_one_valid_chain(store_url, tmp_path):
    go = tmp_path / "go"
    writers = [await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, store_url, name, "300", str(go),
                                                    cwd=ROOT, stderr=asyncio.subprocess.PIPE) for name in ("one", "two")]

    async def both_ready() -> bool:
        assert all(w.returncode is None for w in writers), "a writer exited before writing"
        return all((tmp_path / f"go.{name}").exists() for name in ("one", "two"))

    await eventually(both_ready, "both writers ready")
    go.touch()
    for writer in writers:
        _, stderr = await writer.communicate()
        assert writer.returncode == 0, stderr.decode()[-2000:]
    async with await AuditLog.open(store_url) as log:
        records = await log.query(limit=1000)
        assert [r.seq for r in records] == list(range(600, 0, -1))
        for name in ("one", "two"):  # each process's events, all there, in the order it sent them
            assert [r.reason for r in reversed(records) if r.caller == name] == [str(n) for n in range(300)]
        assert await log.verify() == (True, None)


async def test_two_logs_in_one_process_keep_one_valid_chain(store_url):
    first = await AuditLog.open(store_url, batch_size=5, flush_interval=0.001)
    second = await AuditLog.open(store_url, batch_size=5, flush_interval=0.001)
    try:
        for n in range(100):
            await first.record(event(n, caller="first"))
            await second.record(event(n, caller="second"))
            if n % 10 == 0:
                await asyncio.sleep(0)
    finally:
        await asyncio.gather(first.close(), second.close())
    async with await AuditLog.open(store_url) as log:
        assert await log.store.count() == 200
        assert await log.verify() == (True, None)


def mesh(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agents.cli", "audit", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=env)


async def test_mesh_audit_lists_filters_and_verifies(store_url):
    now = datetime.now(timezone.utc)
    async with await AuditLog.open(store_url) as log:
        await log.record(event(0, at=now - timedelta(hours=3), caller="carol", target="old"))
        await log.record(event(0, at=now - timedelta(minutes=5), caller="bob", outcome="denied", status=403,
                               reason="no scope for skill echo"))
        await log.record(event(0, at=now - timedelta(minutes=1), caller=None, outcome="rate_limited", status=429,
                               actor="coordinator", reason="rate limit of 5 requests/s per caller exceeded"))

    listed = await asyncio.to_thread(mesh, "--db", store_url)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["TIME", "(UTC)", "CALLER", "ACTOR", "SERVICE", "OPERATION", "TARGET", "OUTCOME",
                                "STATUS", "REASON"]
    assert lines[1].split()[2:9] == ["(anonymous)", "coordinator", "echo", "SendMessage", "echo", "rate_limited", "429"]
    assert lines[1].endswith("rate limit of 5 requests/s per caller exceeded")
    assert "bob" in lines[2] and "no scope for skill echo" in lines[2] and "carol" in lines[3]

    recent = await asyncio.to_thread(mesh, "--db", store_url, "--since", "2h", "--json")
    assert [r["caller"] for r in json.loads(recent.stdout)] == [None, "bob"]
    denied = await asyncio.to_thread(mesh, "--db", store_url, "--outcome", "denied", "--json")
    assert [(r["caller"], r["seq"]) for r in json.loads(denied.stdout)] == [("bob", 2)]
    nothing = await asyncio.to_thread(mesh, "--db", store_url, "--caller", "nobody")
    assert (nothing.returncode, nothing.stdout.strip()) == (0, "no audit record matches")

    intact = await asyncio.to_thread(mesh, "--db", store_url, "--verify")
    assert (intact.returncode, intact.stdout.strip()) == (0, "audit log intact: 3 records, hash chain verified")
    async with await AuditLog.open(store_url) as log:
        for statement in _drop_guards(log.store.dialect) + ["UPDATE mesh_audit SET outcome = 'allowed' WHERE seq = 2"]:
            await sql(log, statement)
    broken = await asyncio.to_thread(mesh, "--db", store_url, "--verify")
    assert broken.returncode == 1 and "breaks at seq 2" in broken.stdout


def test_mesh_audit_reads_mesh_home_and_explains_bad_input(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "MESH_HOME": str(tmp_path)}
    missing = mesh(env=env)
    assert missing.returncode == 1 and "no audit log at" in missing.stderr and "Traceback" not in missing.stderr

    async def fill() -> None:
        async with await AuditLog.open(audit_db_url(MeshSettings(home=tmp_path))) as log:
            await log.record(event(0, caller="dave"))

    asyncio.run(fill())
    found = mesh("--json", env=env)
    assert [r["caller"] for r in json.loads(found.stdout)] == ["dave"]
    bad_time = mesh("--since", "yesterday", env=env)
    assert bad_time.returncode == 2 and "'yesterday' is not a time" in bad_time.stderr
    bad_outcome = mesh("--outcome", "fine", env=env)
    assert bad_outcome.returncode == 2 and "invalid choice" in bad_outcome.stderr


async def test_a_role_holding_only_insert_and_select_can_open_and_append(postgres_url):
    """The deployment docs/audit-and-limits.md recommends: services cannot even drop the guards."""
    import asyncpg
    from sqlalchemy.engine import make_url

    async with await AuditLog.open(postgres_url) as owner:  # the owner creates the table and guards
        await owner.record(event(0))
    role = "mesh_audit_writer_" + postgres_url.rsplit("_", 1)[1]
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'audit-test'; GRANT SELECT, INSERT ON mesh_audit TO {role}")
        writer_url = make_url(postgres_url).set(username=role, password="audit-test").render_as_string(False)
        try:
            async with await AuditLog.open(writer_url) as writer:
                await writer.record(event(1, caller="writer"))
                await writer.flush()
                assert [r.caller for r in await writer.query()] == ["writer", "alice"]
                with pytest.raises(Exception, match="must be owner|permission denied"):
                    await sql(writer, "DROP TRIGGER mesh_audit_no_change ON mesh_audit")
                assert await writer.verify() == (True, None)
        finally:
            await admin.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
    finally:
        await admin.close()
