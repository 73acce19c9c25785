"""The registry's REST API under ``/v1`` (pydantic at the boundary, errors as JSON, OpenAPI at /v1/openapi.json)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sse_starlette.sse import EventSourceResponse
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from registry.auth import READ_SCOPE, WRITE_SCOPE, AuthError, Credentials, ScopeError
from registry.feed import ChangeFeed
from registry.intake import Intake, IntakeError
from registry.models import Heartbeat, Policy, RegisterRequest, Registration
from registry.openapi import openapi_document
from registry.selection import Selector
from registry.store import AgentQuery, RegistryStore, StoreError

__all__ = ["RegistryAPI", "error"]

Endpoint = Callable[[Request], Awaitable[Response]]


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message, **extra}}, status_code=status)


def _dump(model: BaseModel | list[BaseModel], status: int = 200) -> Response:
    if isinstance(model, list):
        body = "[" + ",".join(m.model_dump_json() for m in model) + "]"
    else:
        body = model.model_dump_json()
    return Response(body, status_code=status, media_type="application/json")


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "on")


@dataclass
class RegistryAPI:
    store: RegistryStore
    feed: ChangeFeed
    intake: Intake
    credentials: Credentials
    selector: Selector

    def routes(self) -> list[Route]:
        return [
            Route("/v1/agents", self._reader(self.find_agents), methods=["GET"]),
            Route("/v1/agents/{agent_id}", self._reader(self.get_agent), methods=["GET"]),
            Route("/v1/agents/{agent_id}", self._writer(self.delete_agent), methods=["DELETE"]),
            Route("/v1/agents/{agent_id}/resolve", self._reader(self.resolve), methods=["GET"]),
            Route("/v1/instances", self._writer(self.register), methods=["POST"]),
            Route("/v1/instances/{instance_id}", self._reader(self.get_instance), methods=["GET"]),
            Route("/v1/instances/{instance_id}", self._writer(self.deregister), methods=["DELETE"]),
            Route("/v1/instances/{instance_id}/heartbeat", self._writer(self.heartbeat), methods=["POST"]),
            Route("/v1/watch", self._reader(self.watch), methods=["GET"]),
            Route("/v1/openapi.json", self.openapi, methods=["GET"]),
        ]

    # -- guards -------------------------------------------------------------------------------

    def _writer(self, endpoint: Endpoint) -> Endpoint:
        return self._guarded(endpoint, always=True)

    def _reader(self, endpoint: Endpoint) -> Endpoint:
        return self._guarded(endpoint, always=False)

    def guard_reads(self, app: ASGIApp) -> ASGIApp:
        """``app`` (the MCP face) behind the same read guard as the REST reads."""
        return _GuardedApp(app, lambda authorization: self._refusal(authorization, READ_SCOPE)) \
            if self.credentials.protect_reads else app

    def _guarded(self, endpoint: Endpoint, always: bool) -> Endpoint:
        async def guarded(request: Request) -> Response:
            if always or self.credentials.protect_reads:
                refused = self._refusal(request.headers.get("authorization"), WRITE_SCOPE if always else READ_SCOPE)
                if refused is not None:
                    return refused
            try:
                return await endpoint(request)
            except StoreError as exc:
                return error(503, str(exc))

        return guarded

    def _refusal(self, authorization: str | None, scope: str) -> Response | None:
        """None when the credential is good, else the 401 or 403 (whose message never contains the credential)."""
        try:
            self.credentials.check(authorization, scope)
        except ScopeError as exc:
            response = error(403, str(exc))
            response.headers["WWW-Authenticate"] = f'Bearer realm="agent-mesh registry", error="insufficient_scope", scope="{scope}"'
            return response
        except AuthError as exc:
            response = error(401, str(exc))
            response.headers["WWW-Authenticate"] = 'Bearer realm="agent-mesh registry"'
            return response
        return None

    # -- reads --------------------------------------------------------------------------------

    async def find_agents(self, request: Request) -> Response:
        params = request.query_params
        try:
            limit = min(int(params.get("limit", "100")), 1000)
        except ValueError:
            return error(400, "limit must be an integer")
        query = AgentQuery(
            skill=params.get("skill"), tag=params.get("tag"), input_mode=params.get("input_mode"),
            output_mode=params.get("output_mode"), name=params.get("name"), text=params.get("q"),
            kind=params.get("kind"), include_all=_flag(params.get("all")), limit=max(limit, 1),
        )
        agents = await self.store.find(query)
        return Response(json.dumps({"agents": [a.model_dump(mode="json") for a in agents]}), media_type="application/json")

    async def get_agent(self, request: Request) -> Response:
        agent = await self.store.agent(request.path_params["agent_id"])
        if agent is None:
            return error(404, f"no agent {request.path_params['agent_id']!r} is registered")
        return _dump(agent)

    async def resolve(self, request: Request) -> Response:
        agent_id = request.path_params["agent_id"]
        try:
            policy = Policy(request.query_params.get("policy", Policy.round_robin.value))
        except ValueError:
            return error(400, f"policy must be one of {', '.join(p.value for p in Policy)}")
        agent = await self.store.agent(agent_id)
        if agent is None:
            return error(404, f"no agent {agent_id!r} is registered")
        healthy = agent.healthy
        if not healthy:
            return error(503, f"agent {agent_id!r} has no healthy instance ({len(agent.instances)} registered)")
        return _dump(self.selector.pick(agent_id, healthy, policy))

    async def get_instance(self, request: Request) -> Response:
        instance = await self.store.instance(request.path_params["instance_id"])
        if instance is None:
            return error(404, f"no instance {request.path_params['instance_id']!r} is registered")
        return _dump(instance)

    async def watch(self, request: Request) -> Response:
        since_raw = request.headers.get("last-event-id") or request.query_params.get("since")
        try:
            since = int(since_raw) if since_raw is not None else None
        except ValueError:
            return error(400, "since / Last-Event-ID must be an event sequence number")

        async def events() -> Any:
            async for event in self.feed.watch(since):
                yield {"id": str(event.seq), "event": event.type.value, "data": event.model_dump_json()}

        return EventSourceResponse(events(), ping=15)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document())

    # -- writes -------------------------------------------------------------------------------

    async def register(self, request: Request) -> Response:
        parsed = await _parse(request, RegisterRequest)
        if isinstance(parsed, Response):
            return parsed
        try:
            description, url = await self.intake.describe(parsed)
        except IntakeError as exc:
            problems = [{"path": p.path, "reason": p.reason} for p in exc.problems]
            return error(exc.status, exc.message, **({"problems": problems} if problems else {}))
        if not url:
            return error(422, "the instance URL is unknown: give url")
        instance, created = await self.store.register(description, url, parsed.lease_seconds)
        agent = await self.store.agent(description.id)
        assert agent is not None
        registration = Registration(
            instance_id=instance.id, agent_id=agent.id, created=created, lease_seconds=instance.lease_seconds,
            heartbeat_url=f"/v1/instances/{instance.id}/heartbeat", agent=agent,
        )
        return _dump(registration, status=201 if created else 200)

    async def heartbeat(self, request: Request) -> Response:
        body = await _parse(request, Heartbeat, empty_ok=True)
        if isinstance(body, Response):
            return body
        instance = await self.store.heartbeat(request.path_params["instance_id"], body.in_flight)
        if instance is None:
            return error(404, f"no instance {request.path_params['instance_id']!r} is registered: register again")
        return _dump(instance)

    async def deregister(self, request: Request) -> Response:
        if not await self.store.deregister(request.path_params["instance_id"]):
            return error(404, f"no instance {request.path_params['instance_id']!r} is registered")
        return Response(status_code=204)

    async def delete_agent(self, request: Request) -> Response:
        agent = await self.store.agent(request.path_params["agent_id"])
        if agent is None:
            return error(404, f"no agent {request.path_params['agent_id']!r} is registered")
        for instance in agent.instances:
            await self.store.deregister(instance.id)
        return Response(status_code=204)


class _GuardedApp:
    """A raw ASGI app that answers only callers the guard lets through.

    A class, not a closure: Starlette's ``Route`` would take a plain function for a request/response endpoint.
    """

    def __init__(self, app: ASGIApp, refusal: Callable[[str | None], Response | None]) -> None:
        self.app, self.refusal = app, refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = self.refusal(Headers(scope=scope).get("authorization"))
            if refused is not None:
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _parse(request: Request, model: type[BaseModel], empty_ok: bool = False) -> Any:
    raw = await request.body()
    if not raw.strip() and empty_ok:
        return model()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return error(400, f"the body is not JSON: {exc}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            {"path": "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]), "reason": e["msg"]}
            for e in exc.errors()
        ]
        return error(422, f"invalid {model.__name__}", problems=problems)

