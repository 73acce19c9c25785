"""Registry trust: write (and optionally read) credentials, and JWS-signed agent cards.

Every case runs against a registry on a real socket; JWTs and card signatures are made here with
freshly generated keys, so nothing is trusted by accident.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from agents import Agent
from agents.settings import MeshSettings, SettingsError
from protocols.card_signing import card_dict_signed
from protocols.cards import build_card
from protocols.registry_client import local_token_path
from registry.service import build_registry
from tests.registry.support import card_for, running_registry
from tests.support import running_agent, serving_app

notary = Agent("notary", "Certifies documents", version="1.0.0")


@notary.skill(tags=["legal"])
def certify(document: str) -> str:
    """Certify a document."""
    return document


def card(url: str = "http://127.0.0.1:9801") -> dict:
    return card_for(notary, url)


def sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post_card(registry, body: dict, token: str | None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=registry.base_url, headers=bearer(token) if token else {}) as http:
        return await http.post("/v1/instances", json={"card": body, "lease_seconds": 60})


def refused(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    return response.json()["error"]["message"]


# -- credentials ----------------------------------------------------------------------------------


async def test_static_tokens_guard_writes_and_never_echo(tmp_path):
    async with running_registry(tmp_path, sqlite(tmp_path), registry_tokens="alpha-token, beta-token") as registry:
        assert (await post_card(registry, card("http://127.0.0.1:9801"), "alpha-token")).status_code == 201
        assert (await post_card(registry, card("http://127.0.0.1:9802"), "beta-token")).status_code == 201
        wrong = await post_card(registry, card(), "gamma-token")
        assert refused(wrong) == "the credential is not valid" and "gamma-token" not in wrong.text
        assert "needs a credential" in refused(await post_card(registry, card(), None))
        async with httpx.AsyncClient(base_url=registry.base_url) as http:
            basic = await http.post("/v1/instances", json={}, headers={"Authorization": "Basic YWxwaGE6eA=="})
            assert refused(basic) == "the Authorization header must be 'Bearer <token>'"
            gone = await http.delete("/v1/agents/notary@1.0.0", headers=bearer("alpha-tokenX"))
            assert refused(gone) == "the credential is not valid"
            (record,) = (await http.get("/v1/agents")).json()["agents"]  # reads stay open
            assert len(record["instances"]) == 2
        assert not local_token_path(tmp_path).exists()  # configured credentials: no generated token


async def test_hs256_jwts_are_checked_for_expiry_audience_and_issuer(tmp_path):
    secret, aud, iss = "a-shared-secret-of-thirty-two-bytes!", "agent-mesh", "https://auth.example"
    now = int(time.time())

    def token(key: str = secret, **claims: object) -> str:
        return jwt.encode({"sub": "ci-deployer", "aud": aud, "iss": iss, "exp": now + 300, **claims}, key, "HS256")

    settings = {"registry_jwt_secret": secret, "registry_jwt_audience": aud, "registry_jwt_issuer": iss}
    async with running_registry(tmp_path, sqlite(tmp_path), **settings) as registry:
        assert (await post_card(registry, card(), token())).status_code == 201
        assert refused(await post_card(registry, card(), token(exp=now - 60))) == "the token has expired"
        assert refused(await post_card(registry, card(), token(aud="billing"))) == "the token is for another audience"
        assert refused(await post_card(registry, card(), token(iss="https://evil.example"))) == "the token has the wrong issuer"
        no_exp = jwt.encode({"sub": "ci", "aud": aud, "iss": iss}, secret, "HS256")
        assert refused(await post_card(registry, card(), no_exp)) == "the token has no 'exp' claim, which this registry requires"
        forged = await post_card(registry, card(), token(key="another-secret-of-thirty-two-bytes!"))
        assert refused(forged) == "the token is not valid: InvalidSignatureError"
        unsigned = jwt.encode({"aud": aud, "iss": iss, "exp": now + 300}, None, "none")
        assert refused(await post_card(registry, card(), unsigned)).startswith("the token is not valid")
        assert not local_token_path(tmp_path).exists()


async def test_es256_jwts_verify_with_the_configured_public_key(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "jwt.pub.pem").write_bytes(public_pem)
    claims = {"sub": "agent-42", "exp": int(time.time()) + 300}
    async with running_registry(tmp_path, sqlite(tmp_path), registry_jwt_public_key=str(tmp_path / "jwt.pub.pem")) as registry:
        assert (await post_card(registry, card(), jwt.encode(claims, key, "ES256"))).status_code == 201
        stranger = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), "ES256")
        assert refused(await post_card(registry, card(), stranger)) == "the token is not valid: InvalidSignatureError"
        # algorithm confusion: an HS256 token keyed with the public PEM must not pass
        confused = _hs256_by_hand(claims, public_pem)
        assert refused(await post_card(registry, card(), confused)) == "the token is not valid: InvalidAlgorithmError"


def _hs256_by_hand(claims: dict, key: bytes) -> str:
    """PyJWT refuses to HMAC with a PEM, which is the point; an attacker would not."""
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    return signing_input + "." + b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


async def test_protected_reads_need_the_credential_on_rest_and_mcp(tmp_path):
    async with running_registry(tmp_path, sqlite(tmp_path), registry_tokens="reader-token", registry_protect_reads=True) as registry:
        assert (await post_card(registry, card(), "reader-token")).status_code == 201
        async with httpx.AsyncClient(base_url=registry.base_url) as http:
            assert "needs a credential" in refused(await http.get("/v1/agents"))
            assert "needs a credential" in refused(await http.get("/v1/agents/notary@1.0.0/resolve"))
            assert refused(await http.get("/v1/agents", headers=bearer("guess"))) == "the credential is not valid"
            listed = await http.get("/v1/agents", headers=bearer("reader-token"))
            assert [a["name"] for a in listed.json()["agents"]] == ["notary"]
            assert (await http.get("/healthz")).status_code == 200  # liveness probes carry no credential
            initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
            mcp_anonymous = await http.post("/mcp", json=initialize, headers={"Accept": "application/json, text/event-stream"})
            assert "needs a credential" in refused(mcp_anonymous)
        async with httpx2.AsyncClient(headers=bearer("reader-token")) as http2, \
                Client(streamable_http_client(registry.base_url + "/mcp", http_client=http2)) as mcp:
            found = await mcp.call_tool("find_agents", {"skill": "certify"})
            assert [a["name"] for a in found.structured_content["agents"]] == ["notary"]


async def test_with_nothing_configured_a_private_token_file_is_made_and_works(tmp_path):
    async with running_registry(tmp_path, sqlite(tmp_path)) as registry:
        path = local_token_path(tmp_path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        token = path.read_text().strip()
        assert len(token) >= 32
        assert (await post_card(registry, card(), token)).status_code == 201
        assert refused(await post_card(registry, card(), token[:-1])) == "the credential is not valid"
    async with running_registry(tmp_path, sqlite(tmp_path)) as again:  # a restart keeps the token
        assert path.read_text().strip() == token
        assert (await post_card(again, card(), token)).status_code == 200


async def test_an_agent_registers_with_the_token_from_its_settings(tmp_path):
    async with running_registry(tmp_path / "registry", sqlite(tmp_path), registry_tokens="agent-token") as registry:
        environ = {"MESH_REGISTRY_URL": registry.base_url, "MESH_REGISTRY_TOKEN": "agent-token"}
        overrides = MeshSettings.from_env(environ).model_dump(include={"registry_url", "registry_token"})
        async with running_agent(notary, tmp_path / "agent", **overrides) as agent:
            assert agent.registry is not None
            await asyncio.wait_for(agent.registry.registered.wait(), timeout=10)
        async with httpx.AsyncClient(base_url=registry.base_url) as http:
            # the agent deregistered on its clean shutdown, which took the credential too
            assert (await http.get("/v1/agents", params={"all": "true"})).json()["agents"] == []


# -- signed cards ---------------------------------------------------------------------------------


class Signer:
    """An EC P-256 key pair: signs cards, and writes its public half as a JWKS the registry trusts."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.key = ec.generate_private_key(ec.SECP256R1())

    def sign(self, url: str = "http://127.0.0.1:9801") -> dict:
        private = ECAlgorithm.to_jwk(self.key, as_dict=True) | {"kid": self.kid}
        return card_dict_signed(build_card(notary, url), private)

    def jwks(self, path: Path) -> str:
        public = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True) | {"kid": self.kid, "use": "sig"}
        path.write_text(json.dumps({"keys": [public]}))
        return str(path)


