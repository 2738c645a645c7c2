"""Stackwalker part: output (see workers/stackwalker/__init__.py)."""
