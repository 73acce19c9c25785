"""Fuzzing a real agent process: JSON-RPC at ``/``, HTTP+JSON under ``/a2a`` and MCP at ``/mcp``.

Whatever arrives, the agent answers below 500 with a well-formed error and stays healthy.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.support import (
    FUZZ,
    assert_jsonrpc_response,
    assert_rest_response,
    body_of,
    deep_values,
    json_values,
    request_ids,
)
from tests.support import AgentProcess

MAX_BODY = 64 * 1024
A2A_METHODS = ["SendMessage", "SendStreamingMessage", "GetTask", "ListTasks", "CancelTask", "SubscribeToTask",
               "CreateTaskPushNotificationConfig", "GetTaskPushNotificationConfig",
               "ListTaskPushNotificationConfigs", "DeleteTaskPushNotificationConfig", "GetExtendedAgentCard"]
MCP_METHODS = ["initialize", "notifications/initialized", "ping", "tools/list", "tools/call", "resources/list",
               "resources/read", "prompts/list", "completion/complete", "logging/setLevel", "server/discover"]
SKILLS = ["opening_hours", "book_callback", "no_such_skill"]
CONTENT_TYPES = ["application/json", "application/a2a+json", "text/plain", "application/x-www-form-urlencoded",
                 "multipart/form-data", "application/json; charset=latin-1", None]


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz-agent")
    process = AgentProcess("agents.examples.helpdesk:agent", home, env={"MESH_MAX_BODY_BYTES": str(MAX_BODY)})
    with process:
        with httpx.Client(base_url=process.url, timeout=15) as http:
            yield http
            assert http.get("/healthz").status_code == 200, "the agent is no longer healthy"
        assert process.proc is not None and process.proc.poll() is None, "the agent process died"
    log = process.log.read_text()
    for crash in ("Exception in ASGI application", "Unhandled exception", "Internal error", "Unknown error occurred",
                  "Unknown streaming error"):
        assert crash not in log, log[log.index(crash) - 200:][:3000]


text_ids = st.text(st.characters(codec="utf-8", exclude_characters="/?#%"), min_size=1, max_size=12)
parts = st.one_of(
    st.fixed_dictionaries({"text": st.text(max_size=30)}),
    st.fixed_dictionaries({"data": st.fixed_dictionaries({"skill": st.sampled_from(SKILLS), "arguments": json_values})}),
    st.fixed_dictionaries({"data": json_values}),
    st.fixed_dictionaries({"url": st.text(max_size=20), "mediaType": st.text(max_size=10)}),
    st.fixed_dictionaries({"raw": st.text(max_size=20)}),
    json_values,
)
messages = st.fixed_dictionaries(
    {"messageId": st.one_of(text_ids, st.integers(), st.none()),
     "role": st.sampled_from(["ROLE_USER", "ROLE_AGENT", "ROLE_UNSPECIFIED", "user", 7]),
     "parts": st.one_of(st.lists(parts, max_size=3), json_values)},
    optional={"taskId": text_ids, "contextId": text_ids, "metadata": json_values, "extensions": json_values},
)
push_configs = st.fixed_dictionaries(
    {"url": st.sampled_from(["http://127.0.0.1:9/hook", "http://169.254.169.254/", "ftp://x", "not a url", ""])},
    optional={"id": text_ids, "token": st.text(max_size=10), "taskId": text_ids, "authentication": json_values},
)
params = st.one_of(
    st.fixed_dictionaries({"message": messages},
                          optional={"configuration": st.one_of(json_values, st.fixed_dictionaries(
                              {"taskPushNotificationConfig": push_configs}))}),
    st.fixed_dictionaries({"id": text_ids}, optional={"historyLength": st.one_of(st.integers(), st.text(max_size=3))}),
    push_configs,
    json_values,
    deep_values(),
)
rpc_requests = st.fixed_dictionaries(
    {"method": st.one_of(st.sampled_from(A2A_METHODS), st.text(max_size=20))},
    optional={"jsonrpc": st.sampled_from(["2.0", "1.0", 2.0, None]), "id": request_ids, "params": params},
)
rpc_bodies = st.one_of(
    rpc_requests.map(body_of),
    st.lists(rpc_requests, min_size=0, max_size=3).map(body_of),  # batches
    json_values.map(body_of),
    deep_values().map(body_of),
    st.binary(max_size=200),  # invalid UTF-8 and other garbage
    st.just(b'{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"' + b"x" * MAX_BODY + b'"}}'),  # too big
)
headers = st.fixed_dictionaries({}, optional={
    "content-type": st.sampled_from([c for c in CONTENT_TYPES if c]),
    "A2A-Version": st.sampled_from(["1.0", "0.3", "9.9", "", "1.0, 0.3"]),
})


def _send(http: httpx.Client, path: str, body: bytes, head: dict[str, str]) -> httpx.Response:
    return http.post(path, content=body, headers=head)


@FUZZ
@given(body=rpc_bodies, head=headers)
def test_jsonrpc_endpoint_answers_everything_with_a_jsonrpc_error(agent, body, head):
    assert_jsonrpc_response(_send(agent, "/", body, head))


@FUZZ
@given(
    route=st.sampled_from(["message:send", "message:stream", "tasks/{id}", "tasks/{id}:cancel",
                           "tasks/{id}/pushNotificationConfigs", "tasks/{id}/pushNotificationConfigs/{id}", "tasks"]),
    task_id=text_ids,
    body=st.one_of(st.fixed_dictionaries({"message": messages}).map(body_of), push_configs.map(body_of),
                   json_values.map(body_of), deep_values().map(body_of), st.binary(max_size=100)),
    head=headers,
    method=st.sampled_from(["GET", "POST", "DELETE"]),
)
def test_rest_endpoints_answer_everything_with_a_json_error(agent, route, task_id, body, head, method):
    path = "/a2a/" + route.replace("{id}", quote(task_id, safe=""))
    response = agent.request(method, path, content=body if method == "POST" else None, headers=head)
    if response.status_code in (404, 405) and "json" not in response.headers.get("content-type", ""):
        # Starlette's router: this method is not served on this path (plain text, by design)
        assert method not in _methods_of(route), (method, path, response.text)
        return
    assert_rest_response(response)


def _methods_of(route: str) -> set[str]:
    if route.startswith("message:") or route.endswith(":cancel"):
        return {"POST"}
    if route == "tasks/{id}/pushNotificationConfigs":
        return {"GET", "POST"}
    if route == "tasks/{id}/pushNotificationConfigs/{id}":
        return {"GET", "DELETE"}
    return {"GET"}


MCP_ACCEPT = "application/json, text/event-stream"
tool_calls = st.fixed_dictionaries({"name": st.one_of(st.sampled_from(SKILLS), st.text(max_size=10)),
                                    "arguments": st.one_of(json_values, st.fixed_dictionaries(
                                        {"department": json_values, "customer": json_values}))})
mcp_requests = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0"), "method": st.one_of(st.sampled_from(MCP_METHODS), st.text(max_size=15))},
    optional={"id": request_ids, "params": st.one_of(tool_calls, json_values, deep_values())},
)


@pytest.fixture(scope="module")
def mcp_session(agent) -> dict[str, str]:
    """Headers of an initialized MCP session (streamable HTTP, 2025-era handshake)."""
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}}
    response = agent.post("/mcp", json=init, headers={"accept": MCP_ACCEPT})
    assert response.status_code == 200, response.text
    session = {"accept": MCP_ACCEPT, "mcp-protocol-version": "2025-06-18", "content-type": "application/json"}
    if "mcp-session-id" in response.headers:
        session["mcp-session-id"] = response.headers["mcp-session-id"]
    agent.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
    return session


@FUZZ
@given(
    body=st.one_of(mcp_requests.map(body_of), st.lists(mcp_requests, max_size=3).map(body_of),
                   json_values.map(body_of), st.binary(max_size=100)),
    with_session=st.booleans(),
    protocol=st.sampled_from([None, "2025-06-18", "2025-03-26", "1999-01-01", "garbage"]),
    accept=st.sampled_from([MCP_ACCEPT, "application/json", "text/html", None]),
)
def test_mcp_endpoint_answers_everything_with_a_jsonrpc_error(agent, mcp_session, body, with_session, protocol, accept):
    head: dict[str, Any] = dict(mcp_session) if with_session else {"content-type": "application/json"}
    for name, value in (("mcp-protocol-version", protocol), ("accept", accept)):
        head.pop(name, None)
        if value is not None:
            head[name] = value
    response = agent.post("/mcp", content=body, headers=head)
    assert_jsonrpc_response(response)


def test_the_agent_still_works_after_the_fuzzing(agent):
    answer = agent.post("/", headers={"A2A-Version": "1.0"}, content=json.dumps({
        "jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {
            "messageId": "after", "role": "ROLE_USER",
            "parts": [{"data": {"skill": "opening_hours", "arguments": {"department": "billing"}}}]}}}))
    assert answer.status_code == 200 and "result" in answer.json(), answer.text
