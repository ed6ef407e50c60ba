"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bacalhau.orchestrator.store import JobStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[JobStore]:
    """A job store in a real SQLite file (not synced to disk: tests need no durability across power loss)."""
    job_store = JobStore(tmp_path / "jobs.db", durable=False)
    await job_store.open()
    yield job_store
    job_store.close()
