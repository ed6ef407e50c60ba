"""No job is lost to a crash: SIGKILL the node right after submitting, restart it on the same data dir."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.conftest import ServeProcess
from tests.helpers import TERMINAL, get_job, submit, wait_for_state, wasm_job

pytestmark = pytest.mark.e2e


def test_jobs_submitted_before_a_sigkill_all_finish_after_restart(
    hybrid: ServeProcess, wasm: Callable[[str], bytes]
) -> None:
    """Jobs queued, bidding and running at the moment of the crash all complete, each exactly once."""
    slow = wasm_job(wasm("sleep"), "400")
    job_ids = [submit(hybrid.url, slow) for _ in range(12)]
    node_id = httpx.get(f"{hybrid.url}/api/v1/agent/node").json()["NodeID"]
    at_crash = [get_job(hybrid.url, job_id)["Job"]["State"]["StateType"] for job_id in job_ids]
    assert any(state not in TERMINAL for state in at_crash), at_crash

    hybrid.kill()
    hybrid.start()

    assert httpx.get(f"{hybrid.url}/api/v1/agent/node").json()["NodeID"] == node_id
    states = [wait_for_state(hybrid.url, job_id, timeout=60)["State"]["StateType"] for job_id in job_ids]
    assert all(state in TERMINAL for state in states)
    assert states.count("Completed") == len(job_ids), states
    for job_id in job_ids:
        details = get_job(hybrid.url, job_id, include="history,executions")
        messages = [h["Event"]["Message"] for h in details["History"]["Items"]]
        assert messages.count("Job submitted") == 1
        completed = [e for e in details["Executions"]["Items"] if e["ComputeState"]["StateType"] == 9]
        assert len(completed) == 1, "a job ran to completion more than once"


def test_a_graceful_stop_exits_zero_and_leaves_no_nats_server(hybrid: ServeProcess) -> None:
    assert hybrid.stop() == 0
    assert "shutting down" in hybrid.log()
