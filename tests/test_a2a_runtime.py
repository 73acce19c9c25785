"""The A2A 1.0 face over a real socket: every method, both bindings, and the documented routing."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from protocols.mesh_extensions import skill_schemas
from protocols.cards import validate_card
from tests.agents_under_test import agent
from tests.support import A2A_HEADERS, rpc, running_agent, send, skill_message, text_message


@pytest.fixture
async def service(tmp_path):
    async with running_agent(agent, tmp_path) as svc:
        yield svc


@pytest.fixture
async def client(service):
    async with httpx.AsyncClient(base_url=service.base_url, headers=A2A_HEADERS, timeout=30) as c:
        yield c


def state(task: dict) -> str:
    return task["status"]["state"]


def status_text(task: dict) -> str:
    return " ".join(p.get("text", "") for p in task["status"].get("message", {}).get("parts", []))


async def test_card_tells_the_truth(client, service):
    response = await client.get("/.well-known/agent-card.json")
    assert response.status_code == 200
    assert response.headers["etag"] and "max-age" in response.headers["cache-control"]
    card = response.json()
    assert validate_card(card) == []
    assert card["name"] == "testbench" and card["version"] == "2.1.0"
    bindings = {i["protocolBinding"]: i for i in card["supportedInterfaces"]}
    assert bindings["JSONRPC"]["url"] == service.base_url + "/"
    assert bindings["HTTP+JSON"]["url"] == service.base_url + "/a2a"
    assert {i["protocolVersion"] for i in card["supportedInterfaces"]} == {"1.0"}
    extensions = {e["uri"]: e for e in card["capabilities"].pop("extensions")}
    assert card["capabilities"] == {"streaming": True, "pushNotifications": True, "extendedAgentCard": False}
    assert skill_schemas({"capabilities": {"extensions": list(extensions.values())}}) == {
        s.id: json.loads(json.dumps(s.input_schema)) for s in agent.skills.values()
    }
    skills = {s["id"]: s for s in card["skills"]}
    assert set(skills) == set(agent.skills)
    assert skills["echo"]["tags"] == ["echo", "repeat"]
    assert skills["echo"]["examples"] == ["echo hello", "repeat after me"]
    assert skills["add"]["description"] == "Add two integers."


async def test_data_part_calls_the_skill_directly(client):
    result = await send(client, skill_message("add", {"a": 2, "b": 40}, "m-add"))
    task = result["task"]
    assert state(task) == "TASK_STATE_COMPLETED"
    (artifact,) = task["artifacts"]
    assert artifact["name"] == "add"
    assert artifact["parts"] == [{"text": "42"}]


async def test_structured_result_becomes_a_data_part(client):
    task = (await send(client, skill_message("profile", {"name": "Ada", "age": 36}, "m-prof")))["task"]
    (part,) = task["artifacts"][0]["parts"]
    assert part["data"] == {"name": "Ada", "age": 36, "adult": True}
    assert part["mediaType"] == "application/json"


async def test_text_is_routed_by_examples_and_tags(client):
    task = (await send(client, text_message("please echo this back", "m-echo")))["task"]
    assert state(task) == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["name"] == "echo"
    assert task["artifacts"][0]["parts"][0]["text"] == "please echo this back"


async def test_unclear_text_asks_which_skill_then_resumes(client):
    first = (await send(client, text_message("xyzzy plugh", "m-unclear")))["task"]
    assert state(first) == "TASK_STATE_INPUT_REQUIRED"
    assert "Which one?" in status_text(first) and "survey" in status_text(first)
    ids = {"taskId": first["id"], "contextId": first["contextId"]}
    second = (await send(client, text_message("survey", "m-unclear-2", **ids)))["task"]
    assert state(second) == "TASK_STATE_INPUT_REQUIRED"
    assert status_text(second) == "Favourite colour?"


async def test_input_required_multi_turn(client):
    task = (await send(client, skill_message("survey", {}, "m-s1")))["task"]
    assert state(task) == "TASK_STATE_INPUT_REQUIRED" and status_text(task) == "Favourite colour?"
    ids = {"taskId": task["id"], "contextId": task["contextId"]}
    task = (await send(client, text_message("green", "m-s2", **ids)))["task"]
    assert state(task) == "TASK_STATE_INPUT_REQUIRED" and status_text(task) == "Favourite animal?"
    task = (await send(client, text_message("otter", "m-s3", **ids)))["task"]
    assert state(task) == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"][0]["data"] == {"colour": "green", "animal": "otter"}
    history_ids = [m["messageId"] for m in task["history"] if m["role"] == "ROLE_USER"]
    assert history_ids == ["m-s1", "m-s2", "m-s3"]


async def test_reply_is_a_bare_message(client):
    result = await send(client, skill_message("hello", {"name": "Grace"}, "m-hello"))
    assert "task" not in result
    assert result["message"]["role"] == "ROLE_AGENT"
    assert result["message"]["parts"] == [{"text": "Hello, Grace!"}]


async def test_artifacts_of_every_kind(client):
    task = (await send(client, skill_message("report", {"title": "Q3"}, "m-report")))["task"]
    artifacts = {a["name"]: a["parts"][0] for a in task["artifacts"]}
    assert artifacts["summary"] == {"text": "# Q3", "mediaType": "text/markdown"}
    assert artifacts["raw"]["filename"] == "report.txt" and artifacts["raw"]["mediaType"] == "text/plain"
    assert artifacts["raw"]["raw"] == "UTM="  # base64 of b"Q3"
    assert artifacts["link"]["url"] == "https://example.com/report.pdf"


async def test_non_blocking_send_then_get_task(client):
    result = await send(client, skill_message("slow", {"seconds": 0.5}, "m-nb"), returnImmediately=True)
    task = result["task"]
    assert state(task) in ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING")
    for _ in range(100):
        response = await client.post("/", json=rpc("GetTask", {"id": task["id"]}))
        fetched = response.json()["result"]
        if state(fetched) == "TASK_STATE_COMPLETED":
            break
        await asyncio.sleep(0.05)
    assert state(fetched) == "TASK_STATE_COMPLETED"
    assert fetched["artifacts"][0]["parts"][0]["text"] == "slept 0.5"


async def sse_events(client, path: str, body: dict | None, method: str = "POST") -> list[dict]:
    events = []
    async with client.stream(method, path, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    return events


def kinds(events: list[dict]) -> list[str]:
    out = []
    for event in events:
        payload = event.get("result", event)
        out.append(next(k for k in ("task", "message", "statusUpdate", "artifactUpdate") if k in payload))
    return out


async def test_streaming_chunks_arrive_in_order(client):
    events = await sse_events(client, "/", rpc("SendStreamingMessage", {"message": skill_message("chunks", {"count": 3}, "m-ch")}))
    assert kinds(events) == ["task", "statusUpdate", "artifactUpdate", "artifactUpdate", "artifactUpdate", "statusUpdate"]
    updates = [e["result"]["artifactUpdate"] for e in events if "artifactUpdate" in e["result"]]
    assert [u.get("append", False) for u in updates] == [False, True, True]
    assert updates[-1]["lastChunk"] is True
    assert events[-1]["result"]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    task_id = events[0]["result"]["task"]["id"]
    task = (await client.post("/", json=rpc("GetTask", {"id": task_id}))).json()["result"]
    assert [p["text"] for p in task["artifacts"][0]["parts"]] == ["chunk-0 ", "chunk-1 ", "chunk-2 "]


async def test_list_tasks_and_filter_by_context(client):
    first = (await send(client, skill_message("echo", {"text": "one"}, "m-l1", contextId="ctx-list")))["task"]
    await send(client, skill_message("echo", {"text": "two"}, "m-l2"))
    listed = (await client.post("/", json=rpc("ListTasks", {"contextId": "ctx-list"}))).json()["result"]
    assert [t["id"] for t in listed["tasks"]] == [first["id"]]
    everything = (await client.post("/", json=rpc("ListTasks", {}))).json()["result"]
    assert everything["totalSize"] >= 2


async def test_cancel_a_running_task(client):
    task = (await send(client, skill_message("slow", {"seconds": 30}, "m-cancel"), returnImmediately=True))["task"]
    await asyncio.sleep(0.2)
    canceled = (await client.post("/", json=rpc("CancelTask", {"id": task["id"]}))).json()["result"]
    assert state(canceled) == "TASK_STATE_CANCELED"
    again = (await client.post("/", json=rpc("CancelTask", {"id": task["id"]}))).json()
    assert again["error"]["code"] == -32002  # TaskNotCancelable: already terminal


async def test_subscribe_to_a_running_task(client):
    task = (await send(client, skill_message("slow", {"seconds": 0.6}, "m-sub"), returnImmediately=True))["task"]
    events = await sse_events(client, "/", rpc("SubscribeToTask", {"id": task["id"]}))
    assert events, "no events on the subscription"
    last = events[-1]["result"]
    final = last.get("statusUpdate", last.get("task"))
    assert final["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_http_json_binding(client):
    message = skill_message("echo", {"text": "over rest"}, "m-rest")
    response = await client.post("/a2a/message:send", json={"message": message})
    assert response.status_code == 200, response.text
    task = response.json()["task"]
    assert task["artifacts"][0]["parts"][0]["text"] == "over rest"
    fetched = await client.get(f"/a2a/tasks/{task['id']}")
    assert fetched.status_code == 200 and fetched.json()["id"] == task["id"]
    missing = await client.get("/a2a/tasks/does-not-exist")
    assert missing.status_code == 404
    events = await sse_events(client, "/a2a/message:stream", {"message": skill_message("echo", {"text": "s"}, "m-rest-s")})
    assert kinds(events)[0] == "task" and kinds(events)[-1] == "statusUpdate"


async def test_health_endpoints(client):
    assert (await client.get("/healthz")).json() == {"status": "alive", "agent": "testbench"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["task_store"] is True
