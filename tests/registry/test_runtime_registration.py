"""Our runtime and the registry: ``mesh serve`` processes with ``MESH_REGISTRY_URL`` set.

The agent registers on start, heartbeats, deregisters on SIGTERM; a crash leaves it registered
until its lease ends; a restarted registry gets heartbeats, not a new registration, and one whose
store was wiped gets the agent registered again without anyone's help. The registry runs in the
test's event loop on a fixed port, so it can be stopped and started again where the agent expects it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg

from protocols.registry_client import RegistryClient
from registry.models import EventType, InstanceRecord, InstanceState
from registry.service import RegistryService
from tests.registry.support import client_for, eventually, instance_of, running_registry, wait_for_state
from tests.support import AgentProcess, free_port

TESTBENCH = "tests.agents_under_test:agent"
LEASE = 2.0  # the agent heartbeats every LEASE / 3


def agent_process(home: Path, registry_port: int) -> AgentProcess:
    env = {"MESH_REGISTRY_URL": f"http://127.0.0.1:{registry_port}", "MESH_REGISTRY_LEASE_SECONDS": str(LEASE)}
    return AgentProcess(TESTBENCH, home, env=env)  # the same MESH_HOME as the registry: it finds the token there


async def registered_instance(client: RegistryClient) -> InstanceRecord:
    found = await eventually(lambda: client.find(name="testbench", all=True),
                             lambda agents: len(agents) == 1 and len(agents[0].instances) == 1,
                             timeout=10, what="testbench registered")
    return found[0].instances[0]


async def event_types(registry: RegistryService) -> list[EventType]:
    return [e.type for e in await registry.store.events_since(0)]


def at(record_time: object) -> float:
    assert record_time is not None
    return record_time.timestamp()  # type: ignore[attr-defined]


async def wipe(store_url: str) -> None:
    if store_url.startswith("sqlite:///"):
        db = Path(store_url.removeprefix("sqlite:///"))
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            path.unlink(missing_ok=True)
        return
    connection = await asyncpg.connect(store_url)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


async def test_an_agent_registers_heartbeats_outlives_registry_restarts_and_leaves_on_sigterm(tmp_path, store_url):
    port = free_port()
    settings = {"port": port, "registry_lease_seconds": LEASE}
    agent = agent_process(tmp_path, port)
    # the agent starts first: it keeps trying until the registry is up and has written its token
    await asyncio.to_thread(agent.start)
    try:
        async with running_registry(tmp_path, store_url, **settings) as registry, client_for(registry) as client:
            first = await registered_instance(client)
            assert (first.url, first.state, first.lease_seconds) == (agent.url, InstanceState.healthy, LEASE)
            renewed = await eventually(lambda: instance_of(registry, first.id),
                                       lambda r: r is not None and at(r.lease_expires_at) > at(first.lease_expires_at),
                                       timeout=LEASE, what="the lease renewed")
            assert renewed is not None and at(renewed.last_heartbeat_at) > at(first.registered_at)
        await asyncio.sleep(0.5)  # the registry is down: heartbeats fail, the agent keeps trying

        async with running_registry(tmp_path, store_url, **settings) as registry:
            restarted = time.time()
            after = await eventually(lambda: instance_of(registry, first.id),
                                     lambda r: r is not None and at(r.last_heartbeat_at) > restarted,
                                     timeout=3, what="a heartbeat to the restarted registry")
            assert after is not None and after.state is InstanceState.healthy
            assert after.registered_at == first.registered_at
            assert [t.reason for t in after.transitions] == ["registered"]
            assert await event_types(registry) == [EventType.registered]  # re-attached, not registered again

        await wipe(store_url)
        async with running_registry(tmp_path, store_url, **settings) as registry, client_for(registry) as client:
            again = await registered_instance(client)  # its heartbeat got 404, so it registered by itself
            assert again.id == first.id and again.registered_at > first.registered_at
            assert await event_types(registry) == [EventType.registered]

            assert await asyncio.to_thread(agent.stop) == 0
            assert await instance_of(registry, first.id) is None  # gone before the process exited
            assert await client.find(all=True) == []
            assert await event_types(registry) == [EventType.registered, EventType.deregistered]
    finally:
        agent.kill()


async def test_a_killed_agent_stays_registered_until_its_lease_ends(tmp_path, store_url):
    port = free_port()
    fast = {"port": port, "registry_probe_seconds": 0.1, "registry_lease_seconds": 0.5}
    async with running_registry(tmp_path, store_url, **fast) as registry, client_for(registry) as client:
        agent = agent_process(tmp_path, port)
        await asyncio.to_thread(agent.start)
        try:
            instance = await registered_instance(client)
        finally:
            await asyncio.to_thread(agent.kill)
        killed_at = time.time()

        await asyncio.sleep(0.3)
        kept = await instance_of(registry, instance.id)
        assert kept is not None and kept.state is InstanceState.healthy
        assert at(kept.lease_expires_at) > time.time()  # its lease still runs, though the probes fail already
        assert at(kept.last_probe_at) > killed_at and kept.last_probe_ok_at != kept.last_probe_at

        down = await wait_for_state(registry, instance.id, InstanceState.unhealthy, timeout=LEASE + 2)
        assert down.transitions[-1].at >= kept.lease_expires_at
        assert down.transitions[-1].reason == f"probe {agent.url}: ConnectError"
