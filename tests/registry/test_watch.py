"""``/v1/watch``: registry changes as SSE, resumable, and shared by replicas of one PostgreSQL store."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time

import httpx
import pytest

import registry.service
from agents import Agent
from protocols.registry_client import RegistryClient
from registry.feed import ChangeFeed
from registry.models import EventType, InstanceState
from registry.records import describe_card
from registry.store import RegistryStore
from tests.registry.support import card_for, client_for, running_registry
from tests.registry.watching import watching
from tests.support import free_port

healthy, unhealthy, evicted = InstanceState.healthy, InstanceState.unhealthy, InstanceState.evicted

courier = Agent("courier", "Carries parcels between agents", version="1.0.0")


@courier.skill(tags=["parcels"])
def carry(parcel: str) -> str:
    """Carry one parcel."""
    return parcel


_used_ports: set[int] = set()


def courier_at(port: int | None = None) -> dict:
    """The card of a courier instance nothing serves: every probe of it is refused.

    Each call names a port no earlier call named: the kernel may hand out a freed port again, and
    two cards at one URL are one instance (an ``updated`` event, not a second ``registered``).
    """
    if port is None:
        while port is None or port in _used_ports:
            port = free_port()
    _used_ports.add(port)
    return card_for(courier, f"http://127.0.0.1:{port}")


async def test_watch_streams_each_change_once_with_increasing_ids(tmp_path, store_url):
    fast = {"registry_probe_seconds": 0.1, "registry_evict_seconds": 0.3, "registry_lease_seconds": 0.2}
    async with running_registry(tmp_path, store_url, **fast) as registry, client_for(registry) as client, \
            watching(registry.base_url, since=0) as watch:
        card = courier_at()
        registration = await client.register(card=card, lease_seconds=0.3)
        received = await watch.take(3)  # registered; the lease lapses, probes fail: unhealthy; then evicted
        await client.heartbeat(registration.instance_id)  # back, with a new lease
        await client.register(card=card, lease_seconds=30)  # registered again (a longer lease): updated
        await client.deregister(registration.instance_id)
        received += await watch.take(3)
        await watch.nothing_more(0.3)

    assert [(r.type, r.event.state) for r in received] == [
        ("registered", healthy), ("state_changed", unhealthy), ("evicted", evicted),
        ("state_changed", healthy), ("updated", None), ("deregistered", None),
    ]
    assert {(r.event.agent_id, r.event.instance_id) for r in received} == {("courier@1.0.0", registration.instance_id)}
    assert [r.event.type.value for r in received] == [r.type for r in received]
    ids = [r.id for r in received]
    assert ids == [r.event.seq for r in received] and ids == sorted(set(ids))
    assert received[1].event.detail.startswith("probe http://127.0.0.1:")
    assert received[2].event.detail.startswith("unhealthy for 0.3s: ")
    assert received[3].event.detail == "heartbeat"
    assert [r.event.at for r in received] == sorted(r.event.at for r in received)


async def test_reconnecting_with_last_event_id_or_since_loses_and_repeats_nothing(tmp_path, store_url):
    async with running_registry(tmp_path, store_url) as registry, client_for(registry) as client:
        async with watching(registry.base_url, since=0) as first:
            registrations = [await client.register(card=courier_at(), lease_seconds=60) for _ in range(3)]
            seen = await first.take(3)
        # nobody watches while these happen
        registrations += [await client.register(card=courier_at(), lease_seconds=60) for _ in range(2)]
        await client.deregister(registrations[0].instance_id)

        async with watching(registry.base_url, last_event_id=seen[-1].id) as resumed:
            missed = await resumed.take(3)
            assert [r.type for r in missed] == ["registered", "registered", "deregistered"]
            live_registration = await client.register(card=courier_at(), lease_seconds=60)
            (live,) = await resumed.take(1)
            assert live.type == "registered" and live.event.instance_id == live_registration.instance_id
            await resumed.nothing_more(0.3)

        logged = [e.seq for e in await registry.store.events_since(0)]
        assert [r.id for r in [*seen, *missed, live]] == logged

        # ?since= replays from any point; changes made while the replay runs come once, in order
        async with watching(registry.base_url, since=seen[0].id) as replay:
            during = [asyncio.create_task(client.register(card=courier_at(), lease_seconds=60)) for _ in range(3)]
            await asyncio.gather(*during)
            replayed = await replay.take(len(logged) - 1 + 3)
            await replay.nothing_more(0.3)
        assert [r.id for r in replayed] == [e.seq for e in await registry.store.events_since(seen[0].id)]

        async with httpx.AsyncClient(base_url=registry.base_url) as http:
            refused = await http.get("/v1/watch", params={"since": "yesterday"})
        assert refused.status_code == 400 and "sequence number" in refused.json()["error"]["message"]


async def test_a_change_that_commits_late_is_still_delivered_in_order(tmp_path, store_url):
    """Another replica's transaction logs an event, then is slow to commit while this one registers.

    If the registration's event could commit first with the higher sequence number, a feed that had
    delivered it would skip the slow one for good.
    """
    async with running_registry(tmp_path, store_url) as registry, client_for(registry) as client:
        replica = RegistryStore(store_url)
        try:
            async with watching(registry.base_url, since=await registry.store.last_seq()) as watch:
                async with replica._write() as conn:
                    await replica._event(conn, EventType.updated, "slow@1", None, None, time.time(), "slow writer")
                    registering = asyncio.create_task(client.register(card=courier_at(), lease_seconds=60))
                    await asyncio.sleep(0.5)
                registration = await registering
                first, second = await watch.take(2)
                await watch.nothing_more(0.2)
        finally:
            await replica.close()
    assert (first.type, first.event.detail) == ("updated", "slow writer")
    assert (second.type, second.event.instance_id) == ("registered", registration.instance_id)
    assert first.id < second.id


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
async def test_replicas_on_one_postgresql_see_each_others_changes_at_once(tmp_path, store_url, monkeypatch):
    # The feeds' periodic poll is off: only LISTEN/NOTIFY can carry a change from one replica to the other.
    monkeypatch.setattr(registry.service, "ChangeFeed", functools.partial(ChangeFeed, poll_interval=3600))
    async with running_registry(tmp_path, store_url) as a, running_registry(tmp_path, store_url) as b, \
            client_for(a) as client_a, client_for(b) as client_b, \
            watching(a.base_url, since=0) as on_a, watching(b.base_url, since=0) as on_b:
        assert a.feed.poll_interval == b.feed.poll_interval == 3600
        await client_a.register(card=courier_at(), lease_seconds=60)
        await on_a.take(1)
        await on_b.take(1)  # both streams are live from here on

        latencies = []
        for _ in range(3):
            sent = time.monotonic()
            registration = await client_a.register(card=courier_at(), lease_seconds=60)
            (got,) = await on_b.take(1, timeout=3)
            assert (got.type, got.event.instance_id) == ("registered", registration.instance_id)
            latencies.append(got.at - sent)
        assert max(latencies) < 1.0, latencies

        await on_a.take(3)
        sent = time.monotonic()
        await client_b.deregister(registration.instance_id)  # and the other way round
        (got,) = await on_a.take(1, timeout=3)
        assert (got.type, got.event.instance_id) == ("deregistered", registration.instance_id)
        assert got.at - sent < 1.0
        (own,) = await on_b.take(1)
        assert own.id == got.id


async def test_the_feed_listens_again_after_its_connection_drops(tmp_path, postgres_url):
    store_url = postgres_url
    async with running_registry(tmp_path, store_url) as registry:
        feed = registry.feed
        feed.poll_interval = 0.2
        first = feed._listener
        await first.close()  # what a PostgreSQL restart does to it
        deadline = time.monotonic() + 5
        while feed._listener is first or feed._listener.is_closed():
            assert time.monotonic() < deadline, "the feed never listened again"
            await asyncio.sleep(0.05)
        feed.poll_interval = 60
        await asyncio.sleep(0.3)  # the running poll now sleeps 60 s: from here only NOTIFY delivers in time
        other = RegistryStore(store_url)  # another replica's writes: no in-process hook reaches our feed
        try:
            async with watching(registry.base_url) as watch:
                await other.register(describe_card(courier_at()), "http://127.0.0.1:1", 60)
                (event,) = await watch.take(1, timeout=1.5)
        finally:
            await other.close()
        assert event.type == "registered"


async def test_the_client_watch_resumes_across_a_registry_restart(tmp_path, store_url):
    port = free_port()
    received: list = []

    async def follow(base_url: str) -> None:
        async with RegistryClient(base_url) as watcher_client:
            async for event in watcher_client.watch(since=0, retry_seconds=0.2):
                received.append(event)

    async with running_registry(tmp_path, store_url, port=port) as registry, client_for(registry) as client:
        await client.register(card=courier_at(), lease_seconds=60)
        watcher = asyncio.create_task(follow(registry.base_url))
        deadline = time.monotonic() + 5
        while len(received) < 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    async with running_registry(tmp_path, store_url, port=port) as registry, client_for(registry) as client:
        await client.register(card=courier_at(), lease_seconds=60)
        deadline = time.monotonic() + 10
        while len(received) < 2:
            assert time.monotonic() < deadline, received
            await asyncio.sleep(0.05)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    assert [e.type.value for e in received] == ["registered", "registered"]
    assert received[1].seq > received[0].seq
