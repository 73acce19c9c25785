"""Test support: run agents on real sockets, in-process (uvicorn) or as `mesh serve` processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from agents.definition import Agent
from agents.service import AgentService, serve
from agents.settings import MeshSettings
from protocols.serving import base_url_for, bind_socket, serve_asgi

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
A2A_HEADERS = {"A2A-Version": "1.0"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(start: Callable[[Callable[[T], None]], Awaitable[None]], what: str) -> AsyncIterator[T]:
    """Run ``start(on_ready)`` (a serve coroutine) as a task until the block ends; yields what it announced."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[T] = loop.create_future()
    task = asyncio.create_task(start(ready.set_result))
    done, _ = await asyncio.wait({ready, task}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # re-raise the startup error
    if ready not in done:
        task.cancel()
        raise TimeoutError(f"{what} did not start in 20 s")
    try:
        yield ready.result()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def serving_app(app_for: Callable[[str], Any], what: str = "test server") -> AsyncIterator[str]:
    """Serve the ASGI app ``app_for(base_url)`` on a free 127.0.0.1 port in the test's loop; yields the base URL."""
    sock = bind_socket("127.0.0.1", 0)
    url = base_url_for(sock, None)
    app = app_for(url)
    async with serving(lambda on_ready: serve_asgi(app, sock, "warning", lambda: on_ready(url)), what) as served:
        yield served


@contextlib.asynccontextmanager
async def running_agent(agent: Agent, home: Path, **overrides: object) -> AsyncIterator[AgentService]:
    """Serve ``agent`` with uvicorn on 127.0.0.1 inside the test's event loop."""
    settings = MeshSettings.from_env({}, home=home, port=0, **overrides)
    async with serving(lambda on_ready: serve(agent, settings, on_ready=on_ready), f"agent {agent.name}") as service:
        yield service


class AgentProcess:
    """``mesh serve TARGET`` in its own process, on a fixed port so it can be restarted in place."""

    def __init__(self, target: str, home: Path, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.target = target
        self.home = home
        self.port = port or free_port()
        self.env = {**os.environ, "MESH_HOME": str(home), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / f"agent-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The ``mesh`` arguments that run this agent (subclasses run other commands, e.g. ``mesh adopt``)."""
        return ["serve", self.target, "--port", str(self.port)]

    def start(self, timeout: float = 30) -> AgentProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agents.cli", *self.command()],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"agent not ready in {timeout} s:\n{self.log.read_text()}")

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM and wait: the clean shutdown path."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """SIGKILL: the crash path."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> AgentProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def send(client: httpx.AsyncClient, message: dict, **configuration: object) -> dict:
    """SendMessage over JSON-RPC at ``/``; the result (task or message), asserting it is no error."""
    params: dict = {"message": message}
    if configuration:
        params["configuration"] = configuration
    response = await client.post("/", json=rpc("SendMessage", params))
    assert response.status_code == 200, response.text
    body = response.json()
    assert "error" not in body, body
    return body["result"]


def rpc(method: str, params: dict, request_id: int | str = 1) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def text_message(text: str, message_id: str, **ids: str) -> dict:
    return {"messageId": message_id, "role": "ROLE_USER", "parts": [{"text": text}], **ids}


def skill_message(skill: str, arguments: dict, message_id: str, **ids: str) -> dict:
    return {
        "messageId": message_id,
        "role": "ROLE_USER",
        "parts": [{"data": {"skill": skill, "arguments": arguments}}],
        **ids,
    }
