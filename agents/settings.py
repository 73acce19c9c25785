"""One settings object for every mesh process, read from ``MESH_*`` environment variables.

Standard ``OTEL_*`` variables are read by ``tracing``; everything the mesh itself decides is here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

ENV_PREFIX = "MESH_"


class SettingsError(ValueError):
    """A ``MESH_*`` variable holds a value that cannot be used; the message names it."""


class MeshSettings(BaseModel):
    """Configuration shared by agents, the registry and the CLI.

    Every field maps to ``MESH_<FIELD NAME IN UPPER CASE>``; e.g. ``home`` is ``MESH_HOME``.
    """

    home: Path = Field(default=Path(".mesh"), description="State directory: databases and logs.")
    host: str = Field(default="127.0.0.1", description="Interface an agent binds to.")
    port: int = Field(default=0, ge=0, le=65535, description="Port an agent binds to; 0 picks a free one.")
    public_url: str | None = Field(
        default=None, description="Base URL written into agent cards when it differs from host:port."
    )
    task_store: Literal["sqlite", "memory"] = Field(
        default="sqlite", description="Where tasks are kept: a SQLite file under home, or memory only."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL for the task store; overrides the SQLite file."
    )
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0, description="Request bodies above this get 413.")
    max_json_depth: int = Field(default=64, ge=1, description="JSON bodies nested deeper than this get 400.")
    allow_private_urls: bool | None = Field(
        default=None, description="Outbound URLs (push notifications, registered cards) may resolve to loopback, "
                                  "private or CGNAT addresses; unset: only when this service binds to loopback.")
    push_allow_private: bool | None = Field(
        default=None, description="Older name of allow_private_urls for push-notification URLs only; wins there when set."
    )
    push_timeout_seconds: float = Field(default=5.0, gt=0, description="Timeout of one push delivery.")
    log_level: str = Field(default="INFO")
    trace_store: bool = Field(default=True, description="Keep spans in $MESH_HOME/traces.db for mesh traces.")
    trace_content: bool = Field(
        default=False, description="Record skill arguments and results on spans (secrets redacted)."
    )
    trace_viewer_url: str | None = Field(
        default=None, description="Jaeger or Phoenix base URL; mesh trace prints a link to the trace there."
    )

    # -- registry: the client side (every agent) ------------------------------------------
    registry_url: str | None = Field(default=None, description="Register with this registry on start.")
    registry_token: str | None = Field(
        default=None, description="Write credential for the registry; default: the token file under home."
    )
    registry_lease_seconds: float = Field(default=15.0, gt=0, description="Lease an agent asks for; it heartbeats at a third.")
    # -- registry: the service ---------------------------------------------------------------
    registry_db: str | None = Field(default=None, description="Store URL: sqlite:///path or postgresql://...")
    registry_tokens: str | None = Field(default=None, description="Comma-separated bearer tokens accepted for writes.")
    registry_jwt_secret: str | None = Field(default=None, description="HS256 secret for JWT write credentials.")
    registry_jwt_public_key: str | None = Field(default=None, description="PEM file of the key verifying RS/ES JWTs.")
    registry_jwt_audience: str | None = Field(default=None)
    registry_jwt_issuer: str | None = Field(default=None)
    registry_protect_reads: bool = Field(default=False, description="Reads need a credential too.")
    registry_card_policy: Literal["allow-unsigned", "require-signed"] = Field(default="allow-unsigned")
    registry_trusted_keys: str | None = Field(
        default=None, description="JWKS file of keys trusted for card signatures; default: trusted_card_keys.")
    registry_probe_seconds: float = Field(default=5.0, gt=0, description="How often instances are probed.")
    registry_evict_seconds: float = Field(default=30.0, gt=0, description="Unhealthy this long: evicted.")
    # -- the MCP gateway (/mcp on the registry, mesh mcp) -------------------------------------
    gateway_idle_seconds: float = Field(
        default=300.0, gt=0, description="A call through the gateway fails when its agent sends nothing for this long."
    )

    # -- authentication and authorization (see docs/security.md) ------------------------------
    auth_mode: Literal["off", "required"] = Field(
        default="off", description="required: every A2A and MCP call needs a valid credential (cards and probes stay open)."
    )
    auth_jwt_secret: str | None = Field(default=None, description="HS256 secret that JWTs are verified (and, with "
                                                                  "auth_delegate, delegated tokens signed) with.")
    auth_jwt_public_key: str | None = Field(default=None, description="PEM file of the key verifying RS/ES/PS/EdDSA JWTs.")
    auth_jwt_audience: str | None = Field(
        default=None, description="An audience accepted besides the service's own name (e.g. the mesh's name)."
    )
    auth_jwt_issuer: str | None = Field(default=None, description="Required issuer of JWTs; also put on delegated tokens.")
    auth_api_keys: str | None = Field(default=None, description="TOML file of API keys: [keys.<name>] sha256 = ...")
    policy: str | None = Field(default=None, description="TOML policy file: which callers hold which scopes.")
    auth_token: str | None = Field(
        default=None, description="This service's own credential for outbound calls: env:NAME, file:/path or the token."
    )
    auth_credentials: str | None = Field(
        default=None, description="TOML file of credentials per target URL prefix: [targets.\"http://…\"] bearer/api_key."
    )
    auth_delegate: bool = Field(
        default=False, description="Act for the caller: outbound calls carry a delegated token (sub = the caller)."
    )
    auth_signing_key: str | None = Field(default=None, description="PEM private key signing delegated tokens.")
    auth_signing_algorithm: str = Field(default="RS256")

    # -- signed cards (protocols/card_signing.py, docs/signed-cards.md) --------------------------
    card_signing_key: str | None = Field(
        default=None, description="Private JWK file (with a kid) this agent signs its card with.")
    trusted_card_keys: str | None = Field(
        default=None, description="JWKS file of the keys clients trust to sign the cards they read.")
    card_policy: Literal["verify", "require-signed"] = Field(
        default="verify", description="verify: a card whose signature fails is refused, an unsigned one used; "
                                      "require-signed: only cards verified against trusted_card_keys are used.")

    # -- coordination ------------------------------------------------------------------------
    coordinator_url: str | None = Field(
        default=None, description="Coordinator for mesh ask/inbox/reply/dlq; default: found in the registry."
    )
    workflow_db: str | None = Field(
        default=None, description="Workflow store URL (sqlite:///... or postgresql://...); default under home."
    )
    workflow_lease_seconds: float = Field(
        default=30.0, gt=0, description="A coordinator holds a running workflow this long per renewal; "
                                        "another replica takes over an expired one.")
    max_hops: int = Field(default=8, ge=1, description="Delegations a request may cross before it is refused.")
    step_timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of one call to an agent.")
    step_retries: int = Field(default=2, ge=0, description="Retries of a transient failure, per instance.")
    retry_backoff_seconds: float = Field(default=0.2, gt=0, description="First retry delay; doubles, with jitter.")
    retry_backoff_max_seconds: float = Field(default=5.0, gt=0)
    breaker_failures: int = Field(default=5, ge=1, description="Consecutive failures that open an instance's circuit.")
    breaker_reset_seconds: float = Field(default=30.0, gt=0, description="An open circuit lets one probe through after this.")
    escalate_below: float = Field(default=0.5, ge=0, le=1, description="Step confidence below this goes to a human.")
    negotiation_timeout_seconds: float = Field(default=2.0, gt=0, description="How long a call for proposals waits for bids.")
    llm_base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint for the optional planner.")
    llm_model: str | None = Field(default=None)
    llm_api_key: str | None = Field(default=None)
    llm_timeout_seconds: float = Field(default=20.0, gt=0)

    # -- limits and audit (protocols/rate_limit.py, agents/audit.py; docs/audit-and-limits.md) --
    rate_limit_per_caller: float | None = Field(
        default=None, gt=0, description="Requests per second one caller may make to a service; unset: no limit.")
    rate_limit_burst: int | None = Field(
        default=None, ge=1, description="Requests a caller may send at once after a pause; default twice the rate.")
    rate_limit_per_agent: float | None = Field(
        default=None, gt=0, description="Requests per second an agent accepts from all callers together.")
    quota_per_caller: int | None = Field(
        default=None, ge=1, description="Calls one caller may make per quota window; unset: no quota.")
    quota_window_seconds: float = Field(default=3600.0, gt=0, description="Length of the quota window.")
    audit: bool | None = Field(
        default=None, description="Record every call in the audit log; unset: on when authentication is required.")
    audit_db: str | None = Field(
        default=None, description="Audit log URL (sqlite:///... or postgresql://...); default: $MESH_HOME/audit/audit.db.")

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> MeshSettings:
        """Build settings from ``MESH_*`` variables; explicit ``overrides`` win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw not in (None, ""):
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
            )
            raise SettingsError(problems) from exc

    def state_dir(self, *parts: str) -> Path:
        """A directory under ``home``, created on first use."""
        path = self.home.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path
