"""Fixtures shared by the unit tests: the orchestrator's store (a SQLite file, and a PostgreSQL database: each test that
uses it runs on both) and a compute node's store (a SQLite file). Neither is synced to disk: tests need no durability
across power loss."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from bacalhau.compute.store import ExecutionStore
from bacalhau.orchestrator.store import JobStore

UNIT_TEST_TIMEOUT = 20  # seconds: a unit test takes well under one, so a hang costs seconds, not the suite's minutes
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(UNIT_TEST_TIMEOUT))


class Store(Protocol):
    async def open(self) -> None: ...

    def close(self) -> None: ...


S = TypeVar("S", bound=Store)


@asynccontextmanager
async def opened(store: S) -> AsyncIterator[S]:
    await store.open()
    try:
        yield store
    finally:
        store.close()


STORE_ENGINES = ("sqlite", "postgres")


@pytest.fixture(params=STORE_ENGINES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    """The orchestrator's store, in each engine: a SQLite file, and a fresh PostgreSQL database (skipped, with the
    reason, where PostgreSQL is not installed)."""
    location: Path | str = tmp_path / "jobs.db"
    if request.param == "postgres":
        location = request.getfixturevalue("postgres_url")
    async with opened(JobStore(location, durable=False)) as job_store:
        yield job_store


@pytest.fixture
async def execution_store(tmp_path: Path) -> AsyncIterator[ExecutionStore]:
    async with opened(ExecutionStore(tmp_path / "executions.db", durable=False)) as compute_store:
        yield compute_store
