"""Run a registry (and agents registered with it) on real sockets inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from agents.settings import MeshSettings
from protocols.registry_client import RegistryClient, read_local_token
from registry.service import RegistryService, serve_registry


@contextlib.asynccontextmanager
async def running_registry(home: Path, db_url: str, **overrides: object) -> AsyncIterator[RegistryService]:
    settings = MeshSettings.from_env({}, home=home, port=0, **overrides)
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[RegistryService] = loop.create_future()
    task = asyncio.create_task(serve_registry(settings, db_url, on_ready=ready.set_result))
    done, _ = await asyncio.wait({ready, task}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    try:
        yield ready.result()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def client_for(service: RegistryService, authenticated: bool = True) -> RegistryClient:
    token = read_local_token(service.settings.home) if authenticated else None
    return RegistryClient(service.base_url, token)