def problems(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(p["path"], p["reason"]) for p in response.json()["error"]["problems"]]


async def test_signed_cards_are_verified_and_tampering_is_refused(tmp_path, store_url):
    signer = Signer("mesh-signer-1")
    trusted = signer.jwks(tmp_path / "trusted.jwks")
    async with running_registry(tmp_path, store_url, registry_trusted_keys=trusted) as registry:
        token = local_token_path(tmp_path).read_text()
        signed = signer.sign()
        registration = await post_card(registry, signed, token)
        assert registration.status_code == 201, registration.text
        agent = registration.json()["agent"]
        assert (agent["verified"], agent["verification"]) == (True, "verified (kid mesh-signer-1)")
        async with httpx.AsyncClient(base_url=registry.base_url) as http:
            stored = (await http.get(f"/v1/agents/{agent['id']}")).json()
        assert (stored["verified"], stored["verification"]) == (True, "verified (kid mesh-signer-1)")
        assert stored["card"]["signatures"] == signed["signatures"]

        tampered = {**signed, "description": "Certifies anything you like"}
        [(path, reason)] = problems(await post_card(registry, tampered, token))
        assert path == "$.signatures" and reason.startswith("signature by kid mesh-signer-1 does not match the card")

        stranger = Signer("mesh-signer-1").sign()  # same kid, another key
        assert problems(await post_card(registry, stranger, token))[0][0] == "$.signatures"
        unknown = Signer("rogue").sign()
        assert problems(await post_card(registry, unknown, token)) == [
            ("$.signatures", "not signed by a trusted key (kid 'rogue')")
        ]

        # a valid signature next to a garbled one still verifies (and must not crash the registry)
        garbled = {**signed, "signatures": [{"protected": "!!", "signature": "x"}, *signed["signatures"]]}
        again = await post_card(registry, garbled, token)
        assert again.status_code == 200 and again.json()["agent"]["verified"] is True

        unsigned = await post_card(registry, card("http://127.0.0.1:9802"), token)  # allow-unsigned
        assert unsigned.status_code == 201
        assert (unsigned.json()["agent"]["verified"], unsigned.json()["agent"]["verification"]) == (False, "unsigned")

        # a 0.3 card's signature covers the 0.3 JSON, which is not checked: accepted, never verified
        legacy = {"name": "old-notary", "description": "A2A 0.3", "version": "0.9", "url": "http://127.0.0.1:9803/",
                  "protocolVersion": "0.3.0", "capabilities": {}, "defaultInputModes": ["text/plain"],
                  "defaultOutputModes": ["text/plain"], "skills": [], "signatures": signed["signatures"]}
        old = (await post_card(registry, legacy, token)).json()["agent"]
        assert (old["verified"], old["verification"]) == (False, "signatures of A2A 0.3 cards are not checked")


