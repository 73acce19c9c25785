"""Run a registry (and agents registered with it) on real sockets inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx

from agents.definition import Agent
from agents.settings import MeshSettings
from protocols.cards import build_card, card_to_dict
from protocols.registry_client import RegistryClient, read_local_token
from registry.models import InstanceRecord, InstanceState
from registry.service import RegistryService, serve_registry
from tests.support import serving


@contextlib.asynccontextmanager
async def running_registry(home: Path, db_url: str, **overrides: object) -> AsyncIterator[RegistryService]:
    settings = MeshSettings.from_env({}, **{"home": home, "port": 0, **overrides})  # a port given: restartable in place
    async with serving(lambda on_ready: serve_registry(settings, db_url, on_ready=on_ready), "registry") as service:
        yield service


def client_for(service: RegistryService, authenticated: bool = True) -> RegistryClient:
    token = read_local_token(service.settings.home) if authenticated else None
    return RegistryClient(service.base_url, token)


def card_for(agent: Agent, url: str) -> dict:
    """The card ``agent`` would serve at ``url``: to register an instance the registry need not reach."""
    return card_to_dict(build_card(agent, url))


T = TypeVar("T")


async def eventually(read: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 5.0, what: str = "") -> T:
    """``read()`` again every 50 ms until ``ok`` holds of its value; AssertionError with the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await read()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what or 'true'} after {timeout} s; last: {value!r}")
        await asyncio.sleep(0.05)


async def instance_of(service: RegistryService, instance_id: str) -> InstanceRecord | None:
    """The instance as ``GET /v1/instances/{id}`` shows it, transitions included; None when gone."""
    async with httpx.AsyncClient(base_url=service.base_url) as http:
        response = await http.get(f"/v1/instances/{instance_id}")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return InstanceRecord.model_validate_json(response.content)


async def wait_for_state(service: RegistryService, instance_id: str, state: InstanceState, timeout: float = 5.0) -> InstanceRecord:
    record = await eventually(lambda: instance_of(service, instance_id),
                              lambda r: r is not None and r.state is state, timeout, f"{instance_id} {state.value}")
    assert record is not None
    return record
