"""Who may write to (and, optionally, read from) the registry.

Credentials are bearer tokens or JWTs (HS256 with a shared secret, or RS/ES with a public key,
with audience and issuer checked when configured). With nothing configured the registry makes a
random token and writes it to ``$MESH_HOME/registry/token`` (mode 0600): writes are never open,
and agents sharing that home find it without configuration. Tokens are never logged or echoed.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from agents.policy import Policy

from agents.settings import MeshSettings
from protocols.credentials import AuthFailure, decode_jwt
from protocols.registry_client import local_token_path

__all__ = ["READ_SCOPE", "WRITE_SCOPE", "AuthError", "Credentials", "ScopeError", "token_file"]

log = logging.getLogger("registry.auth")


class AuthError(Exception):
    """Missing or invalid credential; the message never contains the credential."""


class ScopeError(AuthError):
    """A valid credential without the scope the call needs (403)."""


READ_SCOPE, WRITE_SCOPE = "registry:read", "registry:write"  # write implies read


def token_file(settings: MeshSettings) -> Path:
    return local_token_path(settings.home)


@dataclass
class Credentials:
    tokens: set[str] = field(default_factory=set)
    jwt_key: str | bytes | None = None
    jwt_algorithms: list[str] = field(default_factory=list)
    audience: str | None = None
    issuer: str | None = None
    protect_reads: bool = False
    policy: Policy | None = None  # MESH_POLICY: JWT subjects hold registry scopes there too

    @classmethod
    def from_settings(cls, settings: MeshSettings) -> Credentials:
        creds = cls(
            tokens={t.strip() for t in (settings.registry_tokens or "").split(",") if t.strip()},
            audience=settings.registry_jwt_audience,
            issuer=settings.registry_jwt_issuer,
            protect_reads=settings.registry_protect_reads,
            policy=Policy.from_file(settings.policy) if settings.policy else None,
        )
        if settings.registry_jwt_secret:
            creds.jwt_key, creds.jwt_algorithms = settings.registry_jwt_secret, ["HS256"]
        elif settings.registry_jwt_public_key:
            creds.jwt_key = Path(settings.registry_jwt_public_key).read_bytes()
            creds.jwt_algorithms = ["RS256", "ES256", "PS256", "EdDSA"]
        if not creds.tokens and creds.jwt_key is None:
            creds.tokens.add(_local_token(settings))
        return creds

    def check(self, authorization: str | None, scope: str = WRITE_SCOPE) -> str:
        """The caller's identity, or AuthError (401), or ScopeError (403) when a JWT lacks ``scope``.

        Tokens of ``MESH_REGISTRY_TOKENS`` (and the local token file) may do everything; a JWT may
        do what its ``scope`` claim and the policy (when there is one) both grant.
        """
        if not authorization:
            raise AuthError("this call needs a credential: Authorization: Bearer <token>")
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise AuthError("the Authorization header must be 'Bearer <token>'")
        credential = credential.strip()
        if any(hmac.compare_digest(credential, token) for token in self.tokens):
            return "token"
        if self.jwt_key is not None and credential.count(".") == 2:
            try:
                claims = decode_jwt(credential, self.jwt_key, self.jwt_algorithms,
                                    audiences=[self.audience] if self.audience else None, issuer=self.issuer,
                                    who="this registry")
            except AuthFailure as failure:
                raise AuthError(str(failure)) from None
            subject = str(claims.get("sub", "jwt"))
            self._authorize(subject, claims, scope)
            return subject
        raise AuthError("the credential is not valid")


    def _authorize(self, subject: str, claims: dict[str, object], scope: str) -> None:
        wanted = {scope, WRITE_SCOPE}  # whoever may write may read
        raw = claims.get("scope")
        if raw is not None:
            held = set(raw.split()) if isinstance(raw, str) else set(map(str, raw))  # type: ignore[call-overload]
            if not held & wanted:
                raise ScopeError(f"the token is not scoped for {scope!r}")
        if self.policy is not None:
            granted = self.policy.scopes_of(subject)
            if not any(fnmatchcase(w, g) or g == "*" for g in granted for w in wanted):
                raise ScopeError(f"{subject!r} does not hold the scope {scope!r}")


def _local_token(settings: MeshSettings) -> str:
    path = token_file(settings)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another registry process on the same home won the race
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    log.info("registry write token created in %s", path)
    return token
