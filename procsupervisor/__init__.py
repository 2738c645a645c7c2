"""procsupervisor: a supervised crash-report processor (Socorro-compatible)."""

__version__ = "0.1.0"
