"""A data dir written by an earlier release opens with the current code: both stores are brought to the latest schema
version with every job, execution, history item, evaluation, node and queued message as that release left them.

Each folder of ``tests/fixtures/stores`` is a data dir made by one release (see its ``make_fixture.py``). When a
migration changes what an old folder reads back as (a new field with its default, say), say so here, in what the
test expects of the folders made before it, and leave the folders themselves alone.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bacalhau.compute import store as compute_store
from bacalhau.compute.store import ComputeTx, ExecutionStore
from bacalhau.errors import StateConflict
from bacalhau.lib.sqlstore import Migration
from bacalhau.models.history import Event
from bacalhau.orchestrator import store as orchestrator_store
from bacalhau.orchestrator.store import JobStore, Tx
from tests.fixtures.stores.make_fixture import COMPUTE_NODE, COMPUTE_STORE, EXPECTED, ORCHESTRATOR_STORE, snapshot
from tests.unit.conftest import opened

FIXTURES = Path(__file__).parents[1] / "fixtures" / "stores"
RELEASES = sorted(path.name for path in FIXTURES.iterdir() if (path / EXPECTED).is_file())
STORES: list[tuple[Path, list[Migration]]] = [
    (ORCHESTRATOR_STORE, orchestrator_store.MIGRATIONS),
    (COMPUTE_STORE, compute_store.MIGRATIONS),
]


def version_and_schema(path: Path) -> tuple[int, list[tuple[str, ...]]]:
    """The file's schema version, and its tables and indexes as SQL with the spacing evened out."""
    with sqlite3.connect(path) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        rows = conn.execute("SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_schema ORDER BY name")
        schema = [(kind, name, table, " ".join(sql.split())) for kind, name, table, sql in rows]
    conn.close()
    return version, schema


