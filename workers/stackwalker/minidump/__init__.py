"""Stackwalker part: minidump (see workers/stackwalker/__init__.py)."""
