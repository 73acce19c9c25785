"""The A2A TCK's test agent, over JSON-RPC on a real socket: the messageId contract without the TCK.

``tests/conformance/tck_agent.py`` is what the A2A TCK runs against (``docs/conformance.md``); these
checks catch a regression in ``make test`` without fetching the TCK. Like the TCK, every message of
one prefix carries the same messageId (``tck-<name>-<session>``), follow-ups included.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.conformance.tck_agent import agent
from tests.support import A2A_HEADERS, rpc, running_agent, text_message
from tests.support import send as send_message

SESSION = "0123abcd"  # the TCK's per-run suffix: fixed, so message ids repeat as they do there


def tck_id(name: str) -> str:
    return f"tck-{name}-{SESSION}"


@pytest.fixture
async def client(tmp_path):
    async with running_agent(agent, tmp_path) as service:
        async with httpx.AsyncClient(base_url=service.base_url, headers=A2A_HEADERS, timeout=30) as c:
            yield c


async def send(client: httpx.AsyncClient, prefix: str, text: str = "TCK prerequisite task creation", **ids: str) -> dict:
    return await send_message(client, text_message(text, tck_id(prefix), **ids))


def state(task: dict) -> str:
    return task["status"]["state"]


def status_text(task: dict) -> str:
    return task["status"]["message"]["parts"][0]["text"]


async def test_complete_task_completes_with_the_tck_greeting(client):
    task = (await send(client, "complete-task"))["task"]
    assert state(task) == "TASK_STATE_COMPLETED"
    assert status_text(task) == "Hello from TCK"
    assert task["contextId"] and task["status"]["timestamp"].endswith("Z")


async def test_message_response_is_a_bare_message(client):
    result = await send(client, "message-response")
    assert set(result) == {"message"}
    assert result["message"]["role"] == "ROLE_AGENT"
    assert result["message"]["parts"] == [{"text": "Direct message response"}]


async def test_artifact_file_is_a_raw_part(client):
    task = (await send(client, "artifact-file"))["task"]
    assert state(task) == "TASK_STATE_COMPLETED"
    part = task["artifacts"][0]["parts"][0]
    assert part["filename"] == "output.txt" and part["mediaType"] == "text/plain"
    assert base64.b64decode(part["raw"])


async def test_longest_prefix_wins(client):
    part = (await send(client, "artifact-file-url"))["task"]["artifacts"][0]["parts"][0]
    assert part == {"url": "https://example.com/output.txt", "filename": "output.txt", "mediaType": "text/plain"}


async def test_reject_task_is_rejected(client):
    task = (await send(client, "reject-task"))["task"]
    assert state(task) == "TASK_STATE_REJECTED"
    assert status_text(task) == "rejected"


async def test_chunked_stream_arrives_in_order(client):
    request = rpc("SendStreamingMessage", {"message": text_message("stream", tck_id("stream-artifact-chunked"))})
    events = []
    async with client.stream("POST", "/", json=request) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:])["result"])
    kinds = [next(iter(e)) for e in events]
    assert kinds == ["task", "statusUpdate", "artifactUpdate", "artifactUpdate", "statusUpdate"]
    assert events[1]["statusUpdate"]["status"]["state"] == "TASK_STATE_WORKING"
    first, second = events[2]["artifactUpdate"], events[3]["artifactUpdate"]
    assert first["artifact"]["parts"] == [{"text": "chunk-1 "}] and not first.get("append", False)
    assert second["artifact"]["parts"] == [{"text": "chunk-2"}]
    assert second["append"] is True and second["lastChunk"] is True
    assert first["artifact"]["artifactId"] == second["artifact"]["artifactId"]
    assert events[4]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_input_required_waits_until_a_complete_task_follow_up(client):
    """The TCK's history scenario: follow-ups name only the task and reuse the first messageId."""
    task = (await send(client, "input-required"))["task"]
    assert state(task) == "TASK_STATE_INPUT_REQUIRED"
    for text in ("TCK history message 1", "TCK history message 2"):
        again = (await send(client, "input-required", text, taskId=task["id"]))["task"]
        assert (again["id"], state(again)) == (task["id"], "TASK_STATE_INPUT_REQUIRED")
    done = (await send(client, "complete-task", "TCK complete after history", taskId=task["id"]))["task"]
    assert (done["id"], done["contextId"]) == (task["id"], task["contextId"])
    assert state(done) == "TASK_STATE_COMPLETED" and status_text(done) == "Hello from TCK"
    # The context is inferred from the task (a2a-sdk would otherwise mint a new one per follow-up).
    assert {m["contextId"] for m in done["history"]} == {task["contextId"]}
