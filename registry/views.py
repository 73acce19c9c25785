"""What the registry's MCP face reads: the mesh as seen through the store, or through the REST API.

The registry serves its MCP face from its own store (``StoreView``); ``mesh mcp`` serves the same
face on stdio from a registry it reaches over HTTP (``RemoteView``). Both answer the same four
questions and raise ``ViewError`` when they cannot, so the face never mistakes an outage for an
empty mesh.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from protocols.registry_client import RegistryClient, RegistryError
from registry.feed import ChangeFeed
from registry.models import AgentRecord, Event, InstanceRecord, Policy
from registry.selection import Selector
from registry.store import AgentQuery, RegistryStore, StoreError

__all__ = ["MeshView", "RemoteView", "StoreView", "ViewError"]


class ViewError(RuntimeError):
    """The registry could not answer (store down, registry unreachable, or refused)."""


class MeshView(Protocol):
    async def find(self, *, text: str | None = None, skill: str | None = None, tag: str | None = None,
                   include_all: bool = False) -> list[AgentRecord]: ...

    async def agent(self, agent_id: str) -> AgentRecord | None: ...

    async def resolve(self, agent: AgentRecord, policy: Policy) -> InstanceRecord: ...

    def watch(self) -> AsyncIterator[Event]: ...


class StoreView:
    """The registry's own store, change feed and instance selector."""

    def __init__(self, store: RegistryStore, feed: ChangeFeed, selector: Selector) -> None:
        self.store, self.feed, self.selector = store, feed, selector

    async def find(self, *, text: str | None = None, skill: str | None = None, tag: str | None = None,
                   include_all: bool = False) -> list[AgentRecord]:
        try:
            return await self.store.find(AgentQuery(text=text, skill=skill, tag=tag, include_all=include_all))
        except StoreError as exc:
            raise ViewError(str(exc)) from None

    async def agent(self, agent_id: str) -> AgentRecord | None:
        try:
            return await self.store.agent(agent_id)
        except StoreError as exc:
            raise ViewError(str(exc)) from None

    async def resolve(self, agent: AgentRecord, policy: Policy) -> InstanceRecord:
        return _pick(self.selector, agent, policy)

    def watch(self) -> AsyncIterator[Event]:
        return self.feed.watch()


class RemoteView:
    """A registry reached over its REST API (``/v1``); instances are chosen here, like the registry does."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client
        self.selector = Selector()

    async def find(self, *, text: str | None = None, skill: str | None = None, tag: str | None = None,
                   include_all: bool = False) -> list[AgentRecord]:
        try:
            return await self.client.find(q=text, skill=skill, tag=tag, all=include_all)
        except RegistryError as exc:
            raise ViewError(str(exc)) from None

    async def agent(self, agent_id: str) -> AgentRecord | None:
        try:
            return await self.client.agent(agent_id)
        except RegistryError as exc:
            if exc.status == 404:
                return None
            raise ViewError(str(exc)) from None

    async def resolve(self, agent: AgentRecord, policy: Policy) -> InstanceRecord:
        return _pick(self.selector, agent, policy)

    def watch(self) -> AsyncIterator[Event]:
        return self.client.watch()


def _pick(selector: Selector, agent: AgentRecord, policy: Policy) -> InstanceRecord:
    healthy = agent.healthy
    if not healthy:
        raise ViewError(f"agent {agent.id!r} has no healthy instance ({len(agent.instances)} registered)")
    return selector.pick(agent.id, healthy, policy)
