"""Bundled example agents."""
