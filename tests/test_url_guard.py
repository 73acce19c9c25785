"""The SSRF guard: addresses it refuses, the default policy, connections pinned to checked addresses,
and refusals by a strict registry (card and MCP URLs) and a strict agent (push-notification URLs)."""

from __future__ import annotations

import httpx
import httpx2
import pytest

from agents.settings import MeshSettings
from protocols.url_guard import UrlGuard, UrlRefused, allow_private_for, guarded_transport, guarded_transport2
from tests.agents_under_test import agent
from tests.registry.support import client_for, running_registry
from tests.support import A2A_HEADERS, rpc, running_agent, skill_message

STRICT, LOCAL = UrlGuard(allow_private=False), UrlGuard(allow_private=True)


@pytest.mark.parametrize(
    ("url", "kind", "address"),
    [
        ("http://localhost:8080/card", "a loopback address", "127.0.0.1"),
        ("http://127.0.0.1/", "a loopback address", "127.0.0.1"),
        ("http://127.8.9.10/", "a loopback address", "127.8.9.10"),
        ("https://[::1]:8443/", "a loopback address", "::1"),
        ("http://10.0.0.1/", "a private address", "10.0.0.1"),
        ("http://192.168.1.20/", "a private address", "192.168.1.20"),
        ("http://172.16.0.9/", "a private address", "172.16.0.9"),
        ("http://100.64.0.1/", "a shared (CGNAT) address", "100.64.0.1"),
        ("http://[fd12:3456::1]/", "a private address", "fd12:3456::1"),
        ("http://[::ffff:127.0.0.1]/", "a loopback address", "::ffff:127.0.0.1"),
        ("http://[::ffff:10.0.0.5]/", "a private address", "::ffff:10.0.0.5"),
        ("http://2130706433/", "a loopback address", "127.0.0.1"),  # 127.0.0.1 as one decimal number
    ],
)
async def test_strict_refuses_private_addresses_and_says_how_to_allow_them(url, kind, address):
    with pytest.raises(UrlRefused) as refused:
        await STRICT.check(url)
    assert str(refused.value) == f"{url} resolves to {kind} {address}; set MESH_ALLOW_PRIVATE_URLS=true to allow"
    assert await LOCAL.check(url)  # allowed when private URLs are


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("http://[::ffff:169.254.169.254]/", "a link-local address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://0.0.0.0:8080/", "an unspecified address"),
        ("http://[::]/", "an unspecified address"),
        ("http://224.0.0.251/", "a multicast address"),
        ("http://240.0.0.1/", "a reserved address"),
    ],
)
async def test_metadata_multicast_and_unspecified_are_refused_even_when_private_urls_are_allowed(url, kind):
    for guard in (STRICT, LOCAL):
        with pytest.raises(UrlRefused, match=f"resolves to {kind}") as refused:
            await guard.check(url)
        assert "MESH_ALLOW_PRIVATE_URLS" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/card", "is not an http or https URL"),
        ("file:///etc/passwd", "is not an http or https URL"),
        ("http:///no-host", "names no host"),
        ("http://example.com:port/", "is not a valid URL"),
        ("http://host.invalid/", "does not resolve"),
    ],
)
async def test_urls_that_are_not_fetchable_are_refused(url, reason):
    with pytest.raises(UrlRefused, match=reason):
        await LOCAL.check(url)
    assert not await LOCAL.allows(url)


async def test_public_addresses_pass():
    assert await STRICT.check("https://8.8.8.8/card") == ["8.8.8.8"]
    assert await STRICT.check("http://[2001:4860:4860::8888]/") == ["2001:4860:4860::8888"]


def test_private_urls_are_allowed_by_default_only_for_a_service_bound_to_loopback():
    assert allow_private_for(MeshSettings.from_env({}))  # 127.0.0.1
    assert allow_private_for(MeshSettings.from_env({"MESH_HOST": "localhost"}))
    assert allow_private_for(MeshSettings.from_env({"MESH_HOST": "::1"}))
    assert not allow_private_for(MeshSettings.from_env({"MESH_HOST": "0.0.0.0"}))
    assert not allow_private_for(MeshSettings.from_env({"MESH_HOST": "10.1.2.3"}))
    assert allow_private_for(MeshSettings.from_env({"MESH_HOST": "0.0.0.0", "MESH_ALLOW_PRIVATE_URLS": "true"}))
    assert not allow_private_for(MeshSettings.from_env({"MESH_ALLOW_PRIVATE_URLS": "false"}))
    # the older push-only name still decides push URLs, and only those
    old = MeshSettings.from_env({"MESH_HOST": "0.0.0.0", "MESH_PUSH_ALLOW_PRIVATE": "true"})
    assert allow_private_for(old, push=True) and not allow_private_for(old)
    assert not allow_private_for(MeshSettings.from_env({"MESH_PUSH_ALLOW_PRIVATE": "false"}), push=True)


