"""Stackwalker part: symbols (see workers/stackwalker/__init__.py)."""
