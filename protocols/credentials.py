"""Who is calling: credentials checked on the way in, and attached on the way out.

Incoming: a bearer JWT (HS256 with a shared secret, or RS/ES/PS/EdDSA with a public key; ``exp``
and ``aud`` required, ``iss`` checked when configured) or an API key (``X-API-Key``, or as a bearer
token; only their SHA-256 is configured). The result is an ``Identity``: the subject, the scopes
its token carries, and, for a delegated call, the service acting for it (the JWT ``act`` claim,
RFC 8693). Failures say what is wrong (expired, wrong audience…) and never contain the credential.

Outgoing: ``OutboundCredentials`` gives the headers for a target: a delegated token for the
current caller when this service may mint one (the coordinator acting for a user), else a
credential configured for that target, else this service's own.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import os
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier

from agents.settings import MeshSettings, SettingsError

__all__ = [
    "API_KEY_HEADER",
    "AuthFailure",
    "Authenticator",
    "Identity",
    "MeshTokenVerifier",
    "OutboundCredentials",
    "credential_hook",
    "decode_jwt",
    "current_caller",
    "hash_api_key",
    "identity_from_record",
    "identity_record",
    "outbound_client",
]

API_KEY_HEADER = "x-api-key"
ASYMMETRIC = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]
DELEGATED_TTL_SECONDS = 300


class AuthFailure(Exception):
    """No credential, or one that is not valid here; the message never contains the credential."""


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller; ``token_scopes`` None: its credential carries no scope claim."""

    subject: str
    method: str  # "jwt" or "api_key"
    token_scopes: frozenset[str] | None = None
    actor: str | None = None  # the service acting for the subject (delegation)
    issuer: str | None = None

    def to_access_token(self, token: str, expires_at: int | None = None) -> AccessToken:
        claims = {"method": self.method, "act": self.actor, "iss": self.issuer}
        return AccessToken(token=token, client_id=self.subject, subject=self.subject, expires_at=expires_at,
                           scopes=sorted(self.token_scopes or ()), claims=claims | {"scoped": self.token_scopes is not None})

    @classmethod
    def from_access_token(cls, token: AccessToken) -> Identity:
        claims = token.claims or {}
        return cls(subject=token.client_id, method=str(claims.get("method", "jwt")),
                   token_scopes=frozenset(token.scopes) if claims.get("scoped") else None,
                   actor=claims.get("act"), issuer=claims.get("iss"))


# The caller of the request being handled: set by the guard, read by the runtime and by outbound calls.
current_caller: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("mesh_caller", default=None)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _scopes_of(claims: dict[str, Any]) -> frozenset[str] | None:
    raw = claims.get("scope", claims.get("scp"))
    if raw is None:
        return None
    return frozenset(raw.split() if isinstance(raw, str) else map(str, raw))


