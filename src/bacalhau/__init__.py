"""Bacalhau in Python: a compute-over-data job orchestrator compatible with Bacalhau's API, job specs and CLI."""

__version__ = "0.1.0"
