"""Liveness over real sockets: leases, probes, healthy → unhealthy → evicted, grace, store outages.

Timings are shortened through the settings: the monitor probes every 0.1 s, evicts after 0.5 s
unhealthy, and its grace after a start equals ``registry_lease_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agents import Agent
from protocols.registry_client import RegistryError
from registry.models import EventType, InstanceState
from tests.agents_under_test import agent as testbench
from tests.registry.support import card_for, client_for, instance_of, running_registry, wait_for_state
from tests.support import free_port, running_agent, serving_app

healthy, unhealthy, evicted = InstanceState.healthy, InstanceState.unhealthy, InstanceState.evicted
FAST = {"registry_probe_seconds": 0.1, "registry_evict_seconds": 0.5, "registry_lease_seconds": 0.3}
CARD_PATH = "/.well-known/agent-card.json"

clerk = Agent("clerk", "Files forms for other agents", version="1.0.0")


@clerk.skill(tags=["forms"])
def file_form(form: str) -> str:
    """File one form."""
    return form


class ForeignAgent:
    """An agent of another make: a static card and, unless ``readyz_status`` is set, no /readyz (404)."""

    def __init__(self, url: str, readyz_status: int | None) -> None:
        self.url = url
        self.card = card_for(clerk, url)
        self.readyz_status = readyz_status
        self.hits: Counter[str] = Counter()

    async def serve_card(self, request: Request) -> Response:
        self.hits[CARD_PATH] += 1
        return JSONResponse(self.card)

    async def readyz(self, request: Request) -> Response:
        self.hits["/readyz"] += 1
        return Response(status_code=self.readyz_status or 404)

    def app(self) -> Starlette:
        return Starlette(routes=[Route(CARD_PATH, self.serve_card), Route("/readyz", self.readyz)])


@contextlib.asynccontextmanager
async def foreign_agent(readyz_status: int | None = None) -> AsyncIterator[ForeignAgent]:
    holder: list[ForeignAgent] = []

    def app_for(url: str) -> Starlette:
        holder.append(ForeignAgent(url, readyz_status))
        return holder[0].app()

    async with serving_app(app_for, "foreign agent"):
        yield holder[0]


def unreachable_url() -> str:
    """An address nothing listens on: every probe is refused, as for an agent the registry cannot reach."""
    return f"http://127.0.0.1:{free_port()}"


def at(record_time: object) -> float:
    assert record_time is not None
    return record_time.timestamp()  # type: ignore[attr-defined]


async def test_a_leased_agent_goes_unhealthy_then_evicted_and_a_heartbeat_brings_it_back(tmp_path, store_url):
    async with running_registry(tmp_path, store_url, **FAST) as registry, client_for(registry) as client:
        async with running_agent(testbench, tmp_path / "agent") as agent:
            url = agent.base_url
            registration = await client.register(card_url=url, lease_seconds=0.5)
            await asyncio.sleep(0.8)  # the lease has run out; the agent's /readyz answering keeps it healthy
            record = await instance_of(registry, registration.instance_id)
            assert record is not None and record.state is healthy
            assert at(record.last_probe_ok_at) > at(record.lease_expires_at) > at(record.registered_at)
            stopping_at = time.time()  # no heartbeat, and soon no answer to the probes either

        gone = await wait_for_state(registry, registration.instance_id, evicted, timeout=5)
        first, down, out = gone.transitions
        assert (first.state, first.reason) == (healthy, "registered")
        assert down.state is unhealthy and down.reason.startswith(f"probe {url}: ")
        assert out.state is evicted and out.reason.startswith(f"unhealthy for 0.5s: probe {url}: ")
        assert at(first.at) < stopping_at <= at(down.at) and at(out.at) - at(down.at) >= 0.5
        assert gone.state_since == out.at
        assert await client.find(name="testbench") == []
        with pytest.raises(RegistryError) as error:
            await client.resolve(registration.agent_id)
        assert error.value.status == 503

        last_probe = gone.last_probe_at
        await asyncio.sleep(0.3)  # three cycles: an evicted instance is no longer probed
        still = await instance_of(registry, registration.instance_id)
        assert still is not None and still.last_probe_at == last_probe

        back = await client.heartbeat(registration.instance_id)
        assert back.state is healthy and back.transitions[-1].reason == "heartbeat"
        assert at(back.lease_expires_at) > time.time()
        assert [a.id for a in await client.find(name="testbench")] == [registration.agent_id]


async def test_a_foreign_agent_without_a_lease_is_kept_healthy_by_probing_its_card(tmp_path, store_url):
    async with running_registry(tmp_path, store_url, **FAST) as registry, client_for(registry) as client:
        async with foreign_agent() as foreign:
            registration = await client.register(card=foreign.card)
            assert registration.lease_seconds is None
            await asyncio.sleep(0.6)  # past the grace, several probe cycles
            record = await instance_of(registry, registration.instance_id)
            assert record is not None and record.state is healthy and record.lease_expires_at is None
            assert [t.reason for t in record.transitions] == ["registered"]
            assert at(record.last_probe_ok_at) > at(record.registered_at) + 0.3
            # /readyz is 404, so the card answering is the sign of life
            assert foreign.hits["/readyz"] >= 3 and foreign.hits[CARD_PATH] >= 3
        down = await wait_for_state(registry, registration.instance_id, unhealthy, timeout=3)
        assert down.transitions[-1].reason.startswith(f"probe {foreign.url}: ")


async def test_readyz_503_counts_as_down_even_though_the_card_answers(tmp_path, store_url):
    async with running_registry(tmp_path, store_url, **FAST) as registry, client_for(registry) as client:
        async with foreign_agent(readyz_status=503) as foreign:
            registration = await client.register(card=foreign.card)
            down = await wait_for_state(registry, registration.instance_id, unhealthy, timeout=3)
            assert down.transitions[-1].reason == f"probe {foreign.url}: HTTP 503"
            assert foreign.hits[CARD_PATH] == 0  # only a 404 sends the probe to the card
            foreign.readyz_status = 200
            up = await wait_for_state(registry, registration.instance_id, healthy, timeout=3)
            assert up.transitions[-1].reason == "probe ok"


async def test_a_restarted_registry_downgrades_nothing_during_its_grace(tmp_path, store_url):
    async with running_registry(tmp_path, store_url) as first, client_for(first) as client:  # default timings: idle monitor
        leased = await client.register(card=card_for(clerk, unreachable_url()), lease_seconds=0.3)
        failing = await client.register(card=card_for(clerk, unreachable_url()))
        await first.store.set_state(failing.instance_id, unhealthy, "made unhealthy by the test")
    await asyncio.sleep(0.6)  # the registry is down: the lease runs out, `failing` is unhealthy past evict_after

    grace = 0.8
    async with running_registry(tmp_path, store_url, **{**FAST, "registry_lease_seconds": grace}) as second:
        grace_ends = second.monitor.grace_from + grace
        await asyncio.sleep(grace - 0.3)
        kept = await instance_of(second, leased.instance_id)
        not_evicted = await instance_of(second, failing.instance_id)
        assert kept is not None and kept.state is healthy and at(kept.lease_expires_at) < time.time()
        assert not_evicted is not None and not_evicted.state is unhealthy
        assert at(kept.last_probe_at) > second.monitor.grace_from  # the monitor runs; the grace holds it back

        down = await wait_for_state(second, leased.instance_id, unhealthy, timeout=3)
        out = await wait_for_state(second, failing.instance_id, evicted, timeout=3)
        assert at(down.transitions[-1].at) >= grace_ends and at(out.transitions[-1].at) >= grace_ends


def broken_engine(store_url: str, working: AsyncEngine, tmp_path: Path) -> AsyncEngine:
    """An engine on the same kind of database that cannot connect: the store during an outage."""
    if store_url.startswith("sqlite"):
        return create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'registry.db'}")
    return create_async_engine(working.url.set(port=free_port()))


async def test_a_store_outage_changes_no_state_and_leases_get_a_grace_after_it(tmp_path, store_url):
    grace = 0.8
    async with running_registry(tmp_path, store_url, **{**FAST, "registry_lease_seconds": grace}) as registry, \
            client_for(registry) as client:
        # an agent the registry cannot reach (behind NAT): only its heartbeats keep it healthy
        registration = await client.register(card=card_for(clerk, unreachable_url()), lease_seconds=0.5)
        instance_id = registration.instance_id

        working = registry.store.engine
        registry.store.engine = broken_engine(store_url, working, tmp_path)
        try:
            with pytest.raises(RegistryError) as error:
                await client.heartbeat(instance_id)
            assert error.value.status == 503  # not 404, which would send the agent to register again
            async with httpx.AsyncClient(base_url=registry.base_url) as http:
                assert (await http.get("/readyz")).status_code == 503
            await asyncio.sleep(0.9)  # past the start's grace; the lease runs out while nine liveness cycles fail
        finally:
            broken, registry.store.engine = registry.store.engine, working
            await broken.dispose()

        await asyncio.sleep(0.3)  # the store is back and the cycles run; the agent's next heartbeat is late
        record = await instance_of(registry, instance_id)
        assert record is not None and record.state is healthy and at(record.lease_expires_at) < time.time()
        assert [t.reason for t in record.transitions] == ["registered"]
        await client.heartbeat(instance_id)

        # the monitor still works: with no more heartbeats the lease lapses and the instance goes down
        down = await wait_for_state(registry, instance_id, unhealthy, timeout=3)
        assert down.transitions[-1].reason.startswith("probe http://127.0.0.1:")
        events = await registry.store.events_since(0)
        assert [(e.type, e.state) for e in events[:2]] == [(EventType.registered, healthy), (EventType.state_changed, unhealthy)]
