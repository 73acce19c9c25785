"""Push-notification configs: CRUD over JSON-RPC and HTTP+JSON, and real delivery to a webhook."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.agents_under_test import agent
from tests.support import A2A_HEADERS, free_port, rpc, running_agent, skill_message, text_message


class Webhook:
    """A real HTTP receiver on 127.0.0.1 that records every notification."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[tuple[dict, dict]] = []
        self.arrived = asyncio.Event()

    async def hook(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.json()))
        self.arrived.set()
        return Response(status_code=204)

    def states(self) -> list[str]:
        out = []
        for _, body in self.received:
            payload = body.get("statusUpdate") or body.get("task")
            if payload:
                out.append(payload["status"]["state"])
        return out

    async def wait_for_state(self, state: str, timeout: float = 10) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while state not in self.states():
            remaining = deadline - asyncio.get_running_loop().time()
            assert remaining > 0, f"no {state} notification; got {self.states()}"
            self.arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)


@pytest.fixture
async def webhook():
    hook = Webhook()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/hook", hook.hook, methods=["POST"])]), host="127.0.0.1", port=hook.port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield hook
    server.should_exit = True
    await task


@pytest.fixture
async def client(tmp_path):
    async with running_agent(agent, tmp_path) as svc:
        async with httpx.AsyncClient(base_url=svc.base_url, headers=A2A_HEADERS, timeout=30) as c:
            yield c


async def call(client, method: str, params: dict) -> dict:
    body = (await client.post("/", json=rpc(method, params))).json()
    assert "error" not in body, body
    return body["result"]


async def test_inline_config_delivers_every_state_with_token_and_auth(client, webhook):
    config = {"url": webhook.url, "token": "secret-token", "authentication": {"scheme": "Bearer", "credentials": "abc"}}
    first = await call(client, "SendMessage", {"message": skill_message("survey", {}, "p1"), "configuration": {"taskPushNotificationConfig": config}})
    task = first["task"]
    await webhook.wait_for_state("TASK_STATE_INPUT_REQUIRED")
    ids = {"taskId": task["id"], "contextId": task["contextId"]}
    await call(client, "SendMessage", {"message": text_message("blue", "p2", **ids)})
    await call(client, "SendMessage", {"message": text_message("cat", "p3", **ids)})
    await webhook.wait_for_state("TASK_STATE_COMPLETED")
    headers, _ = webhook.received[0]
    assert headers["x-a2a-notification-token"] == "secret-token"
    assert headers["authorization"] == "Bearer abc"
    assert webhook.states().index("TASK_STATE_INPUT_REQUIRED") < webhook.states().index("TASK_STATE_COMPLETED")


async def test_config_crud_over_json_rpc_then_delivery(client, webhook):
    task = (await call(client, "SendMessage", {"message": skill_message("survey", {}, "c1")}))["task"]
    created = await call(client, "CreateTaskPushNotificationConfig", {"taskId": task["id"], "id": "hook-1", "url": webhook.url, "token": "t1"})
    assert created["id"] == "hook-1" and created["url"] == webhook.url
    fetched = await call(client, "GetTaskPushNotificationConfig", {"taskId": task["id"], "id": "hook-1"})
    assert fetched["token"] == "t1"
    listed = await call(client, "ListTaskPushNotificationConfigs", {"taskId": task["id"]})
    assert [c["id"] for c in listed["configs"]] == ["hook-1"]

    ids = {"taskId": task["id"], "contextId": task["contextId"]}
    await call(client, "SendMessage", {"message": text_message("red", "c2", **ids)})
    await webhook.wait_for_state("TASK_STATE_INPUT_REQUIRED")
    assert all(h["x-a2a-notification-token"] == "t1" for h, _ in webhook.received)

    await call(client, "DeleteTaskPushNotificationConfig", {"taskId": task["id"], "id": "hook-1"})
    assert (await call(client, "ListTaskPushNotificationConfigs", {"taskId": task["id"]})).get("configs", []) == []
    before = len(webhook.received)
    await call(client, "SendMessage", {"message": text_message("dog", "c3", **ids)})
    await asyncio.sleep(0.5)
    assert len(webhook.received) == before, "a deleted config still received notifications"


async def test_config_crud_over_http_json(client, webhook):
    task = (await call(client, "SendMessage", {"message": skill_message("survey", {}, "r1")}))["task"]
    base = f"/a2a/tasks/{task['id']}/pushNotificationConfigs"
    created = await client.post(base, json={"id": "rest-hook", "url": webhook.url, "token": "t2"})
    assert created.status_code == 200, created.text
    assert (await client.get(f"{base}/rest-hook")).json()["token"] == "t2"
    assert [c["id"] for c in (await client.get(base)).json()["configs"]] == ["rest-hook"]
    assert (await client.delete(f"{base}/rest-hook")).status_code == 200
    missing = await client.get(f"{base}/rest-hook")
    assert missing.status_code == 404


async def test_configs_survive_in_the_database(tmp_path, webhook):
    async with running_agent(agent, tmp_path) as svc:
        async with httpx.AsyncClient(base_url=svc.base_url, headers=A2A_HEADERS) as c:
            task = (await call(c, "SendMessage", {"message": skill_message("survey", {}, "d1")}))["task"]
            await call(c, "CreateTaskPushNotificationConfig", {"taskId": task["id"], "id": "kept", "url": webhook.url})
    async with running_agent(agent, tmp_path) as svc:
        async with httpx.AsyncClient(base_url=svc.base_url, headers=A2A_HEADERS) as c:
            listed = await call(c, "ListTaskPushNotificationConfigs", {"taskId": task["id"]})
            assert [cfg["id"] for cfg in listed["configs"]] == ["kept"]
            ids = {"taskId": task["id"], "contextId": task["contextId"]}
            await call(c, "SendMessage", {"message": text_message("teal", "d2", **ids)})
            await webhook.wait_for_state("TASK_STATE_INPUT_REQUIRED")
