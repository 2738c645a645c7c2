"""Worker side of procsupervisor: worker loop, processing rules and the stackwalker.

Installed as `procsupervisor.workers` (see pyproject's package-dir mapping).
"""
