import os
import uuid

import pytest

# Tests must never pick up a developer's own mesh state or registry.
for name in list(os.environ):
    if name.startswith("MESH_") and not name.startswith("MESH_TEST_"):
        del os.environ[name]

POSTGRES_URL = os.environ.get("MESH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def _fresh_postgres_database() -> str:
    """A new, empty database on the test server; its URL. Raises when the server is unreachable."""
    import asyncpg

    admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
    name = f"mesh_test_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + name


async def _drop_postgres_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request, tmp_path):
    """The registry store URL: each test using it runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    async for url in _postgres():
        yield url


@pytest.fixture
async def postgres_url():
    """A fresh PostgreSQL database, for what only PostgreSQL does (LISTEN/NOTIFY)."""
    async for url in _postgres():
        yield url


async def _postgres():
    """A fresh database on MESH_TEST_POSTGRES_URL, dropped afterwards.

    Unreachable, the test is skipped with the reason, except under CI=true, where it fails: CI must
    prove both stores.
    """
    try:
        url = await _fresh_postgres_database()
    except Exception as exc:
        message = f"PostgreSQL at {POSTGRES_URL} is unreachable ({type(exc).__name__}: {exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield url
    finally:
        await _drop_postgres_database(url)
