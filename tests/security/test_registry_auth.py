"""The registry refuses what the agents refuse: no credential, an expired or foreign token, a missing scope."""

from __future__ import annotations

import httpx
import pytest

from agents.definition import Agent
from tests.registry.support import card_for, running_registry
from tests.security.support import token

AUDIENCE = "mesh-registry"
librarian = Agent("librarian", "Finds books", version="1.0.0")


@librarian.skill
def find_book(title: str) -> str:
    """Find a book by title."""
    return title


@pytest.fixture
async def registry(tmp_path):
    settings = {"registry_jwt_secret": "test-mesh-signing-secret-of-enough-length-32b", "registry_jwt_audience": AUDIENCE,
                "registry_protect_reads": True}
    async with running_registry(tmp_path, f"sqlite:///{tmp_path / 'registry.db'}", **settings) as service:
        yield service


def auth(sub: str = "ops", **options: object) -> dict[str, str]:
    options.setdefault("aud", AUDIENCE)
    return {"Authorization": f"Bearer {token(sub, **options)}"}


async def test_writes_reads_and_mcp_need_a_valid_scoped_credential(registry):
    body = {"card": card_for(librarian, "http://127.0.0.1:9801"), "lease_seconds": 60}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    mcp_headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=registry.base_url) as http:
        anonymous = await http.post("/v1/instances", json=body)
        expired = await http.post("/v1/instances", json=body, headers=auth(expires_in=-60))
        foreign = await http.post("/v1/instances", json=body, headers=auth(aud="warehouse"))
        read_only = await http.post("/v1/instances", json=body, headers=auth(scope="registry:read"))
        written = await http.post("/v1/instances", json=body, headers=auth(scope="registry:write"))
        read_anonymously = await http.get("/v1/agents")
        read = await http.get("/v1/agents", headers=auth(scope="registry:read"))
        read_wrong_scope = await http.get("/v1/agents", headers=auth(scope="warehouse:*"))
        mcp_anonymous = await http.post("/mcp", json=init, headers=mcp_headers)
        mcp_read = await http.post("/mcp", json=init, headers={**mcp_headers, **auth(scope="registry:read")})
    assert anonymous.status_code == 401 and "needs a credential" in anonymous.json()["error"]["message"]
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
    assert foreign.status_code == 401 and "another audience" in foreign.json()["error"]["message"]
    assert read_only.status_code == 403 and "not scoped for 'registry:write'" in read_only.json()["error"]["message"]
    assert 'error="insufficient_scope"' in read_only.headers["www-authenticate"]
    assert written.status_code == 201
    assert read_anonymously.status_code == 401
    assert read.status_code == 200 and [a["name"] for a in read.json()["agents"]] == ["librarian"]
    assert read_wrong_scope.status_code == 403
    assert mcp_anonymous.status_code == 401 and mcp_read.status_code == 200
