"""Authentication and authorization of an agent on A2A (both bindings) and MCP, over real sockets.

The warehouse agent runs with ``MESH_AUTH_MODE=required``, an HS256 secret, an API key file and a
policy: alice may read stock and count shelves, bob may do everything, the robot (API key) may
read stock only. Every refusal must be the protocol's auth error and must be audited.
"""

from __future__ import annotations

import asyncio

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from agents.audit import AuditLog, audit_db_url
from tests.gateway_agents import warehouse
from tests.security.support import API_KEY, bearer, token, write_security_files
from tests.support import A2A_HEADERS, rpc, running_agent, skill_message, text_message

STOCK = skill_message("stock_level", {"sku": "SKU-1"}, "m-stock")
SHIP = skill_message("ship_order", {"order": "ORD-1"}, "m-ship")


@pytest.fixture
async def agent(tmp_path):
    home = tmp_path / "warehouse"
    async with running_agent(warehouse, home, **write_security_files(home)) as service:
        yield service


def jsonrpc_send(message: dict) -> dict:
    return rpc("SendMessage", {"message": message})


async def post(agent, body: dict, headers: dict | None = None, path: str = "/") -> httpx.Response:
    async with httpx.AsyncClient(base_url=agent.base_url, headers=A2A_HEADERS, timeout=20) as http:
        return await http.post(path, json=body, headers=headers or {})


async def test_the_card_stays_open_and_says_what_is_required(agent):
    async with httpx.AsyncClient(base_url=agent.base_url) as http:
        card = (await http.get("/.well-known/agent-card.json")).json()
        assert (await http.get("/readyz")).status_code == 200
    assert card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"] == {
        "scheme": "Bearer", "bearerFormat": "JWT", "description": card["securitySchemes"]["bearer"][
            "httpAuthSecurityScheme"]["description"]}
    assert card["securitySchemes"]["apiKey"]["apiKeySecurityScheme"]["name"] == "X-API-Key"
    skill = next(s for s in card["skills"] if s["id"] == "ship_order")
    assert {"schemes": {"bearer": {"list": ["warehouse:ship_order"]}}} in skill["securityRequirements"]


# Credentials are minted when the test runs, not at collection: a long suite would expire them.
@pytest.mark.parametrize("credential, reason", [
    (lambda: {}, "this call needs a credential"),
    (lambda: bearer("alice", expires_in=-60), "the token has expired"),
    (lambda: bearer("alice", aud="courier"), "the token is for another audience"),
    (lambda: bearer("alice", secret="another-secret-entirely-of-32-bytes!"), "the token is not valid"),
    (lambda: {"X-API-Key": "not-a-key"}, "the API key is not valid"),
    (lambda: {"Authorization": "Basic YWxpY2U6cHc="}, "must be 'Bearer <token>'"),
], ids=["none", "expired", "wrong-audience", "bad-signature", "bad-api-key", "basic-auth"])
async def test_bad_credentials_get_401_on_both_a2a_bindings(agent, credential, reason):
    headers = credential()
    rpc_answer = await post(agent, jsonrpc_send(STOCK), headers)
    rest_answer = await post(agent, {"message": STOCK}, headers, path="/a2a/message:send")
    for answer in (rpc_answer, rest_answer):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert reason in rpc_answer.json()["error"]["message"]
    assert reason in rest_answer.json()["error"]["message"]
    assert "eyJ" not in rpc_answer.text and "not-a-key" not in rpc_answer.text  # never the credential


async def test_scopes_decide_which_skills_a_caller_reaches(agent):
    allowed = await post(agent, jsonrpc_send(STOCK), bearer("alice"))
    assert allowed.status_code == 200 and allowed.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    denied = await post(agent, jsonrpc_send(SHIP), bearer("alice"))
    assert denied.status_code == 403
    assert denied.json()["error"]["message"] == "'alice' does not hold the scope 'warehouse:ship_order'"
    rest_denied = await post(agent, {"message": SHIP}, bearer("alice"), path="/a2a/message:send")
    assert rest_denied.status_code == 403
    assert (await post(agent, jsonrpc_send(SHIP), bearer("bob"))).status_code == 200
    # the API key's owner, the robot, holds stock_level only
    assert (await post(agent, jsonrpc_send(STOCK), {"X-API-Key": API_KEY})).status_code == 200
    assert (await post(agent, jsonrpc_send(SHIP), {"X-API-Key": API_KEY})).status_code == 403
    # a token's own scope claim narrows what the policy grants, never widens it
    narrowed = bearer("bob", scope="warehouse:stock_level")
    assert (await post(agent, jsonrpc_send(STOCK), narrowed)).status_code == 200
    assert (await post(agent, jsonrpc_send(SHIP), narrowed)).status_code == 403
    # nobody in the policy: no scope anywhere on this agent
    stranger = await post(agent, jsonrpc_send(text_message("how many left?", "m-x")), bearer("mallory"))
    assert stranger.status_code == 403 and "holds no scope on agent 'warehouse'" in stranger.text


async def test_text_is_only_routed_to_skills_the_caller_may_call(agent):
    # "ship" words would route to ship_order; alice may not call it, so it is not a candidate
    answer = await post(agent, jsonrpc_send(text_message("please ship order ORD-9 now", "m-t")), bearer("alice"))
    body = answer.json()["result"]
    task = body.get("task") or {}
    assert "ship_order" not in str(task.get("artifacts", "")) and "carrier" not in str(body).lower()


