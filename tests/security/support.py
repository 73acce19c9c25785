"""Credentials for the security tests: JWTs minted here, a policy file, an API key file."""

from __future__ import annotations

import time
from pathlib import Path

import jwt

from protocols.credentials import hash_api_key

SECRET = "test-mesh-signing-secret-of-enough-length-32b"
API_KEY = "ak-warehouse-robot-0f1e2d3c"
POLICY = """
[callers.alice]
scopes = ["warehouse:stock_level", "warehouse:count_shelves", "coordinator:*"]

[callers.bob]
scopes = ["warehouse:*"]

[callers.robot]
scopes = ["warehouse:stock_level"]

[callers.coordinator]
scopes = ["delegate"]

[callers.rogue]
scopes = ["*"]
"""


def token(sub: str, aud: str = "warehouse", *, expires_in: float = 300, secret: str = SECRET, **claims: object) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "aud": aud, "iat": now, "exp": now + int(expires_in), **claims}, secret,
                      algorithm="HS256")


def bearer(sub: str, **options: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, **options)}"}


def write_security_files(home: Path) -> dict[str, object]:
    """The settings overrides of a service that requires authentication, with its files under ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "policy.toml").write_text(POLICY)
    (home / "keys.toml").write_text(f'[keys.robot]\nsha256 = "{hash_api_key(API_KEY)}"\n')
    return {"auth_mode": "required", "auth_jwt_secret": SECRET, "policy": str(home / "policy.toml"),
            "auth_api_keys": str(home / "keys.toml")}
