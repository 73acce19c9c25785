"""The registry REST API on SQLite and PostgreSQL: register, discover, resolve, errors."""

from __future__ import annotations

import httpx
import pytest

from agents import Agent
from protocols.cards import build_card, card_to_dict
from protocols.registry_client import RegistryError
from tests.agents_under_test import agent as testbench
from tests.registry.support import client_for, running_registry
from tests.support import running_agent

helpdesk = Agent("helpdesk", "Answers opening hours and books call-backs", version="1.0.0")


@helpdesk.skill(tags=["callback", "booking"], examples=["please call me back tomorrow"])
def book_callback(customer: str) -> str:
    """Book a call-back for a customer."""
    return customer


@pytest.fixture
async def registry(tmp_path, store_url):
    async with running_registry(tmp_path, store_url) as service:
        yield service


def card(agent: Agent, url: str) -> dict:
    return card_to_dict(build_card(agent, url))


async def test_register_by_url_fetches_and_validates_the_card(registry, tmp_path):
    async with running_agent(testbench, tmp_path / "agent") as agent_service, client_for(registry) as client:
        registration = await client.register(card_url=agent_service.base_url, lease_seconds=30)
        assert registration.created and registration.agent_id == "testbench@2.1.0"
        assert registration.agent.card["name"] == "testbench"
        assert {s.id for s in registration.agent.skills} == set(testbench.skills)
        again = await client.register(card_url=agent_service.base_url, lease_seconds=30)
        assert not again.created and again.instance_id == registration.instance_id  # idempotent
        instance = await client.resolve("testbench@2.1.0")
        assert instance.url == agent_service.base_url and instance.state.value == "healthy"


async def test_replicas_are_instances_of_one_agent_and_resolve_balances(registry):
    async with client_for(registry) as client:
        for port in (9001, 9002, 9003):
            await client.register(card=card(helpdesk, f"http://127.0.0.1:{port}"), lease_seconds=60)
        (record,) = await client.find(name="helpdesk")
        assert len(record.instances) == 3
        picks = [(await client.resolve(record.id)).url for _ in range(6)]
        assert sorted(set(picks)) == [f"http://127.0.0.1:{p}" for p in (9001, 9002, 9003)]
        assert picks[:3] == picks[3:]  # round robin: every replica once per turn
        await client.heartbeat(record.instances[0].id, in_flight=5)
        await client.heartbeat(record.instances[1].id, in_flight=1)
        await client.heartbeat(record.instances[2].id, in_flight=3)
        least = {(await client.resolve(record.id, "least_in_flight")).url for _ in range(4)}
        assert least == {record.instances[1].url}
        randomly = {(await client.resolve(record.id, "random")).url for _ in range(30)}
        assert len(randomly) >= 2


async def test_discovery_by_skill_tag_mode_name_and_text(registry):
    async with client_for(registry) as client:
        await client.register(card=card(helpdesk, "http://127.0.0.1:9101"), lease_seconds=60)
        await client.register(card=card(testbench, "http://127.0.0.1:9102"), lease_seconds=60)
        assert [a.name for a in await client.find(skill="book_callback")] == ["helpdesk"]
        assert [a.name for a in await client.find(skill="survey")] == ["testbench"]
        assert [a.name for a in await client.find(tag="BOOKING")] == ["helpdesk"]
        assert [a.name for a in await client.find(name="bench")] == ["testbench"]
        assert {a.name for a in await client.find(input_mode="text/plain")} == {"helpdesk", "testbench"}
        assert await client.find(output_mode="image/png") == []
        ranked = await client.find(q="could somebody call me back tomorrow")
        assert ranked[0].name == "helpdesk" and ranked[0].score > 0
        ranked = await client.find(q="add two integers")
        assert ranked[0].name == "testbench"
        assert await client.find(q="zebra xylophone") == []


async def test_only_healthy_instances_are_returned_unless_all(registry):
    async with client_for(registry) as client:
        registration = await client.register(card=card(helpdesk, "http://127.0.0.1:9201"), lease_seconds=60)
        from registry.models import InstanceState

        await registry.store.set_state(registration.instance_id, InstanceState.unhealthy, "made unhealthy by the test")
        assert await client.find(name="helpdesk") == []
        (record,) = await client.find(name="helpdesk", all=True)
        assert record.instances[0].state is InstanceState.unhealthy
        assert [t.reason for t in record.instances[0].transitions] == ["registered", "made unhealthy by the test"]
        with pytest.raises(RegistryError) as error:
            await client.resolve(record.id)
        assert error.value.status == 503 and "no healthy instance" in error.value.message