@pytest.fixture(params=RELEASES)
def old_data_dir(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A copy of a release's data dir (the fixture itself stays untouched), and what it held."""
    data_dir = shutil.copytree(FIXTURES / request.param, tmp_path / "data")
    expected = json.loads((data_dir / EXPECTED).read_text())
    del expected["made_with"]
    return data_dir, as_read_now(expected)


def as_read_now(expected: dict[str, Any]) -> dict[str, Any]:
    """What a release's data reads back as today, where later releases added to it.

    Migration 2 (job versions): executions and history items written before them have no JobVersion; the orchestrator
    reads them as its jobs' first version, and a compute node's own copies of executions as 0 (it never looks).

    Migration 5 (traces) changes nothing that is read back: it adds a ``trace_parent`` column beside each job's body,
    empty for the jobs already there (they have no trace; their later work, if traced, starts traces of its own)."""
    for job in expected["orchestrator"]["jobs"]:
        for item in job["executions"] + job["history"]:
            item.setdefault("JobVersion", 1)
    for execution in expected["compute"]["executions"]:
        execution.setdefault("JobVersion", 0)
    return expected


async def test_an_old_data_dir_opens_upgraded_with_everything_in_it(old_data_dir: tuple[Path, dict[str, Any]]) -> None:
    data_dir, expected = old_data_dir
    async with (
        opened(JobStore(data_dir / ORCHESTRATOR_STORE, durable=False)) as jobs,
        opened(ExecutionStore(data_dir / COMPUTE_STORE, durable=False)) as compute,
    ):
        assert await snapshot(jobs, compute) == expected
        # The counters carry on where that release left them.
        seq = await jobs.transact(lambda tx: tx.enqueue_message(COMPUTE_NODE, {"Metadata": {}, "Payload": {}}))
        assert seq == expected["orchestrator"]["streams"][COMPUTE_NODE]["next_seq"]
        job = expected["orchestrator"]["jobs"][0]
        await jobs.transact(lambda tx: tx.add_history(job["job"]["ID"], 1, [Event(message="after the upgrade")]))
        assert (await jobs.history(job["job"]["ID"]))[-1].seq_num == len(job["history"]) + 1
        # Each job made before versions is its own only version, and can be found by its name.
        for item in expected["orchestrator"]["jobs"]:
            stored = await jobs.get_job(item["job"]["ID"])
            assert await jobs.job_versions(stored) == [stored]
            assert await jobs.jobs_named(stored.namespace, stored.name) == [stored]
    for path, migrations in STORES:
        assert version_and_schema(data_dir / path)[0] == len(migrations)


async def open_stores(data_dir: Path) -> None:
    async with (
        opened(JobStore(data_dir / ORCHESTRATOR_STORE, durable=False)),
        opened(ExecutionStore(data_dir / COMPUTE_STORE, durable=False)),
    ):
        pass


async def test_an_upgraded_store_has_the_schema_of_a_new_one(
    old_data_dir: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    data_dir, _ = old_data_dir
    await open_stores(data_dir)
    await open_stores(tmp_path / "new")
    for path, _ in STORES:
        assert version_and_schema(data_dir / path) == version_and_schema(tmp_path / "new" / path)


async def test_an_upgraded_compute_store_holds_no_ports_and_gives_them(
    old_data_dir: tuple[Path, dict[str, Any]],
) -> None:
    """Compute migration 2 (published ports): a table of the host ports each execution holds, empty in an old data
    dir (no execution of that release published any), and used from the first allocation on."""
    data_dir, expected = old_data_dir
    async with opened(ExecutionStore(data_dir / COMPUTE_STORE, durable=False)) as compute:
        assert await compute.db.read(lambda conn: conn.execute("SELECT count(*) FROM ports").fetchone()[0]) == 0
        execution_id = expected["compute"]["executions"][0]["ID"]
        await compute.transact(lambda tx: tx.hold_port(20000, execution_id))
        assert await compute.db.read(lambda conn: ComputeTx(conn).held_ports(execution_id)) == [20000]
        await compute.release_ports()  # that release's executions have all ended
        assert await compute.db.read(lambda conn: ComputeTx(conn).all_held_ports()) == set()


async def test_an_upgraded_store_counts_its_jobs_by_state(old_data_dir: tuple[Path, dict[str, Any]]) -> None:
    """The web UI's state index (jobs_by_state) covers the jobs made before it: the dashboard counts them all."""
    data_dir, expected = old_data_dir
    async with opened(JobStore(data_dir / ORCHESTRATOR_STORE, durable=False)) as jobs:
        states = Counter(item["job"]["State"]["StateType"] for item in expected["orchestrator"]["jobs"])
        assert await jobs.read(lambda conn: Tx(conn).jobs_by_state()) == dict(states)


async def test_an_upgraded_stores_jobs_have_no_trace_and_can_be_given_one(
    old_data_dir: tuple[Path, dict[str, Any]],
) -> None:
    """Migration 5 (traces): the jobs made before it have an empty trace context, and a later one is kept."""
    data_dir, expected = old_data_dir
    job_ids = [item["job"]["ID"] for item in expected["orchestrator"]["jobs"]]
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with opened(JobStore(data_dir / ORCHESTRATOR_STORE, durable=False)) as jobs:
        for job_id in job_ids:
            assert await jobs.read(lambda conn, job_id=job_id: Tx(conn).trace_parent(job_id)) == ""
        before = await jobs.get_job(job_ids[0])
        await jobs.transact(lambda tx: tx.set_trace_parent(job_ids[0], traceparent))
        assert await jobs.read(lambda conn: Tx(conn).trace_parent(job_ids[0])) == traceparent
        assert await jobs.get_job(job_ids[0]) == before  # the job itself (its wire JSON) is untouched


async def test_an_upgraded_stores_revisions_are_checked_from_their_columns(
    old_data_dir: tuple[Path, dict[str, Any]],
) -> None:
    """Migration 6 (names and revisions in columns): each old job and execution keeps the revision its body said, so
    a write of what was read succeeds once and a second write of the same reading is a conflict."""
    data_dir, expected = old_data_dir
    async with opened(JobStore(data_dir / ORCHESTRATOR_STORE, durable=False)) as jobs:
        for item in expected["orchestrator"]["jobs"]:
            job = await jobs.get_job(item["job"]["ID"])
            stale = job.model_copy(deep=True)
            await jobs.transact(lambda tx, job=job: tx.save_job(job))
            assert (await jobs.get_job(job.id)).revision == item["job"]["Revision"] + 1
            with pytest.raises(StateConflict):
                await jobs.transact(lambda tx, stale=stale: tx.save_job(stale))
            for execution in item["executions"]:
                stored = await jobs.get_execution(execution["ID"])
                assert stored is not None
                again = stored.model_copy(deep=True)
                await jobs.transact(lambda tx, e=stored: tx.update_execution(e, update=lambda _: None))
                with pytest.raises(StateConflict):
                    await jobs.transact(lambda tx, e=again: tx.update_execution(e, update=lambda _: None))
