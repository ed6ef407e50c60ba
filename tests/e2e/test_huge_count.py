"""A job asking for a billion partitions leaves a real node responsive: its API answers, other jobs run, SIGTERM
stops it promptly, and all of that still holds after a restart that finds the job's evaluation in the store.

Scheduling such a job used to enumerate every partition on the event loop: the node stopped answering, ignored
SIGTERM, and hung again on restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServeProcess
from tests.e2e.test_cluster import noop_job
from tests.helpers import executions, get_job, submit, wait_for_state

pytestmark = pytest.mark.e2e

HUGE_COUNT = 10**9
API_BUDGET = 2.0  # seconds for the API to answer
STOP_BUDGET = 5.0  # seconds for SIGTERM to end the node


@pytest.fixture
def node(tmp_path: Path) -> Iterator[ServeProcess]:
    """A hybrid node whose operator raised the bound on Count to let such a job in."""
    serve = ServeProcess(tmp_path / "node", "--orchestrator", "--compute")
    serve.config = ["-c", f"Orchestrator.JobLimits.MaxCount={HUGE_COUNT}"]
    yield serve.start()
    serve.stop()


def assert_responsive(node: ServeProcess) -> None:
    """A small job runs to completion (its end sends the queued huge job through a scheduling round again), then
    the API answers at once."""
    small = submit(node.url, noop_job())
    assert wait_for_state(node.url, small)["State"]["StateType"] == "Completed"
    started = time.monotonic()
    httpx.get(f"{node.url}/api/v1/agent/alive", timeout=API_BUDGET).raise_for_status()
    assert time.monotonic() - started < API_BUDGET


def assert_stops_promptly(node: ServeProcess) -> None:
    started = time.monotonic()
    assert node.stop(timeout=STOP_BUDGET) == 0, node.log()[-2000:]
    assert time.monotonic() - started < STOP_BUDGET


def test_a_job_with_a_huge_count_leaves_the_node_responsive_and_stoppable(node: ServeProcess) -> None:
    job_id = submit(node.url, noop_job(Count=HUGE_COUNT, task={"Timeouts": {"QueueTimeout": 3600}}))
    queued = wait_for_state(node.url, job_id, ("Queued",))
    assert queued["State"]["Message"].startswith(
        f"Job queued. not enough nodes to run job. requested: {HUGE_COUNT - 1}, available: 1, suitable: 0."
    )
    assert [e.get("PartitionIndex", 0) for e in executions(node.url, job_id)] == [0]
    assert_responsive(node)
    assert_stops_promptly(node)

    node.start()  # the huge job's evaluation is still open in the store
    assert_responsive(node)
    assert get_job(node.url, job_id)["Job"]["State"]["StateType"] == "Queued"
    assert len(executions(node.url, job_id)) == 1
    assert_stops_promptly(node)
