"""What the fuzz tests share: bounded, deterministic hypothesis settings and the checks on every answer.

``MESH_TEST_FUZZ_EXAMPLES`` raises the examples per test (default 100) for a longer run, and
``MESH_TEST_FUZZ_RANDOM=1`` draws new examples each run instead of the same fixed ones:
``MESH_TEST_FUZZ_EXAMPLES=2000 MESH_TEST_FUZZ_RANDOM=1 .venv/bin/python -m pytest tests/fuzz``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

_SSE_LINES = re.compile(r"\r\n|\r|\n")
EXAMPLES = int(os.environ.get("MESH_TEST_FUZZ_EXAMPLES", "100"))
RANDOM = os.environ.get("MESH_TEST_FUZZ_RANDOM", "") not in ("", "0")

# derandomize: the same examples every run, so CI is stable; no example database between runs either
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
)

scalars = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | \
    st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
request_ids = st.one_of(st.integers(), st.text(max_size=10), st.none(), st.floats(allow_nan=False), st.just([1]),
                        st.just({"id": 1}), st.booleans())


@st.composite
def deep_values(draw: st.DrawFn) -> Any:
    """Arrays/objects nested 20 to 300 levels: past the depth limit, or just under it."""
    value: Any = draw(scalars)
    for _ in range(draw(st.integers(min_value=20, max_value=300))):
        value = [value] if draw(st.booleans()) else {"k": value}
    return value


def body_of(value: Any) -> bytes:
    return json.dumps(value).encode()


def assert_no_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, f"HTTP {response.status_code}: {response.text[:500]}"


def _is_rpc_error(error: Any) -> bool:
    return isinstance(error, dict) and type(error.get("code")) is int and isinstance(error.get("message"), str)


def assert_jsonrpc_answer(payload: Any) -> None:
    """A JSON-RPC 2.0 response object (or a batch of them) whose error, if any, has an integer code and a message."""
    items = payload if isinstance(payload, list) else [payload]
    for item in items:
        assert isinstance(item, dict) and item.get("jsonrpc") == "2.0", item
        assert ("result" in item) != ("error" in item), item
        if "error" in item:
            assert _is_rpc_error(item["error"]), item
            assert item["error"]["code"] != -32603, f"an internal error: {item}"  # a crash, caught and reported


def assert_jsonrpc_response(response: httpx.Response) -> None:
    """No 5xx; a JSON-RPC body, or an SSE stream of them; never an HTML or text traceback."""
    assert_no_server_error(response)
    if response.status_code in (202, 204) or not response.content:
        return
    kind = response.headers.get("content-type", "")
    if kind.startswith("text/event-stream"):
        for line in _SSE_LINES.split(response.text):  # not splitlines(): U+2028 in a JSON string is no line end
            if line.startswith("data:") and line[5:].strip():
                assert_jsonrpc_answer(json.loads(line[5:]))
        return
    assert "json" in kind, f"HTTP {response.status_code} {kind}: {response.text[:300]}"
    assert_jsonrpc_answer(response.json())


def assert_rest_response(response: httpx.Response) -> None:
    """No 5xx; an error is a JSON object (the SDK's google.rpc-style or our {"error": {...}})."""
    assert_no_server_error(response)
    if response.status_code < 400:
        return
    kind = response.headers.get("content-type", "")
    assert "json" in kind, f"HTTP {response.status_code} {kind}: {response.text[:300]}"
    payload = response.json()
    assert isinstance(payload, dict) and isinstance(payload.get("error"), dict), payload
    assert isinstance(payload["error"].get("message"), str), payload