@pytest.fixture
async def local_agent(tmp_path):
    async with running_agent(agent, tmp_path / "agent") as service:
        yield service


async def test_guarded_clients_connect_only_where_the_guard_allows(local_agent):
    # the check runs at connect time on the address the connection uses: no second lookup to rebind
    url = local_agent.base_url.replace("127.0.0.1", "localhost") + "/healthz"
    async with httpx.AsyncClient(transport=guarded_transport(LOCAL), timeout=5) as http:
        assert (await http.get(url)).status_code == 200
    async with httpx.AsyncClient(transport=guarded_transport(STRICT), timeout=5) as http:
        with pytest.raises(httpx.ConnectError, match="localhost resolves to a loopback address"):
            await http.get(url)
    async with httpx2.AsyncClient(transport=guarded_transport2(LOCAL), timeout=5) as http:
        assert (await http.get(url)).status_code == 200
    async with httpx2.AsyncClient(transport=guarded_transport2(STRICT), timeout=5) as http:
        with pytest.raises(httpx2.ConnectError, match="resolves to a loopback address"):
            await http.get(url)


async def test_a_strict_registry_refuses_private_card_and_mcp_urls_that_the_local_one_accepts(tmp_path, local_agent):
    card_url, mcp_url = local_agent.base_url, local_agent.base_url + "/mcp"
    async with running_registry(tmp_path / "strict", f"sqlite:///{tmp_path / 'strict.db'}", allow_private_urls=False) as strict:
        async with client_for(strict) as client:
            for url, body in ((card_url, {"card_url": card_url}), (mcp_url, {"mcp": {"name": "tools", "url": mcp_url}})):
                response = await client.http.post(f"{strict.base_url}/v1/instances", json=body, headers=client.headers)
                assert response.status_code == 422, response.text
                assert response.json()["error"]["message"] == (
                    f"URL refused: {url} resolves to a loopback address 127.0.0.1; set MESH_ALLOW_PRIVATE_URLS=true to allow")
    async with running_registry(tmp_path / "local", f"sqlite:///{tmp_path / 'local.db'}") as local:
        async with client_for(local) as client:
            registration = await client.register(card_url=card_url)
            assert registration.agent.card["name"] == "testbench"


async def test_a_strict_agent_refuses_private_push_urls_with_the_reason(tmp_path):
    async with running_agent(agent, tmp_path, allow_private_urls=False) as service:
        async with httpx.AsyncClient(base_url=service.base_url, headers=A2A_HEADERS, timeout=10) as http:
            sent = (await http.post("/", json=rpc("SendMessage", {"message": skill_message("survey", {}, "m1")}))).json()
            task_id = sent["result"]["task"]["id"]
            config = {"taskId": task_id, "id": "h", "url": "http://169.254.169.254/hook"}
            answer = (await http.post("/", json=rpc("CreateTaskPushNotificationConfig", config))).json()
            assert answer["error"]["code"] == -32602
            assert answer["error"]["message"] == ("push notification URL refused: http://169.254.169.254/hook "
                                                  "resolves to a link-local address 169.254.169.254")
            config["url"] = "http://127.0.0.1:9/hook"
            response = await http.post(f"/a2a/tasks/{task_id}/pushNotificationConfigs", json=config,
                                       headers={"content-type": "application/a2a+json"})
            assert response.status_code == 400, response.text
            assert "resolves to a loopback address 127.0.0.1; set MESH_ALLOW_PRIVATE_URLS=true" in response.text


async def test_a_name_that_does_not_resolve_yet_may_be_kept_for_later_but_never_fetched():
    guard = UrlGuard(allow_private=False)
    assert await guard.check("https://not-yet.invalid/hook", unresolvable_ok=True) == []
    with pytest.raises(UrlRefused, match="does not resolve"):
        await guard.check("https://not-yet.invalid/hook")
    with pytest.raises(UrlRefused, match="loopback"):  # a name that resolves is judged as always
        await guard.check("http://127.0.0.1:9/hook", unresolvable_ok=True)