@dataclass
class Authenticator:
    """Checks the credentials one service accepts; its own name is always an accepted audience."""

    audiences: list[str]
    jwt_key: str | bytes | None = None
    jwt_algorithms: list[str] = field(default_factory=list)
    issuer: str | None = None
    api_keys: dict[str, str] = field(default_factory=dict)  # sha256 hex -> subject

    @classmethod
    def from_settings(cls, settings: MeshSettings, service: str) -> Authenticator:
        audiences = [service, *([settings.auth_jwt_audience] if settings.auth_jwt_audience else [])]
        auth = cls(audiences=audiences, issuer=settings.auth_jwt_issuer, api_keys=_read_api_keys(settings))
        if settings.auth_jwt_secret:
            auth.jwt_key, auth.jwt_algorithms = settings.auth_jwt_secret, ["HS256"]
        elif settings.auth_jwt_public_key:
            auth.jwt_key, auth.jwt_algorithms = Path(settings.auth_jwt_public_key).read_bytes(), ASYMMETRIC
        if auth.jwt_key is None and not auth.api_keys:
            raise SettingsError("MESH_AUTH_MODE=required needs MESH_AUTH_JWT_SECRET, MESH_AUTH_JWT_PUBLIC_KEY "
                                "or MESH_AUTH_API_KEYS: otherwise no caller could ever be accepted")
        return auth

    def verify_bearer(self, token: str) -> Identity:
        token = token.strip()
        if not token:
            raise AuthFailure("empty bearer token")
        if token.count(".") != 2:
            return self.verify_api_key(token)
        if self.jwt_key is None:
            raise AuthFailure("this service accepts no JWTs")
        claims = decode_jwt(token, self.jwt_key, self.jwt_algorithms, audiences=self.audiences, issuer=self.issuer,
                            require=("exp", "aud", "sub"), who=f"agent {self.audiences[0]!r}")
        actor = claims.get("act")
        return Identity(subject=str(claims["sub"]), method="jwt", token_scopes=_scopes_of(claims),
                        actor=str(actor["sub"]) if isinstance(actor, dict) and actor.get("sub") else None,
                        issuer=claims.get("iss"))

    def verify_api_key(self, key: str) -> Identity:
        digest = hash_api_key(key.strip())
        for known, subject in self.api_keys.items():
            if hmac.compare_digest(known, digest):
                return Identity(subject=subject, method="api_key")
        raise AuthFailure("the API key is not valid")

    def verify_headers(self, authorization: str | None, api_key: str | None) -> Identity:
        if authorization:
            scheme, _, credential = authorization.partition(" ")
            if scheme.lower() != "bearer":
                raise AuthFailure("the Authorization header must be 'Bearer <token>'")
            return self.verify_bearer(credential)
        if api_key:
            return self.verify_api_key(api_key)
        raise AuthFailure("this call needs a credential: Authorization: Bearer <token>, or X-API-Key")


def decode_jwt(token: str, key: str | bytes, algorithms: list[str], *, audiences: list[str] | None,
               issuer: str | None, require: tuple[str, ...] = ("exp",), who: str = "this service") -> dict[str, Any]:
    """The claims of a verified JWT (signature, ``exp``, ``aud`` when ``audiences``, ``iss`` when
    ``issuer``), or AuthFailure saying what is wrong, in words, without the token."""
    try:
        return jwt.decode(token, key, algorithms=algorithms, audience=audiences, issuer=issuer, leeway=5,
                          options={"require": list(require), "verify_aud": audiences is not None})
    except jwt.ExpiredSignatureError:
        raise AuthFailure("the token has expired") from None
    except jwt.InvalidAudienceError:
        raise AuthFailure("the token is for another audience") from None
    except jwt.InvalidIssuerError:
        raise AuthFailure("the token has the wrong issuer") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthFailure(f"the token has no {exc.claim!r} claim, which {who} requires") from None
    except jwt.PyJWTError as exc:
        raise AuthFailure(f"the token is not valid: {type(exc).__name__}") from None


def _read_api_keys(settings: MeshSettings) -> dict[str, str]:
    """``MESH_AUTH_API_KEYS``: a TOML file of ``[keys.<subject>] sha256 = "<hex>"`` entries."""
    if not settings.auth_api_keys:
        return {}
    try:
        data = tomllib.loads(Path(settings.auth_api_keys).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"MESH_AUTH_API_KEYS: cannot read {settings.auth_api_keys}: {exc}") from None
    keys: dict[str, str] = {}
    for subject, entry in (data.get("keys") or {}).items():
        digest = str((entry or {}).get("sha256", "")).lower()
        if len(digest) != 64:
            raise SettingsError(f"MESH_AUTH_API_KEYS: keys.{subject}.sha256 must be a SHA-256 hex digest")
        keys[digest] = subject
    return keys


