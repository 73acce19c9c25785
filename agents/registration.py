"""Keep one agent instance registered: register on start, heartbeat, deregister on clean shutdown.

The registry being down never stops the agent: registration and heartbeats retry in the
background, and a registry that lost the instance (404 on heartbeat) gets it registered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from agents.settings import MeshSettings
from protocols.registry_client import RegistryClient, RegistryError, read_local_token

__all__ = ["RegistryLink"]

log = logging.getLogger("agents.registration")
_RETRY_MAX = 10.0


class RegistryLink:
    def __init__(self, settings: MeshSettings, base_url: str, in_flight: Callable[[], int]) -> None:
        self.settings = settings
        self.base_url = base_url
        self.in_flight = in_flight
        self.client = self._client()
        self.instance_id: str | None = None
        self.registered = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.instance_id is not None:
            try:
                await asyncio.wait_for(self.client.deregister(self.instance_id), timeout=3)
                log.info("deregistered %s from %s", self.instance_id, self.settings.registry_url)
            except (RegistryError, asyncio.TimeoutError) as exc:
                log.warning("could not deregister from the registry: %s", exc)
        await self.client.aclose()

    def _client(self) -> RegistryClient:
        assert self.settings.registry_url, "a RegistryLink needs MESH_REGISTRY_URL"
        token = self.settings.registry_token or read_local_token(self.settings.home)
        return RegistryClient(self.settings.registry_url, token)

    async def _reread_local_token(self) -> None:
        """Take up the token file of a registry sharing our home that started after us (or made a new one)."""
        if self.settings.registry_token is None:
            await self.client.aclose()
            self.client = self._client()

    async def _register(self) -> None:
        registration = await self.client.register(card_url=self.base_url, lease_seconds=self.settings.registry_lease_seconds)
        self.instance_id = registration.instance_id
        self.registered.set()
        log.info("registered as %s (%s) at %s", registration.instance_id, registration.agent_id, self.settings.registry_url)

    async def _run(self) -> None:
        period = self.settings.registry_lease_seconds / 3
        delay = 0.5
        while True:
            try:
                if self.instance_id is None:
                    await self._register()
                else:
                    await self.client.heartbeat(self.instance_id, self.in_flight())
                delay = 0.5
                await asyncio.sleep(period)
            except RegistryError as exc:
                if exc.status == 404:  # the registry lost us (a wiped store): register again at once
                    self.instance_id = None
                    continue
                if exc.status == 401:
                    await self._reread_local_token()
                log.warning("registry: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX, period)
