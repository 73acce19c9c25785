"""Tables of the registry store (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Times are stored as UNIX seconds (float): the same arithmetic on both databases, no time zones.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

agents = Table(
    "registry_agents",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", String(64), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("protocol_version", String(16), nullable=False),
    Column("card", JSON, nullable=False),
    Column("skills", JSON, nullable=False),
    Column("search_text", Text, nullable=False, default=""),
    Column("verified", Boolean, nullable=False, default=False),
    Column("verification", Text, nullable=False, default=""),
    Column("updated_at", Float, nullable=False),
)

# One row per (agent, skill, facet) so skill/tag/mode filters are indexed lookups.
agent_facets = Table(
    "registry_agent_facets",
    metadata,
    Column("agent_id", String(300), ForeignKey("registry_agents.id", ondelete="CASCADE"), nullable=False),
    Column("facet", String(16), nullable=False),  # skill | tag | input_mode | output_mode
    Column("value", String(300), nullable=False),
    Index("registry_facets_lookup", "facet", "value"),
    Index("registry_facets_agent", "agent_id"),
)

instances = Table(
    "registry_instances",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("agent_id", String(300), ForeignKey("registry_agents.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(8), nullable=False),  # a2a | mcp, copied from the agent: probes differ
    Column("url", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("registered_at", Float, nullable=False),
    Column("lease_seconds", Float),
    Column("lease_expires_at", Float),
    Column("last_heartbeat_at", Float),
    Column("last_probe_at", Float),
    Column("last_probe_ok_at", Float),
    Column("state_since", Float, nullable=False),
    Column("in_flight", Integer, nullable=False, default=0),
    Index("registry_instances_agent", "agent_id"),
    Index("registry_instances_state", "state"),
)

transitions = Table(
    "registry_transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("instance_id", String(64), ForeignKey("registry_instances.id", ondelete="CASCADE"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("at", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Index("registry_transitions_instance", "instance_id"),
)

events = Table(
    "registry_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("type", String(16), nullable=False),
    Column("agent_id", String(300), nullable=False),
    Column("instance_id", String(64)),
    Column("state", String(16)),
    Column("at", Float, nullable=False),
    Column("detail", Text, nullable=False, default=""),
)