class MeshTokenVerifier(TokenVerifier):
    """The same checks for the mcp SDK's bearer authentication (MCP endpoints)."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            return self.authenticator.verify_bearer(token).to_access_token(token)
        except AuthFailure:
            return None


def _secret(spec: str) -> str:
    """A credential given as ``env:NAME``, ``file:/path`` or (for tests) the value itself."""
    if spec.startswith("env:"):
        value = os.environ.get(spec[4:])
        if not value:
            raise SettingsError(f"credential {spec!r}: the variable is not set")
        return value
    if spec.startswith("file:"):
        return Path(spec[5:]).read_text().strip()
    return spec


@dataclass
class OutboundCredentials:
    """Headers this service sends to a target; built once from settings, cheap per request."""

    service: str
    own_token: str | None = None
    targets: dict[str, dict[str, str]] = field(default_factory=dict)  # URL prefix -> header -> value
    signing_key: str | bytes | None = None
    signing_algorithm: str = "HS256"
    issuer: str | None = None

    @classmethod
    def from_settings(cls, settings: MeshSettings, service: str) -> OutboundCredentials:
        out = cls(service=service, issuer=settings.auth_jwt_issuer)
        if settings.auth_token:
            out.own_token = _secret(settings.auth_token)
        if settings.auth_credentials:
            data = tomllib.loads(Path(settings.auth_credentials).read_text())
            for prefix, entry in (data.get("targets") or {}).items():
                headers = {}
                if "bearer" in entry:
                    headers["authorization"] = f"Bearer {_secret(entry['bearer'])}"
                if "api_key" in entry:
                    headers[API_KEY_HEADER] = _secret(entry["api_key"])
                out.targets[prefix.rstrip("/")] = headers
        if settings.auth_signing_key:
            out.signing_key = Path(settings.auth_signing_key).read_bytes()
            out.signing_algorithm = settings.auth_signing_algorithm
        elif settings.auth_jwt_secret and settings.auth_delegate:
            out.signing_key = settings.auth_jwt_secret
        return out

    @property
    def active(self) -> bool:
        return bool(self.own_token or self.targets or self.signing_key)

    def headers_for(self, url: str, audience: str | None = None) -> dict[str, str]:
        caller = current_caller.get()
        if caller is not None and self.signing_key is not None and audience:
            return {"authorization": f"Bearer {self.delegated_token(caller, audience)}"}
        best = max((p for p in self.targets if url.startswith(p)), key=len, default=None)
        if best is not None:
            return self.targets[best]
        return {"authorization": f"Bearer {self.own_token}"} if self.own_token else {}

    def delegated_token(self, caller: Identity, audience: str) -> str:
        """A short-lived token for ``audience`` that names the caller as subject and this service as actor.

        Its scopes are the caller's own (when its token had any): delegation never widens access.
        """
        assert self.signing_key is not None
        now = int(time.time())
        claims: dict[str, Any] = {"sub": caller.subject, "aud": audience, "iat": now, "exp": now + DELEGATED_TTL_SECONDS,
                                  "act": {"sub": self.service}}
        if self.issuer:
            claims["iss"] = self.issuer
        if caller.token_scopes is not None:
            claims["scope"] = " ".join(sorted(caller.token_scopes))
        return jwt.encode(claims, self.signing_key, algorithm=self.signing_algorithm)


def credential_hook(outbound: OutboundCredentials, audience: str | None = None) -> Callable[[httpx.Request], Awaitable[None]]:
    """An httpx request hook attaching ``outbound``'s credentials (``audience``: the target agent's name)."""

    async def attach(request: httpx.Request) -> None:
        if "authorization" not in request.headers and API_KEY_HEADER not in request.headers:
            request.headers.update(outbound.headers_for(str(request.url), audience))

    return attach


def identity_record(identity: Identity | None) -> dict[str, Any] | None:
    """What a durable record keeps of a caller, to act for it again later (no credential)."""
    if identity is None:
        return None
    return {"subject": identity.subject, "method": identity.method, "actor": identity.actor, "issuer": identity.issuer,
            "scopes": sorted(identity.token_scopes) if identity.token_scopes is not None else None}


def identity_from_record(record: dict[str, Any] | None) -> Identity | None:
    if not record:
        return None
    scopes = record.get("scopes")
    return Identity(subject=str(record["subject"]), method=str(record.get("method", "jwt")),
                    token_scopes=frozenset(scopes) if scopes is not None else None,
                    actor=record.get("actor"), issuer=record.get("issuer"))


def outbound_client(settings: MeshSettings, service: str, **options: Any) -> httpx.AsyncClient:
    """An httpx client that carries this service's credentials (``MESH_AUTH_TOKEN``, ``MESH_AUTH_CREDENTIALS``)."""
    outbound = OutboundCredentials.from_settings(settings, service)
    if outbound.active:
        hooks = options.pop("event_hooks", {})
        options["event_hooks"] = {**hooks, "request": [*hooks.get("request", []), credential_hook(outbound)]}
    return httpx.AsyncClient(**options)
