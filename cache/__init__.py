"""Shared on-disk symbol cache and symbol suppliers. Installed as `procsupervisor.cache`."""
