"""The customer-service agents' data: one seeded SQLite file per agent under ``$MESH_HOME/customer_service``.

Each agent declares a :class:`SeededDatabase` (file name, schema, seed function) at import time; the
file is opened on first use, at call time, so ``MESH_HOME`` is read when a skill runs (tests point it
at temporary directories) and every resolved path gets a connection of its own. A new file is
seeded once from ``data/`` (marked by ``PRAGMA user_version``), inside a write transaction, so two
processes starting together never seed twice.

All work on one file runs on one thread of its own (the event loop never blocks on the file, and
statements never interleave), each unit of work in one transaction. :meth:`SeededDatabase.write`
takes SQLite's write lock up front (``BEGIN IMMEDIATE``): read-then-update is atomic against every
other writer, in this process or another one (replicas sharing ``MESH_HOME``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from agents.settings import MeshSettings

__all__ = ["DATA_DIR", "SeededDatabase", "load_seed"]

T = TypeVar("T")
DATA_DIR = Path(__file__).resolve().parent / "data"
_SEEDED = 1  # PRAGMA user_version once the seed is in
Seeder = Callable[[sqlite3.Connection], None]
Work = Callable[[sqlite3.Connection], T]


def load_seed(name: str) -> Any:
    """The parsed JSON seed file ``data/<name>``."""
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


class _OpenFile:
    """One SQLite file: a connection used only from its own single worker thread."""

    def __init__(self, path: Path, schema: str, seed: Seeder | None) -> None:
        self.path = path
        self.schema = schema
        self.seed = seed
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"cs-{path.stem}")
        self.connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self.connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for attempt in range(6):
                try:
                    self.connection = self._open()
                    break
                except sqlite3.OperationalError as exc:
                    # Switching a new file to WAL needs it to itself, and SQLite's busy handler does
                    # not wait for that: replicas opening it at the same moment retry, briefly.
                    if "locked" not in str(exc) or attempt == 5:
                        raise
                    time.sleep(0.05 * 2**attempt)
        assert self.connection is not None
        return self.connection

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        try:
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(self.schema)
            self._in_transaction(connection, self._seed_once, "IMMEDIATE")
        except BaseException:
            connection.close()  # not kept: the next call tries to open and seed again
            raise
        return connection

    def _seed_once(self, connection: sqlite3.Connection) -> None:
        if connection.execute("PRAGMA user_version").fetchone()[0] >= _SEEDED:
            return
        if self.seed is not None:
            self.seed(connection)
        connection.execute(f"PRAGMA user_version = {_SEEDED}")

    def transact(self, work: Work[T], mode: str) -> T:
        return self._in_transaction(self._connect(), work, mode)

    @staticmethod
    def _in_transaction(connection: sqlite3.Connection, work: Work[T], mode: str) -> T:
        connection.execute(f"BEGIN {mode}")
        try:
            result = work(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class SeededDatabase:
    """``$MESH_HOME/customer_service/<filename>``: created from ``schema``, seeded once by ``seed``."""

    def __init__(self, filename: str, schema: str, seed: Seeder | None = None) -> None:
        self.filename = filename
        self.schema = schema
        self.seed = seed
        self._files: dict[Path, _OpenFile] = {}
        self._guard = threading.Lock()

    def path(self) -> Path:
        """Where the file is for the current ``MESH_HOME`` (read now, not at import)."""
        return (MeshSettings.from_env().home / "customer_service" / self.filename).resolve()

    async def read(self, work: Work[T]) -> T:
        """Run ``work(connection)`` in one (deferred) transaction: a consistent snapshot."""
        return await self._run(work, "DEFERRED")

    async def write(self, work: Work[T]) -> T:
        """Run ``work(connection)`` holding the file's write lock: atomic against every other writer."""
        return await self._run(work, "IMMEDIATE")

    async def close(self) -> None:
        """Close every file this database opened (the agent's stop hook)."""
        with self._guard:
            files, self._files = list(self._files.values()), {}
        loop = asyncio.get_running_loop()
        for file in files:
            await loop.run_in_executor(file.thread, file.close)
            file.thread.shutdown(wait=True)

    async def _run(self, work: Work[T], mode: str) -> T:
        path = self.path()
        with self._guard:
            file = self._files.get(path)
            if file is None:
                file = self._files[path] = _OpenFile(path, self.schema, self.seed)
        return await asyncio.get_running_loop().run_in_executor(file.thread, file.transact, work, mode)
