"""Coordination: plans, durable workflows, failure handling, negotiation and human hand-off.

The coordinator (``agents.coordination.coordinator``) is itself an agent on the runtime, so it is
served over A2A and MCP like any other. Wire formats stay in ``protocols/``.
"""
