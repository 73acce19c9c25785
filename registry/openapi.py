"""The OpenAPI 3.1 document of the registry's REST API, built from the boundary models."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from registry.models import AgentRecord, Event, Heartbeat, InstanceRecord, RegisterRequest, Registration

__all__ = ["openapi_document"]

_MODELS: list[type[BaseModel]] = [AgentRecord, Event, Heartbeat, InstanceRecord, RegisterRequest, Registration]
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["status", "message"], "properties": {
        "status": {"type": "integer"}, "message": {"type": "string"},
        "problems": {"type": "array", "items": {"type": "object", "properties": {
            "path": {"type": "string"}, "reason": {"type": "string"}}}}}}},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    out: dict[str, Any] = {"200": ok} if ok else {}
    for status in (*errors, 503):
        out[str(status)] = {"description": "error", **_json(_ref("Error"))}
    return out


def _param(name: str, where: str = "query", required: bool = False, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema or {"type": "string"}}


@cache
def openapi_document() -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": _ERROR}
    for model in _MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    agent_id, instance_id = _param("agent_id", "path"), _param("instance_id", "path")
    write = [{"bearer": []}]
    paths = {
        "/v1/agents": {"get": {
            "summary": "Find agents (healthy instances only unless all=true)",
            "parameters": [_param("skill"), _param("tag"), _param("input_mode"), _param("output_mode"), _param("name"),
                           _param("q"), _param("kind", enum=["a2a", "mcp"]), _param("all", type="boolean"),
                           _param("limit", type="integer", minimum=1, maximum=1000)],
            "responses": _responses({"description": "matching agents", **_json({"type": "object", "properties": {
                "agents": {"type": "array", "items": _ref("AgentRecord")}}})}, 400)}},
        "/v1/agents/{agent_id}": {
            "get": {"summary": "One agent with all its instances", "parameters": [agent_id],
                    "responses": _responses({"description": "the agent", **_json(_ref("AgentRecord"))}, 404)},
            "delete": {"summary": "Deregister every instance of an agent", "parameters": [agent_id], "security": write,
                       "responses": {"204": {"description": "deregistered"}, **_responses({}, 401, 404)}}},
        "/v1/agents/{agent_id}/resolve": {"get": {
            "summary": "One healthy instance, chosen by policy", "parameters": [
                agent_id, _param("policy", enum=["round_robin", "least_in_flight", "random"])],
            "responses": _responses({"description": "the instance", **_json(_ref("InstanceRecord"))}, 400, 404)}},
        "/v1/instances": {"post": {
            "summary": "Register an instance (idempotent)", "security": write,
            "requestBody": {"required": True, **_json(_ref("RegisterRequest"))},
            "responses": {"201": {"description": "registered", **_json(_ref("Registration"))},
                          **_responses({"description": "already registered", **_json(_ref("Registration"))},
                                       400, 401, 413, 422, 502)}}},
        "/v1/instances/{instance_id}": {
            "get": {"summary": "One instance", "parameters": [instance_id],
                    "responses": _responses({"description": "the instance", **_json(_ref("InstanceRecord"))}, 404)},
            "delete": {"summary": "Deregister an instance", "parameters": [instance_id], "security": write,
                       "responses": {"204": {"description": "deregistered"}, **_responses({}, 401, 404)}}},
        "/v1/instances/{instance_id}/heartbeat": {"post": {
            "summary": "Renew the lease", "parameters": [instance_id], "security": write,
            "requestBody": {"required": False, **_json(_ref("Heartbeat"))},
            "responses": _responses({"description": "the instance", **_json(_ref("InstanceRecord"))},
                                    400, 401, 404, 413, 422)}},
        "/v1/watch": {"get": {
            "summary": "Server-sent events of registry changes; resume with Last-Event-ID",
            "parameters": [_param("since", type="integer"), _param("Last-Event-ID", "header")],
            "responses": {"200": {"description": "event stream of Event", "content": {"text/event-stream": {
                "schema": _ref("Event")}}}, **_responses({}, 400)}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "agent-mesh registry", "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
