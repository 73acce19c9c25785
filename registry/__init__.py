"""Discovery service for A2A agents and MCP servers (built in the registry issue)."""
