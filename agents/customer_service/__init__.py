"""The customer-service mesh: eight specialist agents and a coordinator with their playbooks.

Each agent is an independent service (``mesh serve agents.customer_service.<module>:agent``) that
keeps its data in ``$MESH_HOME/customer_service/``, seeded on first use from ``data/``.
"""