async def test_callers_see_only_their_own_tasks(agent):
    created = (await post(agent, jsonrpc_send(STOCK), bearer("bob"))).json()["result"]["task"]
    own = await post(agent, rpc("GetTask", {"id": created["id"]}), bearer("bob"))
    assert own.json()["result"]["id"] == created["id"]
    other = await post(agent, rpc("GetTask", {"id": created["id"]}), bearer("alice"))
    assert other.json()["error"]["code"] == -32001  # TaskNotFound: another caller's task does not exist for alice


async def test_delegation_is_decided_on_the_end_users_scopes(agent):
    acting = {"act": {"sub": "coordinator"}}
    assert (await post(agent, jsonrpc_send(STOCK), bearer("alice", **acting))).status_code == 200
    refused = await post(agent, jsonrpc_send(SHIP), bearer("alice", **acting))
    assert refused.status_code == 403 and "'alice' does not hold" in refused.text  # not the coordinator's powers
    rogue = await post(agent, jsonrpc_send(STOCK), bearer("alice", act={"sub": "rogue"}))
    assert rogue.status_code == 403 and "'rogue' may not act for other callers" in rogue.text


def mcp_client(agent, headers: dict[str, str]) -> Client:
    http = httpx2.AsyncClient(headers=headers, timeout=20)
    return Client(streamable_http_client(agent.base_url + "/mcp", http_client=http), mode="legacy")


async def test_mcp_uses_bearer_tokens_and_scopes_per_tool(agent):
    async with httpx.AsyncClient(base_url=agent.base_url) as http:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        accept = {"Accept": "application/json, text/event-stream"}
        anonymous = await http.post("/mcp", json=init, headers=accept)
        expired = await http.post("/mcp", json=init, headers={**accept, **bearer("alice", expires_in=-60)})
        metadata = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
    for refused in (anonymous, expired):
        assert refused.status_code == 401
        assert 'resource_metadata="' + agent.base_url + '/.well-known/oauth-protected-resource/mcp"' in \
            refused.headers["www-authenticate"]
    assert "expired" in expired.headers["www-authenticate"]
    assert metadata["resource"] == agent.base_url + "/mcp"

    async with mcp_client(agent, bearer("alice")) as client:
        assert (await client.call_tool("stock_level", {"sku": "SKU-22"})).structured_content == {
            "sku": "SKU-22", "on_hand": 42}
        with pytest.raises(MCPError) as denied:
            await client.call_tool("ship_order", {"order": "ORD-1"})
    assert "'alice' does not hold the scope 'warehouse:ship_order'" in str(denied.value)
    async with mcp_client(agent, {"Authorization": f"Bearer {API_KEY}"}) as client:  # an API key as bearer
        assert not (await client.call_tool("stock_level", {"sku": "SKU-3"})).is_error


async def test_every_allowed_and_denied_call_is_audited(agent, tmp_path):
    await post(agent, jsonrpc_send(STOCK), bearer("alice"))
    await post(agent, jsonrpc_send(SHIP), bearer("alice"))
    await post(agent, jsonrpc_send(STOCK), bearer("alice", expires_in=-60))
    await post(agent, rpc("GetTask", {"id": "nope"}), bearer("bob"))
    async with mcp_client(agent, bearer("bob")) as client:
        await client.call_tool("stock_level", {"sku": "SKU-1"})
    await agent.access.audit_log.flush()
    async with await AuditLog.open(audit_db_url(agent.settings)) as log:
        records = await log.query(limit=50)
        assert (await log.verify())[0]
    seen = {(r.caller, r.protocol, r.operation, r.target, r.outcome) for r in records}
    assert ("alice", "a2a", "SendMessage", "stock_level", "completed") in seen
    assert ("alice", "a2a", "SendMessage", "ship_order", "denied") in seen
    assert (None, "a2a", "SendMessage", "stock_level", "unauthenticated") in seen
    assert ("bob", "a2a", "GetTask", None, "allowed") in seen
    assert ("bob", "mcp", "tools/call", "stock_level", "completed") in seen
    denied = next(r for r in records if r.outcome == "denied")
    assert denied.status == 403 and denied.reason == "'alice' does not hold the scope 'warehouse:ship_order'"


async def test_rate_limits_trigger_and_recover(tmp_path):
    home = tmp_path / "limited"
    settings = {**write_security_files(home), "rate_limit_per_caller": 2.0, "rate_limit_burst": 2}
    async with running_agent(warehouse, home, **settings) as service:
        answers = [await post(service, jsonrpc_send(STOCK), bearer("alice")) for _ in range(4)]
        other = await post(service, jsonrpc_send(STOCK), bearer("bob"))  # another caller has its own bucket
        limited = [a for a in answers if a.status_code == 429]
        assert [a.status_code for a in answers[:2]] == [200, 200] and limited
        assert limited[0].headers["retry-after"] == "1"
        assert "rate limit" in limited[0].json()["error"]["message"]
        assert other.status_code == 200
        await asyncio.sleep(1.1)
        assert (await post(service, jsonrpc_send(STOCK), bearer("alice"))).status_code == 200