async def test_mcp_servers_register_with_their_tools(registry, tmp_path):
    async with running_agent(testbench, tmp_path / "agent") as agent_service, client_for(registry) as client:
        by_url = await client.register(mcp={"name": "bench-tools", "version": "1.0", "url": agent_service.base_url + "/mcp"})
        assert by_url.agent.kind == "mcp"
        assert {s.id for s in by_url.agent.skills} == set(testbench.skills)
        stdio = await client.register(mcp={"name": "files", "command": ["npx", "server-filesystem", "/tmp"],
                                           "tools": [{"name": "read_file", "description": "Read a file"}]})
        assert stdio.agent.instances[0].url == "stdio:npx server-filesystem /tmp"
        assert [a.name for a in await client.find(skill="read_file", kind="mcp")] == ["files"]


async def test_deregister(registry):
    async with client_for(registry) as client:
        first = await client.register(card=card(helpdesk, "http://127.0.0.1:9301"), lease_seconds=60)
        second = await client.register(card=card(helpdesk, "http://127.0.0.1:9302"), lease_seconds=60)
        await client.deregister(first.instance_id)
        (record,) = await client.find(name="helpdesk")
        assert [i.id for i in record.instances] == [second.instance_id]
        await client.deregister_agent(record.id)
        assert await client.find(name="helpdesk", all=True) == []
        with pytest.raises(RegistryError) as error:
            await client.deregister(first.instance_id)
        assert error.value.status == 404 and first.instance_id in error.value.message


async def test_invalid_cards_are_refused_with_the_exact_path(registry):
    bad = card(helpdesk, "http://127.0.0.1:9401")
    bad["skills"][0].pop("tags")
    bad["supportedInterfaces"][1]["url"] = "ftp://nowhere"
    bad["defaultOutputModes"] = ["json"]
    async with client_for(registry) as client:
        with pytest.raises(RegistryError) as error:
            await client.register(card=bad)
    assert error.value.status == 422
    assert {(p["path"], p["reason"]) for p in error.value.problems} == {
        ("$.skills[0].tags", "is required"),
        ("$.supportedInterfaces[1].url", "must be an absolute http(s) URL, got 'ftp://nowhere'"),
        ("$.defaultOutputModes[0]", "must be a media type like 'text/plain', got 'json'"),
    }


async def test_a2a_0_3_cards_are_accepted(registry):
    legacy = {"name": "old-agent", "description": "Speaks A2A 0.3", "version": "0.9", "url": "http://127.0.0.1:9501/",
              "protocolVersion": "0.3.0", "preferredTransport": "JSONRPC", "capabilities": {},
              "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
              "skills": [{"id": "legacy", "name": "Legacy", "description": "Old skill", "tags": ["old"]}]}
    async with client_for(registry) as client:
        registration = await client.register(card=legacy)
    assert registration.agent.protocol_version == "0.3.0"
    assert registration.agent.instances[0].url == "http://127.0.0.1:9501"


async def test_bad_requests_get_clear_errors(registry):
    async with client_for(registry) as client, httpx.AsyncClient(base_url=registry.base_url, headers=client.headers) as http:
        unreachable = await http.post("/v1/instances", json={"card_url": "http://127.0.0.1:9"})
        assert unreachable.status_code == 502
        assert "cannot fetch http://127.0.0.1:9/.well-known/agent-card.json" in unreachable.json()["error"]["message"]
        not_json = await http.post("/v1/instances", content=b"{nope")
        assert not_json.status_code == 400
        both = await http.post("/v1/instances", json={"card_url": "http://x", "card": {}})
        assert both.status_code == 422 and "exactly one of" in both.text
        unknown_field = await http.post("/v1/instances", json={"card_url": "http://x", "colour": "red"})
        assert unknown_field.status_code == 422 and unknown_field.json()["error"]["problems"][0]["path"] == "$.colour"
        oversize = await http.post("/v1/instances", content=b"x" * (5 * 1024 * 1024))
        assert oversize.status_code == 413
        assert (await http.get("/v1/agents/nobody@1")).status_code == 404
        assert (await http.get("/v1/agents/nobody@1/resolve")).status_code == 404
        assert (await http.post("/v1/instances/i-none/heartbeat", json={})).status_code == 404
        assert (await http.get("/v1/agents", params={"limit": "many"})).status_code == 400
        assert (await http.get("/v1/agents/x/resolve", params={"policy": "fastest"})).status_code == 400


async def test_writes_need_a_credential_reads_do_not(registry):
    async with client_for(registry, authenticated=False) as anonymous:
        with pytest.raises(RegistryError) as error:
            await anonymous.register(card=card(helpdesk, "http://127.0.0.1:9601"))
        assert error.value.status == 401
        assert await anonymous.find() == []
    async with httpx.AsyncClient(base_url=registry.base_url) as http:
        wrong = await http.post("/v1/instances", json={}, headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401 and "not-the-token" not in wrong.text


async def test_openapi_document_describes_the_api(registry):
    async with httpx.AsyncClient(base_url=registry.base_url) as http:
        document = (await http.get("/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    assert {"/v1/agents", "/v1/instances", "/v1/instances/{instance_id}/heartbeat", "/v1/watch"} <= set(document["paths"])
    assert "RegisterRequest" in document["components"]["schemas"]
