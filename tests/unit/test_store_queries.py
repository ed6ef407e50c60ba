"""Store queries that run per submission or per node: what they find, and that they find it through an index rather
than by reading a whole table (their cost must follow what they return, not what the store holds)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bacalhau.models.state import ExecutionStateType
from bacalhau.orchestrator.store import JobStore, Tx
from tests.unit.conftest import opened
from tests.unit.test_scheduler import execution


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[JobStore]:
    """SQLite's plans only: PostgreSQL plans by table statistics, and on a test's few rows it rightly reads the table
    (its indexes are the same, made by the same migration)."""
    async with opened(JobStore(tmp_path / "jobs.db", durable=False)) as job_store:
        yield job_store


async def query_plans(store: JobStore, read: Callable[[Tx], object]) -> list[str]:
    """The query plan of each SELECT that ``read`` runs."""

    def explain(conn: sqlite3.Connection) -> list[str]:
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        try:
            read(Tx(conn))
        finally:
            conn.set_trace_callback(None)
        selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        return [str(row[3]) for select in selects for row in conn.execute(f"EXPLAIN QUERY PLAN {select}")]

    return await store.read(explain)


async def test_finding_a_job_by_name_reads_only_the_jobs_of_that_name(store: JobStore) -> None:
    """Every submission looks its name up: the lookup must use the name index, not read the whole namespace."""
    plans = await query_plans(store, lambda tx: tx.jobs_named("default", "my-job"))
    assert any("USING INDEX jobs_by_name (" in plan for plan in plans), plans


async def test_the_jobs_live_on_a_node_are_found_through_the_live_executions_index(store: JobStore) -> None:
    """Run for each node that leaves: with a thousand nodes leaving together, a pass over every live execution each
    time would cost nodes x executions."""

    def fill(tx: Tx) -> None:
        states = [ExecutionStateType.RUNNING, ExecutionStateType.ASK_FOR_BID_ACCEPTED, ExecutionStateType.COMPLETED]
        for number, (node_id, state) in enumerate([*(("n-1", s) for s in states), ("n-2", states[0])]):
            placed = execution(node_id, state, created=number + 1)
            placed.job_id = f"j-{number}"
            tx.insert_execution(placed)

    await store.transact(fill)
    assert await store.live_job_ids_on("n-1") == ["j-0", "j-1"]
    assert await store.live_job_ids_on("n-3") == []
    plans = await query_plans(store, lambda tx: tx.live_job_ids_on("n-1"))
    assert any("USING INDEX executions_live_by_node" in plan for plan in plans), plans


async def test_the_web_ui_summary_reads_the_state_index_only(store: JobStore) -> None:
    """The dashboard asks every few seconds, whatever the store holds: the counts by state come from the state index
    alone (never a job's body), and the jobs that ended in the last hour are found by state and time in it."""
    by_state = await query_plans(store, lambda tx: tx.jobs_by_state())
    assert by_state == ["SCAN jobs USING COVERING INDEX jobs_by_state"], by_state
    ended = await query_plans(store, lambda tx: tx.ended_jobs_per_interval(("Completed", "Failed"), 10**18, 60, 60))
    assert any(
        "SEARCH jobs USING COVERING INDEX jobs_by_state (state=? AND modify_time>? AND modify_time<?)" in plan
        for plan in ended
    ), ended
