"""A small mesh of real processes for the coordinator's tests: a registry, agents, a coordinator."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from protocols.registry_client import RegistryClient, read_local_token
from tests.support import ROOT, AgentProcess, free_port, rpc

AGENTS = "tests.coordination.mesh_agents"
FAST = {  # quick leases and probes, so a dead instance is noticed within seconds
    "MESH_REGISTRY_LEASE_SECONDS": "3",
    "MESH_REGISTRY_PROBE_SECONDS": "1",
    "MESH_REGISTRY_EVICT_SECONDS": "30",
    "MESH_RETRY_BACKOFF_SECONDS": "0.05",
    "MESH_STEP_TIMEOUT_SECONDS": "10",
}


class Mesh:
    def __init__(self, home: Path, env: dict[str, str] | None = None, registry_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.registry_env = {**FAST, **(registry_env or {})}
        self.registry_port = free_port()
        self.env = {**FAST, "MESH_REGISTRY_URL": self.registry_url, "MESH_TEST_LEDGER": str(home / "ledger.txt"),
                    **(env or {})}
        self.registry: subprocess.Popen[bytes] | None = None
        self.processes: dict[str, AgentProcess] = {}

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}"

    def start_registry(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "registry.log", "ab")
        env = {**os.environ, "MESH_HOME": str(self.home), **self.registry_env}
        self.registry = subprocess.Popen([sys.executable, "-m", "agents.cli", "registry", "--port", str(self.registry_port)],
                                         cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.registry_url + "/v1/agents", timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError("registry did not start:\n" + (self.home / "registry.log").read_text())

    def start(self, name: str, target: str, env: dict[str, str] | None = None, port: int | None = None) -> AgentProcess:
        process = AgentProcess(target, self.home, port=port, env={**self.env, **(env or {})})
        self.processes[name] = process.start()
        return process

    def registry_client(self) -> RegistryClient:
        return RegistryClient(self.registry_url, read_local_token(self.home))

    async def wait_healthy(self, *names: str, timeout: float = 20) -> None:
        async with self.registry_client() as registry:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                found = {a.name for a in await registry.find() if a.healthy}
                if set(names) <= found:
                    return
                time.sleep(0.1)
        raise TimeoutError(f"not all of {names} healthy; found {found}")

    async def wait_gone(self, name: str, timeout: float = 20) -> None:
        """Until the registry lists no healthy instance of ``name``."""
        async with self.registry_client() as registry:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not any(a.healthy for a in await registry.find(name=name)):
                    return
                time.sleep(0.1)
        raise TimeoutError(f"{name} still healthy in the registry")

    async def wait_instances(self, name: str, urls: list[str], timeout: float = 20) -> None:
        """Until the healthy instances of ``name`` are exactly ``urls``."""
        async with self.registry_client() as registry:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                found = sorted(i.url for a in await registry.find(name=name) for i in a.healthy)
                if found == sorted(urls):
                    return
                time.sleep(0.1)
        raise TimeoutError(f"{name} instances are {found}, not {urls}")

    def ledger(self) -> list[tuple[str, str, str]]:
        path = self.home / "ledger.txt"
        return [tuple(line.split()[:3]) for line in path.read_text().splitlines()] if path.exists() else []  # type: ignore[misc]

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()
        if self.registry is not None and self.registry.poll() is None:
            self.registry.terminate()
            self.registry.wait(10)


def message(text: str | None = None, data: Any = None, **fields: Any) -> dict[str, Any]:
    parts = ([{"text": text}] if text else []) + ([{"data": data}] if data is not None else [])
    return {"messageId": fields.pop("message_id", str(uuid.uuid4())), "role": "ROLE_USER", "parts": parts, **fields}


async def send(url: str, msg: dict[str, Any], timeout: float = 60, **configuration: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"message": msg}
    if configuration:
        params["configuration"] = configuration
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
        response = await client.post("/", json=rpc("SendMessage", params), headers={"A2A-Version": "1.0"})
    body = response.json()
    assert "error" not in body, body
    return body["result"].get("task") or body["result"]["message"]


async def get_task(url: str, task_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.post("/", json=rpc("GetTask", {"id": task_id}), headers={"A2A-Version": "1.0"})
    body = response.json()
    assert "error" not in body, body
    return body["result"]


def state(task: dict[str, Any]) -> str:
    return task["status"]["state"].removeprefix("TASK_STATE_").lower().replace("_", "-")


def status_text(task: dict[str, Any]) -> str:
    return " ".join(p.get("text", "") for p in task["status"].get("message", {}).get("parts", []))


def artifact(task: dict[str, Any], name: str) -> Any:
    for item in task.get("artifacts", []):
        if item.get("name") == name:
            part = item["parts"][0]
            return part.get("text", part.get("data"))
    raise KeyError(f"no artifact {name!r} in {task}")
