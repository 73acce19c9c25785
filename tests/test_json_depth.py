"""The JSON depth limit (the counting pre-check, the string-aware scan) and the UTF-8 check, on a real agent too."""

from __future__ import annotations

import json

import httpx
import pytest

from protocols.http import json_depth_exceeds
from tests.agents_under_test import agent
from tests.support import A2A_HEADERS, rpc, running_agent


def nested(depth: int, inner: str = "1") -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


@pytest.mark.parametrize(
    ("body", "limit", "too_deep"),
    [
        (nested(64), 64, False),  # exactly at the limit
        (nested(65), 64, True),
        (b'{"a":' * 10 + b"1" + b"}" * 10, 10, False),
        (b'{"a":' * 11 + b"1" + b"}" * 11, 10, True),
        (b'[{"k":[{"k":[1]}]}]', 5, False),
        (b'[{"k":[{"k":[1]}]}]', 4, True),
        # brackets inside strings do not nest, however many there are
        (json.dumps({"text": "[" * 500 + "{" * 500}).encode(), 2, False),
        (json.dumps(["]" * 100, "[" * 100]).encode(), 1, False),
        # escaped quotes do not end a string; an escaped backslash does not escape the quote after it
        (b'["\\"[[[[[[[[[[", 1]', 1, False),
        (b'["\\\\", [[[1]]]]', 3, True),
        (b'["\\\\", [[1]]]', 3, False),
        (b'["a\\\\\\"[[[[[["]', 1, False),
        # many siblings are wide, not deep
        (json.dumps([[i] for i in range(1000)]).encode(), 2, False),
        (json.dumps([{"a": [{"b": i}]} for i in range(1000)]).encode(), 4, False),
        # an unterminated string runs to the end: whatever follows cannot nest
        (b'[[["' + b"[" * 100, 3, False),
        (b'["' + b'\\"' * 100 + b"\\", 1, False),
    ],
)
def test_depth_is_measured_outside_strings(body, limit, too_deep):
    assert json_depth_exceeds(body, limit) is too_deep


def test_bodies_with_few_brackets_are_never_scanned():
    # the pre-check answers from the bracket count alone: a body this shape would be "deep" if scanned
    assert not json_depth_exceeds(b"[" * 10, 10)
    assert json_depth_exceeds(b"[" * 11, 10)


def test_a_quote_heavy_body_is_scanned_in_linear_time():
    # quadratic regex backtracking on lone quotes would make this take minutes
    body = b"[" * 70 + b'"' + b'\\"' * 500_000 + b"\\"
    assert json_depth_exceeds(body, 64)


@pytest.fixture
async def agent_url(tmp_path):
    async with running_agent(agent, tmp_path, max_json_depth=16) as service:
        yield service.base_url


async def test_deep_bodies_get_400_with_a_well_formed_error_on_every_face(agent_url):
    deep = {"x": json.loads(nested(20).decode())}
    async with httpx.AsyncClient(base_url=agent_url, headers=A2A_HEADERS, timeout=10) as client:
        response = await client.post("/", content=json.dumps(rpc("SendMessage", {"message": deep})))
        assert response.status_code == 400
        assert response.json()["error"]["code"] == -32600
        assert "deeper than the limit of 16" in response.json()["error"]["message"]

        response = await client.post("/mcp", content=json.dumps(rpc("tools/call", {"name": "echo", "arguments": deep})),
                                     headers={"content-type": "application/json", "accept": "application/json, text/event-stream"})
        assert response.status_code == 400 and response.json()["error"]["code"] == -32600

        response = await client.post("/a2a/message:send", content=json.dumps({"message": deep}),
                                     headers={"content-type": "application/a2a+json"})
        assert response.status_code == 400
        assert response.json() == {"error": {"status": 400, "message": "JSON body nests deeper than the limit of 16 levels"}}

        # at the limit the body reaches the handler: a JSON-RPC answer, not the depth refusal
        shallow = {"x": json.loads(nested(10).decode())}
        response = await client.post("/", content=json.dumps(rpc("NoSuchMethod", shallow)))
        assert response.status_code == 200 and response.json()["error"]["code"] == -32601
        assert (await client.get("/healthz")).status_code == 200


async def test_bodies_that_are_not_utf8_get_400_not_the_sdks_internal_error(agent_url):
    # found by tests/fuzz: a2a-sdk's REST routes answered 500 and its JSON-RPC route -32603
    async with httpx.AsyncClient(base_url=agent_url, headers=A2A_HEADERS, timeout=10) as client:
        response = await client.post("/a2a/tasks/x/pushNotificationConfigs", content=b"\xbc{}")
        assert response.status_code == 400
        assert response.json() == {"error": {"status": 400, "message": "request body is not UTF-8 JSON text"}}
        response = await client.post("/", content=b'{"jsonrpc": "2.0", "id": 1, "method": "GetTask\xff"}')
        assert response.status_code == 400 and response.json()["error"]["code"] == -32700
