"""Client of the registry's REST API (``/v1``), used by agents, the CLI and coordinators."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from protocols.sse import sse_events
from registry.models import AgentRecord, Event, InstanceRecord, Registration
from tracing.propagation import traced_httpx

__all__ = ["RegistryClient", "RegistryError", "local_token_path", "read_local_token"]


class RegistryError(RuntimeError):
    """The registry refused or failed a call; ``status`` and the registry's own message."""

    def __init__(self, status: int, message: str, problems: list[dict[str, str]] | None = None) -> None:
        details = "".join(f"\n  {p['path']}: {p['reason']}" for p in problems or [])
        super().__init__(f"registry: {message} (HTTP {status}){details}")
        self.status, self.message, self.problems = status, message, problems or []


def local_token_path(home: Path) -> Path:
    """Where a registry with no credential configured keeps the token it made (see ``registry.auth``)."""
    return home / "registry" / "token"


def read_local_token(home: Path) -> str | None:
    """The token a registry sharing this ``MESH_HOME`` wrote for local writers."""
    path = local_token_path(home)
    return path.read_text().strip() if path.exists() else None


class RegistryClient:
    def __init__(self, base_url: str, token: str | None = None, http: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._own_http = http is None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = http or traced_httpx(timeout=10)
        self.headers = headers

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, self.base_url + path, headers=self.headers, **kwargs)
        except httpx.HTTPError as exc:
            raise RegistryError(0, f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise RegistryError(response.status_code, error["message"], error.get("problems"))
            except (ValueError, KeyError, TypeError):
                raise RegistryError(response.status_code, response.text[:200] or response.reason_phrase) from None
        return response

    async def register(self, *, card_url: str | None = None, card: dict[str, Any] | None = None,
                       url: str | None = None, mcp: dict[str, Any] | None = None,
                       lease_seconds: float | None = None) -> Registration:
        body = {k: v for k, v in {"card_url": card_url, "card": card, "url": url, "mcp": mcp,
                                  "lease_seconds": lease_seconds}.items() if v is not None}
        return Registration.model_validate_json((await self._call("POST", "/v1/instances", json=body)).content)

    async def heartbeat(self, instance_id: str, in_flight: int = 0) -> InstanceRecord:
        response = await self._call("POST", f"/v1/instances/{instance_id}/heartbeat", json={"in_flight": in_flight})
        return InstanceRecord.model_validate_json(response.content)

    async def deregister(self, instance_id: str) -> None:
        await self._call("DELETE", f"/v1/instances/{instance_id}")

    async def deregister_agent(self, agent_id: str) -> None:
        await self._call("DELETE", f"/v1/agents/{agent_id}")

    async def find(self, **filters: Any) -> list[AgentRecord]:
        params = {k: ("true" if v is True else v) for k, v in filters.items() if v not in (None, False)}
        agents = (await self._call("GET", "/v1/agents", params=params)).json()["agents"]
        return [AgentRecord.model_validate(a) for a in agents]

    async def agent(self, agent_id: str) -> AgentRecord:
        return AgentRecord.model_validate_json((await self._call("GET", f"/v1/agents/{agent_id}")).content)

    async def watch(self, since: int | None = None, retry_seconds: float = 1.0) -> AsyncIterator[Event]:
        """Registry changes as they happen, forever: a dropped stream is reopened from the last event seen.

        ``since`` replays the change log after that sequence number first (0: everything kept).
        """
        last = since
        while True:
            headers = {**self.headers, **({"Last-Event-ID": str(last)} if last is not None else {})}
            try:
                async with self.http.stream("GET", self.base_url + "/v1/watch", headers=headers,
                                            timeout=httpx.Timeout(10, read=None)) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise RegistryError(response.status_code, response.text[:200] or response.reason_phrase)
                    async for sse in sse_events(response.aiter_lines()):
                        event = Event.model_validate_json(sse.data)
                        last = event.seq
                        yield event
            except httpx.HTTPError:
                pass  # the registry went away: try again, resuming after the last event
            await asyncio.sleep(retry_seconds)

    async def resolve(self, agent_id: str, policy: str = "round_robin") -> InstanceRecord:
        response = await self._call("GET", f"/v1/agents/{agent_id}/resolve", params={"policy": policy})
        return InstanceRecord.model_validate_json(response.content)