async def test_without_trusted_keys_signed_cards_are_accepted_unverified(tmp_path):
    async with running_registry(tmp_path, sqlite(tmp_path)) as registry:
        response = await post_card(registry, Signer("k").sign(), local_token_path(tmp_path).read_text())
    assert response.status_code == 201
    agent = response.json()["agent"]
    assert (agent["verified"], agent["verification"]) == (False, "signed, but no trusted keys are configured")


async def test_require_signed_refuses_unsigned_cards(tmp_path, store_url):
    signer = Signer("mesh-signer-2")
    settings = {"registry_card_policy": "require-signed", "registry_trusted_keys": signer.jwks(tmp_path / "trusted.jwks")}
    async with running_registry(tmp_path, store_url, **settings) as registry:
        token = local_token_path(tmp_path).read_text()
        [(path, reason)] = problems(await post_card(registry, card(), token))
        assert (path, reason) == ("$.signatures", "a verified signature is required (unsigned)")
        refusal = await post_card(registry, card(), token)
        assert "a verified signature is required (unsigned)" in refusal.json()["error"]["message"]
        assert problems(await post_card(registry, Signer("rogue").sign(), token))[0][0] == "$.signatures"
        accepted = await post_card(registry, signer.sign(), token)
        assert accepted.status_code == 201 and accepted.json()["agent"]["verified"] is True


def test_require_signed_without_trusted_keys_is_a_startup_error(tmp_path):
    settings = MeshSettings.from_env({}, home=tmp_path, registry_card_policy="require-signed")
    with pytest.raises(SettingsError, match="MESH_REGISTRY_TRUSTED_KEYS"):
        build_registry(settings, sqlite(tmp_path))


@contextlib.asynccontextmanager
async def serving_card(agent_card: dict) -> AsyncIterator[str]:
    """A static card at /.well-known/agent-card.json, as a signing agent would serve it; its base URL."""

    async def well_known(request):
        return JSONResponse(agent_card)

    async with serving_app(lambda url: Starlette(routes=[Route("/.well-known/agent-card.json", well_known)]),
                           "card server") as url:
        yield url


async def test_a_signed_card_registered_by_url_is_verified(tmp_path):
    signer = Signer("served-key")
    async with running_registry(tmp_path, sqlite(tmp_path), registry_trusted_keys=signer.jwks(tmp_path / "k.jwks")) as registry:
        token = local_token_path(tmp_path).read_text()
        # the card names the URL it is served at, so it is signed once the port is known
        served_card: dict = {}
        async with serving_card(served_card) as url, httpx.AsyncClient(base_url=registry.base_url, headers=bearer(token)) as http:
            served_card.update(signer.sign(url=url))
            response = await http.post("/v1/instances", json={"card_url": url, "lease_seconds": 60})
            assert response.status_code == 201, response.text
            agent = response.json()["agent"]
            assert (agent["verified"], agent["verification"]) == (True, "verified (kid served-key)")
            assert agent["instances"][0]["url"] == url

            served_card["description"] = "changed on the server after signing"
            tampered = await http.post("/v1/instances", json={"card_url": url, "lease_seconds": 60})
            assert problems(tampered)[0][0] == "$.signatures"
