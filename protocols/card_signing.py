"""JWS signatures on A2A agent cards (the a2a-sdk signing helpers, with keys from a JWKS)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a2a.types import AgentCard
from a2a.utils.signing import (
    InvalidSignaturesError,
    NoSignatureError,
    create_agent_card_signer,
    create_signature_verifier,
)
from google.protobuf.json_format import MessageToDict, ParseDict
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKError, PyJWKSetError

__all__ = ["CardVerification", "TrustedKeys", "card_dict_signed", "sign_card", "verify_card"]

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"]


class TrustedKeys:
    """Public keys trusted to sign cards, by ``kid``."""

    def __init__(self, keys: dict[str, PyJWK]) -> None:
        self.keys = keys

    @classmethod
    def from_jwks(cls, jwks: dict[str, Any] | str) -> TrustedKeys:
        key_set = PyJWKSet.from_json(jwks if isinstance(jwks, str) else json.dumps(jwks))
        return cls({key.key_id: key for key in key_set.keys if key.key_id})

    @classmethod
    def from_file(cls, path: str | Path) -> TrustedKeys:
        return cls.from_jwks(Path(path).read_text())

    def key(self, kid: str | None, jku: str | None) -> PyJWK:
        # jku is deliberately ignored: fetching keys from a URL the card names would let any card vouch for itself
        if kid is None or kid not in self.keys:
            raise PyJWKError(f"no trusted key with kid {kid!r}")
        return self.keys[kid]


@dataclass(frozen=True, slots=True)
class CardVerification:
    signed: bool
    verified: bool
    detail: str


def verify_card(card: dict[str, Any], trusted: TrustedKeys | None) -> CardVerification:
    """Check a 1.0 card's signatures against the trusted keys."""
    signatures = card.get("signatures") or []
    if not signatures:
        return CardVerification(signed=False, verified=False, detail="unsigned")
    if trusted is None or not trusted.keys:
        return CardVerification(signed=True, verified=False, detail="signed, but no trusted keys are configured")
    verifier = create_signature_verifier(trusted.key, ALGORITHMS)
    try:
        verifier(ParseDict(card, AgentCard(), ignore_unknown_fields=True))
    except NoSignatureError:
        return CardVerification(signed=False, verified=False, detail="unsigned")
    except (InvalidSignaturesError, PyJWKError, PyJWKSetError) as exc:
        return CardVerification(signed=True, verified=False, detail=f"signature does not verify: {exc}")
    kids = [json.loads(_b64(s["protected"])).get("kid") for s in signatures if "protected" in s]
    return CardVerification(signed=True, verified=True, detail=f"verified (kid {', '.join(k for k in kids if k)})")


def sign_card(card: AgentCard, private_jwk: dict[str, Any], alg: str = "ES256") -> AgentCard:
    """Append a JWS signature made with ``private_jwk`` (which must carry a ``kid``)."""
    key = PyJWK.from_dict(private_jwk)
    signer = create_agent_card_signer(key, {"kid": key.key_id, "alg": alg, "jku": None, "typ": "JOSE"})
    return signer(card)


def card_dict_signed(card: AgentCard, private_jwk: dict[str, Any], alg: str = "ES256") -> dict[str, Any]:
    return MessageToDict(sign_card(card, private_jwk, alg))


def _b64(segment: str) -> str:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode()
