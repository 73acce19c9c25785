"""Access control of one service, from settings: credentials, policy, limits, audit log, wired once.

``ServiceAccess.from_settings`` reads every file at start (a wrong file is a startup error, never
a silent open door); ``wrap`` puts ``protocols.guard.Guard`` in front of the app when anything is
on; ``start``/``stop`` open and flush the audit log. With everything off nothing is installed and
a request costs nothing extra.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from starlette.types import ASGIApp

from agents.audit import AuditError, AuditEvent, AuditLog, audit_db_url, audit_enabled
from agents.policy import Policy
from agents.settings import MeshSettings
from protocols.credentials import Authenticator, MeshTokenVerifier
from protocols.guard import Guard, GuardConfig
from protocols.rate_limit import Limits

__all__ = ["ServiceAccess"]

log = logging.getLogger("agents.access")


@dataclass
class ServiceAccess:
    service: str
    settings: MeshSettings
    authenticator: Authenticator | None
    policy: Policy | None
    limits: Limits | None
    audit_url: str | None
    audit_log: AuditLog | None = None

    @classmethod
    def from_settings(cls, settings: MeshSettings, service: str) -> ServiceAccess:
        required = settings.auth_mode == "required"
        limits = Limits.from_settings(settings)
        return cls(
            service=service,
            settings=settings,
            authenticator=Authenticator.from_settings(settings, service) if required else None,
            policy=Policy.from_file(settings.policy) if settings.policy else None,
            limits=limits if limits.enabled else None,
            audit_url=audit_db_url(settings) if audit_enabled(settings, auth_required=required) else None,
        )

    @property
    def active(self) -> bool:
        return any(x is not None for x in (self.authenticator, self.limits, self.audit_url))

    def mcp_auth(self, base_url: str, mcp_path: str) -> tuple[TokenVerifier, AuthSettings] | None:
        """The mcp SDK's bearer verification for the MCP endpoint (RFC 9728 metadata included)."""
        if self.authenticator is None:
            return None
        resource = f"{base_url.rstrip('/')}{mcp_path}"
        issuer = self.settings.auth_jwt_issuer or base_url
        return MeshTokenVerifier(self.authenticator), AuthSettings(
            issuer_url=issuer, resource_server_url=resource, validate_token_resource=False)  # type: ignore[arg-type]

    def wrap(self, app: ASGIApp, skills: list[str], base_url: str, mcp_path: str) -> ASGIApp:
        if not self.active:
            return app
        metadata = f"{base_url.rstrip('/')}/.well-known/oauth-protected-resource{mcp_path}"
        config = GuardConfig(self.service, skills, self.authenticator, self.policy, self.limits,
                             self._record if self.audit_url else None, metadata if self.authenticator else None)
        return Guard(app, config)

    def _record(self, event: AuditEvent) -> None:
        if self.audit_log is None:
            log.warning("audit event before the audit log was open: %s %s", event.operation, event.outcome)
            return
        try:
            self.audit_log.record_nowait(event)
        except AuditError as exc:  # far behind its database: say so loudly, the call itself goes on
            log.error("audit log refused an event: %s", exc)

    async def start(self) -> None:
        if self.audit_url is not None:
            self.audit_log = await AuditLog.open(self.audit_url)

    async def stop(self) -> None:
        if self.audit_log is not None:
            await self.audit_log.close()
            self.audit_log = None
