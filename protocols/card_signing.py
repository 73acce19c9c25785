"""JWS signatures on A2A agent cards (the a2a-sdk signing helpers, with keys from a JWKS)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from a2a.types import AgentCard
from a2a.utils.signing import (
    InvalidSignaturesError,
    NoSignatureError,
    ProtectedHeader,
    create_agent_card_signer,
    create_signature_verifier,
)
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKError

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
    refuted: bool = False  # checked against trusted keys and failed: a changed card or an untrusted signer


def verify_card(card: dict[str, Any], trusted: TrustedKeys | None) -> CardVerification:
    """Check a 1.0 card's signatures against the trusted keys; never raises on a malformed signature."""
    signatures = card.get("signatures") or []
    if not signatures:
        return CardVerification(signed=False, verified=False, detail="unsigned")
    if trusted is None or not trusted.keys:
        return CardVerification(signed=True, verified=False, detail="signed, but no trusted keys are configured")
    if "supportedInterfaces" not in card:
        # 0.3 signatures cover the 0.3 JSON; checking them against the 1.0 form would leave its url unsigned
        return CardVerification(signed=True, verified=False, detail="signatures of A2A 0.3 cards are not checked")
    try:
        parsed = ParseDict(card, AgentCard(), ignore_unknown_fields=True)
    except ParseError as exc:
        return CardVerification(signed=True, verified=False, detail=f"signatures cannot be checked: {exc}", refuted=True)
    lookup = trusted.key
    asked: list[str | None] = []
    handed_out: list[str] = []

    def key_for(kid: str | None, jku: str | None) -> PyJWK:
        asked.append(kid)
        key = lookup(kid, jku)
        handed_out.append(str(kid))
        return key

    try:
        create_signature_verifier(key_for, ALGORITHMS)(parsed)
    except NoSignatureError:
        return CardVerification(signed=False, verified=False, detail="unsigned")
    except InvalidSignaturesError as exc:
        if not asked:  # no signature got as far as naming its key: unreadable headers, or no canonical form
            detail = f"signatures cannot be checked: {exc}"
        elif not handed_out:
            detail = f"not signed by a trusted key (kid {', '.join(repr(k) for k in asked)})"
        else:
            kids = ", ".join(dict.fromkeys(handed_out))
            detail = f"signature by kid {kids} does not match the card (changed after signing?)"
        return CardVerification(signed=True, verified=False, detail=detail, refuted=True)
    # the verifier stops at the first signature that verifies, so the last key handed out is the one that did
    return CardVerification(signed=True, verified=True, detail=f"verified (kid {handed_out[-1]})")


def sign_card(card: AgentCard, private_jwk: dict[str, Any], alg: str = "ES256") -> AgentCard:
    """Append a JWS signature made with ``private_jwk`` (which must carry a ``kid``)."""
    key = PyJWK.from_dict(private_jwk)
    # no "jku" at all: a null one is not a URI, and strict JOSE verifiers reject the header
    header = cast(ProtectedHeader, {"kid": key.key_id, "alg": alg, "typ": "JOSE"})
    signer = create_agent_card_signer(key, header)
    return signer(card)


def card_dict_signed(card: AgentCard, private_jwk: dict[str, Any], alg: str = "ES256") -> dict[str, Any]:
    return MessageToDict(sign_card(card, private_jwk, alg))

