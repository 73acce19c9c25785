"""Liveness: leases, probes and the healthy → unhealthy → evicted state machine.

An instance is *alive* while its lease runs (it heartbeats) or its last successful probe is recent
(``/readyz``, else the card for foreign agents; any HTTP answer for an MCP URL). Alive and
unhealthy → healthy; not alive and healthy → unhealthy; unhealthy for ``evict_after`` → evicted.
Evicted instances are no longer probed; a heartbeat or a new registration re-attaches them.

Safety: nothing is downgraded (to unhealthy or to evicted) during ``grace`` after start: a
restarted registry lets the fleet heartbeat first. A store error skips the cycle and starts the
grace again, since the heartbeats that failed meanwhile could not renew any lease; so a store
outage never marks down, let alone evicts, a healthy agent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx

from registry.models import InstanceRecord, InstanceState
from registry.store import RegistryStore, StoreError

__all__ = ["LivenessMonitor", "LivenessPolicy"]

log = logging.getLogger("registry.liveness")


@dataclass(frozen=True, slots=True)
class LivenessPolicy:
    probe_interval: float = 5.0
    probe_timeout: float = 2.0
    evict_after: float = 30.0
    grace: float = 15.0
    max_parallel_probes: int = 16


class LivenessMonitor:
    def __init__(self, store: RegistryStore, policy: LivenessPolicy, http: httpx.AsyncClient) -> None:
        self.store = store
        self.policy = policy
        self.http = http
        self.grace_from = time.time()  # when the grace began: the start, or the last failed cycle
        self._probe_slots = asyncio.Semaphore(policy.max_parallel_probes)

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.cycle()
            except StoreError as exc:
                # Heartbeats got 503 while the store was down, so leases ran out through no fault of
                # the instances: give them a full grace to renew once the store answers again.
                self.grace_from = time.time()
                log.warning("liveness cycle skipped, store unavailable: %s", exc)
            except Exception:
                log.exception("liveness cycle failed")
            await asyncio.sleep(max(0.1, self.policy.probe_interval - (time.monotonic() - started)))

    async def cycle(self) -> None:
        instances = await self.store.live_instances()
        probed = await asyncio.gather(*(self._probe(i) for i in instances))
        now = time.time()
        in_grace = now - self.grace_from < self.policy.grace
        for instance, (ok, reason) in zip(instances, probed, strict=True):
            if ok is not None:
                await self.store.record_probe(instance.id, ok, now)
            alive = self._alive(instance, ok, now)
            state = instance.state
            if alive and state is InstanceState.unhealthy:
                await self.store.set_state(instance.id, InstanceState.healthy, "probe ok", expect=state)
            elif alive or in_grace:  # in the grace nothing goes down, not even to evicted: it may yet heartbeat
                continue
            elif state is InstanceState.healthy:
                await self.store.set_state(instance.id, InstanceState.unhealthy, reason, expect=state)
            elif state is InstanceState.unhealthy and self._unhealthy_for(instance, now) >= self.policy.evict_after:
                await self.store.set_state(
                    instance.id, InstanceState.evicted, f"unhealthy for {self.policy.evict_after:g}s: {reason}", expect=state
                )

    def _alive(self, instance: InstanceRecord, probe_ok: bool | None, now: float) -> bool:
        if instance.lease_expires_at is not None and instance.lease_expires_at.timestamp() > now:
            return True
        return bool(probe_ok)

    @staticmethod
    def _unhealthy_for(instance: InstanceRecord, now: float) -> float:
        return now - instance.state_since.timestamp()

    async def _probe(self, instance: InstanceRecord) -> tuple[bool | None, str]:
        """(ok, reason); ok is None when the instance cannot be probed (a stdio MCP server)."""
        url = instance.url
        if not url.startswith(("http://", "https://")):
            return None, "lease expired (not probeable)"
        async with self._probe_slots:
            try:
                if instance.kind == "mcp":  # any HTTP answer: the server is up
                    response = await self.http.get(url, timeout=self.policy.probe_timeout)
                    return response.status_code < 500, f"probe {url}: HTTP {response.status_code}"
                response = await self.http.get(url.rstrip("/") + "/readyz", timeout=self.policy.probe_timeout)
                if response.status_code == 404:  # a foreign agent: its card answering is the sign of life
                    response = await self.http.get(
                        url.rstrip("/") + "/.well-known/agent-card.json", timeout=self.policy.probe_timeout
                    )
                return response.status_code == 200, f"probe {url}: HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                return False, f"probe {url}: {type(exc).__name__}"
