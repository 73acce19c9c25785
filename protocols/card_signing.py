"""JWS signatures on A2A agent cards (the a2a-sdk signing helpers, with keys from a JWKS).

An agent signs its card with a private JWK (``MESH_CARD_SIGNING_KEY``); whoever reads a card, the
registry at intake and every client before its first call, checks it with a :class:`CardTrust`:
a signature that does not verify against the trusted keys (``MESH_TRUSTED_CARD_KEYS``) is refused,
and under ``MESH_CARD_POLICY=require-signed`` so is a card without one. docs/signed-cards.md.
"""

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
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from jwt import PyJWK, PyJWKSet
from jwt.algorithms import ECAlgorithm
from jwt.exceptions import PyJWKError

from agents.settings import MeshSettings, SettingsError
from protocols.cards import CardProblem

__all__ = [
    "CardTrust",
    "CardVerification",
    "SigningKeyError",
    "TrustedKeys",
    "UntrustedCard",
    "card_dict_signed",
    "generate_signing_key",
    "load_signing_key",
    "sign_card",
    "verify_card",
]

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


class UntrustedCard(ValueError):
    """A card refused for its signatures; ``problem`` names ``$.signatures`` and says why."""

    def __init__(self, where: str, problem: CardProblem) -> None:
        super().__init__(f"agent card of {where} refused: {problem.reason}")
        self.problem = problem


@dataclass(frozen=True, slots=True)
class CardTrust:
    """What a reader of cards accepts: never a signature that fails against ``keys``; an unsigned (or
    unverifiable) card only when ``require_signed`` is off."""

    keys: TrustedKeys | None = None
    require_signed: bool = False

    @classmethod
    def for_clients(cls, settings: MeshSettings) -> CardTrust:
        """What this process's clients accept (``MESH_TRUSTED_CARD_KEYS``, ``MESH_CARD_POLICY``)."""
        return cls._load(settings.trusted_card_keys, settings.card_policy == "require-signed",
                         "MESH_CARD_POLICY", "MESH_TRUSTED_CARD_KEYS")

    @classmethod
    def for_registry(cls, settings: MeshSettings) -> CardTrust:
        """What the registry accepts at intake; its own keys, else the clients' ones."""
        return cls._load(settings.registry_trusted_keys or settings.trusted_card_keys,
                         settings.registry_card_policy == "require-signed",
                         "MESH_REGISTRY_CARD_POLICY", "MESH_REGISTRY_TRUSTED_KEYS (or MESH_TRUSTED_CARD_KEYS)")

    @classmethod
    def _load(cls, path: str | None, require_signed: bool, policy_name: str, keys_name: str) -> CardTrust:
        if require_signed and not path:  # it would refuse every card: say so at start
            raise SettingsError(f"{policy_name}=require-signed needs {keys_name} (a JWKS file)")
        if not path:
            return cls(None, require_signed)
        try:
            return cls(TrustedKeys.from_file(path), require_signed)
        except (OSError, ValueError, PyJWKError) as exc:
            raise SettingsError(f"{keys_name}: cannot read the JWKS {path}: {exc}") from None

    def judge(self, card: dict[str, Any]) -> tuple[CardVerification, CardProblem | None]:
        """What the signatures say, and why the card is not to be used (None: it may be)."""
        check = verify_card(card, self.keys)
        if check.refuted:
            return check, CardProblem("$.signatures", check.detail)
        if self.require_signed and not check.verified:
            return check, CardProblem("$.signatures", f"a verified signature is required ({check.detail})")
        return check, None

    def check(self, card: dict[str, Any], where: str) -> None:
        """Raise :class:`UntrustedCard` when ``card`` (read from ``where``) is not to be used."""
        _, problem = self.judge(card)
        if problem is not None:
            raise UntrustedCard(where, problem)


class SigningKeyError(SettingsError):
    """The card signing key cannot be used; the message says which file and why."""


def load_signing_key(path: str | Path) -> dict[str, Any]:
    """A private JWK from a file: it must be a private key and carry a ``kid`` (verifiers look keys up by it)."""
    try:
        jwk = json.loads(Path(path).read_text())
        key = PyJWK.from_dict(jwk)
    except (OSError, ValueError, PyJWKError) as exc:
        raise SigningKeyError(f"card signing key {path}: {exc}") from None
    if not key.key_id:
        raise SigningKeyError(f"card signing key {path}: the JWK has no 'kid'")
    if not any(name in jwk for name in ("d", "p")):
        raise SigningKeyError(f"card signing key {path}: this is a public key; signing needs the private JWK")
    return cast(dict[str, Any], jwk)


def generate_signing_key(kid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new EC P-256 key for signing cards: (private JWK, public JWK), both with ``kid``."""
    private = ec.generate_private_key(ec.SECP256R1())
    public_jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True) | {"kid": kid, "use": "sig", "alg": "ES256"}
    return ECAlgorithm.to_jwk(private, as_dict=True) | {"kid": kid, "use": "sig", "alg": "ES256"}, public_jwk


def algorithm_of(jwk: dict[str, Any]) -> str:
    """The JWS algorithm a key signs with: its own ``alg``, else the usual one for its type and curve."""
    if jwk.get("alg"):
        return str(jwk["alg"])
    by_curve = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "Ed25519": "EdDSA"}
    if jwk.get("kty") == "RSA":
        return "RS256"
    try:
        return by_curve[jwk.get("crv", "")]
    except KeyError:
        raise SigningKeyError(f"no JWS algorithm for a {jwk.get('kty')} key on curve {jwk.get('crv')!r}") from None


def sign_card(card: AgentCard, private_jwk: dict[str, Any], alg: str | None = None) -> AgentCard:
    """Append a JWS signature made with ``private_jwk`` (which must carry a ``kid``)."""
    key = PyJWK.from_dict(private_jwk)
    alg = alg or algorithm_of(private_jwk)
    # no "jku" at all: a null one is not a URI, and strict JOSE verifiers reject the header
    header = cast(ProtectedHeader, {"kid": key.key_id, "alg": alg, "typ": "JOSE"})
    signer = create_agent_card_signer(key, header)
    return signer(card)


def card_dict_signed(card: AgentCard, private_jwk: dict[str, Any], alg: str | None = None) -> dict[str, Any]:
    """:func:`sign_card`, as the card's JSON."""
    return MessageToDict(sign_card(card, private_jwk, alg))

