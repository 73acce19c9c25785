"""Bad input gets the spec's error, a clear message naming the problem, and never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.agents_under_test import agent
from tests.support import A2A_HEADERS, rpc, running_agent, skill_message, text_message

LIMIT = 64 * 1024


@pytest.fixture
async def client(tmp_path):
    async with running_agent(agent, tmp_path, max_body_bytes=LIMIT) as svc:
        async with httpx.AsyncClient(base_url=svc.base_url, headers=A2A_HEADERS, timeout=30) as c:
            yield c


async def rpc_error(client, body: bytes | dict, headers: dict | None = None) -> dict:
    kwargs = {"json": body} if isinstance(body, dict) else {"content": body}
    response = await client.post("/", headers=headers or {}, **kwargs)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["jsonrpc"] == "2.0" and "result" not in payload
    return payload["error"]


async def test_malformed_json_is_a_parse_error(client):
    assert (await rpc_error(client, b'{"jsonrpc": "2.0", "method": ')).get("code") == -32700


async def test_not_a_request_object_is_invalid_request(client):
    assert (await rpc_error(client, {"jsonrpc": "2.0", "id": 1}))["code"] == -32600
    assert (await rpc_error(client, {"jsonrpc": "1.0", "id": 1, "method": "GetTask"}))["code"] == -32600


async def test_unknown_method_is_method_not_found(client):
    assert (await rpc_error(client, rpc("DoSomethingElse", {})))["code"] == -32601


async def test_wrong_params_are_invalid_params(client):
    error = await rpc_error(client, rpc("SendMessage", {"message": {"role": "ROLE_USER", "parts": "nope"}}))
    assert error["code"] == -32602


@pytest.mark.parametrize("version", [None, "0.3", "2.0"])
async def test_unsupported_a2a_version(client, version):
    headers = {"A2A-Version": version} if version else {}
    client.headers.pop("A2A-Version", None)
    error = await rpc_error(client, rpc("GetTask", {"id": "x"}), headers)
    assert error["code"] == -32009  # VersionNotSupportedError
    rest = await client.get("/a2a/tasks/x", headers=headers)
    assert rest.status_code == 400 and "version" in rest.text.lower()


async def test_unknown_task(client):
    assert (await rpc_error(client, rpc("GetTask", {"id": "no-such-task"})))["code"] == -32001


async def _failed_task(client, message: dict) -> dict:
    response = await client.post("/", json=rpc("SendMessage", {"message": message}))
    task = response.json()["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_FAILED", task
    return task


def _text(task: dict) -> str:
    return task["status"]["message"]["parts"][0]["text"]


async def test_unknown_skill_fails_the_task_naming_it(client):
    task = await _failed_task(client, skill_message("teleport", {}, "m-unknown"))
    assert "unknown skill 'teleport'" in _text(task) and "echo" in _text(task)


async def test_invalid_arguments_name_the_field(client):
    task = await _failed_task(client, skill_message("add", {"a": "two", "b": 1}, "m-badarg"))
    assert _text(task).startswith("invalid arguments for skill 'add': a:")
    task = await _failed_task(client, skill_message("profile", {"name": "Ada"}, "m-missing"))
    assert "age: Field required" in _text(task)


async def test_arguments_must_be_an_object(client):
    task = await _failed_task(client, {"messageId": "m-list", "role": "ROLE_USER", "parts": [{"data": {"skill": "echo", "arguments": [1]}}]})
    assert "must be an object" in _text(task)


async def test_a_raising_skill_fails_its_task_and_the_agent_keeps_serving(client):
    task = await _failed_task(client, skill_message("boom", {"reason": "disk full"}, "m-boom"))
    assert _text(task) == "RuntimeError: disk full"
    task = await _failed_task(client, skill_message("quota", {"customer": "1002"}, "m-quota"))
    assert _text(task) == "customer 1002 is over quota"
    ok = await client.post("/", json=rpc("SendMessage", {"message": text_message("echo still alive", "m-alive")}))
    assert ok.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_reject(client):
    response = await client.post("/", json=rpc("SendMessage", {"message": skill_message("refuse", {"why": "policy"}, "m-rej")}))
    task = response.json()["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_REJECTED"
    assert _text(task) == "not allowed: policy"


@pytest.mark.parametrize("path", ["/", "/a2a/message:send", "/mcp"])
async def test_oversize_bodies_get_413(client, path):
    body = b'{"pad": "' + b"x" * (LIMIT + 10) + b'"}'
    response = await client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "exceeds the limit" in response.text


async def test_oversize_chunked_body_gets_413(client):
    async def chunks():
        for _ in range(LIMIT // 1024 + 2):
            yield b"x" * 1024

    response = await client.post("/", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


async def test_no_response_is_a_500_with_a_traceback(client):
    probes = [
        client.post("/", content=b"\xff\xfe", headers={"content-type": "application/json"}),
        client.post("/", json=[]),
        client.post("/", json=rpc("SendMessage", {"message": {"messageId": "m", "role": "ROLE_USER", "parts": []}})),
        client.post("/", json=rpc("SendMessage", {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": ""}]}})),
        client.post("/a2a/message:send", content=b"not json"),
        client.get("/a2a/tasks"),
        client.post("/mcp", content=b"{}", headers={"content-type": "text/plain"}),
    ]
    for probe in probes:
        response = await probe
        assert response.status_code < 500, (response.request.url, response.status_code, response.text)
        assert "Traceback" not in response.text
