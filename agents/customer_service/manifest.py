"""The customer-service mesh: which processes `mesh up` starts, on which ports, in which order.

One list serves `mesh up`, `make demo`, compose.yaml (checked by tests/test_compose.py) and the
tests, so a new agent is added in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AGENTS", "COORDINATOR", "REGISTRY_PORT", "MeshProcess", "mesh_processes"]

REGISTRY_PORT = 8700


@dataclass(frozen=True, slots=True)
class MeshProcess:
    """One service of the mesh: ``target`` is what ``mesh serve`` loads (``module:attr``)."""

    name: str
    target: str
    port: int
    role: str


AGENTS: tuple[MeshProcess, ...] = (
    MeshProcess("intent", "agents.customer_service.intent:agent", 8711, "classifies requests, extracts account and address"),
    MeshProcess("customers", "agents.customer_service.customers:agent", 8712, "customer data from the CRM"),
    MeshProcess("knowledge", "agents.customer_service.knowledge:agent", 8713, "FAQ search"),
    MeshProcess("eligibility", "agents.customer_service.eligibility:agent", 8714, "service availability by address"),
    MeshProcess("scheduling", "agents.customer_service.scheduling:agent", 8715, "installation slots"),
    MeshProcess("workflow", "agents.customer_service.orders:agent", 8716, "creates orders"),
    MeshProcess("notification", "agents.customer_service.notification:agent", 8717, "confirmations to the outbox"),
    MeshProcess("compliance", "agents.customer_service.compliance:agent", 8718, "PII and policy checks"),
)
COORDINATOR = MeshProcess("coordinator", "agents.customer_service.coordinator:agent", 8710, "plans and runs workflows")


def mesh_processes() -> tuple[MeshProcess, ...]:
    """Every agent process in start order: the specialists first, the coordinator last."""
    return (*AGENTS, COORDINATOR)
