"""Stackwalker part: unwind (see workers/stackwalker/__init__.py)."""
